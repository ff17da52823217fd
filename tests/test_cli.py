"""The ``bractivate`` command: preprocess for every format, show, and errors."""

import numpy as np
import pytest
from PIL import Image

from bractivate.cli import main
from bractivate.data import write_synthetic
from bractivate.genome import Genome, unet_skip_edges
from bractivate.io import load_dataset, write_json


@pytest.mark.parametrize("task, fmt", [("lungs", "montgomery"), ("nuclei", "dsb2018"), ("em", "lucchi_em")])
def test_preprocess_command_reads_every_public_layout(tmp_path, task, fmt):
    write_synthetic(task, tmp_path / "raw", n=10, seed=0, size=(32, 40))
    assert main(["preprocess", "--format", fmt, "--image-size", "16", str(tmp_path / "raw"), str(tmp_path / "o.h5")]) == 0
    data = load_dataset(tmp_path / "o.h5")
    assert data.images.shape == (10, 16, 16, 1)
    assert sum(len(v) for v in data.splits.values()) == 10
    if fmt == "lucchi_em":
        assert len(data.splits["test"]) == 5  # the testing stack, whatever the fractions say


def test_preprocess_command_on_a_users_own_pairs(tmp_path):
    for folder in ("images", "masks"):
        (tmp_path / "mine" / folder).mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(5):
        Image.fromarray((rng.random((20, 30)) * 255).astype(np.uint8)).save(tmp_path / f"mine/images/s{i}.png")
        Image.fromarray(((rng.random((20, 30)) > 0.5) * 255).astype(np.uint8)).save(tmp_path / f"mine/masks/s{i}.png")
    args = ["preprocess", "--format", "pairs", "--image-size", "8", "--split", "0.6", "0.2", "0.2"]
    assert main([*args, str(tmp_path / "mine"), str(tmp_path / "o.h5")]) == 0
    assert {k: len(v) for k, v in load_dataset(tmp_path / "o.h5").splits.items()} == {"train": 3, "val": 1, "test": 1}


def test_show_prints_blocks_widths_edges_and_parameters(tmp_path, capsys):
    genome = Genome(2, 8, tuple(unet_skip_edges(2)) + (("enc0", "mid", "add"),))
    write_json(tmp_path / "best_genome.json", {"genome": genome.to_dict(), "result": {}})
    assert main(["show", str(tmp_path / "best_genome.json"), "--input-size", "64"]) == 0
    out = capsys.readouterr().out
    assert f"genome {genome.hash}: depth 2, filters 8" in out
    assert "mid        16x16     18  enc0 (add)" in out
    assert "dec0       64x64      8  enc0 (concat)" in out
    assert "trainable parameters:" in out


def test_errors_are_one_line_and_exit_2(tmp_path, capsys):
    assert main(["show", str(tmp_path / "missing.json")]) == 2
    assert "missing.json: genome file not found" in capsys.readouterr().err
    assert main(["search", str(tmp_path / "none.h5"), str(tmp_path / "out"), "--set", "epochz=3"]) == 2
    assert "unknown search setting(s) ['epochz']" in capsys.readouterr().err


def user_files(root):
    """Every file under ``root`` and its bytes: what a refused command must leave as it found."""
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def a_users_folder(root):
    """pairs/ with 3 samples, a genome, a text file posing as HDF5 and as a model, bad YAML."""
    for folder in ("images", "masks"):
        (root / "pairs" / folder).mkdir(parents=True)
    for i in range(3):
        Image.fromarray(np.full((8, 8), 40 * i, np.uint8)).save(root / f"pairs/images/s{i}.png")
        Image.fromarray(np.eye(8, dtype=np.uint8) * 255).save(root / f"pairs/masks/s{i}.png")
    write_json(root / "g.json", Genome(1, 4).to_dict())
    (root / "text.h5").write_text("not HDF5")
    (root / "text.keras").write_text("not a model")
    (root / "bad.yaml").write_text("epochs: [1,\n")
    (root / "afile").write_text("a file, not a folder")


