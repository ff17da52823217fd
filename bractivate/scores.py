"""Segmentation metrics and the search's scores (docs/method.md#scores, paper eqs. 2 and 3)."""

from __future__ import annotations

import math

import numpy as np

GAMMA = 0.01
LOSSES = ("els", "bcl")
TIME_MEASURES = ("wallclock", "flops")


def binary_cross_entropy(y_true: np.ndarray, y_pred: np.ndarray, eps: float = 1e-7) -> float:
    """BCL, eq. 2: mean binary cross-entropy over all pixels."""
    p = np.clip(np.asarray(y_pred, dtype="float64"), eps, 1 - eps)
    y = np.asarray(y_true, dtype="float64")
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))


def dice(y_true: np.ndarray, y_pred: np.ndarray, threshold: float = 0.5) -> float:
    """Mean per-image Dice of the thresholded prediction; an image where both the mask and the
    prediction are empty scores 1."""
    truth = np.asarray(y_true).reshape(len(y_true), -1) > 0.5
    pred = np.asarray(y_pred).reshape(len(y_pred), -1) > threshold
    inter = np.logical_and(truth, pred).sum(axis=1)
    total = truth.sum(axis=1) + pred.sum(axis=1)
    per_image = np.where(total == 0, 1.0, 2.0 * inter / np.maximum(total, 1))
    return float(per_image.mean())


def collapsed(y_true: np.ndarray, y_pred: np.ndarray, threshold: float = 0.5) -> bool:
    """Whether the thresholded prediction is one class at every pixel of every image while the
    masks hold the other class somewhere: a model that segments nothing (or everything), whose
    Dice of 0 says nothing about the architecture (docs/method.md#training-protocol)."""
    truth = np.asarray(y_true) > 0.5
    pred = np.asarray(y_pred) > threshold
    if pred.all():
        return not truth.all()
    return not pred.any() and bool(truth.any())


def efficiency_loss_scaling(params: float, time: float, bcl: float, gamma: float = GAMMA) -> float:
    """ELS, eq. 3, made safe for every positive input.

    The paper's γ · log(P) · log(T) · BCL is zero at T = 1 s and negative below it, which on a
    GPU is the normal case and turns the search into a hunt for the fastest model regardless of
    its loss. We use γ · ln(1 + P) · ln(1 + T) · BCL: it tends to the paper's value as P and T
    grow (ln(1 + x) / ln(x) → 1), and it is positive and strictly increasing in P, T and BCL for
    every positive input.
    """
    for name, value in (("params", params), ("time", time), ("bcl", bcl)):
        if not (value > 0 and math.isfinite(value)):
            raise ValueError(f"ELS needs a positive finite {name}, got {value!r}")
    return gamma * math.log1p(params) * math.log1p(time) * bcl


def search_score(loss: str, *, params: int, seconds: float, flops: float, bcl: float, time_measure: str) -> float:
    """The score the search minimises: ``bcl`` or ``els`` with T in seconds per epoch
    (``wallclock``) or GFLOPs per epoch (``flops``, deterministic)."""
    if loss not in LOSSES:
        raise ValueError(f"search loss {loss!r} not in {LOSSES}")
    if time_measure not in TIME_MEASURES:
        raise ValueError(f"time_measure {time_measure!r} not in {TIME_MEASURES}")
    if loss == "bcl":
        return bcl
    time = seconds if time_measure == "wallclock" else flops / 1e9
    return efficiency_loss_scaling(params, time, bcl)
