"""Set up a workflow job before Keras is imported: log file, CPU threads, a GPU slot of its own.

Snakemake's ``--resources gpu=N`` only counts GPU jobs; it sets no ``CUDA_VISIBLE_DEVICES``. On
one machine every GPU job therefore takes an exclusive lock on one of ``jobs_per_gpu`` slots of
a GPU id (``fcntl.flock`` on a file per slot, released by the kernel when the process ends, even
on SIGKILL) and makes only that GPU visible; slots are handed out GPU by GPU, so jobs spread
over the GPUs before they share one. A job that shares its GPU caps its memory at
``memory_fraction`` of it (default ``1 / jobs_per_gpu``). Under SLURM the scheduler already sets
``CUDA_VISIBLE_DEVICES`` (a whole GPU, or a shard or MPS share of one, docs/cluster.md) and
nothing is locked; the memory cap still applies.

This module must not import Keras: thread counts and visible devices are read at import time.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import shutil
import subprocess
import sys
import time
import traceback
from pathlib import Path
from typing import IO, Iterator

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
    return [i for i, _ in enumerate(line for line in out.splitlines() if line.startswith("GPU "))]


def try_lock(path: Path) -> IO | None:
    """Take an exclusive ``flock`` on ``path`` without waiting and write this process's id into it.

    Returns the open file that holds the lock (the kernel releases it when the file is closed or
    the process ends, even on SIGKILL), or ``None`` when another process holds it."""
    handle = open(path, "a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        return None
    handle.seek(0)
    handle.truncate()
    handle.write(f"{os.getpid()}\n")
    handle.flush()
    return handle


def lock_holder(path: Path) -> str:
    """The process that wrote its id into a lock file, with its command line where /proc shows it."""
    try:
        pid = int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return "a process that has not yet written its id"
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        command = ""
    return f"process {pid}" + (f": {command[:200]}" if command else "")


@contextlib.contextmanager
def output_folder_lock(folder: str | os.PathLike, command: str, name: str = ".bractivate.lock") -> Iterator[None]:
    """One writer per output folder (docs/reliability.md): hold an exclusive lock on ``FOLDER/NAME``
    (:func:`try_lock`, like the GPU slots) while ``command`` writes there.

    A second writer is refused at once with one line naming the process that holds the lock.
    The file is removed when the block ends; a lock taken on a file that was removed meanwhile
    is dropped and taken again on the new one, so two writers never hold two files."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    for _ in range(100):
        handle = try_lock(path)
        if handle is None:
            raise ValueError(f"{folder}: another {command} is writing to this folder ({lock_holder(path)}); "
                             "wait for it to end or choose another folder")
        try:
            if os.stat(path).st_ino == os.fstat(handle.fileno()).st_ino:
                break
        except FileNotFoundError:
            pass
        handle.close()
    else:
        raise ValueError(f"{folder}: cannot lock {path.name}: it keeps being replaced")
    try:
        yield
    finally:
        with contextlib.suppress(OSError):
            path.unlink()  # before the lock is released: a writer that opened it now retakes a new file
        handle.close()


def acquire_gpu(ids: list[int], lock_dir: str | os.PathLike, timeout: float = 3600.0, poll: float = 1.0,
                slots: int = 1) -> int | None:
    """Lock the first free one of ``slots`` slots per GPU id of ``ids`` and return its GPU id
    (``None`` when ``ids`` is empty)."""
    if not ids:
        return None
    if slots < 1:
        raise ValueError(f"gpus.jobs_per_gpu must be >= 1, got {slots}")
    lock_dir = Path(lock_dir)
    lock_dir.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + timeout
    while True:
        for slot in range(slots):
            for gpu in ids:
                handle = try_lock(lock_dir / f"gpu{gpu}.slot{slot}.lock")
                if handle is None:
                    continue
                _held_locks.append(handle)
                return gpu
        if time.monotonic() > deadline:
            raise TimeoutError(f"no free GPU slot among {ids} x {slots} slot(s) in {lock_dir} after {timeout:.0f} s")
        time.sleep(poll)


def memory_fraction(jobs_per_gpu: int = 1, fraction: float | None = None) -> float | None:
    """The share of its GPU's memory a job may use: ``fraction`` if given, else an equal share
    when the GPU is shared, else no cap (``None``)."""
    if fraction is not None:
        if not 0 < fraction <= 1:
            raise ValueError(f"gpus.memory_fraction must be in (0, 1], got {fraction}")
        return float(fraction)
    return 1.0 / jobs_per_gpu if jobs_per_gpu > 1 else None


def cap_gpu_memory(fraction: float | None, backend: str | None) -> None:
    """Cap this process's GPU memory at ``fraction`` of the device, for the Keras backend the
    job will import: JAX and TensorFlow read environment variables at import, PyTorch is told
    directly (importing torch here is safe: the thread variables are already set)."""
    if fraction is None:
        return
    os.environ["XLA_PYTHON_CLIENT_MEM_FRACTION"] = f"{fraction:.3f}"
    os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
    os.environ.setdefault("TF_FORCE_GPU_ALLOW_GROWTH", "true")  # TensorFlow has no fraction variable
    if backend == "torch":
        import torch

        if torch.cuda.is_available():
            torch.cuda.set_per_process_memory_fraction(fraction)


