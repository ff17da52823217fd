"""One search with the paper's settings on a GPU, against the paper's 0.483 GPU-hours (lungs,
V100): population 20, 50 epochs, early stopping (10, 0.05), 138 synthetic lung-like images
at 128×128. Runs on the JAX or PyTorch backend (the GPU machines have no TensorFlow):

    KERAS_BACKEND=jax python benchmarks/gpu_search.py --evaluations 40 --budget-s 300

The full search is 40 evaluations; to fit a short lease the script stops after the evaluation
that crosses ``--budget-s`` and extrapolates the hours per search from the mean time per
evaluation — its JSON line says how many evaluations were measured. Every evaluation also
prints a JSON line (time, epochs, outcome), so a cut-off run still says what it measured.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import keras

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine, synthetic_dataset, workflow_config  # noqa: E402

from bractivate.io import load_dataset  # noqa: E402
from bractivate.search import run_search  # noqa: E402
from bractivate.evaluation import SearchSettings  # noqa: E402
from bractivate.train import EXECUTIONS, PRECISIONS  # noqa: E402

PAPER_HOURS = 0.483
SEARCH = workflow_config()["search"]  # the paper's search settings, config.yaml's


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, help="a preprocessed HDF5 data set (default: synthetic lungs)")
    parser.add_argument("--evaluations", type=int, default=SEARCH["evaluations"])
    parser.add_argument("--budget-s", type=float, default=300)
    parser.add_argument("--execution", default="auto", choices=list(EXECUTIONS))
    parser.add_argument("--precision", default="float32", choices=list(PRECISIONS))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        data = load_dataset(args.data or synthetic_dataset(tmp, "lungs", 138, seed=0, image_size=128, size=256))
        times: list[float] = []
        start = time.perf_counter()
        last = [start]

        def tick(row):
            now = time.perf_counter()
            times.append(now - last[0])
            last[0] = now
            print(json.dumps({"seconds": round(times[-1], 2),
                              **{k: row[k] for k in ("evaluation", "params", "epochs", "seconds_per_epoch",
                                                     "train_seconds", "val_dice", "outcome", "error")}}),
                  flush=True)
            if now - start > args.budget_s:
                raise TimeoutError

        settings = SearchSettings(population=SEARCH["population"], evaluations=args.evaluations,
                                  epochs=SEARCH["epochs"], patience=SEARCH["patience"],
                                  min_delta=SEARCH["min_delta"], batch_size=SEARCH["batch_size"],
                                  execution=args.execution, precision=args.precision, seed=0)
        try:
            run_search(data, settings, tmp / "state.json", tmp / "history.tsv", on_evaluation=tick)
        except TimeoutError:
            pass
    per_eval = sum(times) / len(times)
    hours = per_eval * SEARCH["evaluations"] / 3600
    print(json.dumps({
        "benchmark": "gpu_search", "backend": keras.config.backend(), "machine": machine(),
        "execution": args.execution, "precision": args.precision,
        "train_images": len(data.splits["train"]), "evaluations_measured": len(times),
        "seconds_per_evaluation": round(per_eval, 2), "search_evaluations": SEARCH["evaluations"],
        "hours_per_search": round(hours, 3),
        "paper_hours_v100": PAPER_HOURS, "ratio_to_paper": round(hours / PAPER_HOURS, 3),
    }), flush=True)


if __name__ == "__main__":
    main()
