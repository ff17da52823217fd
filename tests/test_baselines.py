"""Table 2 baselines: every model builds, predicts probabilities and trains; sizes match the paper."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from bractivate.baselines import (
    BASELINES,
    FILTERS,
    PAPER_PARAMS,
    build_baseline,
    count_params,
    nas_unet_depth,
    scale_filters,
    wide_unet_factor,
)
from bractivate.batchnorm import batchnorm_layers

# keras-unet-collection builds on tensorflow.keras: the module runs on TensorFlow, as the workflow's baselines do.
pytestmark = pytest.mark.tensorflow

TINY = 0.125


# NAS-UNet's ~600 layers and 539 weight tensors make its eager step take over 10 s on 2 cores.
@pytest.mark.parametrize("name", [pytest.param(name, marks=pytest.mark.slow) if name == "nasunet"
                                  else name for name in BASELINES])
def test_tiny_baseline_predicts_probabilities_and_trains_one_step(name, blobs):
    train = blobs.splits["train"][:4]
    x, y = blobs.images[train], blobs.masks[train].astype("float32")
    model = build_baseline(name, (64, 64, 1), width_scale=TINY)

    kernels = [layer.kernel_initializer for layer in model.layers
               if hasattr(layer, "kernel_initializer")]
    assert kernels and all(isinstance(k, keras.initializers.GlorotUniform) for k in kernels)

    prediction = np.asarray(model(x))
    assert prediction.shape == (len(x), 64, 64, 1)
    assert np.all((prediction >= 0) & (prediction <= 1))

    # Eager: for one step, tracing a graph would take longer than the step itself.
    model.compile(keras.optimizers.Adam(1e-3), "binary_crossentropy", run_eagerly=True)
    loss = model.fit(x, y, batch_size=len(x), epochs=1, verbose=0).history["loss"][0]
    assert np.isfinite(loss)


# The widths of FILTERS were chosen to land within 2 % of Table 2 (docs/baselines.md).
@pytest.mark.parametrize("name", ["unet", "unetpp", "attunet", "r2unet"])
def test_full_width_parameter_count_near_the_paper(name):
    measured = count_params(build_baseline(name))
    assert measured == pytest.approx(PAPER_PARAMS[name]["lungs"], rel=0.02)


def _producer(tensor) -> str:
    return tensor._keras_history.operation.name


def test_unetpp_wires_every_nested_node():
    """Node X^{i,j} concatenates the up-sampled X^{i+1,j-1} with X^{i,0}, ..., X^{i,j-1}
    (Zhou et al. 2018); keras-unet-collection's unet_plus_2d concatenates nothing."""
    model = build_baseline("unetpp", (32, 32, 1), width_scale=0.0625)
    depth = len(FILTERS["unetpp"])
    layers = {layer.name: layer for layer in model.layers}

    def node(i, j):  # the name of the layer whose output is X^{i,j}
        if j == 0:
            return "unetpp_down0_1_activation" if i == 0 else f"unetpp_down{i}_conv_1_activation"
        return f"unetpp_x{i}_{j}_conv_after_concat_1_activation"

    nested = [(i, j) for j in range(1, depth) for i in range(depth - j)]
    assert len(nested) == depth * (depth - 1) // 2 == 10
    concatenations = [layer for layer in model.layers
                      if isinstance(layer, keras.layers.Concatenate)]
    assert sorted(layer.name for layer in concatenations) == sorted(
        f"unetpp_x{i}_{j}_concat" for i, j in nested)
    for i, j in nested:
        assert _producer(layers[f"unetpp_x{i}_{j}_decode_unpool"].input) == node(i + 1, j - 1)
        inputs = [_producer(t) for t in layers[f"unetpp_x{i}_{j}_concat"].input]
        assert inputs == [f"unetpp_x{i}_{j}_conv_before_concat_0_activation"] + [
            node(i, k) for k in range(j)], (i, j)
    assert _producer(layers["unetpp_output"].input) == node(0, depth - 1)


# Every convolution of the library's conv stacks is followed by batch norm: all but the 1x1
# output head, and in Attention UNet the attention gates' 1x1 convolutions (4 gates x 3).
@pytest.mark.parametrize("name, batch_norms", [("unet", 22), ("unetpp", 40), ("attunet", 18),
                                                ("r2unet", 58), ("wideunet", 22)])
def test_collection_baselines_use_batch_norm(name, batch_norms):
    model = build_baseline(name, (32, 32, 1), width_scale=0.0625)
    norms = [layer for layer in model.layers
             if isinstance(layer, keras.layers.BatchNormalization)]
    assert len(norms) == batch_norms
    # ... and the per-epoch re-estimation of their statistics finds them all.
    assert len(batchnorm_layers(model)) == batch_norms
    # A convolution feeding a batch norm has no bias, beta takes its place; not checked in
    # R2-UNet, whose recurrent blocks (RR_CONV) the library builds with a bias all the same.
    for norm in norms:
        convolution = norm.input._keras_history.operation
        assert isinstance(convolution, keras.layers.Conv2D), norm.name
        assert name == "r2unet" or not convolution.use_bias, convolution.name


@pytest.mark.parametrize("width_scale", [TINY, 1.0])
def test_wide_unet_matches_unetpp_parameters(width_scale):
    wide = count_params(build_baseline("wideunet", width_scale=width_scale))
    nested = count_params(build_baseline("unetpp", width_scale=width_scale))
    assert wide == pytest.approx(nested, rel=0.05)
    assert wide_unet_factor((128, 128, 1), width_scale) > 1


@pytest.mark.parametrize("name", BASELINES)
def test_width_scale_reduces_parameters(name):
    assert (count_params(build_baseline(name, (64, 64, 1), width_scale=TINY))
            < count_params(build_baseline(name, (64, 64, 1), width_scale=2 * TINY)))


def test_filters_scale_rounded_and_at_least_four():
    assert scale_filters(FILTERS["unet"], 0.125) == (4, 8, 15, 30, 60)
    assert scale_filters(FILTERS["unet"], 0.0625) == (4, 4, 8, 15, 30)
    assert scale_filters(FILTERS["unet"], 0.01) == (4, 4, 4, 4, 5)


def test_unknown_baseline_names_the_valid_ones():
    with pytest.raises(ValueError, match=", ".join(BASELINES)):
        build_baseline("segnet")


@pytest.mark.parametrize("name, input_shape, width_scale, message", [
    ("unet", (100, 100, 1), 1.0, "divisible by 16"),
    ("nasunet", (100, 100, 1), 1.0, "divisible by 8"),
    ("unet", (128, 128), 1.0, "height, width, channels"),
    ("unet", (128, 128, 1), 0.0, "width_scale must be positive"),
])
def test_invalid_arguments_are_explained(name, input_shape, width_scale, message):
    with pytest.raises(ValueError, match=message):
        build_baseline(name, input_shape, width_scale)


@pytest.mark.parametrize("input_shape, depth", [((128, 128, 1), 5), ((64, 64, 1), 5),
                                                ((32, 32, 1), 4), ((96, 96, 1), 4),
                                                ((16, 16, 1), 3), ((8, 8, 1), 2)])
def test_nas_unet_keeps_the_published_depth_where_the_image_allows(input_shape, depth):
    assert nas_unet_depth(input_shape) == depth


@pytest.mark.parametrize("name", BASELINES)
def test_every_baseline_builds_for_the_tiny_preset(name):
    model = build_baseline(name, (32, 32, 1), width_scale=0.0625)
    assert model.output.shape == (None, 32, 32, 1)
