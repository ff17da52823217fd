"""Table builders: pure functions of the loaders' and derived frames, each returning a
:class:`~bractivate.report.render.ReportTable` (tidy numbers for the TSV, the paper's layout
for Markdown, LaTeX and HTML). Spread is the sample standard deviation over trials
(``ddof=1``); with one trial the TSV leaves it empty (NaN) and the cell shows ``± –``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from bractivate.outputs import BRACTIVATE, CONTROL, TABLES
from bractivate.report.formatting import MISSING, MODEL_NAMES, auto_decimals, fmt_mean_std, fmt_sci
from bractivate.report.frames import block_order, summarise
from bractivate.report.render import ReportTable


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
    tidy["cell"] = [fmt_mean_std(m, s, auto_decimals(m)) for m, s in zip(tidy["hours_mean"], tidy["hours_std"])]
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
        tidy[f"{column}_cell"] = [fmt_mean_std(m, s, auto_decimals(m)) for m, s in
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
        tidy[f"{prefix}_cell"] = [fmt_mean_std(m, s, 3 if prefix == "dice" else auto_decimals(m))
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

