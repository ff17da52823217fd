"""Loaders: each reads one kind of stage output (metrics JSON, search results, search
histories, activation maps) into one tidy DataFrame with its provenance columns (data set,
experiment or model, trial, seed, genome hash), and names the file and what it lacks where one
is not as the workflow writes it (docs/method.md#outputs).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Iterable

import numpy as np
import pandas as pd

from bractivate.io import read_json

PROVENANCE = ["dataset", "experiment", "trial", "seed", "genome_hash"]

# Every stage output carries its provenance in its content: columns of a history table,
# attributes of a maps file, keys of a metrics JSON.
HISTORY_KEYS = ["dataset", "experiment", "trial"]
ACTIVATIONS_KEYS = ["dataset", "trial"]

TRAIN_KEYS = ["dataset", "experiment", "trial", "genome_hash", "seed", "test_dice", "params"]
BASELINE_KEYS = ["dataset", "model", "trial", "seed", "test_dice", "params"]
ABLATION_KEYS = ["dataset", "trial", "experiment", "genome_hash", "block", "intact_dice",
                 "zeroed_dice", "retrained_dice"]


def _history_table(path) -> pd.DataFrame:
    """A search's ``history.tsv``, checked to carry its provenance columns."""
    history = pd.read_csv(path, sep="\t", keep_default_na=False, na_values=[""])
    missing = [k for k in HISTORY_KEYS if k not in history]
    if missing:
        raise ValueError(f"{path}: columns {missing} missing; this history predates the provenance "
                         "columns: run its search again")
    history["trial"] = history["trial"].astype(int)
    return history


def _read_rows(paths: Iterable, required: list[str]) -> list[dict]:
    rows = []
    for path in paths:
        data = read_json(path)
        missing = [key for key in required if key not in data]
        if missing:
            raise ValueError(f"{path}: keys {missing} missing (expected {required})")
        rows.append(data)
    return rows


def _frame(rows: list[dict], columns: list[str], kind: str) -> pd.DataFrame:
    if not rows:
        raise ValueError(f"no {kind} files given")
    frame = pd.DataFrame(rows)
    front = [c for c in columns if c in frame]
    frame = frame[front + [c for c in frame if c not in front]]
    return frame.astype({"trial": int}).reset_index(drop=True)


def load_train_metrics(paths: Iterable) -> pd.DataFrame:
    """One row per fully trained search result (``results/train/…/metrics.json``)."""
    return _frame(_read_rows(paths, TRAIN_KEYS), PROVENANCE, "train metrics")


def load_baseline_metrics(paths: Iterable) -> pd.DataFrame:
    """One row per trained baseline (``results/baselines/…/metrics.json``); no genome hash."""
    frame = _frame(_read_rows(paths, BASELINE_KEYS), ["dataset", "model", "trial", "seed"],
                   "baseline metrics")
    return frame.assign(genome_hash=frame.get("genome_hash", ""))


def load_ablation_metrics(paths: Iterable) -> pd.DataFrame:
    """One row per ablated model (``results/ablation/…/metrics.json``), docs/method.md#ablation."""
    frame = _frame(_read_rows(paths, ABLATION_KEYS), PROVENANCE + ["block"], "ablation metrics")
    if "seed" not in frame:
        frame.insert(3, "seed", np.nan)
    return frame


def load_search_results(paths: Iterable) -> pd.DataFrame:
    """One row per search (``best_genome.json``): provenance, the best genome and its search
    result, and the settings that label the experiments (loss, depth range, mutation)."""
    rows = []
    paths = list(paths)
    for path, data in zip(paths, _read_rows(paths, ["genome", "result", "settings", "dataset",
                                                    "experiment", "trial"])):
        result, settings, genome = data["result"], data["settings"], data["genome"]
        missing = [k for k in ("loss", "depth_range", "mutation", "seed") if k not in settings]
        if missing:
            raise ValueError(f"{path}: settings {missing} missing")
        low, high = settings["depth_range"]
        rows.append({
            "dataset": data["dataset"], "experiment": data["experiment"], "trial": int(data["trial"]),
            "seed": settings["seed"], "genome_hash": result["genome_hash"], "loss": settings["loss"],
            "mutation": settings["mutation"], "depth_range": f"{low}–{high}",
            "depth": genome["depth"], "filters": genome["filters"], "genome": genome,
            "activity": result.get("activity") or {}, "search_params": result["params"],
            "search_val_dice": result["val_dice"], "search_score": result["score"],
        })
    return _frame(rows, PROVENANCE, "search result")


