"""BatchNormalization statistics that match the weights (docs/method.md#batchnorm-statistics).

Keras' BatchNormalization keeps an exponential moving average of the batch statistics with
momentum 0.99, an average over the last ~100 optimizer steps. The search's models live for a
few dozen steps at most (one step per epoch on the demo's data, about seven on the paper's),
so in inference mode they would normalise with statistics of weights long gone: every
validation loss, block activity and test Dice would be computed with stale statistics.
:func:`recalibrate_batchnorm` re-estimates them for the current weights instead, the way
"precise BN" does: a forward pass over the training images in training mode, with no
gradients, whose batch statistics are averaged (weighted by batch size) into the moving ones.
"""

from __future__ import annotations

import contextlib

import keras


def batchnorm_layers(model: keras.Model) -> list[keras.layers.BatchNormalization]:
    """Every BatchNormalization layer of ``model``, nested models included."""
    return [layer for layer in model._flatten_layers(include_self=False)
            if isinstance(layer, keras.layers.BatchNormalization)]


def _no_gradients():
    """A context in which a training-mode call records no gradient tape (PyTorch's autograd
    would otherwise keep every activation of the pass)."""
    if keras.config.backend() == "torch":
        import torch

        return torch.no_grad()
    return contextlib.nullcontext()


def recalibrate_batchnorm(model: keras.Model, x, batch_size: int, forward=None) -> int:
    """Set the moving mean and variance of every BatchNormalization layer of ``model`` to the
    average of its batch statistics over ``x`` (batches of ``batch_size``), computed with the
    current weights; return the number of layers recalibrated (0: nothing to do, no pass).

    ``forward(batch, training=True)`` runs the model (default: ``model`` itself; execution
    ``torch`` passes its torch program, which reads the layers' momentum at each call). Only
    the BatchNormalization statistics change: a training-mode call updates nothing else
    in the models this project builds (no dropout, no other stateful layers).
    """
    layers = [layer for layer in batchnorm_layers(model) if layer.trainable]
    if not layers or len(x) == 0:
        return 0
    forward = model if forward is None else forward
    momenta = [layer.momentum for layer in layers]
    seen = 0
    try:
        with _no_gradients():
            for start in range(0, len(x), batch_size):
                batch = x[start:start + batch_size]
                # moving <- moving * m + batch * (1 - m) with m = seen / (seen + n) keeps the
                # size-weighted mean of the batch statistics seen so far; m = 0 on the first
                # batch forgets the stale statistics.
                for layer in layers:
                    layer.momentum = seen / (seen + len(batch))
                forward(batch, training=True)
                seen += len(batch)
    finally:
        for layer, momentum in zip(layers, momenta):
            layer.momentum = momentum
    return len(layers)
