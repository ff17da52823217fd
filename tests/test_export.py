"""``bractivate export``: ONNX and a bioimage.io model package of a tiny trained model, checked by
onnxruntime and by bioimage.io's own test; bad models and folders refused."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import keras
import numpy as np
import pytest
import yaml

from bractivate.cli import main
from bractivate.export import TOLERANCE, check_out_dir, check_segmentation_model
from bractivate.genome import Genome, unet_skip_edges
from bractivate.io import load_dataset, read_json, write_json
from helpers import blob_folder

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
EXPORT_ONLY = ("onnx", "onnxruntime", "onnxscript", "bioimageio")


def torch_env() -> dict:
    """The environment of a `bractivate` command as a user runs it: PyTorch on one thread."""
    env = {k: v for k, v in os.environ.items() if k != "KERAS_BACKEND"}
    return {**env, "KERAS_BACKEND": "torch", "OMP_NUM_THREADS": "1"}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny model trained by `bractivate train` (data and genome files recorded in metrics.json)."""
    root = tmp_path_factory.mktemp("export")
    blob_folder(root / "pairs", 12, seed=3)
    cwd = os.getcwd()
    os.chdir(root)
    try:
        assert main(["preprocess", "--format", "pairs", "--image-size", "16", "pairs", "d.h5"]) == 0
        genome = Genome(2, 4, tuple(unet_skip_edges(2)) + (("enc0", "mid", "add"),))
        write_json(root / "best_genome.json", {"genome": genome.to_dict(), "result": {},
                                               "settings": {"min_size": 4, "seed": 1}})
        assert main(["train", "best_genome.json", "d.h5", "model", "--set", "epochs=3", "--set", "batch_size=4",
                     "--set", "execution=eager"]) == 0
    finally:
        os.chdir(cwd)
    return root


