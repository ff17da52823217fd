import hashlib
import json

import numpy as np
import pytest

from bractivate.genome import Edge, Genome, block_names, block_widths, random_genome, unet_skip_edges


def test_block_order_and_widths():
    assert block_names(2) == ["enc0", "enc1", "mid", "dec1", "dec0"]
    widths = block_widths(3, 16)
    assert [widths[b] for b in ("enc0", "enc1", "enc2", "mid")] == [16, 24, 36, 54]
    assert [widths[f"dec{i}"] for i in range(3)] == [16, 24, 36]


@pytest.mark.parametrize(
    "depth, filters, edges, message",
    [
        (0, 8, [], "depth must be >= 1"),
        (2, 0, [], "filters must be >= 1"),
        (2, 8, [("enc0", "dec7", "concat")], "unknown block 'dec7'"),
        (2, 8, [("dec0", "enc1", "concat")], "goes backwards"),
        (2, 8, [("mid", "mid", "add")], "goes to itself"),
        (2, 8, [("enc0", "dec0", "concat"), ("enc0", "dec0", "add")], "duplicate edge enc0->dec0"),
        (2, 8, [("enc0", "dec0", "mul")], "op 'mul' not in"),
        (2, 8, [("enc1", "mid", "concat")], "already feeds mid through the main path"),
    ],
)
def test_invalid_genomes_name_the_problem(depth, filters, edges, message):
    with pytest.raises(ValueError, match=message):
        Genome(depth, filters, tuple(edges))


def test_canonical_json_round_trip_and_hash_ignore_edge_order():
    a = Genome(3, 8, (("enc0", "dec0", "concat"), ("enc1", "dec0", "add"), ("enc0", "mid", "add")))
    b = Genome(3, 8, (("enc0", "mid", "add"), ("enc1", "dec0", "add"), ("enc0", "dec0", "concat")))
    assert a == b and a.hash == b.hash and a.to_json() == b.to_json()
    assert Genome.from_json(a.to_json()) == a
    assert [(e.src, e.dst) for e in a.edges] == [("enc0", "mid"), ("enc0", "dec0"), ("enc1", "dec0")]
    assert a.hash != Genome(3, 9, a.edges).hash
    assert a.hash != a.with_edges([Edge("enc0", "mid", "concat"), *a.edges[1:]]).hash


def test_hash_is_stable_across_versions():
    # A change of the canonical form would silently break resumed searches and caches.
    genome = Genome(2, 8, tuple(unet_skip_edges(2)))
    assert genome.to_json() == (
        '{"depth":2,"edges":[{"dst":"dec1","op":"concat","src":"enc1"},'
        '{"dst":"dec0","op":"concat","src":"enc0"}],"filters":8}'
    )
    assert genome.hash == hashlib.sha256(genome.to_json().encode()).hexdigest()[:16] == "0bcf4220988a62a4"


def test_load_rejects_bad_json_files(tmp_path):
    path = tmp_path / "g.json"
    path.write_text(json.dumps({"depth": 2, "filters": 8, "edges": [{"src": "dec0", "dst": "enc1", "op": "add"}]}))
    with pytest.raises(ValueError, match=r"g\.json: edge dec0->enc1 goes backwards"):
        Genome.load(path)
    path.write_text(json.dumps({"depth": 2, "filters": 8, "width": 3}))
    with pytest.raises(ValueError, match=r"unknown \['width'\]"):
        Genome.load(path)
    path.write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        Genome.load(path)


def test_random_genomes_respect_ranges_and_unet_skips():
    rng = np.random.default_rng(0)
    genomes = [random_genome(rng, (2, 5), (8, 16), max_in_edges=2) for _ in range(200)]
    assert {g.depth for g in genomes} == {2, 3, 4, 5}
    assert min(g.filters for g in genomes) == 8 and max(g.filters for g in genomes) == 16
    for g in genomes:
        assert set(unet_skip_edges(g.depth)) <= set(g.edges)
        skips = set(unet_skip_edges(g.depth))
        for block in g.blocks:
            assert len([e for e in g.incoming(block) if e not in skips]) <= 2
    assert len({g.hash for g in genomes}) > 150
    bare = random_genome(np.random.default_rng(1), (3, 3), (8, 8), max_in_edges=0, unet_skips=False)
    assert bare.edges == ()


def test_random_genome_is_seeded():
    a = [random_genome(np.random.default_rng(7)).hash for _ in range(3)]
    assert a == [random_genome(np.random.default_rng(7)).hash for _ in range(3)]
