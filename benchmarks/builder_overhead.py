"""Builder overhead: training images/s of a genome-built plain UNet against a hand-written
Keras UNet with identical layers, measured in one run (goal: ratio >= 0.97).

    python benchmarks/builder_overhead.py [--size 128] [--depth 4] [--filters 16] [--images 64]

Both models are trained on the same data with the same compile settings, from the same initial
weights (the hand-written model is given the genome model's), so that they differ only in how
they were built. After one warm-up epoch each, epochs alternate between the two models, the
model that goes first alternating too (genome, hand, hand, genome, ...), and the median epoch
time of each is used. The training step's traces are counted: a model traced again during the
timed epochs would pay its tracing there (TensorFlow and JAX). Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import platform
import time

import keras
import numpy as np

from bractivate.genome import Genome, block_widths, unet_skip_edges
from bractivate.model import build_model, count_params


def hand_written_unet(depth: int, filters: int, size: int) -> keras.Model:
    """The same network written out by hand, as one would without a genome."""
    widths = block_widths(depth, filters)

    def conv_block(x, width):
        for _ in range(2):
            x = keras.layers.Conv2D(width, 3, padding="same")(x)
            x = keras.layers.BatchNormalization()(x)
            x = keras.layers.ReLU()(x)
        return x

    inputs = keras.Input((size, size, 1))
    x, skips = inputs, []
    for i in range(depth):
        x = conv_block(x if i == 0 else keras.layers.MaxPooling2D(2)(x), widths[f"enc{i}"])
        skips.append(x)
    x = conv_block(keras.layers.MaxPooling2D(2)(x), widths["mid"])
    for i in reversed(range(depth)):
        x = keras.layers.Conv2DTranspose(widths[f"dec{i}"], 2, strides=2, padding="same")(x)
        x = conv_block(keras.layers.Concatenate()([x, skips[i]]), widths[f"dec{i}"])
    return keras.Model(inputs, keras.layers.Conv2D(1, 1, activation="sigmoid")(x))


def layer_signature(model: keras.Model) -> list[tuple]:
    """Each layer's class, dtype policy and output shape, in order."""
    return [(type(layer).__name__, layer.dtype_policy.name, tuple(layer.output.shape)) for layer in model.layers]


def count_traces(model: keras.Model, traces: dict, name: str) -> None:
    """Count in ``traces[name]`` each trace of ``model``'s training step (its Python body runs
    only when traced; on the torch backend it runs at every step, and nothing is counted)."""
    if keras.backend.backend() == "torch":
        return
    step = model.train_step

    def counted(data):
        traces[name] += 1
        return step(data)
    model.train_step = counted


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--depth", type=int, default=4)
    parser.add_argument("--filters", type=int, default=16)
    parser.add_argument("--images", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=16)
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    x = rng.random((args.images, args.size, args.size, 1), dtype=np.float32)
    y = (x > 0.5).astype("float32")
    keras.utils.set_random_seed(0)
    genome = Genome(args.depth, args.filters, tuple(unet_skip_edges(args.depth)))
    models = {"genome": build_model(genome, (args.size, args.size, 1)),
              "hand": hand_written_unet(args.depth, args.filters, args.size)}
    params = {name: count_params(m) for name, m in models.items()}
    assert params["genome"] == params["hand"], params
    assert layer_signature(models["genome"]) == layer_signature(models["hand"])
    models["hand"].set_weights(models["genome"].get_weights())
    traces = {name: 0 for name in models}
    for name, model in models.items():
        model.compile(optimizer="adam", loss="binary_crossentropy")
        count_traces(model, traces, name)
        model.fit(x, y, batch_size=args.batch_size, epochs=1, verbose=0)  # tracing, compilation
    warm_traces = dict(traces)
    seconds = {name: [] for name in models}
    for epoch in range(args.epochs):
        for name in (("genome", "hand") if epoch % 2 == 0 else ("hand", "genome")):
            model = models[name]
            start = time.perf_counter()
            model.fit(x, y, batch_size=args.batch_size, epochs=1, verbose=0)
            seconds[name].append(time.perf_counter() - start)
    rate = {name: args.images / float(np.median(s)) for name, s in seconds.items()}
    print(json.dumps({
        "benchmark": "builder_overhead", "backend": keras.backend.backend(), "machine": platform.machine(),
        "size": args.size, "depth": args.depth, "filters": args.filters, "params": params["genome"],
        "images_per_s_genome": round(rate["genome"], 2), "images_per_s_hand": round(rate["hand"], 2),
        "ratio": round(rate["genome"] / rate["hand"], 4),
        "retraces_timed": (None if keras.backend.backend() == "torch"
                           else {name: traces[name] - warm_traces[name] for name in models}),
    }))


if __name__ == "__main__":
    main()
