"""The baseline models of Table 2 (paper §4.8), built for binary segmentation.

UNet, Attention UNet and R2-UNet come from ``keras_unet_collection.models``, UNet++ from that
library's building blocks (see :func:`_unet_plus_plus` for why not from its ``unet_plus_2d``).
All four keep the library's defaults (two 3x3 convolutions a level, ReLU, max pooling, bilinear
up-sampling) except for batch normalisation, which they all get (``batch_norm=True``): the
Bractivate models are built of conv-BN-ReLU blocks, and without normalisation these plain UNets
learn nothing in the demo's ~120 optimizer steps, so the comparison would measure the
normalisation rather than the architecture (docs/baselines.md). They end in one sigmoid output
channel; Keras' default Glorot-uniform initialisation is the paper's Xavier initialisation.
Their filter counts are chosen so that the parameter counts land near the paper's
(docs/baselines.md gives the measured counts). Wide UNet is the UNet widened by a searched
factor until its parameter count matches UNet++ (Zhou et al. 2018). NAS-UNet is our own port,
:mod:`bractivate.baselines.nasunet`.

``keras_unet_collection`` imports ``tensorflow.keras``, so those four (and Wide UNet) need the
TensorFlow backend; NAS-UNet builds on any backend.
"""

from __future__ import annotations

import functools
import numbers

import keras

from bractivate.baselines.nasunet import DEFAULT_CHANNELS, DEFAULT_DEPTH, nas_unet
from bractivate.model import count_params

# The baselines of Table 2, in its row order: the one list of them. The config schema's
# `baselines.models` (its choices and default) and config.yaml name the same, in this order
# (tests/test_defaults.py).
BASELINES = ("unet", "unetpp", "wideunet", "attunet", "r2unet", "nasunet")

# Filters per level at width_scale 1, base width times 2 ** level.
FILTERS = {
    "unet": (30, 60, 120, 240, 480),
    "unetpp": (30, 60, 120, 240, 480),
    "attunet": (64, 128, 256, 512, 1024),
    "r2unet": (62, 124, 248, 496, 992),
}

# Parameter counts the paper reports in Table 2, per data set (lungs, em, nuclei).
PAPER_PARAMS = {
    "unet": {"lungs": 7.7e6, "em": 7.7e6, "nuclei": 7.7e6},
    "unetpp": {"lungs": 9.0e6, "em": 9.0e6, "nuclei": 9.0e6},
    "attunet": {"lungs": 3.2e7, "em": 3.2e7, "nuclei": 3.2e7},
    "r2unet": {"lungs": 9.5e7, "em": 9.5e7, "nuclei": 9.5e7},
    "wideunet": {"lungs": 9.3e6, "em": 9.3e6, "nuclei": 9.3e6},
    "nasunet": {"lungs": 1.2e5, "em": 4.8e5, "nuclei": 1.2e5},
}

# The smallest width of a keras-unet-collection level. With 2 channels a conv-BN-ReLU stack
# can lose every unit of a level to the ReLU and cut the path: measured on the demo's nuclei
# (width_scale 0.0625, 120 steps), UNet++ scored test Dice 0.000 with a floor of 2 and 0.968
# with 4, UNet on em 0.736 and 0.863.
MIN_FILTERS = 4
# NAS-UNet's cells (GroupNormalization, no ReLU before the sum of their paths) learn with 2
# channels a node (demo: 0.92-0.99), and each more channel costs its many cells' time.
MIN_NAS_CHANNELS = 2
WIDE_SEARCH_STEPS = 8


def scale_filters(filters, width_scale: float, factor: float = 1.0) -> tuple[int, ...]:
    """Multiply every filter count by ``width_scale * factor``, rounded, at least MIN_FILTERS."""
    return tuple(max(MIN_FILTERS, round(f * width_scale * factor)) for f in filters)


# The library's conv stacks: two convolutions a block (encoder, and decoder after the
# concatenation), each followed by batch norm and ReLU.
STACK = {"stack_num": 2, "activation": "ReLU", "batch_norm": True}


def _unet_plus_plus(input_shape, filters, name: str) -> keras.Model:
    """UNet++ (Zhou et al. 2018), deep supervision off, from keras-unet-collection's blocks.

    Node X^{i,0} is the encoder's level i; node X^{i,j} (j >= 1) is the library's decoder block
    (``UNET_right``: bilinear up-sampling, one 3x3 convolution, concatenation, conv stack) of the
    up-sampled X^{i+1,j-1} concatenated with X^{i,0}, ..., X^{i,j-1}. The output is a 1x1
    convolution with sigmoid of X^{0,depth-1}.

    The library's own ``unet_plus_2d`` (0.1.13, ``_model_unet_plus_2d.py``) calls
    ``UNET_right(..., concat=False)`` for every nested node, and ``UNET_right`` only concatenates
    its skip inputs when ``concat=True``: every skip is dropped and the model is an
    encoder-decoder without any skip connection. So the nested nodes are wired here
    (docs/baselines.md, "UNet++").
    """
    # Imported here, like the models below: the library imports tensorflow.keras.
    from keras_unet_collection.layer_utils import CONV_output, CONV_stack
    from keras_unet_collection._model_unet_2d import UNET_left, UNET_right

    depth = len(filters)
    inputs = keras.Input(tuple(input_shape))
    nodes = [[] for _ in range(depth)]  # nodes[i][j] is X^{i,j}
    nodes[0].append(CONV_stack(inputs, filters[0], name=f"{name}_down0", **STACK))
    for i in range(1, depth):
        nodes[i].append(UNET_left(nodes[i - 1][0], filters[i], pool=True,
                                  name=f"{name}_down{i}", **STACK))
    for j in range(1, depth):
        for i in range(depth - j):
            nodes[i].append(UNET_right(nodes[i + 1][j - 1], nodes[i][:j], filters[i], unpool=True,
                                       concat=True, name=f"{name}_x{i}_{j}", **STACK))
    output = CONV_output(nodes[0][depth - 1], 1, kernel_size=1, activation="Sigmoid",
                         name=f"{name}_output")
    return keras.Model(inputs, output, name=name)


