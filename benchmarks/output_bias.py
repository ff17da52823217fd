"""Why a baseline's foreground stays below 0.5: one model trained on the demo's synthetic EM set
(20 images at 64×64, 14 to train on, 8 % foreground; batch 4, Adam 0.01, 30 epochs: the demo's
``train`` settings) from a zero output bias and from the foreground's log-odds (``fit``'s
``prior_bias``, docs/method.md#training-protocol), for several seeds.

    KERAS_BACKEND=tensorflow python benchmarks/output_bias.py [--model wideunet] [--seeds 1 2 3]
        [--learning-rate 0.01] [--epochs 30] [--modes prior zero]

One JSON line per run: every epoch's training loss, the foreground pixels' mean probability and
the test Dice (inference mode, after the epoch's statistics re-estimation), the first epoch whose
test Dice passes 0.5, and the test Dice of the restored best epoch.
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
from pathlib import Path

import keras
import numpy as np

from bractivate.baselines import BASELINES, build_baseline
from bractivate.data import prepare
from bractivate.io import load_dataset
from bractivate.scores import dice
from bractivate.train import fit, predict_batches, seed_everything

DEMO_EM = {"format": "synthetic", "source": "synthetic",
           "synthetic": {"task": "em", "n": 20, "seed": 2, "size": [128, 128]}}


class TestTrace(keras.callbacks.Callback):
    """Per epoch: training loss, foreground pixels' mean probability and Dice on the test split."""

    def __init__(self, x, y):
        super().__init__()
        self.x, self.y, self.rows = x, y, []

    def on_epoch_end(self, epoch, logs=None):
        pred = predict_batches(self.model, self.x, 4)
        self.rows.append({"epoch": epoch + 1, "loss": round(float(logs.get("loss", np.nan)), 4),
                          "p_foreground": round(float(pred[self.y > 0.5].mean()), 3),
                          "test_dice": round(dice(self.y, pred), 3)})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="wideunet", choices=BASELINES)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--learning-rate", type=float, default=0.01)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--width-scale", type=float, default=0.0625)
    parser.add_argument("--modes", nargs="+", default=["prior", "zero"], choices=["prior", "zero"])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        prepare("em", DEMO_EM, Path(tmp) / "raw", Path(tmp) / "em.h5", image_size=64, seed=0)
        data = load_dataset(Path(tmp) / "em.h5")
        x, y = data.split("test")
        for mode in args.modes:
            for seed in args.seeds:
                seed_everything(seed)
                model = build_baseline(args.model, data.input_shape, width_scale=args.width_scale)
                trace = TestTrace(x, y)
                run = fit(model, data, epochs=args.epochs, batch_size=4, learning_rate=args.learning_rate,
                          execution="auto", prior_bias=mode == "prior", callbacks=(trace,))
                passed = next((r["epoch"] for r in trace.rows if r["test_dice"] > 0.5), None)
                print(json.dumps({"benchmark": "output_bias", "model": args.model, "mode": mode, "seed": seed,
                                  "learning_rate": args.learning_rate, "backend": keras.config.backend(),
                                  "machine": platform.machine(), "first_epoch_dice_over_0.5": passed,
                                  "best_epoch": run.best_epoch + 1,
                                  "test_dice": round(dice(y, predict_batches(model, x, 4)), 3),
                                  "trace": trace.rows}), flush=True)


if __name__ == "__main__":
    main()
