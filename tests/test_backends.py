"""The core package on another Keras backend: a 2-evaluation search through the command line."""

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
