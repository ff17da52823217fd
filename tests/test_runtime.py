"""Per-GPU locks for several GPU jobs on one machine (--resources gpu=N)."""

import os
import subprocess
import sys
import textwrap

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
    with pytest.raises(TimeoutError, match=r"no free GPU among \[0, 1\]"):
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
