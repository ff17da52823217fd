"""A PyTorch-native way to run the training steps of a genome's Keras model (execution
``torch``, docs/benchmarks.md "Framework overhead").

On the PyTorch backend a Keras model pays, per layer and per step, Keras's own Python
(``Layer.__call__``, dtype policies, name scopes, symbolic checks) and a NHWC↔NCHW copy around
every convolution, pooling and resizing; for the search's small models (1e4–5e5 parameters)
that costs as much as the arithmetic. :class:`TorchProgram` reads the functional graph once and
replays it with ``torch.nn.functional`` calls in NCHW, on the Keras model's own variables (a
Keras variable on this backend *is* a ``torch.nn.Parameter``): training updates the Keras model
in place, so it is still a Keras model that is saved as ``.keras``, restored by
``set_weights``, and called by Keras in training mode (the batch-norm re-estimation) between
epochs. The optimizer is the model's compiled Keras optimizer, so the update rule is Keras's
Adam itself.

Layers are translated through :mod:`bractivate.torch_registry` (layer class → translator):
Keras's own layers are registered here, and a module that defines its own layers registers
them itself (:func:`register`, re-exported here). Any other layer makes :class:`TorchProgram`
refuse the model, naming the layer.
"""

from __future__ import annotations

import functools
import logging
import math
import operator

import keras
import numpy as np
import torch
import torch.nn.functional as F

from bractivate.compat import nodes_by_depth, torch_device
from bractivate.torch_registry import register, translate, unsupported

log = logging.getLogger(__name__)
_ACTIVATIONS = {"linear": None, "relu": F.relu, "sigmoid": torch.sigmoid}
layers = keras.layers


def _kernel(variable) -> torch.Tensor:
    """A Keras conv kernel (kh, kw, a, b) as torch's (b, a, kh, kw); both Conv2D and
    Conv2DTranspose map this way."""
    return variable.value.permute(3, 2, 0, 1)


def _activation(layer, why: str):
    """The torch function of ``layer``'s activation (None: linear), or refuse the layer."""
    name = getattr(layer.activation, "__name__", str(layer.activation))
    if name not in _ACTIVATIONS:
        raise unsupported(layer, why.format(name=name))
    return _ACTIVATIONS[name]


def _check_convolution(layer):
    """The activation of a Conv2D or Conv2DTranspose, after refusing what is not translated."""
    act = _activation(layer, "activation {name!r} not in " + str(tuple(_ACTIVATIONS)))
    transposed = isinstance(layer, layers.Conv2DTranspose)
    if getattr(layer, "groups", 1) != 1 or (transposed and tuple(layer.dilation_rate) != (1, 1)):
        raise unsupported(layer, "expected no groups (and no dilation of a transposed convolution)")
    return act


