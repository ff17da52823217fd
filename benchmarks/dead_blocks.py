"""Which blocks of a trained genome model are dead: for each block, the fraction of its output
(after its last ReLU) that is above zero on a split, in training mode (batch statistics) and in
inference mode (moving statistics), and how much the model's output varies.

    python benchmarks/dead_blocks.py results/train/em/deep7/trial1/model.keras resources/em.h5 [--split train]

A model that predicts one probability everywhere (Table 2's "collapsed") either never learned
(every block alive, the head's bias still moving) or lost its signal at a block whose every
channel is zero: nothing upstream of it gets a gradient again. Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os

os.environ.setdefault("KERAS_BACKEND", "torch")

import keras  # noqa: E402
import numpy as np  # noqa: E402
from common import machine  # noqa: E402

from bractivate.io import load_dataset  # noqa: E402


def block_outputs(model: keras.Model) -> list[str]:
    """The layer ending each block: its second ReLU (``<block>_relu2``, bractivate.model's names)."""
    return [layer.name for layer in model.layers if layer.name.endswith("_relu2")]


def alive(model: keras.Model, x: np.ndarray, training: bool) -> dict[str, float]:
    """Each block's fraction of outputs above zero on ``x``."""
    names = block_outputs(model)
    probe = keras.Model(model.inputs, [model.get_layer(n).output for n in names])
    outputs = probe(x, training=training)
    return {n.removesuffix("_relu2"): round(float((keras.ops.convert_to_numpy(o) > 0).mean()), 4)
            for n, o in zip(names, outputs)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("model", help="a model.keras of results/train")
    parser.add_argument("data", help="the HDF5 data set it was trained on")
    parser.add_argument("--split", default="train", choices=("train", "val", "test"))
    parser.add_argument("--images", type=int, default=8, help="images of the split to run")
    args = parser.parse_args()
    model = keras.models.load_model(args.model, compile=False)
    x, _ = load_dataset(args.data).split(args.split)
    x = x[: args.images]
    prob = np.asarray(keras.ops.convert_to_numpy(model(x, training=False)))
    modes = {mode: alive(model, x, mode == "training") for mode in ("training", "inference")}
    dead = [block for block, share in modes["training"].items() if share == 0.0]
    print(json.dumps({"benchmark": "dead_blocks", "model": args.model, "split": args.split, "images": len(x),
                      "output_min": round(float(prob.min()), 4), "output_max": round(float(prob.max()), 4),
                      "dead_blocks": dead, "alive_training": modes["training"], "alive_inference": modes["inference"],
                      "machine": machine()}))


if __name__ == "__main__":
    main()
