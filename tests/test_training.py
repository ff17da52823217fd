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


@pytest.mark.parametrize("monitor", ["val_loss", "val_dice"])
def test_the_kept_epoch_is_the_monitors_best(blobs, monitor):
    """``monitor``: the restored weights are those of the epoch with the lowest val loss, or with
    the highest val Dice; the restored model scores on the val split what that epoch logged."""
    keras.utils.set_random_seed(3)
    model = build_model(GENOME, blobs.input_shape)
    run = fit(model, blobs, epochs=6, batch_size=8, learning_rate=0.01, execution="eager", monitor=monitor)
    logged = run.history[monitor]
    best = int(np.argmin(logged)) if monitor == "val_loss" else int(np.argmax(logged))
    assert run.best_epoch == best
    if monitor == "val_dice":
        assert ("val_dice" in run.history) and len(logged) == run.epochs
        assert split_metrics(model, blobs, "val", 8)["dice"] == pytest.approx(logged[best], abs=1e-6)
    else:
        assert "val_dice" not in run.history


def test_an_unknown_monitor_is_refused_before_training(blobs):
    model = build_model(GENOME, blobs.input_shape)
    with pytest.raises(ValueError, match=r"monitor 'val_iou' not in \('val_loss', 'val_dice'\)"):
        fit(model, blobs, epochs=1, batch_size=8, learning_rate=0.01, monitor="val_iou")
