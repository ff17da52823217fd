"""The search's evaluation of one genome (docs/method.md#scores, #search): the settings a search runs under and
:func:`evaluate`, which builds, trains (with :func:`bractivate.train.fit`) and scores a genome.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

import keras
import numpy as np

from bractivate.activity import block_activity, predict_with_activity
from bractivate.genome import Genome
from bractivate.io import Dataset
from bractivate.model import build_model, count_params, model_flops
from bractivate.schema import check_bounds, defaults
from bractivate.scores import binary_cross_entropy, dice, search_score
from bractivate.train import (accelerator_visible, fit, predict_batches, seed_everything,
                              use_precision)

WORST_SCORE = math.inf
MUTATIONS = ("dendritic", "random")


# The schema's defaults (bractivate.schema): the paper's settings (docs/method.md#search, #experiments).
SEARCH_DEFAULTS = defaults("search")


@dataclass(frozen=True)
class SearchSettings:
    """Everything a search needs besides its data; every default is the config schema's
    (``search`` section, and its top-level ``seed``)."""

    population: int = SEARCH_DEFAULTS["population"]
    evaluations: int = SEARCH_DEFAULTS["evaluations"]
    epochs: int = SEARCH_DEFAULTS["epochs"]
    patience: int = SEARCH_DEFAULTS["patience"]
    min_delta: float = SEARCH_DEFAULTS["min_delta"]
    batch_size: int = SEARCH_DEFAULTS["batch_size"]
    learning_rate: float = SEARCH_DEFAULTS["learning_rate"]
    loss: str = SEARCH_DEFAULTS["loss"]
    time_measure: str = SEARCH_DEFAULTS["time_measure"]
    activity: str = SEARCH_DEFAULTS["activity"]
    depth_range: tuple[int, int] = tuple(SEARCH_DEFAULTS["depth_range"])
    filter_range: tuple[int, int] = tuple(SEARCH_DEFAULTS["filter_range"])
    max_in_edges: int = SEARCH_DEFAULTS["max_in_edges"]
    unet_skips: bool = SEARCH_DEFAULTS["unet_skips"]
    max_new_edges: int = SEARCH_DEFAULTS["max_new_edges"]
    mutation: str = SEARCH_DEFAULTS["mutation"]
    execution: str = SEARCH_DEFAULTS["execution"]
    precision: str = SEARCH_DEFAULTS["precision"]
    min_size: int = SEARCH_DEFAULTS["min_size"]
    reevaluate: bool = SEARCH_DEFAULTS["reevaluate"]
    seed: int = defaults()["seed"]

    def __post_init__(self) -> None:
        check_setting_types(self)
        check_bounds(self, "search")
        for key in ("depth_range", "filter_range"):
            lo, hi = getattr(self, key)
            if lo > hi:
                raise ValueError(f"search.{key}: expected [low, high] with low <= high, got {[lo, hi]}")
            object.__setattr__(self, key, (int(lo), int(hi)))

    @classmethod
    def from_dict(cls, data: dict) -> "SearchSettings":
        return settings_from_dict(cls, data, "search")

    def to_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}


def settings_from_dict(cls, data: dict, kind: str):
    """A settings dataclass from ``data``, refusing keys it does not have, naming them."""
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ValueError(f"unknown {kind} setting(s) {unknown}; expected some of {sorted(known)}")
    return cls(**data)


def check_setting_types(settings, section: str = "search") -> None:
    """Each field of a settings dataclass has the type of its default, or a one-line error
    naming ``section.key``.

    ``--set epochs=1.5`` must not reach the training: ints are ints (not bools), numbers are
    finite, ranges are pairs of integers; a field whose default is None takes null or an integer.
    """
    for f in fields(settings):
        value, default = getattr(settings, f.name), f.default
        integer = isinstance(value, (int, np.integer)) and not isinstance(value, bool)
        if default is None:
            ok, want = value is None or integer, "an integer or null"
        elif isinstance(default, bool):
            ok, want = isinstance(value, bool), "true or false"
        elif isinstance(default, int):
            ok, want = integer, "an integer"
        elif isinstance(default, float):
            ok = (integer or isinstance(value, (float, np.floating))) and math.isfinite(value)
            want = "a finite number"
        elif isinstance(default, str):
            ok, want = isinstance(value, str), "a string"
        else:  # the (low, high) ranges
            ok = isinstance(value, (list, tuple)) and len(value) == 2 and all(
                isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in value)
            want = "a pair [low, high] of integers"
        if not ok:
            raise ValueError(f"{section}.{f.name}: expected {want}, got {value!r}")


def evaluate(genome: Genome, data: Dataset, settings: SearchSettings, seed: int = 0) -> dict:
    """Build, train and score one genome for the search.

    Returns params, seconds and FLOPs per epoch, epochs run, val BCL and Dice, the score, block
    activities and the outcome. Any failure (invalid build, non-finite loss, out of memory)
    returns outcome ``failed`` with the worst score and the error, so the search goes on.
    """
    result = {"params": 0, "seconds_per_epoch": math.nan, "train_seconds": 0.0, "flops_per_epoch": 0,
              "epochs": 0, "val_bcl": math.nan, "val_dice": math.nan, "score": WORST_SCORE,
              "activity": {}, "outcome": "failed", "error": ""}
    try:
        seed_everything(seed)
        use_precision(settings.precision)
        model = build_model(genome, data.input_shape, settings.min_size)
        result["params"] = count_params(model)
        result["flops_per_epoch"] = 3 * model_flops(model) * len(data.splits["train"])
        run = fit(model, data, epochs=settings.epochs, batch_size=settings.batch_size,
                  learning_rate=settings.learning_rate, patience=settings.patience,
                  min_delta=settings.min_delta, execution=settings.execution)
        result.update(epochs=run.epochs, seconds_per_epoch=run.seconds_per_epoch,
                      train_seconds=run.train_seconds)
        if not run.finite:
            result["error"] = "non-finite loss"
            return result
        x_val, y_val = data.split("val")
        if settings.activity == "activation":
            pred, activity = predict_with_activity(model, x_val, settings.batch_size)
        else:
            pred, activity = predict_batches(model, x_val, settings.batch_size), block_activity(model, mode="weight")
        bcl = binary_cross_entropy(y_val, pred)
        result.update(
            val_bcl=bcl, val_dice=dice(y_val, pred), activity=activity,
            score=search_score(settings.loss, params=result["params"], seconds=run.seconds_per_epoch,
                               flops=result["flops_per_epoch"], bcl=bcl, time_measure=settings.time_measure),
            outcome="ok",
        )
    except Exception as err:  # noqa: BLE001 - a failed genome must not stop the search (docs/method.md#search)
        result.update(score=WORST_SCORE, outcome="failed", error=f"{type(err).__name__}: {err}"[:500])
    finally:
        # Collecting garbage costs ~0.2 s per model on a CPU, where Python's own collector
        # suffices; on a GPU it hands the model's device memory back at once.
        keras.backend.clear_session(free_memory=accelerator_visible())
    return result
