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


@pytest.mark.parametrize("name", ["unet", "unetpp"])
def test_full_width_parameter_count_near_the_paper(name):
    measured = count_params(build_baseline(name))
    assert measured == pytest.approx(PAPER_PARAMS[name]["lungs"], rel=0.15)


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


def test_filters_scale_rounded_and_at_least_two():
    assert scale_filters(FILTERS["unet"], 0.125) == (4, 8, 15, 30, 60)
    assert scale_filters(FILTERS["unet"], 0.01) == (2, 2, 2, 2, 5)


def test_unknown_baseline_names_the_valid_ones():
    with pytest.raises(ValueError, match="unet, unetpp, attunet, r2unet, wideunet, nasunet"):
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
