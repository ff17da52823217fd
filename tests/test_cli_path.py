"""The package on its own: the README's command-line path from a folder of images to predicted
masks, ``bractivate train``, thread caps and progress reports."""

from __future__ import annotations

import logging
import os
import re
import shlex
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from bractivate import runtime
from bractivate.cli import main, parser
from bractivate.genome import Genome, unet_skip_edges
from bractivate.io import read_json, write_json
from bractivate.pipeline import TrainSettings, train_best_job

from helpers import blob_folder

ROOT = Path(__file__).resolve().parents[1]
THREAD_VARS = ("OMP_NUM_THREADS", "TF_NUM_INTRAOP_THREADS", "MKL_NUM_THREADS", "TF_NUM_INTEROP_THREADS")
# Tiny settings appended to the README's commands (a later --set wins): the same commands, in seconds.
FAST = {
    "preprocess": ["--image-size", "16"],
    "search": ["--set", "evaluations=3", "--set", "population=2", "--set", "epochs=2", "--set", "batch_size=4",
               "--set", "depth_range=[1, 2]", "--set", "filter_range=[4, 8]", "--set", "execution=eager"],
    # Adam 0.01: 9 steps at the default 0.001 left the test Dice at 0.26 on PyTorch (0.3 is the floor below)
    "train": ["--set", "epochs=3", "--set", "batch_size=4", "--set", "learning_rate=0.01",
              "--set", "execution=eager"],
    "predict": [],
    "export": [],
}


@pytest.fixture(autouse=True)
def restore_threads(monkeypatch):
    """Every command caps the process's threads; put them back after each test."""
    for var in THREAD_VARS:
        monkeypatch.setenv(var, os.environ.get(var, "1"))
    torch = sys.modules.get("torch")
    before = torch.get_num_threads() if torch else None
    yield
    if torch:
        torch.set_num_threads(before)


def readme_commands() -> list[list[str]]:
    """The commands of the README's "The package on its own" section, in order."""
    text = (ROOT / "README.md").read_text()
    section = text.split("## The package on its own", 1)[1].split("\n## ", 1)[0]
    return [shlex.split(line) for line in section.splitlines() if line.startswith("    bractivate ")]


@pytest.mark.slow
def test_the_readme_path_runs_from_images_to_predicted_masks(tmp_path, monkeypatch, capsys):
    commands = readme_commands()
    assert [c[1] for c in commands] == ["preprocess", "search", "train", "predict", "export"]
    monkeypatch.chdir(tmp_path)
    blob_folder(tmp_path / "my-study", 14, seed=0)
    blob_folder(tmp_path / "new", 3, seed=1, masks=False, size=(30, 26))
    (tmp_path / "new" / "images").rename(tmp_path / "new-images")
    for command in commands:
        if command[1] == "export":  # it runs on PyTorch, the commands' default, whatever the tests' backend
            env = {**{k: v for k, v in os.environ.items() if k != "KERAS_BACKEND"}, "KERAS_BACKEND": "torch"}
            run = subprocess.run([str(Path(sys.executable).parent / "bractivate"), *command[1:]], env=env,
                                 capture_output=True, text=True, timeout=600)
            assert run.returncode == 0, run.stderr[-3000:]
            continue
        assert main([*command[1:], *FAST[command[1]]]) == 0, command
    best = read_json("search/best_genome.json")
    metrics = read_json("model/metrics.json")
    assert metrics["genome_hash"] == Genome.load("search/best_genome.json").hash
    assert metrics["seed"] == best["settings"]["seed"] == 0  # the search's seed, as in the workflow
    assert metrics["epochs"] == 3 and metrics["min_size"] == best["settings"]["min_size"]
    assert 0.3 < metrics["test_dice"] <= 1.0, metrics["test_dice"]  # a bright disc is easy to find
    masks = sorted(Path("new-masks").iterdir())
    assert [p.name for p in masks] == ["s0.png", "s1.png", "s2.png"]
    for path in masks:
        mask = np.asarray(Image.open(path))
        assert mask.shape == (30, 26) and set(np.unique(mask)) <= {0, 255}
    out = capsys.readouterr().out
    assert f"test Dice {metrics['test_dice']:.4f}" in out and "wrote 3 masks to new-masks" in out
    assert read_json("export/export.json")["bioimageio_test"] == "passed" and Path("export/model.onnx").is_file()