@pytest.mark.slow
def test_export_writes_onnx_and_a_package_that_bioimageio_test_passes(trained):
    run = subprocess.run([str(BIN / "bractivate"), "export", "model/model.keras", "out"], cwd=trained,
                         env=torch_env(), capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    out = trained / "out"
    assert sorted(p.name for p in out.iterdir()) == sorted(
        ["model.onnx", "rdf.yaml", "test_input.npy", "test_output.npy", "cover.png", "README.md",
         "bioimageio-package.zip", "export.json"])
    checks = read_json(out / "export.json")
    data = load_dataset(trained / "d.h5")
    split = {k: len(v) for k, v in data.splits.items()}
    assert checks["bioimageio_test"] == "passed" and checks["test_images"] == split["test"] >= 2
    assert 0 <= checks["onnx_max_abs_diff"] <= TOLERANCE
    # onnxruntime against Keras on every test image, in a process of its own on PyTorch, the backend the
    # export runs on, with the model loaded and called first as the export does (Keras' Resizing
    # layer computes otherwise on the first call and with TensorFlow imported: export_onnx).
    compare = ("import keras, numpy as np, onnxruntime, pathlib\n"
               "from bractivate.io import load_dataset\n"
               "from bractivate.export import _load_keras_model\n"
               "x = load_dataset('d.h5').split('test')[0]\n"
               "s = onnxruntime.InferenceSession('out/model.onnx', providers=['CPUExecutionProvider'])\n"
               "a = s.run(None, {s.get_inputs()[0].name: x})[0]\n"
               "m = _load_keras_model(pathlib.Path('model/model.keras'))\n"
               "m(np.zeros((1, 16, 16, 1), np.float32))\n"
               "b = keras.ops.convert_to_numpy(m(x, training=False))\n"
               "print(a.shape, float(np.abs(a - b).max()))\n")
    run = subprocess.run([sys.executable, "-c", compare], cwd=trained, env=torch_env(), capture_output=True,
                         text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-2000:]
    shape, difference = run.stdout.strip().rsplit(" ", 1)
    assert shape == f"({split['test']}, 16, 16, 1)" and float(difference) <= TOLERANCE, run.stdout
    # The package: pre- and post-processing as bractivate predict, the README's facts, the zip.
    rdf = yaml.safe_load((out / "rdf.yaml").read_text())
    metrics = read_json(trained / "model/metrics.json")
    assert rdf["inputs"][0]["preprocessing"] == [{"id": "scale_range", "kwargs": {
        "axes": ["y", "x"], "min_percentile": 0.0, "max_percentile": 100.0}}]
    assert rdf["outputs"][0]["postprocessing"] == [{"id": "binarize", "kwargs": {"threshold": 0.5}}]
    assert [a.get("size") for a in rdf["inputs"][0]["axes"]] == [None, 16, 16, None]
    assert rdf["weights"] == {"onnx": {"source": "model.onnx", "opset_version": checks["opset"]}}
    assert rdf["config"]["bractivate"]["genome"] == Genome.load(trained / "best_genome.json").to_dict()
    readme = (out / "README.md").read_text()
    for fact in (f"Test Dice: **{metrics['test_dice']:.4f}**", f"Trainable parameters: {metrics['params']:,}",
                 f"train / val / test = {split['train']} / {split['val']} / {split['test']} images", f"Genome `{metrics['genome_hash']}`",
                 "grayscale", "bilinearly", "minimum and maximum", "at 0.5"):
        assert fact in readme, fact
    expected = np.load(out / "test_output.npy")
    assert set(np.unique(expected)) <= {0.0, 1.0} and np.load(out / "test_input.npy").shape == (1, 16, 16, 1)
    with zipfile.ZipFile(out / "bioimageio-package.zip") as archive:
        assert sorted(archive.namelist()) == sorted(["rdf.yaml", "model.onnx", "test_input.npy", "test_output.npy",
                                                     "cover.png", "README.md"])
    # The format's own command on the zip, in a process of its own.
    test = subprocess.run([str(BIN / "bioimageio"), "test", str(out / "bioimageio-package.zip")], cwd=trained,
                          env=torch_env(), capture_output=True, text=True, timeout=600)
    assert test.returncode == 0 and "Reproduce test outputs from test inputs (onnx)" in test.stdout, test.stdout[-3000:]


def test_an_existing_folder_is_refused_before_the_model_is_read(trained, tmp_path, capsys):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "kept").write_text("kept")
    assert main(["export", str(tmp_path / "not-a-model.keras"), str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "out: exists; pass --overwrite to replace it" in err, err
    assert (tmp_path / "out" / "kept").read_text() == "kept"
    with pytest.raises(ValueError, match="is a file; expected the output folder"):
        check_out_dir(tmp_path / "out" / "kept", overwrite=True)


def _model(inputs_shape, channels: int, activation: str):
    inputs = keras.Input(inputs_shape)
    return keras.Model(inputs, keras.layers.Conv2D(channels, 1, activation=activation)(inputs))


@pytest.mark.parametrize("shape, channels, activation, message", [
    ((16, 16, 1), 1, "sigmoid", None),
    ((16, 16, 3), 1, "sigmoid", r"input \(None, 16, 16, 3\); expected \(None, N, N, 1\)"),
    ((None, None, 1), 1, "sigmoid", r"input \(None, None, None, 1\)"),
    ((16, 16, 1), 2, "sigmoid", r"output \(None, 16, 16, 2\) for input"),
    ((16, 16, 1), 1, "softmax", "ends in softmax, not a sigmoid probability"),
    ((16, 16, 1), 1, None, "ends in linear, not a sigmoid probability"),
])
def test_only_a_one_channel_segmentation_network_is_exported(shape, channels, activation, message):
    model = _model(shape, channels, activation)
    if message is None:
        assert check_segmentation_model(model, "m.keras") == 16
    else:
        with pytest.raises(ValueError, match=rf"m\.keras: not a one-channel segmentation network: .*{message}"):
            check_segmentation_model(model, "m.keras")


@pytest.mark.slow
def test_the_export_refuses_a_model_trained_on_other_data(trained, tmp_path, capsys):
    """A data set of another size than the model's input cannot check it: one line, nothing written."""
    blob_folder(tmp_path / "pairs", 8, seed=4)
    assert main(["preprocess", "--format", "pairs", "--image-size", "8", str(tmp_path / "pairs"),
                 str(tmp_path / "other.h5")]) == 0
    run = subprocess.run([str(BIN / "bractivate"), "export", "model/model.keras", str(tmp_path / "out"),
                          "--data", str(tmp_path / "other.h5")], cwd=trained, env=torch_env(),
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 2 and run.stderr.count("\n") == 1, run.stderr[-2000:]
    assert "other.h5: images of 8×8, but the model model/model.keras takes 16×16" in run.stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_the_rest_of_the_pipeline_does_not_import_the_export_packages():
    modules = ["bractivate.cli", "bractivate.pipeline", "bractivate.search", "bractivate.predict",
               "bractivate.report", "bractivate.figures", "bractivate.ablation", "bractivate.data"]
    code = ("import sys\n" + "".join(f"import {m}\n" for m in modules)
            + f"print(sorted(m for m in sys.modules if m.split('.')[0] in {EXPORT_ONLY!r}))")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                         env={**os.environ, "KERAS_BACKEND": "torch"})
    assert run.returncode == 0, run.stderr[-2000:]
    assert json.loads(run.stdout.strip().replace("'", '"')) == []