# One case per class of error: wrong type, out of range or absurd size, missing file, a file that
# is not what it claims, an output that cannot be written, an output that would clash or replace.
BAD_COMMANDS = {
    "type: float for an int": (["search", "{d}/text.h5", "{d}/out", "--set", "epochs=1.5"], "search.epochs: expected an integer, got 1.5"),
    "type: bool for an int": (["search", "{d}/text.h5", "{d}/out", "--set", "population=true"], "search.population: expected an integer, got True"),
    "type: not YAML": (["search", "{d}/text.h5", "{d}/out", "--set", "filter_range=[8,"], "--set filter_range: not valid YAML"),
    "range: negative seed": (["preprocess", "--format", "pairs", "--seed", "-1", "{d}/pairs", "{d}/o.h5"], "--seed: expected an integer >= 0, got -1"),
    "range: absurd image size": (["preprocess", "--format", "pairs", "--image-size", "100000", "{d}/pairs", "{d}/o.h5"],
                                 "--image-size: expected an integer in [8, 1024], got 100000"),
    "range: input size 0": (["show", "{d}/g.json", "--input-size", "0"], "--input-size: expected an integer in [8, 1024], got 0"),
    "range: threshold": (["predict", "{d}/text.keras", "{d}/pairs/images", "{d}/out", "--threshold", "2"], "--threshold: expected a number in (0, 1), got 2.0"),
    "range: split leaves test empty": (["preprocess", "--format", "pairs", "--split", "0.5", "0.5", "0", "{d}/pairs", "{d}/o.h5"],
                                       "leaves test empty (train 2, val 1, test 0)"),
    "range: absurd filter range": (["search", "{d}/text.h5", "{d}/out", "--set", "filter_range=[8, 4096]"], "search.filter_range: expected [low, high], each an integer in [1, 512], got [8, 4096]"),
    "missing: data set": (["search", "{d}/none.h5", "{d}/out"], "none.h5: data set file not found"),
    "missing: settings": (["search", "{d}/text.h5", "{d}/out", "--settings", "{d}/none.yaml"], "none.yaml: settings file not found"),
    "missing: input folder": (["predict", "{d}/text.keras", "{d}/none", "{d}/out"], "none: input folder not found"),
    "claims: HDF5": (["search", "{d}/text.h5", "{d}/out"], "text.h5: not a readable HDF5 file"),
    "claims: model": (["predict", "{d}/text.keras", "{d}/pairs/images", "{d}/out"], "text.keras: not a Keras model file"),
    "claims: genome": (["show", "{d}/pairs/images/s0.png"], "s0.png: not valid JSON"),
    "claims: settings YAML": (["search", "{d}/text.h5", "{d}/out", "--settings", "{d}/bad.yaml"], "bad.yaml: not valid YAML"),
    "claims: folder is a file": (["search", "{d}/text.h5", "{d}/afile"], "afile: is a file; expected the output folder"),
    "unwritable: output under a file": (["preprocess", "--format", "pairs", "{d}/pairs", "{d}/afile/o.h5"], "o.h5: cannot write the data set here"),
    "unwritable: output is a folder": (["preprocess", "--format", "pairs", "{d}/pairs", "{d}/pairs"], "pairs: is a folder; expected the data set file name"),
    "clash: predict into its input": (["predict", "{d}/text.keras", "{d}/pairs/images", "{d}/pairs/images"], "lies inside the input folder"),
    "clash: preprocess over an input": (["preprocess", "--format", "pairs", "{d}/pairs", "{d}/pairs/images/s0.png"], "s0.png: is one of the input files"),
    "clash: preprocess over a file": (["preprocess", "--format", "pairs", "{d}/pairs", "{d}/g.json"], "g.json: exists; pass --overwrite to replace it"),
}


@pytest.mark.parametrize("case", list(BAD_COMMANDS))
def test_every_bad_value_is_one_line_naming_it_and_nothing_is_touched(tmp_path, capsys, case):
    argv, expected = BAD_COMMANDS[case]
    a_users_folder(tmp_path)
    before = user_files(tmp_path)
    assert main([a.format(d=tmp_path) for a in argv]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"bractivate {argv[0]}: error: "), err
    assert expected in err, err
    assert user_files(tmp_path) == before


def test_predict_writes_one_mask_per_image_and_replaces_only_with_overwrite(tmp_path, capsys):
    import keras

    model = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Conv2D(1, 1, activation="sigmoid")])
    model.save(tmp_path / "m.keras")
    (tmp_path / "in").mkdir()
    for i, shape in enumerate([(10, 12), (8, 8)]):
        Image.fromarray(np.full(shape, 100 * i, np.uint8)).save(tmp_path / f"in/s{i}.png")
    args = ["predict", str(tmp_path / "m.keras"), str(tmp_path / "in"), str(tmp_path / "out")]
    assert main(args) == 0
    assert f"wrote 2 masks to {tmp_path / 'out'}" in capsys.readouterr().out
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["s0.png", "s1.png"]
    assert np.asarray(Image.open(tmp_path / "out/s0.png")).shape == (10, 12)
    Image.fromarray(np.full((3, 3), 7, np.uint8)).save(tmp_path / "out/s0.png")  # an earlier mask
    kept = (tmp_path / "out/s0.png").read_bytes()
    assert main(args) == 2 and "pass --overwrite" in capsys.readouterr().err
    assert (tmp_path / "out/s0.png").read_bytes() == kept
    assert main([*args, "--overwrite"]) == 0
    assert np.asarray(Image.open(tmp_path / "out/s0.png")).shape == (10, 12)


def test_preprocess_replaces_its_output_only_with_overwrite(tmp_path, capsys):
    a_users_folder(tmp_path)
    args = ["preprocess", "--format", "pairs", "--image-size", "8", str(tmp_path / "pairs"), str(tmp_path / "o.h5")]
    assert main(args) == 0
    first = (tmp_path / "o.h5").read_bytes()
    assert main([*args, "--seed", "1"]) == 2 and "o.h5: exists" in capsys.readouterr().err
    assert (tmp_path / "o.h5").read_bytes() == first
    assert main([*args, "--seed", "1", "--overwrite"]) == 0
    assert load_dataset(tmp_path / "o.h5").attrs["seed"] == 1