def _conv_padding(layer, stride, dilation):
    """torch's padding for a Keras Conv2D or DepthwiseConv2D: "valid", or "same" where it is
    symmetric (odd kernel, stride 1)."""
    kh, kw = layer.kernel_size
    if layer.padding == "valid":
        return 0
    if stride == (1, 1) and kh % 2 == 1 and kw % 2 == 1:
        return (dilation[0] * (kh // 2), dilation[1] * (kw // 2))
    raise unsupported(layer, "expected padding 'valid' or 'same' with an odd kernel, stride 1")


@register(layers.InputLayer)
def _input(layer):
    return None


@register(layers.Conv2D)
def _conv2d(layer):
    act = _check_convolution(layer)
    stride, dilation = tuple(layer.strides), tuple(layer.dilation_rate)
    bias = layer.bias if layer.use_bias else None
    pad = _conv_padding(layer, stride, dilation)

    def conv(inputs, training):
        y = F.conv2d(inputs[0], _kernel(layer.kernel), None if bias is None else bias.value, stride, pad, dilation)
        return y if act is None else act(y)
    return conv


@register(layers.Conv2DTranspose)
def _conv2d_transpose(layer):
    act = _check_convolution(layer)
    stride = tuple(layer.strides)
    bias = layer.bias if layer.use_bias else None
    # "same" with kernel == stride gives exactly input × stride, no crop (the decoder's
    # 2×2, stride-2 up-convolution); other cases need Keras's asymmetric crop.
    if layer.padding != "same" or stride != tuple(layer.kernel_size):
        raise unsupported(layer, "expected padding 'same' with strides equal to the kernel size")

    def deconv(inputs, training):
        y = F.conv_transpose2d(inputs[0], _kernel(layer.kernel), None if bias is None else bias.value, stride)
        return y if act is None else act(y)
    return deconv


@register(layers.BatchNormalization)
def _batchnorm(layer):
    if layer.axis not in (-1, 3) or not layer.center or not layer.scale or layer.renorm:
        raise unsupported(layer, "expected axis -1, center and scale, no renorm")
    eps = float(layer.epsilon)

    def batchnorm(inputs, training):
        x = inputs[0]
        mean, var = layer.moving_mean.value, layer.moving_variance.value
        if not (training and layer.trainable):
            return F.batch_norm(x, mean, var, layer.gamma.value, layer.beta.value, False, 0.0, eps)
        # One fused op gives the output and the batch's mean and 1/sqrt(var + eps); the
        # moving statistics are then updated as Keras does, with the biased variance
        # (torch's own running_var update would use the unbiased one).
        y, batch_mean, invstd = torch.native_batch_norm(
            x, layer.gamma.value, layer.beta.value, None, None, True, 0.0, eps)
        # The momentum is read at each call: the statistics' re-estimation sets it to 0.
        momentum = float(layer.momentum)
        with torch.no_grad():
            mean.mul_(momentum).add_(batch_mean, alpha=1 - momentum)
            var.mul_(momentum).add_(invstd.pow(-2) - eps, alpha=1 - momentum)
        return y
    return batchnorm


@register(layers.ReLU)
def _relu(layer):
    if layer.max_value is not None or float(layer.negative_slope) != 0 or float(layer.threshold) != 0:
        raise unsupported(layer, "expected a plain ReLU")
    return lambda inputs, training: F.relu(inputs[0])


@register(layers.MaxPooling2D)
@register(layers.AveragePooling2D)
def _pooling(layer):
    if layer.padding != "valid":
        raise unsupported(layer, "expected padding 'valid'")
    size, stride = tuple(layer.pool_size), tuple(layer.strides)
    pool = F.max_pool2d if isinstance(layer, layers.MaxPooling2D) else F.avg_pool2d
    return lambda inputs, training: pool(inputs[0], size, stride)


@register(layers.Resizing)
def _resizing(layer):
    padded = getattr(layer, "pad_to_aspect_ratio", False)
    if layer.interpolation != "bilinear" or layer.crop_to_aspect_ratio or padded:
        raise unsupported(layer, "expected bilinear interpolation without crop or pad")
    size = (int(layer.height), int(layer.width))
    # Keras's torch backend resizes with exactly these arguments
    return lambda inputs, training: F.interpolate(inputs[0], size=size, mode="bilinear",
                                                  align_corners=False, antialias=False)


@register(layers.Add)
@register(layers.Multiply)
def _elementwise(layer):
    combine = operator.add if isinstance(layer, layers.Add) else operator.mul
    return lambda inputs, training: functools.reduce(combine, inputs)


@register(layers.Concatenate)
def _concatenate(layer):
    if layer.axis not in (-1, 3):
        raise unsupported(layer, "expected axis -1")
    return lambda inputs, training: torch.cat(inputs, dim=1)


@register(layers.Rescaling)
def _rescaling(layer):
    scale, offset = float(layer.scale), float(layer.offset)
    return lambda inputs, training: inputs[0] * scale + offset


@register(layers.DepthwiseConv2D)
def _depthwise(layer):
    if layer.use_bias or getattr(layer.activation, "__name__", "") != "linear":
        raise unsupported(layer, "expected no bias and no activation")
    stride, dilation = tuple(layer.strides), tuple(layer.dilation_rate)
    pad = _conv_padding(layer, stride, dilation)

    def depthwise(inputs, training):
        kernel = layer.kernel.value  # (kh, kw, channels, multiplier) -> (channels × multiplier, 1, kh, kw)
        kh, kw, channels, multiplier = kernel.shape
        weight = kernel.permute(2, 3, 0, 1).reshape(channels * multiplier, 1, kh, kw)
        return F.conv2d(inputs[0], weight, None, stride, pad, dilation, channels)
    return depthwise


@register(layers.GroupNormalization)
def _group_norm(layer):
    if layer.axis not in (-1, 3):
        raise unsupported(layer, "expected axis -1")
    groups, eps = int(layer.groups), float(layer.epsilon)
    return lambda inputs, training: F.group_norm(
        inputs[0], groups, layer.gamma.value if layer.scale else None,
        layer.beta.value if layer.center else None, eps)


@register(layers.Dense)
def _dense(layer):
    act = _activation(layer, f"expected an activation in {tuple(_ACTIVATIONS)}, no LoRA")
    if getattr(layer, "lora_enabled", False):
        raise unsupported(layer, f"expected an activation in {tuple(_ACTIVATIONS)}, no LoRA")

    def dense(inputs, training):  # on the channels, the last axis in Keras's NHWC
        y = inputs[0].movedim(1, -1) @ layer.kernel.value
        if layer.use_bias:
            y = y + layer.bias.value
        y = y.movedim(-1, 1)
        return y if act is None else act(y)
    return dense


@register(layers.GlobalAveragePooling2D)
def _global_average_pooling(layer):
    if not layer.keepdims:
        raise unsupported(layer, "expected keepdims=True (the program keeps NCHW tensors)")
    return lambda inputs, training: inputs[0].mean(dim=(2, 3), keepdim=True)


@register(layers.Identity)
def _identity(layer):
    return lambda inputs, training: inputs[0]


class TorchProgram:
    """The functional graph of ``model`` as a list of torch calls on its own variables."""

    def __init__(self, model: keras.Model):
        if keras.config.backend() != "torch":
            raise RuntimeError(f"execution 'torch' needs the torch Keras backend, not {keras.config.backend()!r}")
        if model.dtype_policy.name != "float32":
            raise ValueError(f"execution 'torch' runs float32 models; model {model.name} has dtype "
                             f"policy {model.dtype_policy.name!r}")
        if len(model.inputs) != 1 or len(model.outputs) != 1:
            raise ValueError(f"execution 'torch' expects one input and one output, model {model.name} "
                             f"has {len(model.inputs)} and {len(model.outputs)}")
        self.model = model
        self._input = id(model.inputs[0])
        self._output = id(model.outputs[0])
        self._steps = []
        graph = nodes_by_depth(model)
        for depth in sorted(graph, reverse=True):
            for node in graph[depth]:
                fn = translate(node.operation)
                if fn is None:
                    continue
                if len(node.outputs) != 1:
                    raise unsupported(node.operation, "expected one output")
                self._steps.append((fn, [id(t) for t in node.input_tensors], id(node.outputs[0])))

    def __call__(self, x: torch.Tensor, training: bool) -> torch.Tensor:
        """The model's output for the NHWC batch ``x``, in NHWC."""
        values = {self._input: x.permute(0, 3, 1, 2)}
        for fn, inputs, output in self._steps:
            values[output] = fn([values[i] for i in inputs], training)
        return values[self._output].permute(0, 2, 3, 1)


def program_for(model: keras.Model) -> TorchProgram | None:
    """The :class:`TorchProgram` of ``model``, or None where it cannot run the model (logged:
    ``fit`` then lets Keras run the steps)."""
    try:
        return TorchProgram(model)
    except (NotImplementedError, ValueError, RuntimeError) as err:
        log.info("execution 'torch' falls back to Keras's own steps for %s: %s", model.name, err)
        return None


def binary_crossentropy(y: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
    """Keras's ``binary_crossentropy`` loss, reduced as ``fit`` reduces it: probabilities clipped
    to [ε, 1 − ε], mean over every pixel of the batch."""
    eps = keras.config.epsilon()
    return F.binary_cross_entropy(p.clamp(eps, 1 - eps), y)


def _device() -> torch.device:
    return torch.device(torch_device())


def _as_tensor(a, device) -> torch.Tensor:
    if isinstance(a, torch.Tensor):
        return a.to(device)
    return torch.from_numpy(np.ascontiguousarray(a, dtype="float32")).to(device)


def train_steps(program: TorchProgram, x: torch.Tensor, y: torch.Tensor, order: torch.Tensor,
                batch_size: int) -> torch.Tensor:
    """One epoch of training steps over ``x[order]`` in batches with the model's compiled
    optimizer; returns the summed loss × batch size (a tensor: no step waits for the device)."""
    model = program.model
    variables = model.trainable_variables
    if not model.optimizer.built:
        model.optimizer.build(variables)
    params = [v.value for v in variables]
    total = torch.zeros((), device=x.device)
    for start in range(0, len(order), batch_size):
        index = order[start:start + batch_size]
        loss = binary_crossentropy(y[index], program(x[index], training=True))
        grads = torch.autograd.grad(loss, params)
        with torch.no_grad():
            model.optimizer.apply(list(grads), variables)
        total += loss.detach() * len(index)
    return total


def on_device(*arrays) -> tuple[torch.Tensor, ...]:
    """Arrays as float32 torch tensors on the Keras backend's device."""
    device = _device()
    return tuple(_as_tensor(a, device) for a in arrays)


def fit_arrays(model: keras.Model, program: TorchProgram, x_train: torch.Tensor, y_train: torch.Tensor, *,
               epochs: int, batch_size: int, callbacks=(), seed: int | None = None) -> dict[str, list[float]]:
    """``model.fit(x_train, y_train, shuffle=True, ...)`` for a model compiled with the binary
    cross-entropy loss, its training steps run by ``program`` and the compiled optimizer.
    ``callbacks`` see the epoch events and logs that Keras gives them, may add to the logs
    (``fit``'s validation adds ``val_loss``) and may set ``model.stop_training``. Returns the
    history as ``model.fit(...).history`` does.
    """
    if model.optimizer is None:
        raise ValueError(f"model {model.name} is not compiled; compile it with an optimizer first")
    # Keras's History, last as in model.fit, records the logs as the callbacks left them.
    recorder = keras.callbacks.History()
    callbacks = keras.callbacks.CallbackList([*callbacks, recorder], model=model)
    generator = torch.Generator().manual_seed(int(np.random.randint(2**31 - 1) if seed is None else seed))
    model.stop_training = False
    callbacks.on_train_begin()
    n = len(x_train)
    for epoch in range(epochs):
        callbacks.on_epoch_begin(epoch)
        order = torch.randperm(n, generator=generator).to(x_train.device)
        logs = {"loss": float(train_steps(program, x_train, y_train, order, batch_size)) / n}
        if not math.isfinite(logs["loss"]):
            model.stop_training = True  # what TerminateOnNaN does
        callbacks.on_epoch_end(epoch, logs)
        if model.stop_training:
            break
    callbacks.on_train_end()
    return recorder.history
