"""Build a Keras 3 functional model from a genome (docs/method.md#model).

Only ``keras.layers`` and ``keras.ops`` are used, so the same model runs on TensorFlow, JAX and
PyTorch. Every layer name starts with its block's name (``dec2_conv1``) so activations and
weights map back to blocks.
"""

from __future__ import annotations

import keras

from bractivate.genome import Genome, predecessor

MIN_SIZE = 4
CONV_KINDS = ("conv1", "conv2", "deconv")


def block_sizes(genome: Genome, input_shape: tuple[int, int, int],
                min_size: int = MIN_SIZE) -> dict[str, tuple[int, int]]:
    """Spatial size of each block's feature maps.

    A 2×2 max-pool precedes every encoder block after the first and the bottleneck, unless the
    halved map would fall below ``min_size`` (or a side is odd): deeper blocks then keep the
    resolution, so any depth builds. Decoder block i works at encoder block i's size.
    """
    height, width = input_shape[:2]
    sizes = {"enc0": (height, width)}
    for i in range(1, genome.depth + 1):
        name = f"enc{i}" if i < genome.depth else "mid"
        h, w = sizes[f"enc{i - 1}"]
        pool = h % 2 == 0 and w % 2 == 0 and min(h, w) // 2 >= min_size
        sizes[name] = (h // 2, w // 2) if pool else (h, w)
    sizes.update({f"dec{i}": sizes[f"enc{i}"] for i in range(genome.depth)})
    return sizes


def _conv_bn_relu(x, filters: int, name: str):
    for i in (1, 2):
        x = keras.layers.Conv2D(
            filters, 3, padding="same", kernel_initializer="glorot_uniform", name=f"{name}_conv{i}"
        )(x)
        x = keras.layers.BatchNormalization(name=f"{name}_bn{i}")(x)
        x = keras.layers.ReLU(name=f"{name}_relu{i}")(x)
    return x


def _merge(x, block: str, genome: Genome, outputs: dict, sizes: dict, zeroed: bool = False):
    """Merge the dendritic inputs of ``block`` into ``x``: resize each incoming tensor
    bilinearly to the block's size; ``add`` edges are projected by a 1×1 conv when channel
    counts differ and summed onto ``x``; ``concat`` edges are then concatenated on channels.
    ``zeroed`` multiplies every incoming tensor by 0 just before the merge (ablation, docs/method.md#ablation)."""
    height, width = sizes[block]
    adds, concats = [], []
    for edge in genome.incoming(block):
        y = outputs[edge.src]
        if sizes[edge.src] != (height, width):
            y = keras.layers.Resizing(
                height, width, interpolation="bilinear", name=f"{block}_resize_{edge.src}"
            )(y)
        if edge.op == "add" and y.shape[-1] != x.shape[-1]:
            y = keras.layers.Conv2D(
                x.shape[-1], 1, kernel_initializer="glorot_uniform", name=f"{block}_proj_{edge.src}"
            )(y)
        if zeroed:
            y = keras.layers.Rescaling(0.0, name=f"{block}_zero_{edge.src}")(y)
        (adds if edge.op == "add" else concats).append(y)
    if adds:
        x = keras.layers.Add(name=f"{block}_add")([x, *adds])
    if concats:
        x = keras.layers.Concatenate(name=f"{block}_concat")([x, *concats])
    return x


def build_model(genome: Genome, input_shape: tuple[int, int, int] = (128, 128, 1), min_size: int = MIN_SIZE,
                zero_inputs_of: str | None = None) -> keras.Model:
    """The functional model of ``genome`` (docs/method.md#model): conv-BN-ReLU ×2 blocks, max-pool down,
    2×2 transposed-conv up, dendritic merges at each block's input, 1×1 sigmoid head.
    ``zero_inputs_of`` names a block whose incoming dendrites are multiplied by 0 (docs/method.md#ablation);
    its layers keep their names, so trained weights transfer by name."""
    sizes = block_sizes(genome, input_shape, min_size)
    widths = genome.widths
    inputs = keras.Input(shape=tuple(input_shape), name="image")
    outputs: dict = {}
    for block in genome.blocks:
        source = predecessor(block, genome.depth)
        if block.startswith("dec"):
            stride = sizes[block][0] // sizes[source][0]
            x = keras.layers.Conv2DTranspose(
                widths[block], 2, strides=stride, padding="same",
                kernel_initializer="glorot_uniform", name=f"{block}_deconv",
            )(outputs[source])
        elif source is None:
            x = inputs
        elif sizes[block] != sizes[source]:
            x = keras.layers.MaxPooling2D(2, name=f"{block}_pool")(outputs[source])
        else:
            x = outputs[source]
        x = _merge(x, block, genome, outputs, sizes, zeroed=block == zero_inputs_of)
        outputs[block] = _conv_bn_relu(x, widths[block], block)
    head = keras.layers.Conv2D(
        1, 1, activation="sigmoid", kernel_initializer="glorot_uniform", name="head_conv",
        dtype="float32",  # the sigmoid and the loss stay in float32 under mixed precision
    )(outputs["dec0"])
    return keras.Model(inputs, head, name=f"bractivate_{genome.hash}")


def block_layers(model: keras.Model) -> dict[str, list[str]]:
    """Names of the conv and deconv layers of each block (batch-norm, projections excluded)."""
    layers: dict[str, list[str]] = {}
    for layer in model.layers:
        block, _, kind = layer.name.partition("_")
        if kind in CONV_KINDS:
            layers.setdefault(block, []).append(layer.name)
    return layers


def count_params(model: keras.Model) -> int:
    """Trainable parameters P of the efficiency score (docs/method.md#scores)."""
    return int(sum(int(_size(w.shape)) for w in model.trainable_weights))


def model_flops(model: keras.Model) -> int:
    """Forward-pass multiply-adds ×2 of one image through the conv and deconv layers.

    Convolutions dominate this architecture's cost; batch-norm, ReLU, pooling, resizing and
    adds are left out, which keeps the count a deterministic stand-in for time (docs/method.md#scores).
    """
    flops = 0
    for layer in model.layers:
        if isinstance(layer, keras.layers.Conv2DTranspose):
            _, h, w, cin = layer.input.shape
            kh, kw = layer.kernel_size
            flops += 2 * h * w * kh * kw * cin * layer.filters
        elif isinstance(layer, keras.layers.Conv2D):
            _, h, w, _ = layer.output.shape
            kh, kw = layer.kernel_size
            flops += 2 * h * w * kh * kw * layer.input.shape[-1] * layer.filters
    return int(flops)


def _size(shape) -> int:
    n = 1
    for dim in shape:
        n *= int(dim)
    return n
