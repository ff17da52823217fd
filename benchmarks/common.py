"""What the benchmarks share: synthetic data sets, the machine a result was measured on, and
the workflow's settings.

A script in this folder imports it as ``from common import ...`` (Python puts a script's own
folder on its path). Every benchmark writes ``"machine": machine()`` into its JSON lines, so
one field means one thing in every result: the CPU, cores, operating system, host, Python and
Keras backend.
"""

from __future__ import annotations

import os
import platform
import sys
from collections.abc import Mapping
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # this checkout's package, not an installed one
CONFIG = ROOT / "config.yaml"


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo, or ``platform.processor()`` where there is none."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def keras_backend() -> str | None:
    """The Keras backend of this process: Keras' own answer once it is imported, else the
    ``KERAS_BACKEND`` it would read; None where neither says (a benchmark that only starts
    `bractivate` commands, which choose their own)."""
    if "keras" in sys.modules:
        return sys.modules["keras"].config.backend()
    return os.environ.get("KERAS_BACKEND")


def machine() -> dict:
    """The facts of the machine a benchmark ran on, the same keys in every benchmark."""
    return {"cpu": cpu_model(), "arch": platform.machine(), "cores": os.cpu_count(),
            "os": platform.platform(), "host": platform.node(), "python": platform.python_version(),
            "keras_backend": keras_backend()}


def noise_arrays(n: int, size: int, seed: int = 0):
    """``n`` uniform-noise images of ``size``² (float32, NHWC, one channel) and their masks (the
    pixels above 0.5): training data for timing a step, where what is learned does not matter."""
    import numpy as np

    x = np.random.default_rng(seed).random((n, size, size, 1), dtype=np.float32)
    return x, (x > 0.5).astype("float32")


def synthetic_entry(task: str, n: int, seed: int, size: int = 128) -> dict:
    """A config entry of ``n`` synthetic images of ``task`` (lungs, em, nuclei) at ``size``² before
    preprocessing, drawn with ``seed`` (bractivate.data.write_synthetic)."""
    return {"format": "synthetic", "source": "synthetic",
            "synthetic": {"task": task, "n": int(n), "seed": int(seed), "size": [int(size), int(size)]}}


def synthetic_dataset(folder: str | os.PathLike, task: str, n: int, *, seed: int, image_size: int,
                      size: int = 128, split_seed: int = 0) -> Path:
    """Write ``n`` synthetic ``task`` images (:func:`synthetic_entry`) preprocessed to
    ``image_size``² with the workflow's split (cut with ``split_seed``) as ``folder/<task>.h5``,
    the raw files under ``folder/raw``; return the HDF5 path."""
    from bractivate.data import prepare

    out = Path(folder) / f"{task}.h5"
    prepare(task, synthetic_entry(task, n, seed, size), out.parent / "raw", out, image_size=image_size,
            seed=split_seed)
    return out


def blob_dataset(n: int, size: int, seed: int):
    """The tests' synthetic blobs (tests/helpers.py): ``n`` bright discs on noise at ``size``², a
    70/10/20 split, held in memory as a :class:`bractivate.io.Dataset`."""
    tests = str(ROOT / "tests")
    if tests not in sys.path:
        sys.path.insert(0, tests)
    from helpers import blob_dataset as blobs

    return blobs(n=n, size=size, seed=seed)


def merged(base: Mapping, overlay: Mapping) -> dict:
    """``base`` with ``overlay``'s keys set over it, nested mappings merged as Snakemake merges
    a ``--configfile`` over config.yaml."""
    out = dict(base)
    for key, value in overlay.items():
        out[key] = merged(out[key], value) if isinstance(value, Mapping) and isinstance(out.get(key), Mapping) \
            else value
    return out


def workflow_config(configfile: str | os.PathLike | None = None) -> dict:
    """config.yaml, with ``configfile`` (a preset) over it when given: the settings a workflow
    run with ``--configfile configfile`` sees."""
    from bractivate.config import read_yaml

    config = read_yaml(CONFIG, "config file")
    if configfile is not None and Path(configfile).resolve() != CONFIG:
        config = merged(config, read_yaml(configfile, "config file"))
    return config
