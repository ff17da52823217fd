"""Frames derived from the loaders' frames, shared by the tables and the figures: the models
of Table 2 and Fig. 7, the Dice:time ratio, per-block activations, paired trials, and the
per-group summary (``n``, mean, sample std) behind every mean ± std.
"""

from __future__ import annotations

import re
from typing import Iterable

import pandas as pd

from bractivate.outputs import ABLATION_MODELS, BRACTIVATE, CONTROL
from bractivate.report.formatting import MISSING, MODEL_NAMES


def block_order(block: str) -> tuple[int, int]:
    """Where ``block`` sits in a UNet: encoder blocks down, the bottleneck, decoder blocks up,
    so that blocks of genomes of different depths sort into one network order."""
    match = re.fullmatch(r"(enc|dec)(\d+)|mid", block)
    if match is None:
        raise ValueError(f"block {block!r}: expected enc<i>, mid or dec<i>")
    if block == "mid":
        return (1, 0)
    return (0, int(match[2])) if match[1] == "enc" else (2, -int(match[2]))


def activation_blocks(ablation: pd.DataFrame, models: Iterable[str] = ABLATION_MODELS) -> pd.DataFrame:
    """One row per ablation trial × model × block: the mean |conv2| of that block on the test
    split (``mean_abs_activation`` of the ablation metrics), the model's test Dice and the
    trial's ablated and control blocks; a trial without a control block has no control rows."""
    rows = []
    for record in ablation.to_dict("records"):
        values = record.get("mean_abs_activation")
        if not isinstance(values, dict):
            raise ValueError(f"ablation metrics of data set {record['dataset']!r}, trial "
                             f"{record['trial']}: no 'mean_abs_activation' (expected per model a "
                             "mean |conv2| per block; rerun the ablation rule)")
        for model in models:
            for block, value in sorted(values.get(model, {}).items(), key=lambda kv: block_order(kv[0])):
                rows.append({"dataset": record["dataset"], "experiment": record["experiment"],
                             "trial": record["trial"], "genome_hash": record["genome_hash"],
                             "ablated_block": record["block"],
                             "control_block": record.get("control_block") or MISSING,
                             "model": model, "block": block,
                             "mean_abs_activation": float(value),
                             "test_dice": record[f"{model}_dice"]})
    if not rows:
        raise ValueError("no ablation metrics with block activations given")
    return pd.DataFrame(rows)


def dice_time(train: pd.DataFrame) -> pd.DataFrame:
    """Per trained model, the Dice:time ratio of the paper's §5.2: test Dice over training
    seconds per epoch (both from the full training's metrics)."""
    missing = [c for c in ("seconds_per_epoch", "keras_backend") if c not in train]
    if missing:
        raise ValueError(f"train metrics lack {missing} (expected the full training's metrics)")
    frame = train.assign(device=train["device"] if "device" in train else MISSING)
    frame["device"] = frame["device"].fillna(MISSING)
    frame["dice_time"] = frame["test_dice"] / frame["seconds_per_epoch"]
    return frame[["dataset", "experiment", "trial", "seed", "genome_hash", "test_dice",
                  "seconds_per_epoch", "dice_time", "params", "keras_backend", "device"]]


def model_frame(train: pd.DataFrame, baselines: pd.DataFrame | None = None) -> pd.DataFrame:
    """Bractivate, the random control and the baselines as one frame: ``source`` is the
    experiment or baseline key, ``model`` its display name (Table 2, Fig. 7)."""
    ours = train[train["experiment"].isin([BRACTIVATE, CONTROL])].assign(source=train["experiment"])
    parts = [ours]
    if baselines is not None and len(baselines):
        parts.append(baselines.assign(source=baselines["model"]))
    frame = pd.concat(parts, ignore_index=True)
    frame["model"] = frame["source"].map(lambda s: MODEL_NAMES.get(s, s))
    # Metrics written before the flag existed count as not collapsed.
    frame["collapsed"] = frame.get("collapsed", pd.Series(False, index=frame.index)).fillna(False).astype(bool)
    same = paired_trials(train) if {BRACTIVATE, CONTROL} <= set(train["experiment"]) else None
    frame["same_genome"] = False
    if same is not None and len(same):
        keys = set(zip(same.loc[same["same_genome"], "dataset"], same.loc[same["same_genome"], "trial"]))
        frame["same_genome"] = [source == CONTROL and (d, t) in keys
                                for source, d, t in zip(frame["source"], frame["dataset"], frame["trial"])]
    columns = ["dataset", "model", "source", "trial", "seed", "genome_hash", "test_dice", "params",
               "collapsed", "same_genome"]
    return frame[columns]


def paired_trials(train: pd.DataFrame, first: str = BRACTIVATE, second: str = CONTROL) -> pd.DataFrame:
    """Per data set and trial, the test Dice of ``first`` and ``second`` and their difference
    (first − second). Trials pair on the trial number: the same seed for both experiments."""
    keys = ["dataset", "trial"]
    cols = keys + ["seed", "genome_hash", "test_dice"]
    a = train.loc[train["experiment"] == first, cols]
    b = train.loc[train["experiment"] == second, cols].drop(columns="seed")
    paired = a.merge(b, on=keys, how="inner", suffixes=(f"_{first}", f"_{second}"), validate="one_to_one")
    paired["difference"] = paired[f"test_dice_{first}"] - paired[f"test_dice_{second}"]
    paired["same_genome"] = paired[f"genome_hash_{first}"] == paired[f"genome_hash_{second}"]
    return paired


def summarise(frame: pd.DataFrame, by: list[str], column: str, prefix: str | None = None) -> pd.DataFrame:
    """``n``, mean and sample std (ddof=1, NaN for one trial) of ``column`` per group, groups in
    order of first appearance."""
    prefix = prefix or column
    grouped = frame.groupby(by, sort=False)[column]
    return grouped.agg(n="count", mean="mean", std=lambda s: s.std(ddof=1)).reset_index().rename(
        columns={"mean": f"{prefix}_mean", "std": f"{prefix}_std"})

