"""TensorFlow's tf.data iterator teardown: how long deleting an exhausted iterator takes with
tf.data's autotuning on (the default, and what Keras' ``fit`` builds from arrays) and off, and
how long ``fit`` calls of a one-layer model take, whose epochs each build such an iterator.

    KERAS_BACKEND=tensorflow python benchmarks/tf_iterator_teardown.py [--iterators 16] [--images 64]

Each iterator yields ``--images`` 128×128 images in batches of 16 through the pipeline ``fit``
builds from arrays (:func:`fit_like_dataset`), waiting 0.4 s per batch (a training step's
worth), and is then deleted. This wait made ``builder_overhead.py``'s former per-epoch timing
swing between two modes (docs/benchmarks.md). Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import time

os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from common import machine, noise_arrays  # noqa: E402


def fit_like_dataset(x: np.ndarray, y: np.ndarray, autotune: bool) -> tf.data.Dataset:
    """The pipeline Keras' ``fit`` builds from arrays, in public tf.data: shuffled index
    batches, the images gathered by an autotuned parallel map, an autotuned prefetch."""
    images, masks, n = tf.constant(x), tf.constant(y), len(x)
    indices = tf.data.Dataset.range(1).map(lambda _: tf.random.shuffle(tf.range(n))).prefetch(1)
    indices = indices.flat_map(lambda i: tf.data.Dataset.from_tensor_slices(i).batch(16))
    dataset = indices.map(lambda i: (tf.gather(images, i), tf.gather(masks, i)), num_parallel_calls=tf.data.AUTOTUNE)
    options = tf.data.Options()
    options.experimental_optimization.apply_default_optimizations = False
    options.autotune.enabled = autotune
    return dataset.with_options(options).prefetch(tf.data.AUTOTUNE)


def teardown_seconds(x: np.ndarray, y: np.ndarray, iterators: int, autotune: bool, step: float) -> list[float]:
    """Seconds that ``del`` of each of ``iterators`` exhausted iterators took."""
    seconds = []
    for _ in range(iterators):
        iterator = iter(fit_like_dataset(x, y, autotune))
        for _batch in iterator:
            time.sleep(step)
        start = time.perf_counter()
        del iterator
        seconds.append(time.perf_counter() - start)
    return seconds


class Pause(keras.callbacks.Callback):
    """Waits ``seconds`` after each training step: a larger model's step time."""

    def __init__(self, seconds: float):
        super().__init__()
        self.seconds = seconds

    def on_train_batch_end(self, batch, logs=None):
        time.sleep(self.seconds)


def fit_call_seconds(x: np.ndarray, y: np.ndarray, calls: int, step: float) -> list[float]:
    """Seconds of ``calls`` one-epoch ``fit`` calls of a one-convolution model whose steps are
    stretched to ``step`` seconds (after one warm-up call)."""
    inputs = keras.Input(x.shape[1:])
    model = keras.Model(inputs, keras.layers.Conv2D(1, 3, padding="same", activation="sigmoid")(inputs))
    model.compile(optimizer="adam", loss="binary_crossentropy")
    model.fit(x, y, batch_size=16, epochs=1, verbose=0)
    seconds = []
    for _ in range(calls):
        start = time.perf_counter()
        model.fit(x, y, batch_size=16, epochs=1, verbose=0, callbacks=[Pause(step)])
        seconds.append(time.perf_counter() - start)
    return seconds


def summary(seconds: list[float], slow: float) -> dict:
    """Median and maximum of ``seconds``, and how many of them exceed ``slow`` (a wait)."""
    return {"median_s": round(float(np.median(seconds)), 3), "max_s": round(max(seconds), 3),
            "slow_over_s": round(slow, 3), "slow": sum(s > slow for s in seconds), "of": len(seconds)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--iterators", type=int, default=16)
    parser.add_argument("--images", type=int, default=64)
    parser.add_argument("--step", type=float, default=0.4, help="seconds waited per batch")
    args = parser.parse_args()
    if keras.backend.backend() != "tensorflow":
        parser.error(f"needs KERAS_BACKEND=tensorflow, not {keras.backend.backend()!r}")
    x, y = noise_arrays(args.images, 128)
    on = teardown_seconds(x, y, args.iterators, True, args.step)
    off = teardown_seconds(x, y, args.iterators, False, args.step)
    fits = fit_call_seconds(x, y, args.iterators, args.step)
    print(json.dumps({
        "benchmark": "tf_iterator_teardown", "machine": machine(), "tensorflow": tf.__version__,
        "images": args.images, "step_s": args.step,
        "delete_autotune_on": summary(on, 0.5), "delete_autotune_off": summary(off, 0.5),
        "fit_call_one_conv": {**summary(fits, float(np.median(fits)) + 0.5),
                              "seconds": [round(s, 2) for s in fits]},
    }))


if __name__ == "__main__":
    main()
