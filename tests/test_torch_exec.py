"""Execution 'torch' (bractivate.torch_exec) trains the same Keras model as Keras does."""

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytestmark = [pytest.mark.torch,
              pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="PyTorch is not installed")]


@pytest.fixture(scope="module")
def worker(tmp_path_factory):
    done = subprocess.run([sys.executable, str(Path(__file__).with_name("torch_exec_worker.py")),
                           str(tmp_path_factory.mktemp("torch_exec"))],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_every_builder_layer_gives_keras_outputs_and_moving_statistics(worker):
    assert {"Add", "BatchNormalization", "Concatenate", "Conv2D", "Conv2DTranspose", "MaxPooling2D",
            "Resizing", "Rescaling", "ReLU"} <= set(worker["layers"])
    assert worker["train_output_diff"] < 1e-5
    assert worker["inference_output_diff"] < 1e-5
    assert worker["moving_stats_moved"] > 1e-3  # the training call did update them ...
    assert worker["moving_stats_diff"] < 1e-6  # ... as Keras does (biased variance)


def test_fit_gives_the_loss_curve_of_keras_eager(worker):
    eager, torch_ = worker["curves"]["eager"], worker["curves"]["torch"]
    assert len(eager["loss"]) == len(torch_["loss"]) == 6
    assert eager["loss"][-1] < eager["loss"][0]  # it learns
    for key in ("loss", "val_loss"):
        np.testing.assert_allclose(torch_[key], eager[key], rtol=1e-4)
    # Adam's first steps are ±learning rate for every weight, whatever its gradient's size, so
    # a weight whose gradient is at rounding level may step either way (1e-3 here); no more.
    assert worker["weights_diff"] < 2e-3


def test_early_stopping_restores_the_best_validation_weights(worker):
    early = worker["early"]
    val = early["history"]["val_loss"]
    assert early["finite"] and early["epochs"] == len(val) <= 8
    assert early["best_epoch"] == int(np.argmin(val))
    assert early["val_bcl_after"] == pytest.approx(min(val), rel=1e-4)


def test_batchnorm_statistics_are_reestimated_on_this_path(worker):
    assert worker["restats_diff_recalibrate"] < 1e-4
    assert worker["restats_diff_moving"] > 1e-2  # Keras' moving averages lag far behind


def test_model_stays_a_keras_model(worker):
    assert worker["reload_diff"] < 1e-6


def test_untranslated_layer_is_refused_by_name_and_fit_falls_back(worker):
    assert "layer 'norm_head' (LayerNormalization)" in worker["refusal"]
    assert worker["fallback_epochs"] == 2


def test_nasunet_runs_on_this_path_with_keras_outputs_and_loss_curve(worker):
    nas = worker["nasunet"]
    assert {"DepthwiseConv2D", "GroupNormalization", "Dense", "GlobalAveragePooling2D", "Multiply",
            "AveragePooling2D", "MaxPooling2D", "Identity", "Subsample2D", "ZeroInsertion2D"} <= set(nas["layers"])
    assert nas["v3"] < 1e-5 and nas["every_op"] < 1e-5  # training and inference mode
    assert nas["fit_used_the_program"]  # the curves below compare two paths, not Keras with itself
    for key in ("loss", "val_loss"):
        np.testing.assert_allclose(nas["torch"][key], nas["eager"][key], rtol=1e-4)


SEEDING = """
import os, sys, json
os.environ["KERAS_BACKEND"] = "torch"
sys.path.insert(0, sys.argv[1])
import keras, numpy as np, random, torch
from bractivate.genome import Genome, unet_skip_edges
from bractivate.model import build_model
from bractivate.pipeline import save_model
from bractivate.train import seed_everything

def draws():
    model = build_model(Genome(1, 4, tuple(unet_skip_edges(1))), (16, 16, 1))
    return [float(model.get_weights()[0].sum()), random.random(), float(np.random.rand()), float(torch.rand(())),
            float(keras.random.uniform(()))]

seed_everything(7)
ours = draws()
model = build_model(Genome(1, 4, tuple(unet_skip_edges(1))), (16, 16, 1))
save_model(model, sys.argv[2])
reloaded = keras.saving.load_model(sys.argv[2])
x = np.random.default_rng(0).random((2, 16, 16, 1), dtype="float32")
same = bool(np.array_equal(keras.ops.convert_to_numpy(reloaded(x)), keras.ops.convert_to_numpy(model(x))))
imported = "tensorflow" in sys.modules
keras.utils.set_random_seed(7)
print(json.dumps({"ours": ours, "keras": draws(), "tensorflow_imported": imported, "reloaded_same": same}))
"""


def test_seeding_on_torch_matches_keras_and_imports_no_tensorflow(tmp_path):
    """A PyTorch job seeds, builds, saves and reloads a model without importing TensorFlow (3.4 s)."""
    done = subprocess.run([sys.executable, "-c", SEEDING, str(Path(__file__).resolve().parents[1]),
                           str(tmp_path / "model.keras")],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["ours"] == result["keras"]  # weights, Python, NumPy, torch, Keras' own generator
    assert not result["tensorflow_imported"]
    assert result["reloaded_same"]