@pytest.fixture(scope="module")
def trained_inputs(tmp_path_factory):
    """A preprocessed folder and a best_genome.json as `bractivate search` writes it."""
    root = tmp_path_factory.mktemp("train")
    blob_folder(root / "pairs", 12, seed=2)
    assert main(["preprocess", "--format", "pairs", "--image-size", "16", str(root / "pairs"),
                 str(root / "d.h5")]) == 0
    genome = Genome(2, 4, tuple(unet_skip_edges(2)) + (("enc0", "mid", "add"),))
    write_json(root / "best_genome.json", {"genome": genome.to_dict(), "result": {},
                                           "settings": {"min_size": 4, "seed": 7}})
    return root


@pytest.mark.slow
def test_train_writes_the_rules_outputs_with_the_rules_function_and_refuses_an_existing_model(
        trained_inputs, tmp_path, capsys):
    from bractivate.io import load_dataset

    root = trained_inputs
    settings = {"epochs": 2, "batch_size": 4, "execution": "eager"}
    args = ["train", str(root / "best_genome.json"), str(root / "d.h5"), str(tmp_path / "out"),
            *[f"--set={k}={v}" for k, v in settings.items()]]
    assert main(args) == 0
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["history.tsv", "metrics.json", "model.keras"]
    metrics = read_json(tmp_path / "out" / "metrics.json")
    assert metrics["seed"] == 7 and metrics["epochs"] == 2 and metrics["min_size"] == 4  # the search's
    history = (tmp_path / "out" / "history.tsv").read_text().splitlines()
    assert history[0].split("\t")[:3] == ["epoch", "loss", "val_loss"] and len(history) == 3
    # The rule's function on the same genome, data and seed gives the same model.
    rule = train_best_job(root / "best_genome.json", load_dataset(root / "d.h5"), settings, seed=7,
                          model_path=tmp_path / "rule/model.keras", metrics_path=tmp_path / "rule/metrics.json",
                          history_path=tmp_path / "rule/history.tsv")
    assert metrics["test_dice"] == pytest.approx(rule["test_dice"], abs=1e-6)
    assert (metrics["params"], metrics["genome_hash"]) == (rule["params"], rule["genome_hash"])
    script = (ROOT / "scripts" / "train_best.py").read_text()
    assert "train_best_job(" in script and "train_genome_job" not in script
    # A folder that holds a model is refused, untouched, before any work; --overwrite trains again.
    capsys.readouterr()
    model = (tmp_path / "out" / "model.keras").read_bytes()
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "model.keras: exists" in err and "--overwrite" in err, err
    assert (tmp_path / "out" / "model.keras").read_bytes() == model
    assert main([*args, "--set", "epochs=1", "--overwrite", "--seed", "3"]) == 0
    assert read_json(tmp_path / "out" / "metrics.json")["seed"] == 3


