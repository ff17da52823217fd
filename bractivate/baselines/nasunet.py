"""NAS-UNet (Weng et al. 2019, IEEE Access 7:44247) as a Keras 3 functional model.

A port written from the paper and the authors' PyTorch code (github.com/tianbaochou/NasUnet,
``models/nas_unet.py``, ``models/geno_searched.py``, ``util/prim_ops_set.py``). Only
``keras.layers`` and ``keras.ops`` are used, so the model builds on every Keras backend.

Macro-architecture (the authors' ``NasUnet`` class, ``double_down_channel=False``):

- two stems read the image: ``stem0`` a 1x1 convolution at full resolution and ``stem1`` a 3x3
  convolution with stride 2, each ``4 * channels`` wide and group-normalised;
- ``depth`` DownSC cells, each halving the resolution; cell ``k`` reads the outputs of the two
  cells before it (``s0``, ``s1``) as in DARTS;
- ``depth + 1`` UpSC cells, each doubling the resolution; up cell ``k`` reads the previous up cell
  (``s1``) and, as its horizontal U-Net skip, the encoder output of matching resolution (``s0``);
- a 1x1 convolution head. The authors use a two-class softmax on bias-free logits; one sigmoid
  channel on a bias-free 1x1 convolution is the same model for binary segmentation.

A cell first maps ``s0`` and ``s1`` to ``channels`` feature maps (ReLU, 1x1 convolution, group
norm; ``s0`` of a down cell is twice the size of ``s1`` and is sub-sampled by 2), giving nodes 0
and 1. Each intermediate node ``j >= 2`` is the sum of two operations, each applied to an earlier
node, as listed by the genotype; the cell output concatenates the intermediate nodes.

Each primitive is mapped to Keras exactly (same receptive field, padding, alignment and
parameters): a stride-2 convolution is a stride-1 ``same`` convolution followed by
:class:`Subsample2D` (Keras refuses strides together with dilation), a stride-2 transposed
convolution is :class:`ZeroInsertion2D` followed by a stride-1 ``same`` convolution (Keras has
neither a depthwise nor a dilated strided transposed convolution). The only difference from the
PyTorch code: its transposed convolutions return ``2H - 1`` rows that it then resizes to ``2H`` by
nearest-neighbour interpolation, whereas here the last row is computed like the others.
"""

from __future__ import annotations

from typing import NamedTuple

import keras
from keras import layers, ops

from bractivate.torch_registry import register


class Genotype(NamedTuple):
    """A searched NAS-UNet cell pair as plain data, in the layout of the authors' ``Genotype``.

    ``down`` and ``up`` list ``(op, input_node)`` pairs two at a time: pairs ``2k`` and ``2k + 1``
    are summed into intermediate node ``k + 2``. Nodes 0 and 1 are the cell's two inputs; the
    cell output concatenates the nodes in ``down_concat`` / ``up_concat``.
    """

    down: tuple[tuple[str, int], ...]
    down_concat: tuple[int, ...]
    up: tuple[tuple[str, int], ...]
    up_concat: tuple[int, ...]


# The genotype the authors trained on Promise12, CHAOS and ultrasound nerve (``NASUNET =
# NAS_UNET_V3`` in models/geno_searched.py; nas_unet_chaos.yml and nas_unet_nerve.yml name it),
# searched on Pascal VOC 2012: four intermediate nodes per cell, all concatenated.
NAS_UNET_V3 = Genotype(
    down=(
        ("down_dil_conv", 1), ("down_cweight", 0),
        ("down_cweight", 0), ("down_cweight", 1),
        ("down_cweight", 0), ("conv", 3),
        ("down_cweight", 0), ("conv", 4),
    ),
    down_concat=(2, 3, 4, 5),
    up=(
        ("cweight", 0), ("up_cweight", 1),
        ("conv", 2), ("up_cweight", 1),
        ("up_cweight", 1), ("conv", 3),
        ("up_cweight", 1), ("conv", 4),
    ),
    up_concat=(2, 3, 4, 5),
)

