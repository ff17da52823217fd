"""Shared fixtures: small deterministic data sets held in memory."""

from __future__ import annotations

import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import pytest

from bractivate.io import Dataset


def blob_dataset(n: int = 32, size: int = 64, seed: int = 0) -> Dataset:
    """Bright discs on a noisy background; the mask is the discs. 70/10/20 split."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    images = np.empty((n, size, size, 1), "float32")
    masks = np.empty((n, size, size, 1), "uint8")
    for i in range(n):
        mask = np.zeros((size, size), bool)
        for _ in range(rng.integers(1, 4)):
            cy, cx = rng.integers(8, size - 8, 2)
            mask |= (yy - cy) ** 2 + (xx - cx) ** 2 < rng.integers(4, 10) ** 2
        image = 0.6 * mask + 0.2 + 0.1 * rng.standard_normal((size, size))
        image = (image - image.min()) / (image.max() - image.min())
        images[i, ..., 0], masks[i, ..., 0] = image, mask
    order = rng.permutation(n)
    n_train, n_val = round(0.7 * n), round(0.1 * n)
    splits = {"train": np.sort(order[:n_train]), "val": np.sort(order[n_train:n_train + n_val]),
              "test": np.sort(order[n_train + n_val:])}
    return Dataset(images, masks, splits, [f"blob{i}" for i in range(n)], {"source": "test"})


@pytest.fixture(scope="session")
def blobs() -> Dataset:
    return blob_dataset()


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
    """The whole DAG of presets/tiny.yaml in a copy of the workflow, once per session: the
    end-to-end tests and the browser test of its report read the same run."""
    from test_workflow import copy_workflow, snakemake

    work = copy_workflow(tmp_path_factory.mktemp("workflow"))
    snakemake("--cores", "2", "--configfile", "presets/tiny.yaml", cwd=work, timeout=1500)
    return work
