"""Block activity, the paper's eq. 1 (docs/method.md#block-activity).

A_b is the mean, over the block's conv and deconv layers (batch-norm excluded), of the mean
absolute value of either the layer's output on a fixed batch (``activation``, the paper's text)
or its kernel (``weight``, the paper's equation).
"""

from __future__ import annotations

import keras
import numpy as np

from bractivate.model import block_layers

MODES = ("activation", "weight")


def _numpy(tensor) -> np.ndarray:
    return np.asarray(keras.ops.convert_to_numpy(tensor), dtype="float32")


def _per_block(layers: dict[str, list[str]], per_layer: dict[str, float]) -> dict[str, float]:
    return {block: float(np.mean([per_layer[n] for n in names])) for block, names in layers.items()}


def predict_with_activity(model: keras.Model, x: np.ndarray, batch_size: int) -> tuple[np.ndarray, dict[str, float]]:
    """Predictions of ``model`` on ``x`` and the ``activation`` activity of its first batch,
    from one forward pass: the search scores a genome and probes its blocks in the same pass."""
    layers = block_layers(model)
    names = [name for names in layers.values() for name in names]
    probe = keras.Model(model.input, [model.output, *(model.get_layer(n).output for n in names)])
    predictions, activity = [], None
    for start in range(0, len(x), batch_size):
        outputs = probe(x[start:start + batch_size], training=False)
        predictions.append(_numpy(outputs[0]))
        if activity is None:
            activity = _per_block(layers, {n: float(np.mean(np.abs(_numpy(out))))
                                           for n, out in zip(names, outputs[1:])})
    return np.concatenate(predictions), activity


def block_activity(model: keras.Model, x: np.ndarray | None = None, mode: str = "activation") -> dict[str, float]:
    """``{block: A_b}`` for every block of a genome-built model."""
    if mode not in MODES:
        raise ValueError(f"activity mode {mode!r} not in {MODES}")
    if mode == "weight":
        layers = block_layers(model)
        return _per_block(layers, {
            name: float(np.mean(np.abs(_numpy(model.get_layer(name).kernel))))
            for names in layers.values() for name in names
        })
    if x is None:
        raise ValueError("activity mode 'activation' needs a batch of images")
    return predict_with_activity(model, x, len(x))[1]