@pytest.mark.parametrize("setting, message", [
    ("epochs=1.5", "train.epochs: expected an integer, got 1.5"),
    ("epochs=0", "train.epochs: expected an integer >= 1, got 0"),
    ("patience=0", "train.patience: expected null or an integer >= 1, got 0"),
    ("patience=true", "train.patience: expected an integer or null, got True"),
    ("learning_rate=-1", "train.learning_rate: expected a number > 0, got -1"),
    ("execution=fast", "train.execution: expected one of ('auto', 'graph', 'eager', 'torch'), got 'fast'"),
    ("epoch=3", "unknown train setting(s) ['epoch']"),
])
def test_train_settings_are_typed_and_bounded_before_any_work(tmp_path, capsys, setting, message):
    assert main(["train", str(tmp_path / "none.json"), str(tmp_path / "none.h5"), str(tmp_path / "out"),
                 "--set", setting]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err, err
    assert not (tmp_path / "out").exists()


def test_train_settings_accept_a_workflow_train_section():
    settings = TrainSettings.from_dict({"epochs": 5, "patience": 3, "min_delta": 0, "precision": "float32"})
    assert settings.to_dict() == {"epochs": 5, "batch_size": 16, "learning_rate": 0.001, "patience": 3,
                                  "min_delta": 0, "monitor": "val_loss", "execution": "torch",
                                  "precision": "float32"}


def test_the_default_thread_count_is_half_the_cores_at_most_four():
    assert [runtime.default_threads(c) for c in (1, 2, 3, 4, 8, 16, 64)] == [1, 1, 1, 2, 4, 4, 4]


def test_every_command_caps_its_threads_and_threads_overrides(tmp_path, capsys):
    write_json(tmp_path / "g.json", Genome(1, 4).to_dict())
    assert main(["show", str(tmp_path / "g.json"), "--input-size", "8", "--threads", "3"]) == 0
    assert [os.environ[v] for v in THREAD_VARS] == ["3", "3", "3", "2"]
    if "torch" in sys.modules:
        assert sys.modules["torch"].get_num_threads() == 3
    assert main(["show", str(tmp_path / "g.json"), "--input-size", "8"]) == 0
    assert os.environ["OMP_NUM_THREADS"] == str(runtime.default_threads())
    assert main(["show", str(tmp_path / "g.json"), "--threads", "0"]) == 2
    assert "--threads: expected an integer >= 1, got 0" in capsys.readouterr().err
    for command in ("search", "train", "show", "preprocess", "predict"):
        assert "--threads" in parser()._subparsers._group_actions[0].choices[command].format_help()


class _Capture:
    """What a command writes to standard error, with its log lines, as a terminal or a log file."""

    def __init__(self, terminal: bool, path: Path):
        self.chunks, self.path = [], path
        if terminal:
            self.master, slave = os.openpty()
            self.stream = os.fdopen(slave, "w", buffering=1)
            self.reader = threading.Thread(target=self._drain, daemon=True)  # a full pty would block
            self.reader.start()
        else:
            self.master, self.stream = None, open(path, "w", buffering=1)

    def _drain(self):
        while True:
            try:
                data = os.read(self.master, 4096)
            except OSError:
                return
            if not data:
                return
            self.chunks.append(data)

    def text(self) -> str:
        self.stream.close()
        if self.master is None:
            return self.path.read_text()
        self.reader.join(timeout=10)
        os.close(self.master)
        return b"".join(self.chunks).decode()


@pytest.mark.slow
@pytest.mark.parametrize("terminal", [True, False], ids=["terminal", "log-file"])
def test_progress_is_a_bar_on_a_terminal_and_plain_lines_in_a_log(trained_inputs, tmp_path, monkeypatch, terminal):
    root = trained_inputs
    capture = _Capture(terminal, tmp_path / "job.log")
    monkeypatch.setattr(sys, "stderr", capture.stream)
    handler = logging.StreamHandler(sys.stderr)  # what the command's logging.basicConfig sets up
    logger = logging.getLogger()
    logger.addHandler(handler)
    level = logger.level
    logger.setLevel(logging.INFO)  # setLevel, not the attribute: it clears the loggers' caches
    try:
        assert main(["search", str(root / "d.h5"), str(tmp_path / "s"), "--set", "evaluations=3",
                     "--set", "population=2", "--set", "epochs=1", "--set", "batch_size=4",
                     "--set", "depth_range=[1, 2]", "--set", "filter_range=[4, 8]", "--set", "execution=eager"]) == 0
        assert main(["train", str(root / "best_genome.json"), str(root / "d.h5"), str(tmp_path / "t"),
                     "--set", "epochs=3", "--set", "batch_size=4", "--set", "execution=eager"]) == 0
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
    text = capture.text()
    bars = re.findall(r"(search|train): +(\d+)%\|[^|]*\| (\d+)/(\d+) \[[0-9:]+<([0-9:?]+)", text)
    best = read_json(tmp_path / "s" / "best_genome.json")["result"]
    if terminal:
        assert ("search", "100", "3", "3") in [b[:4] for b in bars] and ("train", "100", "3", "3") in [b[:4] for b in bars]
        assert f"best score {best['score']:.4g}" in text  # the best so far, beside the bar
        assert "\r" in text
    else:
        assert bars == [] and "\r" not in text and "%|" not in text
        score = re.escape(f"{best['score']:.4g}")
        assert re.search(rf"evaluation 3/3, best score {score} \(val Dice [0-9.]+\), 0:\d\d remaining: ", text), text
        assert re.search(r"epoch 1/3, best val loss [0-9.]+ \(epoch 1\), [0-9:]+ remaining: epoch 1: loss", text)
        assert len(re.findall(r"epoch \d/3, best val loss", text)) == 3
