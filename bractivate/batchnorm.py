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

from bractivate.compat import flatten_layers


def batchnorm_layers(model: keras.Model) -> list[keras.layers.BatchNormalization]:
    """Every BatchNormalization layer of ``model``, nested models included."""
    return [layer for layer in flatten_layers(model)
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
    average of its batch statistics over ``x`` (batches of ``batch_size``, weighted by batch
    size), computed with the current weights; return the number of layers recalibrated
    (0: nothing to do, no pass).

    ``forward(batch, training=True)`` runs the model (default: ``model`` itself; ``fit`` passes
    a compiled function of it, or its torch program under execution ``torch``). During the pass
    every layer's momentum is 0, so after each batch its moving statistics are that batch's,
    which are summed here; a constant momentum lets ``forward`` be a function traced once. Only
    the BatchNormalization statistics change: a training-mode call updates nothing else in the
    models this project builds (no dropout, no other stateful layers).
    """
    layers = [layer for layer in batchnorm_layers(model) if layer.trainable]
    if not layers or len(x) == 0:
        return 0
    forward = model if forward is None else forward
    momenta = [layer.momentum for layer in layers]
    sums = [[None, None] for _ in layers]
    ops = keras.ops
    try:
        for layer in layers:
            layer.momentum = 0.0
        with _no_gradients():
            for start in range(0, len(x), batch_size):
                batch = x[start:start + batch_size]
                forward(batch, training=True)
                n = float(len(batch))
                for acc, layer in zip(sums, layers):
                    for i, stat in enumerate((layer.moving_mean, layer.moving_variance)):
                        part = ops.multiply(ops.convert_to_tensor(stat), n)
                        acc[i] = part if acc[i] is None else ops.add(acc[i], part)
            for acc, layer in zip(sums, layers):
                layer.moving_mean.assign(ops.divide(acc[0], float(len(x))))
                layer.moving_variance.assign(ops.divide(acc[1], float(len(x))))
    finally:
        for layer, momentum in zip(layers, momenta):
            layer.momentum = momentum
    return len(layers)
