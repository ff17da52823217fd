"""Input pipeline and precision: does a training step wait for data, and what does mixed
precision buy? One plain UNet genome (depth 4, 16 filters) is trained on the same images given
to ``fit`` two ways, in alternating rounds: as NumPy arrays in host memory (what the pipeline
does) and as backend tensors already on the device. Equal epoch times mean no step waits for
data. Each ``--precisions`` entry repeats the comparison under that Keras dtype policy.

    python benchmarks/input_pipeline.py [--data lungs.h5] [--images 138] [--size 128]
        [--epochs 4] [--rounds 2] [--execution auto] [--precisions float32,mixed_bfloat16]

Without ``--data`` it writes synthetic lung-like images first. Prints one JSON line per
precision: median seconds per epoch (first epoch of each round left out) for each input kind.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import keras
import numpy as np

from bractivate.genome import Genome, unet_skip_edges
from bractivate.io import load_dataset
from bractivate.model import build_model
from bractivate.train import EXECUTIONS, seed_everything, use_precision
from common import machine, synthetic_dataset


class _EpochTimer(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.seconds: list[float] = []

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(time.perf_counter() - self._start)


def synthetic_lungs(folder: Path, images: int, size: int) -> Path:
    """Synthetic lung-like images at ``size``×``size``, drawn at twice that, as ``folder/lungs.h5``."""
    return synthetic_dataset(folder, "lungs", images, seed=0, image_size=size, size=2 * size)


def measure(data, precision: str, epochs: int, rounds: int, batch_size: int, execution: str) -> dict:
    policy = use_precision(precision)
    seed_everything(0)
    model = build_model(Genome(depth=4, filters=16, edges=unet_skip_edges(4)), data.input_shape)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="binary_crossentropy", **EXECUTIONS[execution])
    x, y = data.split("train")
    inputs = {"host": (x, y), "device": (keras.ops.convert_to_tensor(x), keras.ops.convert_to_tensor(y))}
    model.fit(x, y, epochs=1, batch_size=batch_size, verbose=0)  # trace and compile once
    seconds: dict[str, list[float]] = {kind: [] for kind in inputs}
    for _ in range(rounds):
        for kind, (xs, ys) in inputs.items():
            timer = _EpochTimer()
            model.fit(xs, ys, epochs=epochs, batch_size=batch_size, shuffle=True, verbose=0, callbacks=[timer])
            seconds[kind].extend(timer.seconds[1:])
    host, device = (float(np.median(seconds[k])) for k in ("host", "device"))
    keras.backend.clear_session()
    return {"precision": policy, "train_images": len(x), "seconds_per_epoch_host": round(host, 4),
            "seconds_per_epoch_device": round(device, 4), "host_over_device": round(host / device, 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, help="a preprocessed HDF5 data set (default: synthetic lungs)")
    parser.add_argument("--images", type=int, default=138)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--execution", default="auto", choices=list(EXECUTIONS))
    parser.add_argument("--precisions", default="float32")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = args.data or synthetic_lungs(Path(tmp), args.images, args.size)
        data = load_dataset(path)
    for precision in args.precisions.split(","):
        row = measure(data, precision, args.epochs, args.rounds, args.batch_size, args.execution)
        print(json.dumps({"benchmark": "input_pipeline", "backend": keras.config.backend(),
                          "machine": machine(), "execution": args.execution, **row}), flush=True)


if __name__ == "__main__":
    main()
