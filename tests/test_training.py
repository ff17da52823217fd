"""The training protocol's start and end: the output bias set to the foreground's log-odds
before the first step, and the flag for a model that predicts one class everywhere."""

from __future__ import annotations

import json
import math

import keras
import numpy as np
import pytest

from bractivate.baselines import build_baseline
from bractivate.genome import Genome
from bractivate.model import build_model
from bractivate.pipeline import train_full
from bractivate.train import init_output_bias, output_layer, split_metrics

GENOME = Genome(2, 4, (("enc0", "dec1", "add"),))


def test_output_bias_is_the_foreground_log_odds(blobs):
    keras.utils.set_random_seed(0)
    model = build_model(GENOME, blobs.input_shape)
    y = blobs.split("train")[1]
    fraction = float((y > 0.5).mean())
    assert 0.05 < fraction < 0.95
    bias = init_output_bias(model, y)
    assert bias == pytest.approx(math.log(fraction / (1 - fraction)))
    assert output_layer(model).name == "head_conv"
    np.testing.assert_allclose(keras.ops.convert_to_numpy(output_layer(model).bias), [bias], rtol=1e-6)
    # clipped: a split without foreground does not give an infinite bias
    assert init_output_bias(model, np.zeros_like(y)) == pytest.approx(math.log(1e-3 / (1 - 1e-3)))


def test_the_bias_sits_before_a_final_activation_and_nas_unet_has_none():
    if keras.config.backend() == "tensorflow":
        unet = build_baseline("unet", (32, 32, 1), width_scale=0.0625)
        assert isinstance(unet.layers[-1], keras.layers.Activation)
        assert output_layer(unet) is not None and output_layer(unet).filters == 1
        quarter = np.zeros((2, 32, 32, 1), "float32")
        quarter[:, :8] = 1.0
        assert init_output_bias(unet, quarter) == pytest.approx(math.log(1 / 3))
    nas = build_baseline("nasunet", (32, 32, 1), width_scale=0.0625)
    assert output_layer(nas).name == "head" and init_output_bias(nas, np.ones((1, 32, 32, 1))) is None


def test_a_model_predicting_background_everywhere_is_flagged_collapsed(blobs, tmp_path):
    keras.utils.set_random_seed(1)
    model = build_model(GENOME, blobs.input_shape)
    train = {"epochs": 1, "batch_size": 8, "learning_rate": 1e-3, "patience": None, "min_delta": 0.0,
             "execution": "eager"}
    metrics = train_full(model, blobs, **train, model_path=None, metrics_path=tmp_path / "m.json",
                         history_path=tmp_path / "h.tsv", provenance={"dataset": "blobs"})
    assert metrics["collapsed"] is False and json.loads((tmp_path / "m.json").read_text())["collapsed"] is False
    head = output_layer(model)
    head.bias.assign(np.full(head.bias.shape, -50.0, "float32"))  # sigmoid(-50): background at every pixel
    scores = split_metrics(model, blobs, "test", 8)
    assert scores["collapsed"] is True and scores["dice"] == 0.0
