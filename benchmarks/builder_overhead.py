"""Builder overhead: training images/s of a genome-built plain UNet against a hand-written
Keras UNet with identical layers, measured in one run (goal: ratio >= 0.97).

    python benchmarks/builder_overhead.py [--size 128] [--depth 4] [--filters 16] [--images 64] [--steps 60]
    python benchmarks/builder_overhead.py --against genome   # the control: the genome model against itself

Both models are trained on the same batches with the same compile settings, from the same
initial weights (the hand-written model is given the genome model's), so that they differ only
in how they were built. After one warm-up pass over the images each, training steps
(``train_on_batch``) alternate between the two models, the model that goes first alternating
too (genome, hand, hand, genome, ...). ``ratio`` is the median over step pairs of the hand
model's step time over the genome model's; the images/s are batch size over the median step.
``--against genome`` puts a second genome-built model in the hand-written one's place: its
ratio is the measurement's own spread, where the builder cannot be the cause.

Steps are timed, not ``fit`` calls: on TensorFlow each ``fit`` epoch ends with its tf.data
iterator torn down, which waits ~0.9 s for tf.data's autotuning thread in about one epoch of
four, whichever model trains (``benchmarks/tf_iterator_teardown.py``, docs/benchmarks.md).
That wait, not the model, made a 5-epoch median swing between 24.6 and 40 images/s. The
training step's traces are counted: a model traced again during the timed steps would pay its
tracing there (TensorFlow and JAX). Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import time

import keras
import numpy as np
from common import machine, noise_arrays

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


def paired_step_seconds(models: dict, batches: list, steps: int) -> dict[str, list[float]]:
    """Seconds of ``steps`` training steps of each model, cycling through ``batches``; in each
    step the models take turns on the same batch, the first one alternating (ABBA), so that
    the i-th times of the two models are a pair measured under the same machine load."""
    seconds = {name: [] for name in models}
    names = list(models)
    for step in range(steps):
        x, y = batches[step % len(batches)]
        for name in (names if step % 2 == 0 else names[::-1]):
            start = time.perf_counter()
            models[name].train_on_batch(x, y)
            seconds[name].append(time.perf_counter() - start)
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--depth", type=int, default=4)
    parser.add_argument("--filters", type=int, default=16)
    parser.add_argument("--images", type=int, default=64)
    parser.add_argument("--steps", type=int, default=60, help="timed training steps of each model")
    parser.add_argument("--against", choices=("hand", "genome"), default="hand",
                        help="the model the genome-built one is timed against (genome: the control)")
    parser.add_argument("--batch-size", type=int, default=16)
    args = parser.parse_args()

    x, y = noise_arrays(args.images, args.size)
    batches = [(x[i:i + args.batch_size], y[i:i + args.batch_size]) for i in range(0, args.images, args.batch_size)]
    keras.utils.set_random_seed(0)
    genome = Genome(args.depth, args.filters, tuple(unet_skip_edges(args.depth)))
    other = "hand" if args.against == "hand" else "genome_copy"
    models = {"genome": build_model(genome, (args.size, args.size, 1)),
              other: (hand_written_unet(args.depth, args.filters, args.size) if other == "hand"
                      else build_model(genome, (args.size, args.size, 1)))}
    params = {name: count_params(m) for name, m in models.items()}
    assert params["genome"] == params[other], params
    assert layer_signature(models["genome"]) == layer_signature(models[other])
    models[other].set_weights(models["genome"].get_weights())
    traces = {name: 0 for name in models}
    for name, model in models.items():
        model.compile(optimizer="adam", loss="binary_crossentropy")
        count_traces(model, traces, name)
        for bx, by in batches:  # tracing, compilation, the last partial batch's shape too
            model.train_on_batch(bx, by)
    warm_traces = dict(traces)
    seconds = paired_step_seconds(models, batches, args.steps)
    pair_ratios = np.array(seconds[other]) / np.array(seconds["genome"])
    rate = {name: args.batch_size / float(np.median(s)) for name, s in seconds.items()}
    print(json.dumps({
        "benchmark": "builder_overhead", "backend": keras.backend.backend(), "machine": machine(),
        "size": args.size, "depth": args.depth, "filters": args.filters, "params": params["genome"],
        "images": args.images, "batch_size": args.batch_size, "steps": args.steps,
        "against": other, "images_per_s_genome": round(rate["genome"], 2),
        f"images_per_s_{other}": round(rate[other], 2),
        "ratio": round(float(np.median(pair_ratios)), 4),
        "ratio_quartiles": [round(float(q), 4) for q in np.quantile(pair_ratios, [0.25, 0.75])],
        "retraces_timed": (None if keras.backend.backend() == "torch"
                           else {name: traces[name] - warm_traces[name] for name in models}),
    }))


if __name__ == "__main__":
    main()
