"""BatchNormalization statistics at the paper's search settings: a search (50 epochs, early
stopping patience 10 / min_delta 0.05, batch 16, Adam 1e-3) on a synthetic set of the paper's
size (138 images at 128×128: 97 to train on, 7 optimizer steps an epoch), once with the
statistics re-estimated after every epoch (``recalibrate``, the project's protocol) and once
with Keras' moving averages (``moving``, momentum 0.99, what the search did before).

    KERAS_BACKEND=torch python benchmarks/batchnorm.py [--task lungs|em|nuclei] [--evaluations 8]
        [--modes recalibrate moving] [--epochs 50]

One JSON line per evaluation as it finishes, then one per mode and a summary. For each
evaluation: the epochs it ran, its seconds per epoch (training steps, the statistics'
re-estimation where it runs, and validation) and the val Dice the search saw (inference mode). The
first 20 evaluations are the search's random initial population, so the two modes train the
same genomes from the same seeds.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import keras
import numpy as np

from bractivate import evaluation, train
from bractivate.io import load_dataset
from bractivate.search import run_search
from common import machine, synthetic_dataset


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--task", default="lungs", choices=["lungs", "em", "nuclei"])
    parser.add_argument("--evaluations", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=50)
    parser.add_argument("--modes", nargs="+", default=list(train.BATCHNORM_MODES), choices=train.BATCHNORM_MODES)
    parser.add_argument("--execution", default="torch", choices=list(train.EXECUTIONS))
    args = parser.parse_args()
    settings = evaluation.SearchSettings(evaluations=args.evaluations, epochs=args.epochs,
                                         execution=args.execution, depth_range=(2, 5), time_measure="flops")
    summary = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        data = load_dataset(synthetic_dataset(tmp, args.task, 138, seed=7, image_size=128))
        x_val, y_val = data.split("val")
        for mode in args.modes:
            rows = []

            def evaluate(genome, data, settings, seed, mode=mode):
                # fit's protocol with the statistics mode under test; the search is unchanged.
                defaults = train.fit.__kwdefaults__
                saved, defaults["batchnorm"] = defaults["batchnorm"], mode
                try:
                    result = evaluation.evaluate(genome, data, settings, seed)
                finally:
                    defaults["batchnorm"] = saved
                rows.append({"hash": genome.hash, "epochs": result["epochs"], "val_dice": result["val_dice"],
                             "seconds_per_epoch": result["seconds_per_epoch"], "outcome": result["outcome"]})
                print(json.dumps({"benchmark": "batchnorm", "mode": mode, "evaluation": len(rows) - 1,
                                  **rows[-1]}), flush=True)
                return result

            start = time.perf_counter()
            run_search(data, settings, tmp / f"state-{mode}.json", evaluate_fn=evaluate)
            epochs = [r["epochs"] for r in rows]
            dices = [r["val_dice"] for r in rows if r["outcome"] == "ok"]
            summary[mode] = {
                "epochs_run": epochs, "epochs_median": float(np.median(epochs)),
                "epochs_min_max": [int(min(epochs)), int(max(epochs))],
                "val_dice": [round(d, 3) for d in dices], "best_val_dice": round(max(dices), 3) if dices else None,
                "seconds_per_epoch": [round(r["seconds_per_epoch"], 3) for r in rows],
                "wall_s": round(time.perf_counter() - start, 1),
            }
            print(json.dumps({"benchmark": "batchnorm", "mode": mode, "task": args.task,
                              "backend": keras.config.backend(), "machine": machine(),
                              "n_val": len(x_val), **summary[mode]}), flush=True)
    keys = ("epochs_median", "epochs_min_max", "best_val_dice")
    print(json.dumps({"benchmark": "batchnorm",
                      "summary": {m: {k: s[k] for k in keys} for m, s in summary.items()}}))


if __name__ == "__main__":
    main()
