"""The flag for a trained model that predicts one class everywhere on its test split, and fit's
observing callbacks."""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest

from bractivate.genome import Genome
from bractivate.model import build_model
from bractivate.pipeline import train_full
from bractivate.train import fit, split_metrics

GENOME = Genome(2, 4, (("enc0", "dec1", "add"),))


def test_a_model_predicting_background_everywhere_is_flagged_collapsed(blobs, tmp_path):
    keras.utils.set_random_seed(1)
    model = build_model(GENOME, blobs.input_shape)
    train = {"epochs": 1, "batch_size": 8, "learning_rate": 1e-3, "patience": None, "min_delta": 0.0,
             "execution": "eager"}
    metrics = train_full(model, blobs, **train, model_path=None, metrics_path=tmp_path / "m.json",
                         history_path=tmp_path / "h.tsv", provenance={"dataset": "blobs"})
    assert metrics["collapsed"] is False and json.loads((tmp_path / "m.json").read_text())["collapsed"] is False
    head = model.get_layer("head_conv")
    head.bias.assign(np.full(head.bias.shape, -50.0, "float32"))  # sigmoid(-50): background at every pixel
    scores = split_metrics(model, blobs, "test", 8)
    assert scores["collapsed"] is True and scores["dice"] == 0.0


def test_fit_callbacks_see_every_epoch_after_validation(blobs):
    seen = []

    class Watch(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            seen.append((epoch, logs["val_loss"]))

    keras.utils.set_random_seed(2)
    model = build_model(GENOME, blobs.input_shape)
    run = fit(model, blobs, epochs=3, batch_size=8, learning_rate=1e-3, execution="eager", callbacks=(Watch(),))
    assert [epoch for epoch, _ in seen] == [0, 1, 2]
    assert [loss for _, loss in seen] == pytest.approx(run.history["val_loss"])
