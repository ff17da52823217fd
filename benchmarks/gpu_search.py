"""One search with the paper's settings on a GPU, against the paper's 0.483 GPU-hours (lungs,
V100): population 20, 50 epochs, early stopping (10, 0.05), 138 synthetic lung-like images
at 128×128. Runs on the JAX or PyTorch backend (the GPU machines have no TensorFlow):

    KERAS_BACKEND=jax python benchmarks/gpu_search.py --evaluations 6 --budget-s 420

The full search is 40 evaluations; to fit a short lease the script trains as many evaluations
as fit in ``--budget-s`` (at most ``--evaluations``) and extrapolates the hours per search from
the mean time per evaluation — the JSON line says how many were measured.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

from bractivate.data import prepare
from bractivate.io import load_dataset
from bractivate.search import run_search
from bractivate.train import SearchSettings

PAPER_HOURS = 0.483


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--evaluations", type=int, default=40)
    parser.add_argument("--budget-s", type=float, default=420)
    parser.add_argument("--execution", default="auto", choices=["auto", "graph", "eager"])
    args = parser.parse_args()
    entry = {"format": "synthetic", "source": "synthetic",
             "synthetic": {"task": "lungs", "n": 138, "seed": 0, "size": [256, 256]}}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        prepare("lungs", entry, tmp / "raw", tmp / "lungs.h5", image_size=128)
        data = load_dataset(tmp / "lungs.h5")
        times: list[float] = []
        start = time.perf_counter()
        last = [start]

        def tick(row):
            now = time.perf_counter()
            times.append(now - last[0])
            last[0] = now
            print(json.dumps({k: row[k] for k in ("evaluation", "params", "epochs", "seconds_per_epoch",
                                                     "val_dice", "score", "outcome")}), flush=True)
            if now - start > args.budget_s:
                raise TimeoutError

        settings = SearchSettings(population=20, evaluations=args.evaluations, epochs=50, patience=10,
                                  min_delta=0.05, batch_size=16, execution=args.execution, seed=0)
        try:
            run_search(data, settings, tmp / "state.json", tmp / "history.tsv", on_evaluation=tick)
        except TimeoutError:
            pass
    per_eval = sum(times) / len(times)
    hours = per_eval * 40 / 3600
    print(json.dumps({
        "benchmark": "gpu_search", "backend": os.environ.get("KERAS_BACKEND", "tensorflow"),
        "machine": platform.node(), "evaluations_measured": len(times), "seconds_per_evaluation": round(per_eval, 2),
        "hours_per_40_evaluations": round(hours, 3), "paper_hours_v100": PAPER_HOURS,
        "ratio_to_paper": round(hours / PAPER_HOURS, 3),
    }))


if __name__ == "__main__":
    main()
