"""Per-GPU locks for several GPU jobs on one machine (--resources gpu=N)."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from bractivate.runtime import acquire_gpu, setup_job


def test_each_process_locks_a_different_gpu_and_waits_when_none_is_free(tmp_path):
    holder = textwrap.dedent(f"""
        import sys
        from bractivate.runtime import acquire_gpu
        print(acquire_gpu([0, 1], {str(tmp_path)!r}), flush=True)
        sys.stdin.readline()
    """)
    procs = [subprocess.Popen([sys.executable, "-c", holder], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
             for _ in range(2)]
    taken = [int(p.stdout.readline()) for p in procs]
    assert sorted(taken) == [0, 1]
    with pytest.raises(TimeoutError, match=r"no free GPU slot among \[0, 1\] x 1 slot"):
        acquire_gpu([0, 1], tmp_path, timeout=0.3, poll=0.1)
    procs[1].communicate("\n")  # a finished job releases its GPU
    assert acquire_gpu([0, 1], tmp_path, timeout=5, poll=0.1) == taken[1]
    procs[0].communicate("\n")


def test_setup_job_sets_threads_and_visible_devices(tmp_path, monkeypatch):
    for var in ("CUDA_VISIBLE_DEVICES", "OMP_NUM_THREADS", "TF_NUM_INTRAOP_THREADS"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(sys, "stderr", sys.stderr)
    gpu = setup_job(tmp_path / "job.log", threads=3, gpu=1, gpu_ids=[5, 7], lock_dir=tmp_path / "locks")
    assert gpu == 5 and os.environ["CUDA_VISIBLE_DEVICES"] == "5"
    assert os.environ["OMP_NUM_THREADS"] == os.environ["TF_NUM_INTRAOP_THREADS"] == "3"
    assert "CUDA_VISIBLE_DEVICES='5'" in (tmp_path / "job.log").read_text()
    # under SLURM the scheduler has chosen already: nothing is locked
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2")
    assert setup_job(None, gpu=1, gpu_ids=[5], lock_dir=tmp_path / "locks") is None
    assert os.environ["CUDA_VISIBLE_DEVICES"] == "2"


@pytest.mark.slow
def test_setup_job_chooses_the_keras_backend_before_keras_is_imported(tmp_path):
    script = textwrap.dedent("""
        import os, sys
        from bractivate.runtime import setup_job
        setup_job(None, backend="torch")
        import keras
        print(keras.config.backend(), os.environ["KERAS_BACKEND"])
        try:
            setup_job(None, backend="jax")
        except RuntimeError as err:
            print(err)
    """)
    env = {k: v for k, v in os.environ.items() if k != "KERAS_BACKEND"}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.splitlines()
    assert lines[0] == "torch torch"
    assert lines[1] == "Keras was imported before the job chose backend 'jax'"


@pytest.fixture
def release_locks():
    from bractivate import runtime

    yield
    while runtime._held_locks:
        runtime._held_locks.pop().close()


def test_slots_spread_jobs_over_gpus_before_they_share_one(tmp_path, release_locks):
    taken = [acquire_gpu([0, 1], tmp_path, timeout=1, poll=0.05, slots=2) for _ in range(4)]
    assert taken == [0, 1, 0, 1]
    with pytest.raises(TimeoutError, match=r"no free GPU slot among \[0, 1\] x 2 slot\(s\)"):
        acquire_gpu([0, 1], tmp_path, timeout=0.2, poll=0.05, slots=2)
    with pytest.raises(ValueError, match="gpus.jobs_per_gpu must be >= 1, got 0"):
        acquire_gpu([0], tmp_path, slots=0)


def test_memory_fraction_is_an_equal_share_unless_given():
    from bractivate.runtime import memory_fraction

    assert memory_fraction(1) is None
    assert memory_fraction(4) == 0.25
    assert memory_fraction(4, 0.4) == 0.4
    with pytest.raises(ValueError, match=r"gpus.memory_fraction must be in \(0, 1\], got 1.5"):
        memory_fraction(2, 1.5)


def test_shared_gpu_job_caps_its_memory(tmp_path, monkeypatch, release_locks):
    for var in ("CUDA_VISIBLE_DEVICES", "XLA_PYTHON_CLIENT_MEM_FRACTION"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("KERAS_BACKEND", "jax")  # capped through its environment variable
    monkeypatch.setattr(sys, "stderr", sys.stderr)
    gpus = []
    for _ in range(2):  # two jobs, as if two processes: each sees no CUDA_VISIBLE_DEVICES yet
        monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
        gpus.append(setup_job(None, gpu=1, gpu_ids=[3], lock_dir=tmp_path, jobs_per_gpu=2))
    assert gpus == [3, 3]
    assert os.environ["XLA_PYTHON_CLIENT_MEM_FRACTION"] == "0.500"
    monkeypatch.delenv("XLA_PYTHON_CLIENT_MEM_FRACTION")
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES")
    setup_job(None, gpu=1, gpu_ids=[4], lock_dir=tmp_path)  # a GPU of its own: no cap
    assert "XLA_PYTHON_CLIENT_MEM_FRACTION" not in os.environ


class _Resources(dict):
    __getattr__ = dict.get


class _Job:
    def __init__(self, resources):
        self.resources = _Resources(resources)


@pytest.mark.slow
def test_shared_gpu_profile_asks_slurm_for_a_shard_of_a_gpu():
    """profiles/slurm-shared-gpu gives every GPU rule of profiles/slurm one shard (no whole
    GPU), which the plugin turns into --gres=shard:1 and the job still treats as a GPU job."""
    yaml = pytest.importorskip("yaml")
    utils = pytest.importorskip("snakemake_executor_plugin_slurm.utils")
    from bractivate.runtime import _is_gpu_job

    profiles = Path(__file__).resolve().parents[1] / "profiles"
    base = yaml.safe_load((profiles / "slurm" / "profile.yaml").read_text())["set-resources"]
    shared = yaml.safe_load((profiles / "slurm-shared-gpu" / "profile.yaml").read_text())["set-resources"]
    assert set(shared) == set(base)
    for rule, resources in shared.items():
        assert utils.set_gres_string(_Job(resources)).strip() == "--gres=shard:1", rule
        assert _is_gpu_job(resources) == 1
        assert utils.set_gres_string(_Job(base[rule])).strip() == "--gpus=1"
    assert _is_gpu_job({"gres": "mps:25"}) == 1 and _is_gpu_job({"gpu": 0}) == 0


def test_an_output_folder_lock_is_released_on_sigkill_and_removed_on_exit(tmp_path):
    import signal

    from bractivate.runtime import output_folder_lock

    holder = subprocess.Popen(
        [sys.executable, "-c", "import time; from bractivate.runtime import output_folder_lock\n"
         f"with output_folder_lock({str(tmp_path)!r}, 'bractivate search'):\n    print('locked', flush=True); time.sleep(60)"],
        stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "locked"
    with pytest.raises(ValueError, match=rf"another bractivate search is writing to this folder \(process {holder.pid}"):
        with output_folder_lock(tmp_path, "bractivate search"):
            pass
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    with output_folder_lock(tmp_path, "bractivate search"):  # the kernel released it
        assert (tmp_path / ".bractivate.lock").read_text().strip() == str(os.getpid())
        with pytest.raises(ValueError, match=rf"\(process {os.getpid()}"):  # one writer, even in one process
            with output_folder_lock(tmp_path, "bractivate search"):
                pass
    assert not (tmp_path / ".bractivate.lock").exists()
