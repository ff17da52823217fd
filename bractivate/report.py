"""The paper's tables from the stage outputs (docs/method.md#outputs).

Loaders read one kind of stage output (metrics JSON, search results, search histories,
activation maps) into one tidy DataFrame with its provenance
columns (data set, experiment or model, trial, seed, genome hash). Table builders are pure
functions of those frames; each returns a :class:`ReportTable` that :func:`write_report_table`
writes as TSV (tidy, with the numeric columns), Markdown and LaTeX (the display layout).

Spread is the sample standard deviation over trials (``ddof=1``). With a single trial it is
undefined: the TSV leaves it empty (NaN) and the cell shows ``± –``.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import numpy as np
import pandas as pd

from bractivate.io import read_json, write_table, write_text
from bractivate.outputs import ABLATION_MODELS, BRACTIVATE, CONTROL, TABLES

MODEL_NAMES = {
    BRACTIVATE: "Bractivate",
    CONTROL: "Random search",
    "unet": "UNet",
    "unetpp": "UNet++",
    "wideunet": "Wide UNet",
    "attunet": "Attention UNet",
    "r2unet": "R2-UNet",
    "nasunet": "NAS-UNet",
}
MISSING = "–"
PROVENANCE = ["dataset", "experiment", "trial", "seed", "genome_hash"]

# Every stage output carries its provenance in its content: columns of a history table,
# attributes of a maps file, keys of a metrics JSON.
HISTORY_KEYS = ["dataset", "experiment", "trial"]
ACTIVATIONS_KEYS = ["dataset", "trial"]

TRAIN_KEYS = ["dataset", "experiment", "trial", "genome_hash", "seed", "test_dice", "params"]
BASELINE_KEYS = ["dataset", "model", "trial", "seed", "test_dice", "params"]
ABLATION_KEYS = ["dataset", "trial", "experiment", "genome_hash", "block", "intact_dice",
                 "zeroed_dice", "retrained_dice"]


# --------------------------------------------------------------------------------- loaders


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


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


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


# ----------------------------------------------------------------------------- formatting


def fmt_sci(value: float) -> str:
    """``123456 -> '1.2e5'``: one decimal, no exponent sign or padding."""
    if value is None or not np.isfinite(value):
        return MISSING
    mantissa, exponent = f"{value:.1e}".split("e")
    return f"{mantissa}e{int(exponent)}"


def fmt_mean_std(mean: float, std: float, decimals: int = 3) -> str:
    """``'0.912 ± 0.004'``; ``'0.912 ± –'`` when the spread is undefined (one trial)."""
    if mean is None or not np.isfinite(mean):
        return MISSING
    spread = f"{std:.{decimals}f}" if std is not None and np.isfinite(std) else MISSING
    return f"{mean:.{decimals}f} ± {spread}"


def _decimals(value: float) -> int:
    """Two decimals, more for values below 1 so that short searches do not read as 0.00 h."""
    if not np.isfinite(value) or value <= 0 or value >= 1:
        return 2
    return min(6, 2 - math.floor(math.log10(value)))


def summarise(frame: pd.DataFrame, by: list[str], column: str, prefix: str | None = None) -> pd.DataFrame:
    """``n``, mean and sample std (ddof=1, NaN for one trial) of ``column`` per group, groups in
    order of first appearance."""
    prefix = prefix or column
    grouped = frame.groupby(by, sort=False)[column]
    return grouped.agg(n="count", mean="mean", std=lambda s: s.std(ddof=1)).reset_index().rename(
        columns={"mean": f"{prefix}_mean", "std": f"{prefix}_std"})


# --------------------------------------------------------------------------------- tables


@dataclass
class ReportTable:
    """A table twice: ``tidy`` (one row per group, numeric columns and the cell text) for the
    TSV, ``display`` (the paper's layout, text cells) for Markdown and LaTeX."""

    name: str
    title: str
    caption: str
    tidy: pd.DataFrame
    display: pd.DataFrame


def table2_dice(models: pd.DataFrame) -> ReportTable:
    """Table 2: test Dice mean ± std over trials, with the mean parameter count, per model ×
    data set (``models`` from :func:`model_frame`)."""
    keys = ["model", "source", "dataset"]
    dice = summarise(models, keys, "test_dice", "dice")
    params = summarise(models, keys, "params")
    flags = models.groupby(keys, sort=False)[["collapsed", "same_genome"]].sum().astype(int).reset_index()
    tidy = dice.merge(params.drop(columns="n"), on=keys).merge(flags, on=keys)
    tidy["cell"] = [_table2_cell(row) for row in tidy.to_dict("records")]
    display = _pivot(tidy, "model", "Model", "dataset")
    return ReportTable(TABLES["table2"], "Table 2", "Test Dice, mean ± std over trials (mean parameter count), "
                       "per model and data set. 'collapsed k/n': k of the n trained models predict one "
                       "class at every test pixel; 'same genome as Bractivate': the random search ended "
                       "on main's genome in every trial, so its row repeats main's.", tidy, display)


def _table2_cell(row: dict) -> str:
    """A Table 2 cell: Dice and parameters, or a note where the row repeats Bractivate's, and the
    count of collapsed models."""
    if row["same_genome"] == row["n"] > 0:
        return f"same genome as {MODEL_NAMES[BRACTIVATE]} ({row['n']}/{row['n']} trials)"
    cell = f"{fmt_mean_std(row['dice_mean'], row['dice_std'])} ({fmt_sci(row['params_mean'])})"
    if row["same_genome"]:
        cell += f" [same genome {row['same_genome']}/{row['n']}]"
    if row["collapsed"]:
        cell += f" [collapsed {row['collapsed']}/{row['n']}]"
    return cell


def table3_search_hours(hours: pd.DataFrame) -> ReportTable:
    """Table 3: wall-clock search hours per data set and experiment, mean ± std over trials."""
    tidy = summarise(hours, ["dataset", "experiment"], "hours")
    tidy["cell"] = [fmt_mean_std(m, s, _decimals(m)) for m, s in zip(tidy["hours_mean"], tidy["hours_std"])]
    display = _pivot(tidy, "dataset", "Data set", "experiment")
    return ReportTable(TABLES["table3"], "Table 3", "Search wall-clock hours per data set and "
                       "experiment, mean ± std over trials.", tidy, display)


ABLATION_TARGETS = {"most active": "", "control": "control_"}  # target: prefix of its metrics keys


def ablation_targets(ablation: pd.DataFrame) -> pd.DataFrame:
    """The ablation metrics as one row per trial and target (``most active`` block, and the
    ``control`` block where the trial has one): its block and test Dice intact / zeroed /
    retrained, with the drops from intact."""
    parts = []
    for target, prefix in ABLATION_TARGETS.items():
        if f"{prefix}block" not in ablation:
            continue  # metrics written before the ablation had a control block
        block = ablation[f"{prefix}block"]
        part = ablation.loc[block.notna(), ["dataset", "experiment", "trial", "genome_hash", "intact_dice"]]
        part = part.assign(target=target, block=block[block.notna()],
                           zeroed_dice=ablation.loc[block.notna(), f"{prefix}zeroed_dice"].astype(float),
                           retrained_dice=ablation.loc[block.notna(), f"{prefix}retrained_dice"].astype(float))
        parts.append(part)
    frame = pd.concat(parts, ignore_index=True)
    # Per data set and experiment (in their order of appearance) the most active block, then the control.
    order = {key: i for i, key in enumerate(zip(ablation["dataset"], ablation["experiment"]))}
    frame = frame.assign(order=[order[key] for key in zip(frame["dataset"], frame["experiment"])])
    frame = frame.sort_values("order", kind="stable").drop(columns="order").reset_index(drop=True)
    return frame.assign(drop_zeroed=frame["intact_dice"] - frame["zeroed_dice"],
                        drop_retrained=frame["intact_dice"] - frame["retrained_dice"])


def table_ablation(ablation: pd.DataFrame) -> ReportTable:
    """Ablation of the most active block's dendrites and of the control block's
    (docs/method.md#ablation): test Dice intact, zeroed and retrained, and the drops intact −
    zeroed and intact − retrained, mean ± std over trials, one row per data set, experiment and
    target (``most active``, ``control``). ``block`` lists that target's blocks of the trials,
    each once."""
    frame = ablation_targets(ablation)
    keys = ["dataset", "experiment", "target"]
    labels = {"intact_dice": "Intact", "zeroed_dice": "Zeroed", "retrained_dice": "Retrained",
              "drop_zeroed": "Drop (zeroed)", "drop_retrained": "Drop (retrained)"}
    prefixes = {column: column.removesuffix("_dice") for column in labels}
    tidy = frame.groupby(keys, sort=False)["block"].agg(lambda s: ", ".join(pd.unique(s))).reset_index()
    for column, prefix in prefixes.items():
        part = summarise(frame, keys, column, prefix)
        tidy = tidy.merge(part if "n" not in tidy else part.drop(columns="n"), on=keys)
    for prefix in prefixes.values():
        tidy[f"{prefix}_cell"] = [fmt_mean_std(m, s) for m, s in
                                  zip(tidy[f"{prefix}_mean"], tidy[f"{prefix}_std"])]
    tidy = tidy[keys + ["n", "block"] + [c for c in tidy if c not in (*keys, "n", "block")]]
    display = pd.DataFrame({"Data set": tidy["dataset"], "Experiment": tidy["experiment"],
                            "Target": tidy["target"], "Block": tidy["block"], "Trials": tidy["n"].astype(str)})
    for column, label in labels.items():
        display[label] = tidy[f"{prefixes[column]}_cell"]
    return ReportTable(TABLES["ablation"], "Ablation", "Ablation of the dendrites of the most active "
                       "block and of a control block (the least active other block that receives "
                       "dendrites): test Dice intact, zeroed, retrained without them, and the drops "
                       "from intact, mean ± std over trials.", tidy, display)


def table_activation(blocks: pd.DataFrame) -> ReportTable:
    """Mean |conv2 output| of every block on the test split, intact, with the ablated block's
    dendrites zeroed and retrained without them, mean ± std over trials (``blocks`` from
    :func:`activation_blocks`); blocks in the network's order, each averaged over the trials
    whose genome has it. ``zeroed/intact`` is the per-trial ratio's mean: above 1 where
    zeroing the dendrites moved activation into a block, below 1 where it took it away."""
    keys = ["dataset", "experiment", "block"]
    wide = blocks.pivot_table(index=["dataset", "experiment", "trial", "block"], columns="model",
                              values="mean_abs_activation", sort=False).reset_index()
    wide.columns.name = None
    wide["zeroed_ratio"] = wide["zeroed"] / wide["intact"]
    columns = [c for c in ("intact", "zeroed", "retrained", "zeroed_ratio") if c in wide]
    tidy = wide.groupby(keys, sort=False)["trial"].agg(n="count").reset_index()
    ablated = blocks.groupby(["dataset", "experiment"], sort=False)["ablated_block"].agg(
        lambda s: ", ".join(pd.unique(s))).rename("ablated_block").reset_index()
    tidy = tidy.merge(ablated, on=["dataset", "experiment"])
    for column in columns:
        tidy = tidy.merge(summarise(wide, keys, column).drop(columns="n"), on=keys)
    tidy["order"] = tidy["block"].map(block_order)
    tidy = tidy.sort_values(["order"], kind="stable")
    tidy = pd.concat([part for _, part in tidy.groupby(["dataset", "experiment"], sort=False)])
    tidy = tidy.drop(columns="order").reset_index(drop=True)
    labels = {"intact": "Intact", "zeroed": "Zeroed", "retrained": "Retrained",
              "zeroed_ratio": "Zeroed / intact"}
    for column in columns:
        tidy[f"{column}_cell"] = [fmt_mean_std(m, s, _decimals(m)) for m, s in
                                  zip(tidy[f"{column}_mean"], tidy[f"{column}_std"])]
    display = pd.DataFrame({"Data set": tidy["dataset"], "Experiment": tidy["experiment"],
                            "Ablated": tidy["ablated_block"], "Block": tidy["block"],
                            "Trials": tidy["n"].astype(str)})
    for column in columns:
        display[labels[column]] = tidy[f"{column}_cell"]
    return ReportTable(TABLES["activation"], "Block activations", "Mean |conv2 output| of every "
                       "block on the test split, intact, with the ablated block's dendrites "
                       "zeroed and retrained without them, and zeroed / intact, mean ± std "
                       "over trials; blocks in the network's order.", tidy, display)


def table_dice_time(models: pd.DataFrame) -> ReportTable:
    """The Dice:time ratio (paper §5.2): test Dice over training seconds per epoch of each
    fully trained model, mean ± std over trials per data set and experiment, beside its two
    terms, with the backend and device that measured the seconds (``models`` from
    :func:`dice_time`)."""
    keys = ["dataset", "experiment"]
    tidy = summarise(models, keys, "dice_time")
    for column, prefix in (("test_dice", "dice"), ("seconds_per_epoch", "seconds")):
        tidy = tidy.merge(summarise(models, keys, column, prefix).drop(columns="n"), on=keys)
    for column in ("keras_backend", "device"):
        tidy = tidy.merge(models.groupby(keys, sort=False)[column].agg(
            lambda s: ", ".join(pd.unique(s.astype(str)))).reset_index(), on=keys)
    for prefix in ("dice_time", "dice", "seconds"):
        # Dice with three decimals as in Table 2; seconds and ratios span decades across set-ups.
        tidy[f"{prefix}_cell"] = [fmt_mean_std(m, s, 3 if prefix == "dice" else _decimals(m))
                                  for m, s in zip(tidy[f"{prefix}_mean"], tidy[f"{prefix}_std"])]
    display = pd.DataFrame({"Data set": tidy["dataset"], "Experiment": tidy["experiment"],
                            "Trials": tidy["n"].astype(str), "Test Dice": tidy["dice_cell"],
                            "Seconds / epoch": tidy["seconds_cell"],
                            "Dice:time (1/s)": tidy["dice_time_cell"],
                            "Backend": tidy["keras_backend"], "Device": tidy["device"]})
    return ReportTable(TABLES["dice_time"], "Dice:time", "Test Dice over training seconds per "
                       "epoch of the fully trained best genome of each search (paper §5.2), "
                       "mean ± std over trials, with the backend and device that measured the "
                       "seconds.", tidy, display)


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


def paired_comparison(pairs: pd.DataFrame, first: str = BRACTIVATE, second: str = CONTROL) -> ReportTable:
    """Mean and std of the per-trial Dice differences per data set and a paired t test
    (``scipy.stats.ttest_rel``) where there are at least two pairs that are not all equal."""
    from scipy.stats import ttest_rel

    rows = []
    for dataset, group in pairs.groupby("dataset", sort=False):
        diff = group["difference"].to_numpy(float)
        same = int(group["same_genome"].sum())
        row = {"dataset": dataset, "n": len(diff), "same_genome": same, "mean_difference": diff.mean(),
               "std_difference": diff.std(ddof=1) if len(diff) > 1 else np.nan,
               "t": np.nan, "p": np.nan}
        if same == len(diff):
            row["test"] = "same genome in every trial"
        elif len(diff) < 2:
            row["test"] = "n too small"
        elif np.ptp(diff) == 0:
            row["test"] = "differences all equal"
        else:
            result = ttest_rel(group[f"test_dice_{first}"], group[f"test_dice_{second}"])
            row.update(t=float(result.statistic), p=float(result.pvalue), test="paired t")
        row["differences"] = ", ".join(f"{d:+.3f}" for d in diff)
        rows.append(row)
    tidy = pd.DataFrame(rows, columns=["dataset", "n", "same_genome", "mean_difference", "std_difference",
                                       "t", "p", "test", "differences"])
    tidy["cell"] = [fmt_mean_std(m, s) for m, s in zip(tidy["mean_difference"], tidy["std_difference"])]
    display = pd.DataFrame({
        "Data set": tidy["dataset"], "Trials": tidy["n"].astype(str),
        "Same genome": [f"{s}/{n}" for s, n in zip(tidy["same_genome"], tidy["n"])],
        "Per-trial difference": tidy["differences"], "Mean ± std": tidy["cell"],
        "t": [f"{t:.2f}" if np.isfinite(t) else MISSING for t in tidy["t"]],
        "p": [f"{p:.3g}" if np.isfinite(p) else note for p, note in zip(tidy["p"], tidy["test"])],
    })
    label = f"{MODEL_NAMES.get(first, first)} − {MODEL_NAMES.get(second, second)}"
    caption = (f"Paired test Dice difference {label} per data set (trials paired by seed) and a paired t "
               "test; 'Same genome': trials in which both searches ended on the same genome.")
    return ReportTable(f"paired_{first}_{second}", "Paired comparison", caption, tidy, display)


def _pivot(tidy: pd.DataFrame, rows: str, row_label: str, columns: str) -> pd.DataFrame:
    wide = tidy.pivot(index=rows, columns=columns, values="cell")
    wide = wide.reindex(index=pd.unique(tidy[rows]), columns=pd.unique(tidy[columns]))
    wide = wide.fillna(MISSING).reset_index().rename(columns={rows: row_label})
    wide.columns.name = None
    return wide


# -------------------------------------------------------------------------------- writers


def to_markdown(table: ReportTable) -> str:
    """A GitHub-flavoured Markdown table under a caption line."""
    display = table.display.astype(str)
    header = list(display.columns)
    lines = [f"**{table.title}.** {table.caption}", "",
             "| " + " | ".join(header) + " |",
             "|" + "|".join("---:" if _numeric(display[c]) else ":---" for c in header) + "|"]
    lines += ["| " + " | ".join(v.replace("|", r"\|") for v in row) + " |"
              for row in display.itertuples(index=False)]
    return "\n".join(lines) + "\n"


def _numeric(column: pd.Series) -> bool:
    """Whether a display column holds numbers (right-aligned) rather than names."""
    return bool(column.str.match(r"^[-+–]?\d|^–$").all())


_LATEX_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#",
                  "_": r"\_", "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}",
                  "^": r"\textasciicircum{}"}
