"""NAS-UNet port: the published genotype, the built graph, exact primitive ops, size, training."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest

from bractivate.baselines import build_baseline, count_params
from bractivate.baselines.nasunet import (
    DOWN_OPS,
    NAS_UNET_V3,
    NORMAL_OPS,
    UP_OPS,
    Genotype,
    Subsample2D,
    ZeroInsertion2D,
    apply_op,
    nas_unet,
    validate_genotype,
)
from bractivate.compat import producing_layer_name

# Transcribed independently from tianbaochou/NasUnet models/geno_searched.py, NAS_UNET_V3 (the
# genotype of ``NASUNET`` used for Promise12, CHAOS and ultrasound nerve).
PUBLISHED_DOWN = [("down_dil_conv", 1), ("down_cweight", 0), ("down_cweight", 0),
                  ("down_cweight", 1), ("down_cweight", 0), ("conv", 3), ("down_cweight", 0),
                  ("conv", 4)]
PUBLISHED_UP = [("cweight", 0), ("up_cweight", 1), ("conv", 2), ("up_cweight", 1),
                ("up_cweight", 1), ("conv", 3), ("up_cweight", 1), ("conv", 4)]
PUBLISHED_CONCAT = [2, 3, 4, 5]
DEPTH = 5


@pytest.fixture(scope="module")
def model() -> keras.Model:
    return build_baseline("nasunet", (128, 128, 1))


def test_genotype_is_the_published_one():
    assert [tuple(p) for p in NAS_UNET_V3.down] == PUBLISHED_DOWN
    assert [tuple(p) for p in NAS_UNET_V3.up] == PUBLISHED_UP
    assert list(NAS_UNET_V3.down_concat) == PUBLISHED_CONCAT
    assert list(NAS_UNET_V3.up_concat) == PUBLISHED_CONCAT
    validate_genotype(NAS_UNET_V3)


@pytest.mark.slow
@pytest.mark.parametrize("genotype, message", [
    (NAS_UNET_V3._replace(down=(("conv", 1),) + NAS_UNET_V3.down[1:]), "must be one of"),
    (NAS_UNET_V3._replace(up=(("up_conv", 0),) + NAS_UNET_V3.up[1:]), "must be one of"),
    (NAS_UNET_V3._replace(down=NAS_UNET_V3.down[:2] + (("conv", 3),) + NAS_UNET_V3.down[3:]),
     "not an earlier node"),
    (NAS_UNET_V3._replace(up=NAS_UNET_V3.up[:3]), "even"),
    (NAS_UNET_V3._replace(up_concat=(2, 6)), "concat"),
    (NAS_UNET_V3._replace(down=(("sep_conv", 1),) + NAS_UNET_V3.down[1:]), "must be one of"),
])
def test_invalid_genotypes_are_rejected(genotype: Genotype, message: str):
    with pytest.raises(ValueError, match=message):
        validate_genotype(genotype)


@pytest.mark.slow
def test_parameter_count_in_published_range(model):
    assert 1.2e5 <= count_params(model) <= 4.8e5


def _source_layer(tensor) -> str:
    return producing_layer_name(tensor)


def _inputs(layer) -> list[str]:
    tensors = layer.input if isinstance(layer.input, list) else [layer.input]
    return [_source_layer(t) for t in tensors]


@pytest.mark.parametrize("cell", [f"down{k}" for k in range(1, DEPTH + 1)]
                         + [f"up{k}" for k in range(1, DEPTH + 2)])
def test_cell_graph_follows_the_genotype(model, cell):
    pairs = PUBLISHED_DOWN if cell.startswith("down") else PUBLISHED_UP
    layers = {layer.name: layer for layer in model.layers}
    op_prefixes = set()
    for k in range(0, len(pairs), 2):
        node = 2 + k // 2
        summed = set(_inputs(layers[f"{cell}_node{node}"]))
        assert len(summed) == 2
        for op, source in pairs[k:k + 2]:
            prefix = f"{cell}_node{node}_{op}_from{source}_"
            op_prefixes.add(prefix)
            group = {name for name in layers if name.startswith(prefix)}
            assert group, f"no layers for {prefix}"
            entering = {src for name in group for src in _inputs(layers[name]) if src not in group}
            assert entering == {f"{cell}_node{source}"}, prefix
            assert len(summed & group) == 1, prefix
    other_ops = {name for name in layers if name.startswith(f"{cell}_node")
                 and not name.endswith(tuple(f"_node{j}" for j in range(6)))
                 and not name.startswith(tuple(op_prefixes))}
    assert not other_ops
    assert _inputs(layers[f"{cell}_concat"]) == [f"{cell}_node{j}" for j in PUBLISHED_CONCAT]


@pytest.mark.slow
def test_macro_architecture_is_u_shaped(model):
    layers = {layer.name: layer for layer in model.layers}
    encoder = ["stem0", "stem1"] + [f"down{k}_concat" for k in range(1, DEPTH + 1)]
    for k in range(1, DEPTH + 1):
        assert _inputs(layers[f"down{k}_pre0_relu"]) == [encoder[k - 1]]
        assert _inputs(layers[f"down{k}_pre1_relu"]) == [encoder[k]]
    previous = encoder[-1]
    for k in range(1, DEPTH + 2):
        assert _inputs(layers[f"up{k}_pre0_relu"]) == [encoder[-(k + 1)]], "horizontal skip"
        assert _inputs(layers[f"up{k}_pre1_relu"]) == [previous]
        previous = f"up{k}_concat"
    assert _inputs(layers["head"]) == [previous]
    assert model.get_layer("down5_concat").output.shape[1:3] == (2, 2)
    assert model.get_layer("up6_concat").output.shape[1:3] == (128, 128)


def _expected_op_params(op: str, c: int) -> int:
    """Parameter counts of the PyTorch primitives (util/prim_ops_set.py), bias-free convolutions
    followed by an affine group norm."""
    conv, depthwise, group_norm = 9 * c * c, 9 * c + c * c, 2 * c
    hidden = c // 16
    squeeze_excite = c * hidden + hidden + hidden * c + c
    kind = op.removeprefix("down_").removeprefix("up_")
    if kind == "cweight":
        return squeeze_excite + (conv + group_norm if kind != op else 0)
    return {"identity": 0, "max_pool": 0, "avg_pool": 0, "dep_conv": depthwise + group_norm,
            "dil_conv": conv + group_norm, "conv": conv + group_norm,
            "shuffle_conv": conv + group_norm}[kind]


@pytest.mark.parametrize("op", DOWN_OPS + UP_OPS + NORMAL_OPS)
def test_each_primitive_resamples_and_has_published_parameters(op):
    c = 32
    x = keras.Input((8, 8, c))
    y = apply_op(op, x, c, "op")
    size = 4 if op in DOWN_OPS else 16 if op in UP_OPS else 8
    assert tuple(y.shape) == (None, size, size, c)
    assert count_params(keras.Model(x, y)) == _expected_op_params(op, c)


def _torch_conv(x, w, dilation, transposed):
    """PyTorch's Conv2d / ConvTranspose2d with stride 2 and padding dilation * (k // 2), single
    channel, written out from their definitions."""
    k, pad, n = w.shape[0], dilation * (w.shape[0] // 2), x.shape[0]
    if transposed:
        out = np.zeros((2 * n - 1, 2 * n - 1))
        for i in range(n):
            for j in range(n):
                for a in range(k):
                    for b in range(k):
                        o, p = 2 * i + dilation * a - pad, 2 * j + dilation * b - pad
                        if 0 <= o < out.shape[0] and 0 <= p < out.shape[1]:
                            out[o, p] += x[i, j] * w[a, b]
        return out
    padded = np.pad(x, pad)
    return np.array([[sum(padded[2 * o + dilation * a, 2 * p + dilation * b] * w[a, b]
                          for a in range(k) for b in range(k))
                      for p in range(n // 2)] for o in range(n // 2)])


@pytest.mark.parametrize("dilation", [1, 2])
@pytest.mark.parametrize("transposed", [False, True])
def test_strided_convolutions_match_pytorch(dilation, transposed):
    rng = np.random.default_rng(0)
    n = 8
    x = rng.standard_normal((n, n))
    w = rng.standard_normal((3, 3))
    conv = keras.layers.Conv2D(1, 3, padding="same", dilation_rate=dilation, use_bias=False)
    inputs = keras.Input((n, n, 1))
    if transposed:
        outputs = conv(ZeroInsertion2D()(inputs))
        # a transposed convolution is a convolution with the kernel flipped
        conv.set_weights([w[::-1, ::-1, None, None]])
    else:
        outputs = Subsample2D()(conv(inputs))
        conv.set_weights([w[:, :, None, None]])
    ours = keras.ops.convert_to_numpy(keras.Model(inputs, outputs)(x[None, :, :, None]))[0, :, :, 0]
    reference = _torch_conv(x, w, dilation, transposed)
    np.testing.assert_allclose(ours[:reference.shape[0], :reference.shape[1]], reference,
                               atol=1e-5)


@pytest.mark.slow
def test_output_is_one_probability_channel(model):
    x = np.random.default_rng(0).random((2, 128, 128, 1), dtype="float32")
    y = keras.ops.convert_to_numpy(model(x))
    assert y.shape == (2, 128, 128, 1)
    assert np.all((y >= 0) & (y <= 1))


def test_input_size_must_fit_the_depth():
    with pytest.raises(ValueError, match="divisible by 64"):
        nas_unet((96, 96, 1))


@pytest.mark.slow
def test_trains_one_step(model):
    rng = np.random.default_rng(1)
    x = rng.random((2, 128, 128, 1), dtype="float32")
    y = (x > 0.5).astype("float32")
    # Eager: one step does not pay for tracing a graph of ~600 layers.
    model.compile(keras.optimizers.Adam(1e-3), "binary_crossentropy", run_eagerly=True)
    before = model.get_layer("head").get_weights()[0].copy()
    loss = model.fit(x, y, batch_size=2, epochs=1, verbose=0).history["loss"][0]
    assert np.isfinite(loss)
    assert not np.allclose(before, model.get_layer("head").get_weights()[0])


@pytest.mark.slow
@pytest.mark.torch
def test_builds_and_trains_on_the_pytorch_backend():
    pytest.importorskip("torch")
    script = ("import json, keras, numpy as np\n"
              "from bractivate.baselines.nasunet import nas_unet\n"
              "m = nas_unet((16, 16, 1), channels=4, depth=2)\n"
              "x = np.random.default_rng(0).random((2, 16, 16, 1), dtype='float32')\n"
              "m.compile('adam', 'binary_crossentropy')\n"
              "loss = m.fit(x, (x > 0.5).astype('float32'), verbose=0).history['loss'][0]\n"
              "print(json.dumps([keras.backend.backend(), m.predict(x, verbose=0).shape, loss]))\n")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            env={**os.environ, "KERAS_BACKEND": "torch"}, check=True)
    backend, shape, loss = json.loads(result.stdout.strip().splitlines()[-1])
    assert backend == "torch"
    assert shape == [2, 16, 16, 1]
    assert np.isfinite(loss)
