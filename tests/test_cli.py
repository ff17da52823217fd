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