_LATEX_TEXT = {"±": r"$\pm$", "–": "--", "−": "$-$"}


def latex_escape(text: str) -> str:
    """Escape LaTeX's special characters; ± as ``$\\pm$``, the en dash as ``--``, a minus
    sign before a number as ``$-$``."""
    out = "".join(_LATEX_SPECIAL.get(ch, ch) for ch in str(text))
    for char, replacement in _LATEX_TEXT.items():
        out = out.replace(char, replacement)
    return re.sub(r"(?<![\w.-])-(?=\d)", "$-$", out)  # a minus sign, not a hyphen


def to_latex(table: ReportTable) -> str:
    """A ``table`` float with a booktabs ``tabular`` (needs ``\\usepackage{booktabs}``)."""
    display = table.display.astype(str)
    spec = "".join("r" if _numeric(display[c]) else "l" for c in display.columns)
    lines = [r"\begin{table}[ht]", r"\centering",
             rf"\caption{{{latex_escape(table.caption)}}}", rf"\label{{tab:{table.name}}}",
             rf"\begin{{tabular}}{{{spec}}}", r"\toprule",
             " & ".join(latex_escape(c) for c in display.columns) + r" \\", r"\midrule"]
    lines += [" & ".join(latex_escape(v) for v in row) + r" \\" for row in display.itertuples(index=False)]
    lines += [r"\bottomrule", r"\end{tabular}", r"\end{table}"]
    return "\n".join(lines) + "\n"


