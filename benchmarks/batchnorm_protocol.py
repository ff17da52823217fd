"""BatchNormalization statistics in ``fit``: what Keras' moving averages give against the
re-estimation after every epoch, and what the re-estimation costs. Two measurements:

    python benchmarks/batchnorm_protocol.py momentum [--epochs 5 10 15 30]
    KERAS_BACKEND=torch OMP_NUM_THREADS=1 python benchmarks/batchnorm_protocol.py cost [--epochs 5] [--rounds 3]

``momentum``: the set-up of tests/test_batchnorm.py (80 synthetic blobs at 32², one optimizer
step an epoch: batch 64, Adam 0.01, a depth-2 UNet genome of 8 filters, eager) trained for each
``--epochs`` count with every layer's momentum set to 0.9 (``batchnorm="moving"``) and with the
re-estimation; one JSON line per run: val Dice in inference mode and with batch statistics.

``cost``: seconds per epoch with and without the re-estimation, the same model and data (138
blobs at 64², batch 16, a depth-3 UNet genome of 16 filters, execution ``torch``), the two
modes interleaved over ``--rounds``; the last line gives the medians and their ratio.
"""

from __future__ import annotations

import argparse
import json
import statistics

import keras
import numpy as np

from bractivate.batchnorm import batchnorm_layers
from bractivate.genome import Genome, unet_skip_edges
from bractivate.model import build_model
from bractivate.scores import dice
from bractivate.train import fit, predict_batches, seed_everything
from common import blob_dataset, machine


def momentum(epochs: list[int]) -> None:
    """Val Dice after each count of one-step epochs, Keras' moving averages at momentum 0.9
    against the re-estimation."""
    data = blob_dataset(n=80, size=32, seed=4)
    x, y = data.split("val")
    for count in epochs:
        for mode in ("moving", "recalibrate"):
            seed_everything(0)
            model = build_model(Genome(2, 8, tuple(unet_skip_edges(2))), data.input_shape)
            if mode == "moving":
                for layer in batchnorm_layers(model):
                    layer.momentum = 0.9
            run = fit(model, data, epochs=count, batch_size=64, learning_rate=1e-2, execution="eager",
                      batchnorm=mode)
            batch_statistics = dice(y, np.asarray(keras.ops.convert_to_numpy(model(x, training=True))))
            print(json.dumps({"benchmark": "batchnorm_protocol", "measure": "momentum", "epochs": count,
                              "mode": mode, "momentum": 0.9 if mode == "moving" else None,
                              "best_epoch": run.best_epoch + 1,
                              "val_dice_inference": round(dice(y, predict_batches(model, x)), 3),
                              "val_dice_batch_statistics": round(batch_statistics, 3),
                              "machine": machine()}), flush=True)


def cost(epochs: int, rounds: int) -> None:
    """Seconds per epoch with and without the re-estimation, interleaved over ``rounds``."""
    data = blob_dataset(n=138, size=64, seed=0)
    seconds = {"recalibrate": [], "moving": []}
    for _ in range(rounds):
        for mode in seconds:
            seed_everything(0)
            model = build_model(Genome(3, 16, tuple(unet_skip_edges(3))), data.input_shape)
            run = fit(model, data, epochs=epochs, batch_size=16, learning_rate=1e-3, execution="torch",
                      batchnorm=mode)
            seconds[mode].append(run.seconds_per_epoch)
            print(json.dumps({"benchmark": "batchnorm_protocol", "measure": "cost", "mode": mode,
                              "seconds_per_epoch": round(run.seconds_per_epoch, 3)}), flush=True)
    medians = {mode: statistics.median(s) for mode, s in seconds.items()}
    print(json.dumps({"benchmark": "batchnorm_protocol", "measure": "cost", "epochs": epochs, "rounds": rounds,
                      **{f"seconds_per_epoch_{m}": round(v, 3) for m, v in medians.items()},
                      "ratio": round(medians["recalibrate"] / medians["moving"], 2), "machine": machine()}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    measures = parser.add_subparsers(dest="measure", required=True)
    sweep = measures.add_parser("momentum", help="val Dice, momentum 0.9 against the re-estimation")
    sweep.add_argument("--epochs", type=int, nargs="+", default=[5, 10, 15, 30])
    timing = measures.add_parser("cost", help="seconds per epoch with and without the re-estimation")
    timing.add_argument("--epochs", type=int, default=5)
    timing.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    if args.measure == "momentum":
        momentum(args.epochs)
    else:
        cost(args.epochs, args.rounds)


if __name__ == "__main__":
    main()
