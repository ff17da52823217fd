"""The core package on another Keras backend: a 2-evaluation search through the command line, and
execution 'torch' asked for on a backend that cannot run it."""

import importlib.util
import os
import subprocess
import sys

import pandas as pd
import pytest

from bractivate.io import write_dataset
from helpers import blob_dataset


@pytest.mark.slow
@pytest.mark.torch
@pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="PyTorch is not installed")
def test_two_evaluation_search_on_the_torch_backend(tmp_path):
    write_dataset(tmp_path / "blobs.h5", blob_dataset(n=16, size=32))
    env = {**os.environ, "KERAS_BACKEND": "torch"}
    cmd = [sys.executable, "-m", "bractivate.cli", "search", str(tmp_path / "blobs.h5"), str(tmp_path / "out"),
           "--set", "population=2", "--set", "evaluations=2", "--set", "epochs=2", "--set", "batch_size=4",
           "--set", "depth_range=[1,2]", "--set", "filter_range=[2,4]", "--set", "time_measure=flops"]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    history = pd.read_csv(tmp_path / "out" / "history.tsv", sep="\t")
    assert len(history) == 2 and (history["outcome"] == "ok").all(), history.to_string()
    assert history["val_dice"].between(0, 1).all()
    probe = subprocess.run([sys.executable, "-c", "import keras; print(keras.backend.backend())"],
                           env=env, capture_output=True, text=True)
    assert probe.stdout.strip() == "torch"


TORCH_EXECUTION_ELSEWHERE = """
import logging, sys
sys.path[:0] = sys.argv[1:3]
from bractivate.genome import Genome, unet_skip_edges
from bractivate.model import build_model
from bractivate.train import fit
from conftest import blob_dataset

logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
data = blob_dataset(n=8, size=32)
for _ in range(2):
    model = build_model(Genome(1, 2, tuple(unet_skip_edges(1))), data.input_shape)
    print("epochs", fit(model, data, epochs=1, batch_size=4, learning_rate=1e-3, execution="torch").epochs)
"""


@pytest.mark.skipif(importlib.util.find_spec("tensorflow") is None, reason="TensorFlow is not installed")
def test_torch_execution_on_another_backend_runs_as_auto_and_says_so_once():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = {**os.environ, "KERAS_BACKEND": "tensorflow", "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run([sys.executable, "-c", TORCH_EXECUTION_ELSEWHERE, root, os.path.join(root, "tests")],
                          env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.split() == ["epochs", "1", "epochs", "1"]
    warnings = [line for line in done.stderr.splitlines() if "execution 'torch'" in line]
    assert len(warnings) == 1, done.stderr[-3000:]
    assert warnings[0].startswith("WARNING") and "backend 'tensorflow'" in warnings[0]