def to_html(display: pd.DataFrame, title: str, caption: str) -> str:
    """A standalone HTML page of ``display`` under its caption: what the Snakemake report
    shows for a table (it only offers TSV files for download)."""
    import html

    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in display.columns)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in row) + "</tr>\n"
                   for row in display.astype(str).itertuples(index=False))
    return (f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{html.escape(title)}"
            "</title><style>body{font-family:sans-serif;font-size:14px;background:#fff;color:#111}"
            "table{border-collapse:collapse}th,td{padding:2px 8px;border-bottom:1px solid #ccc;"
            "text-align:left}caption{text-align:left;padding-bottom:6px}</style></head><body>\n"
            f"<table><caption><b>{html.escape(title)}.</b> {html.escape(caption)}</caption>\n"
            f"<thead><tr>{head}</tr></thead><tbody>\n{body}</tbody></table>\n</body></html>\n")


def write_report_table(table: ReportTable, tsv, md, tex, html=None) -> None:
    """Write ``table`` as TSV (tidy), Markdown, LaTeX and, where ``html`` is given, HTML
    (display), each atomically."""
    write_table(tsv, table.tidy)
    write_text(md, to_markdown(table))
    write_text(tex, to_latex(table))
    if html is not None:
        write_text(html, to_html(table.display, table.title, table.caption))


