"""Shared fixtures, and the Keras backend every test runs on: the workflow's.

Tests run on the backend the workflow's training jobs use, the default of ``keras_backend`` in
schemas/config.schema.yaml, unless ``KERAS_BACKEND`` is set. A test that needs TensorFlow in
its own process (the keras-unet-collection baselines, TensorFlow's traced passes) carries the
``tensorflow`` mark and is skipped on another backend; ``./run.sh test`` and ``./run.sh fast``
run those tests in a second pytest process with ``KERAS_BACKEND=tensorflow``.
"""

from __future__ import annotations

import os
from pathlib import Path

from bractivate.config import read_yaml

SCHEMA = Path(__file__).resolve().parents[1] / "schemas" / "config.schema.yaml"


def workflow_backend(schema: Path = SCHEMA) -> str:
    """The default of ``keras_backend`` in the config schema ``schema``."""
    try:
        return read_yaml(schema, "config schema")["properties"]["keras_backend"]["default"]
    except (KeyError, TypeError) as err:
        raise KeyError(f"{schema}: expected properties.keras_backend.default, the workflow's Keras backend; "
                       f"missing {err}") from None


os.environ.setdefault("KERAS_BACKEND", workflow_backend())
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest  # noqa: E402

from bractivate.io import Dataset  # noqa: E402

from helpers import blob_dataset, copy_workflow, snakemake  # noqa: E402


def pytest_collection_modifyitems(config, items):
    """Skip the ``tensorflow`` tests unless this process runs on TensorFlow."""
    backend = os.environ["KERAS_BACKEND"]
    if backend == "tensorflow":
        return
    skip = pytest.mark.skip(reason=f"needs the TensorFlow backend, this process runs on {backend!r}: "
                                   "KERAS_BACKEND=tensorflow pytest -m tensorflow")
    for item in items:
        if "tensorflow" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def blobs() -> Dataset:
    """The default blob data set (:func:`helpers.blob_dataset`), built once per session."""
    return blob_dataset()


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
    """The whole DAG of presets/tiny.yaml in a copy of the workflow, once per session: the
    end-to-end tests and the browser test of its report read the same run."""
    work = copy_workflow(tmp_path_factory.mktemp("workflow"))
    snakemake("--cores", "2", "--configfile", "presets/tiny.yaml", cwd=work, timeout=1500)
    return work
