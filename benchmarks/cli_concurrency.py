"""Two `bractivate search` commands at once against one alone (goal: at most 1.3x its time on 2
cores), with the commands' default thread cap and with every core per command (`--threads`
equal to the core count: what the commands did before they capped their threads).

Each search runs the demo preset's search settings (population 3, 4 evaluations of up to 8
epochs, batches of 4, `time_measure: flops`, execution `torch`) on a synthetic em set of 48
images at 64x64, in a process of its own, as a user would start it; the times include the
start-up. Prints one JSON object.

    python benchmarks/cli_concurrency.py [--variants default all-cores] [--rounds 1]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bractivate.data import write_synthetic
from bractivate.runtime import available_cores, default_threads
from common import machine

BRACTIVATE = str(Path(sys.executable).parent / "bractivate")
SETTINGS = {"population": 3, "evaluations": 4, "epochs": 8, "learning_rate": 0.01, "patience": 3,
            "min_delta": 0.005, "batch_size": 4, "time_measure": "flops", "execution": "torch",
            "filter_range": "[4, 8]"}
THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS")


def search(data: Path, out: Path, threads: int | None) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if k not in THREAD_VARS}  # nothing capped from outside
    args = [BRACTIVATE, "search", str(data), str(out), *(f"--set={k}={v}" for k, v in SETTINGS.items())]
    if threads is not None:
        args += ["--threads", str(threads)]
    return subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def timed(data: Path, work: Path, copies: int, threads: int | None) -> float:
    """Wall time from starting ``copies`` searches at once to the end of the last one."""
    start = time.perf_counter()
    runs = [search(data, work / f"run{time.monotonic_ns()}-{i}", threads) for i in range(copies)]
    for run in runs:
        _, err = run.communicate()
        if run.returncode:
            raise RuntimeError(f"bractivate search failed: {err[-2000:]}")
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--variants", nargs="+", default=["default", "all-cores"], choices=["default", "all-cores"])
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()
    cores = available_cores()
    results = {"cores": cores, "default_threads": default_threads(), "machine": machine(),
               "keras_backend": os.environ.get("KERAS_BACKEND", "torch (the commands' default)"), "variants": {}}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        write_synthetic("em", work / "raw", n=48, seed=0, size=(128, 128))
        subprocess.run([BRACTIVATE, "preprocess", "--format", "lucchi_em", "--image-size", "64",
                        str(work / "raw"), str(work / "em.h5")], check=True, capture_output=True)
        for variant in args.variants:
            threads = None if variant == "default" else cores
            alone, pair = [], []
            for _ in range(args.rounds):  # interleaved, so that a change in the machine's load hits both
                alone.append(timed(work / "em.h5", work, 1, threads))
                pair.append(timed(work / "em.h5", work, 2, threads))
            results["variants"][variant] = {
                "threads": threads or default_threads(), "alone_s": [round(t, 1) for t in alone],
                "two_at_once_s": [round(t, 1) for t in pair],
                "ratio": round(sorted(pair)[len(pair) // 2] / sorted(alone)[len(alone) // 2], 2)}
            print(json.dumps({variant: results["variants"][variant]}), file=sys.stderr, flush=True)
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