def tables_job(*, train, baselines, ablation, histories, outputs, all_train=None) -> dict[str, ReportTable]:
    """Rule ``tables``: load the stage outputs, build every table, write them to ``outputs``
    (``<name>``, ``<name>_md``, ``<name>_tex`` and, where asked for, ``<name>_html`` per
    table; ``paired_trials`` and ``activation_trials``, each with its ``_html`` where asked
    for). ``all_train``: the train metrics of every experiment, for the Dice:time table
    (``train``'s where not given)."""
    train_frame = load_train_metrics(train)
    ablation_frame = load_ablation_metrics(ablation)
    blocks = activation_blocks(ablation_frame)
    baseline_frame = load_baseline_metrics(baselines) if baselines else None
    pairs = paired_trials(train_frame)
    tables = {
        "table2": table2_dice(model_frame(train_frame, baseline_frame)),
        "table3": table3_search_hours(load_search_hours(histories)),
        "ablation": table_ablation(ablation_frame),
        "activation": table_activation(blocks),
        "dice_time": table_dice_time(dice_time(load_train_metrics(all_train) if all_train else train_frame)),
        "paired": paired_comparison(pairs),
    }
    for key, table in tables.items():
        write_report_table(table, outputs[key], outputs[f"{key}_md"], outputs[f"{key}_tex"],
                           outputs.get(f"{key}_html"))
    rows = {"paired_trials": (pairs, "Paired trials", "Per-trial test Dice of main and random."),
            "activation_trials": (blocks, "Block activations per trial", "Mean |conv2| per trial, "
                                  "model and block on the test split, with the model's test Dice.")}
    for key, (frame, title, caption) in rows.items():
        if key in outputs:
            write_table(outputs[key], frame)
        if f"{key}_html" in outputs:
            write_text(outputs[f"{key}_html"], to_html(frame, title, caption))
    return tables
