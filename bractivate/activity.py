"""Block activity, the paper's eq. 1 (SPEC §5).

A_b is the mean, over the block's conv and deconv layers (batch-norm excluded), of the mean
absolute value of either the layer's output on a fixed batch (``activation``, the paper's text)
or its kernel (``weight``, the paper's equation).
"""

from __future__ import annotations

import keras
import numpy as np

from bractivate.model import block_layers

MODES = ("activation", "weight")


def block_activity(model: keras.Model, x: np.ndarray | None = None, mode: str = "activation") -> dict[str, float]:
    """``{block: A_b}`` for every block of a genome-built model."""
    if mode not in MODES:
        raise ValueError(f"activity mode {mode!r} not in {MODES}")
    layers = block_layers(model)
    if mode == "weight":
        per_layer = {
            name: float(np.mean(np.abs(keras.ops.convert_to_numpy(model.get_layer(name).kernel))))
            for names in layers.values()
            for name in names
        }
    else:
        if x is None:
            raise ValueError("activity mode 'activation' needs a batch of images")
        names = [name for names in layers.values() for name in names]
        probe = keras.Model(model.input, [model.get_layer(n).output for n in names])
        outputs = probe(x, training=False)
        per_layer = {
            name: float(np.mean(np.abs(keras.ops.convert_to_numpy(out))))
            for name, out in zip(names, outputs)
        }
    return {block: float(np.mean([per_layer[n] for n in names])) for block, names in layers.items()}