def with_search_settings(train: pd.DataFrame, searches: pd.DataFrame) -> pd.DataFrame:
    """Train metrics joined with the search that found each genome (loss, depth range, depth)."""
    keys = ["dataset", "experiment", "trial"]
    extra = searches[keys + ["loss", "mutation", "depth_range", "depth", "filters"]]
    merged = train.merge(extra, on=keys, how="left", validate="one_to_one")
    unmatched = merged[merged["depth_range"].isna()]
    if len(unmatched):
        raise ValueError(f"train metrics without a search result: {unmatched[keys].to_dict('records')}")
    return merged


def load_histories(paths: Iterable) -> pd.DataFrame:
    """Every evaluation of every search (``history.tsv``), with ``best_so_far``: the running
    minimum of the score over successful evaluations (``inf`` until the first one)."""
    frames = []
    for path in paths:
        history = _history_table(path)
        missing = {"evaluation", "genome_hash", "score", "outcome"} - set(history)
        if missing:
            raise ValueError(f"{path}: columns {sorted(missing)} missing")
        score = pd.to_numeric(history["score"], errors="coerce").astype(float)
        ok = (history["outcome"] == "ok") & np.isfinite(score)
        history = history.sort_values("evaluation").assign(score=score.where(ok, math.inf))
        history["best_so_far"] = history["score"].cummin()
        frames.append(history)
    if not frames:
        raise ValueError("no search history files given")
    frame = pd.concat(frames, ignore_index=True)
    return frame[["dataset", "experiment", "trial"] + [c for c in frame if c not in
                                                       ("dataset", "experiment", "trial")]]


def load_search_hours(paths: Iterable) -> pd.DataFrame:
    """Hours of each search by its own clock: the sum of its history's ``elapsed_seconds``
    (training, validation and the search's overhead of every evaluation, over every attempt;
    time waiting for a GPU or spent on a rerun that trained nothing is not search time)."""
    rows = []
    for path in paths:
        history = _history_table(path)
        if "elapsed_seconds" not in history or history["elapsed_seconds"].isna().any():
            raise ValueError(f"{path}: expected an elapsed_seconds value for every evaluation; this "
                             "history predates the search's own clock: run its search again")
        rows.append({**{k: history[k].iloc[0] for k in HISTORY_KEYS},
                     "seconds": float(history["elapsed_seconds"].sum())})
    frame = _frame(rows, ["dataset", "experiment", "trial"], "search history")
    return frame.assign(hours=frame["seconds"] / 3600)


def read_activations(path: str | Path, count: int) -> dict:
    """The first ``count`` test images of an ablation's maps file with their masks and, per
    model (intact, zeroed, retrained) and block, the channel-mean |conv2| maps; ``blocks`` in
    the network's order, ``block`` the ablated one."""
    import h5py

    with h5py.File(path, "r") as h5:
        missing = [k for k in ("images", "masks", "maps") if k not in h5]
        if missing:
            raise ValueError(f"{path}: HDF5 datasets {missing} missing (expected images, masks and "
                             "maps/<model>/<block>, as the ablation rule writes them)")
        blocks = [b for b in _text(h5.attrs.get("blocks", "")).split(",") if b]
        missing = [k for k in ACTIVATIONS_KEYS if k not in h5.attrs]
        if missing:
            raise ValueError(f"{path}: attributes {missing} missing (the ablation rule writes its data "
                             "set and trial): run its ablation again")
        return {
            "dataset": _text(h5.attrs["dataset"]), "trial": int(h5.attrs["trial"]),
            "images": h5["images"][:count, ..., 0], "masks": h5["masks"][:count, ..., 0],
            "maps": {model: {b: group[b][:count] for b in blocks if b in group}
                     for model, group in h5["maps"].items()},
            "blocks": blocks, "block": _text(h5.attrs.get("block", "")),
            "control": _text(h5.attrs.get("control_block", "")) or None,
            "layer": _text(h5.attrs.get("layer", "")),
        }


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)