def available_cores() -> int:
    """CPU cores this process may run on (its affinity mask, which SLURM and taskset narrow)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        return os.cpu_count() or 1


def default_threads(cores: int | None = None) -> int:
    """CPU threads of a ``bractivate`` command when ``--threads`` is not given: half the cores,
    at most 4. The search's and training's small models gain little from more threads, and
    two commands at once, each with every core, ran 6x slower than each with one thread
    (docs/benchmarks.md); half the cores leaves room for a second command."""
    cores = available_cores() if cores is None else cores
    return max(1, min(4, cores // 2))


def cap_threads(threads: int) -> int:
    """Cap the CPU threads of OpenMP, MKL, TensorFlow and PyTorch at ``threads``; return it.

    The environment variables take effect when the frameworks are imported later; PyTorch,
    if already imported, is told directly (a command run inside a process that imported it)."""
    threads = int(threads)
    if threads < 1:
        raise ValueError(f"--threads: expected an integer >= 1, got {threads}")
    for var in ("OMP_NUM_THREADS", "TF_NUM_INTRAOP_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(threads)
    os.environ["TF_NUM_INTEROP_THREADS"] = "1" if threads == 1 else "2"
    if "torch" in sys.modules:
        import torch

        torch.set_num_threads(threads)
    return threads


def setup_command(threads: int | None = None) -> int:
    """Set up a ``bractivate`` command as :func:`setup_job` sets up a workflow job: cap its CPU
    threads (``threads``, else :func:`default_threads`) and, unless ``KERAS_BACKEND`` says
    otherwise, run Keras on PyTorch like the workflow's training jobs (``keras_backend: torch``)
    where it is installed. Returns the thread count."""
    import importlib.util

    threads = cap_threads(default_threads() if threads is None else threads)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if "KERAS_BACKEND" not in os.environ and "keras" not in sys.modules and importlib.util.find_spec("torch"):
        os.environ["KERAS_BACKEND"] = "torch"
    log.debug("command: %d thread(s), KERAS_BACKEND=%r", threads, os.environ.get("KERAS_BACKEND"))
    return threads


def setup_job(log_path: str | os.PathLike | None, threads: int = 1, gpu: int = 0,
              gpu_ids: list[int] | None = None, lock_dir: str | os.PathLike = "resources/gpu-locks",
              backend: str | None = None, jobs_per_gpu: int = 1, gpu_memory_fraction: float | None = None,
              ) -> int | None:
    """Route stderr and logging to ``log_path``, cap CPU threads, pick a GPU slot for GPU jobs
    (``jobs_per_gpu`` slots per GPU, memory capped when shared) and the Keras backend
    (``KERAS_BACKEND``) when ``backend`` is given.

    Returns the GPU id in use, or ``None`` on the CPU.
    """
    if log_path is not None:
        Path(log_path).parent.mkdir(parents=True, exist_ok=True)
        sys.stderr = open(log_path, "w", buffering=1)
    sys.excepthook = _one_line_excepthook(log_path)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, force=True,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    threads = cap_threads(max(1, int(threads)))
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if backend is not None:
        if "keras" in sys.modules and os.environ.get("KERAS_BACKEND") != backend:
            raise RuntimeError(f"Keras was imported before the job chose backend {backend!r}")
        os.environ["KERAS_BACKEND"] = backend
    chosen, fraction = None, None
    if gpu and "CUDA_VISIBLE_DEVICES" not in os.environ:
        chosen = acquire_gpu(detect_gpus() if gpu_ids is None else list(gpu_ids), lock_dir, slots=jobs_per_gpu)
        os.environ["CUDA_VISIBLE_DEVICES"] = "" if chosen is None else str(chosen)
    elif not gpu:
        os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
    if gpu and os.environ.get("CUDA_VISIBLE_DEVICES"):
        fraction = memory_fraction(jobs_per_gpu, gpu_memory_fraction)
        cap_gpu_memory(fraction, backend or os.environ.get("KERAS_BACKEND"))
    log.info("job: %d thread(s), CUDA_VISIBLE_DEVICES=%r, GPU memory cap %s, KERAS_BACKEND=%r", threads,
             os.environ.get("CUDA_VISIBLE_DEVICES"), "none" if fraction is None else f"{fraction:.3f}",
             os.environ.get("KERAS_BACKEND"))
    return chosen


def _one_line_excepthook(log_path: str | os.PathLike | None):
    """The job's last words (docs/reliability.md): an error the user can fix is one line in the
    log and on the terminal; any other exception is a bug, so its traceback goes to the log too,
    and the line says where."""

    def hook(kind, err, tb) -> None:
        from bractivate.errors import internal_error_line, is_user_error, one_line

        if issubclass(kind, KeyboardInterrupt):
            line = "error: interrupted"
        elif is_user_error(err):
            line = f"error: {one_line(err)}"
        else:
            text = "".join(traceback.format_exception(kind, err, tb))
            print(text, file=sys.stderr, end="")
            line = internal_error_line(err, Path(log_path) if log_path else Path("the lines above"))
        for stream in {id(s): s for s in (sys.stderr, sys.__stderr__)}.values():
            print(line, file=stream, flush=True)

    return hook


def _is_gpu_job(resources) -> int:
    """1 for a job that runs on a GPU: it asks for ``gpu`` or, under SLURM, for a ``shard`` or
    ``mps`` share of one (``gres``, docs/cluster.md)."""
    if int(resources.get("gpu", 0) or 0):
        return 1
    gres = str(resources.get("gres", "") or "")
    return int(any(part.strip().startswith(("shard", "mps")) for part in gres.split(",")))


def setup_snakemake_job(smk) -> int | None:
    """:func:`setup_job` from a Snakemake ``script:`` object; training rules name their Keras
    backend in ``params.backend`` (a param, so that changing it reruns what it trained)."""
    gpus = smk.config.get("gpus", {})
    return setup_job(smk.log[0] if smk.log else None, smk.threads, _is_gpu_job(smk.resources),
                     gpus.get("ids"), gpus.get("lock_dir", "resources/gpu-locks"),
                     getattr(smk.params, "backend", None), int(gpus.get("jobs_per_gpu", 1)),
                     gpus.get("memory_fraction"))
