import numpy as np
import pytest

from bractivate.genome import Genome, unet_skip_edges
from bractivate.mutation import NoEligibleBlock, dendritic_mutation, most_active_block


def activity_for(genome, hot):
    return {b: (10.0 if b == hot else 1.0 + i / 100) for i, b in enumerate(genome.blocks)}


def test_mutation_grows_only_into_the_most_active_block():
    parent = Genome(4, 8, tuple(unet_skip_edges(4)))
    before = parent.to_json()
    activity = activity_for(parent, "dec1")
    rng = np.random.default_rng(0)
    sizes, ops_seen = set(), set()
    for _ in range(100):
        child = dendritic_mutation(parent, activity, rng, max_new_edges=3)
        assert Genome.from_json(child.to_json()) == child
        new = set((e.src, e.dst) for e in child.edges) - set((e.src, e.dst) for e in parent.edges)
        assert 1 <= len(new) <= 3 and {dst for _, dst in new} == {"dec1"}
        sizes.add(len(new))
        assert [e for e in child.edges if e.dst != "dec1"] == [e for e in parent.edges if e.dst != "dec1"]
        ops_seen |= {e.op for e in child.incoming("dec1")}
    assert sizes == {1, 2, 3}
    assert ops_seen == {"concat", "add"}  # the existing UNet skip's op gets redrawn too
    assert parent.to_json() == before


def test_most_active_block_skips_blocks_that_cannot_grow():
    genome = Genome(2, 8)
    # enc0 has no earlier source, enc1's only earlier block is its predecessor
    activity = {"enc0": 9.0, "enc1": 8.0, "mid": 1.0, "dec1": 2.0, "dec0": 0.5}
    assert most_active_block(genome, activity) == "dec1"
    full = Genome(1, 4, (("enc0", "dec0", "add"),))
    with pytest.raises(NoEligibleBlock):
        most_active_block(full, {b: 1.0 for b in full.blocks})


def test_mutation_is_seeded():
    parent = Genome(3, 8, tuple(unet_skip_edges(3)))
    activity = activity_for(parent, "dec0")
    a = dendritic_mutation(parent, activity, np.random.default_rng(5))
    assert a == dendritic_mutation(parent, activity, np.random.default_rng(5))