# The three primitive sets of the search space (util/genotype.py): operations that halve the
# resolution, that double it, and that keep it.
DOWN_OPS = ("avg_pool", "max_pool", "down_cweight", "down_dil_conv", "down_dep_conv", "down_conv")
UP_OPS = ("up_cweight", "up_dep_conv", "up_conv", "up_dil_conv")
NORMAL_OPS = ("identity", "cweight", "dil_conv", "dep_conv", "shuffle_conv", "conv")

DEFAULT_CHANNELS = 16
DEFAULT_DEPTH = 5
STEM_MULTIPLIER = 4
GN_EPSILON = 1e-5  # PyTorch's GroupNorm default


@keras.saving.register_keras_serializable(package="bractivate")
class Subsample2D(layers.Layer):
    """Keep every second row and column, starting with the first (the sampling of a stride-2
    convolution whose padding is half its effective kernel)."""

    def call(self, x):
        return x[:, ::2, ::2, :]

    def compute_output_shape(self, input_shape):
        n, h, w, c = input_shape
        return (n, None if h is None else (h + 1) // 2, None if w is None else (w + 1) // 2, c)


@keras.saving.register_keras_serializable(package="bractivate")
class ZeroInsertion2D(layers.Layer):
    """Put a zero after every row and column, doubling height and width. Followed by a stride-1
    convolution this is a stride-2 transposed convolution."""

    def call(self, x):
        _, h, w, c = x.shape
        x = ops.reshape(ops.stack([x, ops.zeros_like(x)], axis=3), (-1, h, 2 * w, c))
        return ops.reshape(ops.stack([x, ops.zeros_like(x)], axis=2), (-1, 2 * h, 2 * w, c))

    def compute_output_shape(self, input_shape):
        n, h, w, c = input_shape
        return (n, None if h is None else 2 * h, None if w is None else 2 * w, c)


# Execution ``torch`` (bractivate.torch_exec) runs these two layers as the functions below, on
# NCHW torch tensors; the other layers of NAS-UNet are Keras's own.
@register(Subsample2D)
def _subsample_in_torch(layer):
    return lambda inputs, training: inputs[0][:, :, ::2, ::2]


@register(ZeroInsertion2D)
def _zero_insertion_in_torch(layer):
    import torch

    def zero_insertion(inputs, training):  # x at the even rows and columns, zeros elsewhere
        x = inputs[0]
        n, c, h, w = x.shape
        x = torch.stack([x, torch.zeros_like(x)], dim=-1).reshape(n, c, h, 2 * w)
        return torch.stack([x, torch.zeros_like(x)], dim=-2).reshape(n, c, 2 * h, 2 * w)
    return zero_insertion


def _group_norm(channels: int, name: str) -> layers.GroupNormalization:
    """Group norm with 16 channels a group, or one group when 16 does not divide the channels
    (the authors' rule, after Wu & He 2018)."""
    groups = channels // 16 if channels % 16 == 0 else 1
    return layers.GroupNormalization(groups=groups, epsilon=GN_EPSILON, name=name)


def _conv_op(x, channels: int, name: str, *, sampling: str = "same", dilation: int = 1,
             depthwise: bool = False):
    """The authors' ``ConvOps`` (3x3) in its default order: bias-free convolution, group norm,
    ReLU.

    ``sampling`` is ``"down"`` (stride 2), ``"up"`` (stride-2 transposed) or ``"same"``;
    ``depthwise`` makes the convolution a depthwise one followed by a 1x1 pointwise one.
    """
    if sampling == "up":
        x = ZeroInsertion2D(name=f"{name}_zeroinsert")(x)
    if depthwise:
        x = layers.DepthwiseConv2D(3, padding="same", dilation_rate=dilation,
                                   use_bias=False, name=f"{name}_depthwise")(x)
        if sampling == "down":
            x = Subsample2D(name=f"{name}_subsample")(x)
        x = layers.Conv2D(channels, 1, use_bias=False, name=f"{name}_pointwise")(x)
    else:
        x = layers.Conv2D(channels, 3, padding="same", dilation_rate=dilation,
                          use_bias=False, name=f"{name}_conv")(x)
        if sampling == "down":
            x = Subsample2D(name=f"{name}_subsample")(x)
    x = _group_norm(channels, f"{name}_gn")(x)
    return layers.ReLU(name=f"{name}_relu")(x)


def _cweight_op(x, channels: int, name: str, *, sampling: str = "same"):
    """The authors' ``CWeightOp``: squeeze-and-excitation channel weighting (reduction 16), then,
    when it resamples, a bias-free 3x3 (transposed) convolution and group norm, no activation.

    The hidden width is ``channels // 16`` as published, but at least 1 so narrow models build.
    """
    weights = layers.GlobalAveragePooling2D(keepdims=True, name=f"{name}_squeeze")(x)
    weights = layers.Dense(max(1, channels // 16), activation="relu", name=f"{name}_fc1")(weights)
    weights = layers.Dense(channels, activation="sigmoid", name=f"{name}_fc2")(weights)
    x = layers.Multiply(name=f"{name}_excite")([x, weights])
    if sampling == "same":
        return x
    if sampling == "up":
        x = ZeroInsertion2D(name=f"{name}_zeroinsert")(x)
    x = layers.Conv2D(channels, 3, padding="same", use_bias=False, name=f"{name}_conv")(x)
    if sampling == "down":
        x = Subsample2D(name=f"{name}_subsample")(x)
    return _group_norm(channels, f"{name}_gn")(x)


def apply_op(op: str, x, channels: int, name: str):
    """Apply the primitive ``op`` of the NAS-UNet search space (util/prim_ops_set.py ``OPS``)."""
    if op == "identity":
        return layers.Identity(name=f"{name}_identity")(x)
    if op in ("max_pool", "avg_pool"):
        pool = layers.MaxPooling2D if op == "max_pool" else layers.AveragePooling2D
        return pool(2, strides=2, name=f"{name}_pool")(x)
    sampling = "down" if op.startswith("down_") else "up" if op.startswith("up_") else "same"
    kind = op.removeprefix("down_").removeprefix("up_")
    if kind == "cweight":
        return _cweight_op(x, channels, name, sampling=sampling)
    if kind == "dil_conv":
        return _conv_op(x, channels, name, sampling=sampling, dilation=2)
    if kind == "dep_conv":
        return _conv_op(x, channels, name, sampling=sampling, depthwise=True)
    # The authors' "conv" sets has_shuffle with a single group, where the shuffle does nothing,
    # so "conv" and "shuffle_conv" are the same 3x3 convolution.
    if kind in ("conv", "shuffle_conv"):
        return _conv_op(x, channels, name, sampling=sampling)
    raise ValueError(f"unknown NAS-UNet operation {op!r}; expected one of "
                     f"{', '.join(DOWN_OPS + UP_OPS + NORMAL_OPS)}")


def validate_genotype(genotype: Genotype) -> None:
    """Raise ``ValueError`` unless every node of both cells reads earlier nodes with operations
    of the right kind: in a down cell nodes 0 and 1 are read by resolution-halving operations and
    intermediate nodes by resolution-keeping ones; in an up cell node 1 (the coarser input) is
    read by resolution-doubling operations and the other nodes by resolution-keeping ones."""
    for cell_type, pairs, concat in (("down", genotype.down, genotype.down_concat),
                                     ("up", genotype.up, genotype.up_concat)):
        if not pairs or len(pairs) % 2:
            raise ValueError(f"{cell_type} cell: expected an even, non-zero number of "
                             f"(op, input) pairs, found {len(pairs)}")
        n_nodes = 2 + len(pairs) // 2
        for k, (op, source) in enumerate(pairs):
            node = 2 + k // 2
            if not 0 <= source < node:
                raise ValueError(f"{cell_type} cell node {node}: input {source} is not an "
                                 f"earlier node (0..{node - 1})")
            resampled = source in (0, 1) if cell_type == "down" else source == 1
            allowed = (DOWN_OPS if cell_type == "down" else UP_OPS) if resampled else NORMAL_OPS
            if op not in allowed:
                raise ValueError(f"{cell_type} cell node {node}: operation {op!r} on node "
                                 f"{source} must be one of {', '.join(allowed)}")
        if not concat or any(not 2 <= j < n_nodes for j in concat):
            raise ValueError(f"{cell_type} cell: concat {tuple(concat)} must name intermediate "
                             f"nodes 2..{n_nodes - 1}")


def nas_cell(s0, s1, genotype: Genotype, channels: int, cell_type: str, name: str):
    """One DownSC (``cell_type="down"``) or UpSC (``"up"``) cell; returns its output tensor.

    Layers are named ``{name}_node{j}`` for node ``j`` and ``{name}_node{j}_{op}_from{i}_*`` for
    the operation ``op`` that node ``j`` applies to node ``i``, so the model graph can be checked
    against the genotype.
    """
    pairs, concat = ((genotype.down, genotype.down_concat) if cell_type == "down"
                     else (genotype.up, genotype.up_concat))
    nodes = []
    for i, s in enumerate((s0, s1)):
        s = layers.ReLU(name=f"{name}_pre{i}_relu")(s)
        if i == 0 and cell_type == "down":
            s = Subsample2D(name=f"{name}_pre{i}_subsample")(s)
        s = layers.Conv2D(channels, 1, use_bias=False, name=f"{name}_pre{i}_conv")(s)
        nodes.append(_group_norm(channels, f"{name}_node{i}")(s))
    for k in range(0, len(pairs), 2):
        node = len(nodes)
        branches = [apply_op(op, nodes[source], channels, f"{name}_node{node}_{op}_from{source}")
                    for op, source in pairs[k:k + 2]]
        if branches[0].shape != branches[1].shape:
            raise ValueError(f"{name} node {node}: its operations give shapes "
                             f"{branches[0].shape} and {branches[1].shape}")
        nodes.append(layers.Add(name=f"{name}_node{node}")(branches))
    return layers.Concatenate(name=f"{name}_concat")([nodes[j] for j in concat])


def nas_unet(input_shape: tuple[int, int, int] = (128, 128, 1), channels: int = DEFAULT_CHANNELS,
             depth: int = DEFAULT_DEPTH, genotype: Genotype = NAS_UNET_V3,
             name: str = "nasunet") -> keras.Model:
    """Build NAS-UNet for binary segmentation: one sigmoid output channel.

    ``channels`` is the width of every cell node (the authors' ``c``; cells keep it constant),
    ``depth`` the number of down cells. Height and width must be divisible by
    ``2 ** (depth + 1)``. Weights start from Keras' Glorot-uniform default.
    """
    validate_genotype(genotype)
    if depth < 2:
        raise ValueError(f"NAS-UNet depth must be at least 2, found {depth}")
    if channels < 1:
        raise ValueError(f"NAS-UNet channels must be positive, found {channels}")
    height, width = input_shape[:2]
    factor = 2 ** (depth + 1)
    if height % factor or width % factor:
        raise ValueError(f"NAS-UNet of depth {depth} needs height and width divisible by "
                         f"{factor}, found input_shape {tuple(input_shape)}")

    inputs = keras.Input(shape=input_shape, name="image")
    stem_channels = STEM_MULTIPLIER * channels
    s0 = layers.Conv2D(stem_channels, 1, use_bias=False, name="stem0_conv")(inputs)
    s0 = _group_norm(stem_channels, "stem0")(s0)
    s1 = layers.Conv2D(stem_channels, 3, padding="same", use_bias=False, name="stem1_conv")(inputs)
    s1 = Subsample2D(name="stem1_subsample")(s1)
    s1 = _group_norm(stem_channels, "stem1")(s1)

    encoder = [s0, s1]
    for k in range(1, depth + 1):
        s0, s1 = s1, nas_cell(s0, s1, genotype, channels, "down", f"down{k}")
        encoder.append(s1)
    for k in range(1, depth + 2):
        s1 = nas_cell(encoder[-(k + 1)], s1, genotype, channels, "up", f"up{k}")

    outputs = layers.Conv2D(1, 1, use_bias=False, activation="sigmoid", name="head")(s1)
    return keras.Model(inputs, outputs, name=name)