def _collection_model(architecture: str, input_shape, filters, name: str) -> keras.Model:
    """One model of keras-unet-collection with batch norm and a single sigmoid output channel;
    its layers and the model are named after ``name``."""
    if architecture == "unetpp":
        return _unet_plus_plus(input_shape, filters, name)
    # Imported here: the library imports tensorflow.keras, which NAS-UNet on another backend
    # must not need.
    from keras_unet_collection import models

    build = {"unet": models.unet_2d, "attunet": models.att_unet_2d,
             "r2unet": models.r2_unet_2d}[architecture]
    model = build(tuple(input_shape), list(filters), n_labels=1, output_activation="Sigmoid",
                  batch_norm=True, name=name)
    # The library wraps input and output in one-element lists, a Keras 2 idiom: under Keras 3
    # every call on a bare tensor then warns that the input structure does not match, and
    # ``model.output`` is a list. The same layers re-wrapped with bare tensors avoid both.
    return keras.Model(model.inputs[0], model.outputs[0], name=name)


@functools.lru_cache(maxsize=None)
def _collection_params(architecture: str, input_shape: tuple[int, ...],
                       filters: tuple[int, ...]) -> int:
    return count_params(_collection_model(architecture, input_shape, filters, architecture))


@functools.lru_cache(maxsize=None)
def wide_unet_factor(input_shape: tuple[int, ...] = (128, 128, 1),
                     width_scale: float = 1.0) -> float:
    """The factor by which Wide UNet multiplies the UNet's filters so that its parameter count
    is closest to UNet++'s at the same ``width_scale`` (Zhou et al. 2018, §4).

    Parameters grow about quadratically with width, so each step rescales the factor by the
    square root of the count ratio; the best factor seen in a few steps is kept, since rounding
    filter counts makes the count a step function of the factor.
    """
    input_shape = tuple(input_shape)
    target = _collection_params("unetpp", input_shape, scale_filters(FILTERS["unetpp"], width_scale))

    def error(factor: float) -> float:
        filters = scale_filters(FILTERS["unet"], width_scale, factor)
        return _collection_params("unet", input_shape, filters) / target - 1.0

    factor, best = 1.0, (abs(error(1.0)), 1.0)
    for _ in range(WIDE_SEARCH_STEPS):
        factor *= (1.0 + error(factor)) ** -0.5
        best = min(best, (abs(error(factor)), factor))
        if best[0] < 0.005:
            break
    return best[1]


def nas_unet_depth(input_shape) -> int:
    """NAS-UNet's depth for ``input_shape``: the authors' 5, or less for images too small to be
    halved 6 times (the tiny preset's 32x32), but at least 2."""
    depth = DEFAULT_DEPTH
    while depth > 2 and any(d % 2 ** (depth + 1) for d in input_shape[:2]):
        depth -= 1
    return depth


def _check_input_shape(name: str, input_shape, divisor: int) -> None:
    if len(input_shape) != 3 or any(not isinstance(d, numbers.Integral) or d < 1 for d in input_shape):
        raise ValueError(f"{name}: input_shape must be (height, width, channels) of positive "
                         f"ints, found {input_shape!r}")
    if input_shape[0] % divisor or input_shape[1] % divisor:
        raise ValueError(f"{name}: height and width must be divisible by {divisor}, "
                         f"found input_shape {tuple(input_shape)}")


def build_baseline(name: str, input_shape: tuple[int, int, int] = (128, 128, 1),
                   width_scale: float = 1.0) -> keras.Model:
    """Build the Table 2 baseline ``name`` (one of :data:`BASELINES`), untrained.

    ``width_scale`` multiplies every filter count (rounded, at least 4; NAS-UNet's channels at
    least 2); the tiny and demo presets use it to shrink the models. The output is one sigmoid
    channel of the input's size. Height and width must be multiples of 16 (NAS-UNet: of 8, see
    :func:`nas_unet_depth`).
    """
    if name not in BASELINES:
        raise ValueError(f"unknown baseline {name!r}; expected one of {', '.join(BASELINES)}")
    if not width_scale > 0:
        raise ValueError(f"{name}: width_scale must be positive, found {width_scale!r}")
    input_shape = tuple(input_shape)
    if name == "nasunet":
        depth = nas_unet_depth(input_shape)
        _check_input_shape(name, input_shape, 2 ** (depth + 1))
        channels = max(MIN_NAS_CHANNELS, round(DEFAULT_CHANNELS * width_scale))
        return nas_unet(input_shape, channels=channels, depth=depth)
    _check_input_shape(name, input_shape, 2 ** (len(FILTERS["unet"]) - 1))
    if name == "wideunet":
        factor = wide_unet_factor(input_shape, width_scale)
        return _collection_model("unet", input_shape,
                                 scale_filters(FILTERS["unet"], width_scale, factor), name)
    return _collection_model(name, input_shape, scale_filters(FILTERS[name], width_scale), name)
