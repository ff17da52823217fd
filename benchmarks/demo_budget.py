"""Why a demo baseline's foreground stays below 0.5, and what fixes it: one model trained on the
demo's synthetic EM set (20 images at 64×64, 14 to train on, 8 % foreground, 30 epochs) under
given learning rates and batch sizes, for several seeds, each run on one CPU thread as a workflow
job is (``--threads``: other thread counts add up floating-point sums in other orders, which
stands in for another machine).

    KERAS_BACKEND=tensorflow python benchmarks/demo_budget.py [--model wideunet] [--seeds 2 3]
        [--settings 0.01:4 0.02:2] [--epochs 30] [--split-seed 0] [--monitor val_loss]
        [--output-bias]

``--settings`` are ``learning_rate:batch_size`` pairs (the demo trained at 0.01:4, then 0.02:2, now
0.04:2 with ``--monitor val_dice``). ``--split-seed`` is the seed of the train/val/test split, the
workflow's config ``seed`` (whose jobs then train with seed ``seed + trial``: the demo under config
seed 1 trains its trial-1 models with seed 2 on split 1). One JSON line per run: every epoch's
training and val loss, the foreground pixels' mean probability and the test Dice (inference mode,
after the epoch's statistics re-estimation), the first epoch whose test Dice passes 0.5, and the
test Dice of the restored best epoch. Each run is a process of its own, as a workflow job is:
building Wide UNet the first time in a process also builds the models its width is searched with,
which draws from the seeded generators, so a second model built in the same process would start
from other weights than the workflow's job. ``--output-bias`` sets the output layer's bias to the
train split's foreground log-odds before training (Lin et al. 2017) instead of 0: a fix tried
first, not kept.
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import tempfile

import keras
import numpy as np

from bractivate.baselines import BASELINES, build_baseline
from bractivate.io import load_dataset
from bractivate.runtime import cap_threads
from bractivate.scores import dice
from bractivate.train import MONITORS, fit, predict_batches, seed_everything
from common import machine, synthetic_dataset


class TestTrace(keras.callbacks.Callback):
    """Per epoch: training loss, foreground pixels' mean probability and Dice on the test split."""

    def __init__(self, x, y):
        super().__init__()
        self.x, self.y, self.rows = x, y, []

    def on_epoch_end(self, epoch, logs=None):
        pred = predict_batches(self.model, self.x, 4)
        self.rows.append({"epoch": epoch + 1, "loss": round(float(logs.get("loss", np.nan)), 4),
                          "val_loss": round(float(logs.get("val_loss", np.nan)), 4),
                          "p_foreground": round(float(pred[self.y > 0.5].mean()), 3),
                          "test_dice": round(dice(self.y, pred), 3)})


def set_output_bias(model: keras.Model, masks: np.ndarray) -> float:
    """Set the bias of the model's last layer with one to the log-odds of the foreground share of
    ``masks``; return it."""
    share = float(np.mean(masks > 0.5))
    layer = [layer for layer in model.layers if getattr(layer, "bias", None) is not None][-1]
    bias = math.log(share / (1 - share))
    layer.bias.assign(np.full(tuple(layer.bias.shape), bias, "float32"))
    return bias


def run(model_name: str, seed: int, learning_rate: float, batch_size: int, epochs: int, width_scale: float,
        output_bias: bool = False, split_seed: int = 0, monitor: str = "val_loss") -> dict:
    """One training run in this process."""
    with tempfile.TemporaryDirectory() as tmp:
        data = load_dataset(synthetic_dataset(tmp, "em", 20, seed=2, image_size=64, split_seed=split_seed))
    x, y = data.split("test")
    seed_everything(seed)
    model = build_baseline(model_name, data.input_shape, width_scale=width_scale)
    bias = set_output_bias(model, data.split("train")[1]) if output_bias else 0.0
    trace = TestTrace(x, y)
    result = fit(model, data, epochs=epochs, batch_size=batch_size, learning_rate=learning_rate,
                 execution="auto", monitor=monitor, callbacks=(trace,))
    passed = next((r["epoch"] for r in trace.rows if r["test_dice"] > 0.5), None)
    return {"benchmark": "demo_budget", "model": model_name, "seed": seed, "split_seed": split_seed,
            "monitor": monitor, "learning_rate": learning_rate,
            "batch_size": batch_size, "output_bias": round(bias, 3), "backend": keras.config.backend(),
            "machine": machine(),
            "first_epoch_dice_over_0.5": passed, "best_epoch": result.best_epoch + 1,
            "test_dice": round(dice(y, predict_batches(model, x, 4)), 3), "trace": trace.rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="wideunet", choices=BASELINES)
    parser.add_argument("--seeds", type=int, nargs="+", default=[2, 3])
    parser.add_argument("--settings", nargs="+", default=["0.01:4", "0.02:2"], metavar="LR:BATCH")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--width-scale", type=float, default=0.0625)
    parser.add_argument("--output-bias", action="store_true", help="start from the foreground log-odds, not 0")
    parser.add_argument("--split-seed", type=int, default=0, help="the workflow's config seed")
    parser.add_argument("--monitor", default="val_loss", choices=MONITORS, help="what picks the kept epoch")
    parser.add_argument("--threads", type=int, default=1, help="CPU threads of each run (a workflow job's: 1)")
    parser.add_argument("--single", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.single:
        lr, batch = args.settings[0].split(":")
        print(json.dumps(run(args.model, args.seeds[0], float(lr), int(batch), args.epochs, args.width_scale,
                             args.output_bias, args.split_seed, args.monitor)),
              flush=True)
        return
    cap_threads(args.threads)  # the runs below are processes started with these variables
    for setting in args.settings:
        for seed in args.seeds:
            subprocess.run([sys.executable, __file__, "--single", "--model", args.model, "--seeds", str(seed),
                            "--settings", setting, "--epochs", str(args.epochs),
                            "--width-scale", str(args.width_scale), "--split-seed", str(args.split_seed),
                            "--monitor", args.monitor, *(["--output-bias"] if args.output_bias else [])],
                           check=True)


if __name__ == "__main__":
    main()
