"""Set up a workflow job before Keras is imported: log file, CPU threads, one GPU of its own.

Snakemake's ``--resources gpu=N`` only counts GPUs; it sets no ``CUDA_VISIBLE_DEVICES``. On one
machine with several GPUs every GPU job therefore takes an exclusive lock on one GPU id
(``fcntl.flock`` on a file per id, released by the kernel when the process ends, even on
SIGKILL) and makes only that GPU visible. Under SLURM the scheduler already sets
``CUDA_VISIBLE_DEVICES`` and nothing is locked.

This module must not import Keras: thread counts and visible devices are read at import time.
"""

from __future__ import annotations

import fcntl
import logging
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

log = logging.getLogger(__name__)
_held_locks: list = []  # open lock files, kept for the life of the process


def detect_gpus() -> list[int]:
    """GPU ids that ``nvidia-smi`` lists; none where it is missing or fails."""
    if shutil.which("nvidia-smi") is None:
        return []
    try:
        out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return [i for i, line in enumerate(l for l in out.splitlines() if l.startswith("GPU "))]


def acquire_gpu(ids: list[int], lock_dir: str | os.PathLike, timeout: float = 3600.0, poll: float = 1.0) -> int | None:
    """Lock the first free GPU id of ``ids`` and return it (``None`` when ``ids`` is empty)."""
    if not ids:
        return None
    lock_dir = Path(lock_dir)
    lock_dir.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + timeout
    while True:
        for gpu in ids:
            handle = open(lock_dir / f"gpu{gpu}.lock", "a+")
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.close()
                continue
            handle.seek(0)
            handle.truncate()
            handle.write(f"{os.getpid()}\n")
            handle.flush()
            _held_locks.append(handle)
            return gpu
        if time.monotonic() > deadline:
            raise TimeoutError(f"no free GPU among {ids} in {lock_dir} after {timeout:.0f} s")
        time.sleep(poll)


def setup_job(log_path: str | os.PathLike | None, threads: int = 1, gpu: int = 0,
              gpu_ids: list[int] | None = None, lock_dir: str | os.PathLike = "resources/gpu-locks",
              backend: str | None = None) -> int | None:
    """Route stderr and logging to ``log_path``, cap CPU threads, pick a GPU for GPU jobs and
    the Keras backend (``KERAS_BACKEND``) when ``backend`` is given.

    Returns the GPU id in use, or ``None`` on the CPU.
    """
    if log_path is not None:
        Path(log_path).parent.mkdir(parents=True, exist_ok=True)
        sys.stderr = open(log_path, "w", buffering=1)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, force=True,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    threads = max(1, int(threads))
    for var in ("OMP_NUM_THREADS", "TF_NUM_INTRAOP_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(threads)
    os.environ["TF_NUM_INTEROP_THREADS"] = "1" if threads == 1 else "2"
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if backend is not None:
        if "keras" in sys.modules and os.environ.get("KERAS_BACKEND") != backend:
            raise RuntimeError(f"Keras was imported before the job chose backend {backend!r}")
        os.environ["KERAS_BACKEND"] = backend
    chosen = None
    if gpu and "CUDA_VISIBLE_DEVICES" not in os.environ:
        chosen = acquire_gpu(detect_gpus() if gpu_ids is None else list(gpu_ids), lock_dir)
        os.environ["CUDA_VISIBLE_DEVICES"] = "" if chosen is None else str(chosen)
    elif not gpu:
        os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
    log.info("job: %d thread(s), CUDA_VISIBLE_DEVICES=%r, KERAS_BACKEND=%r", threads,
             os.environ.get("CUDA_VISIBLE_DEVICES"), os.environ.get("KERAS_BACKEND"))
    return chosen


def setup_snakemake_job(smk) -> int | None:
    """:func:`setup_job` from a Snakemake ``script:`` object; training rules name their Keras
    backend in ``params.backend`` (a param, so that changing it reruns what it trained)."""
    gpus = smk.config.get("gpus", {})
    return setup_job(smk.log[0] if smk.log else None, smk.threads, int(smk.resources.get("gpu", 0)),
                     gpus.get("ids"), gpus.get("lock_dir", "resources/gpu-locks"),
                     getattr(smk.params, "backend", None))
