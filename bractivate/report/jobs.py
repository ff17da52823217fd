"""The report's table jobs: :data:`TABLE_JOBS` builds each table (the per-trial tables
included) from its named inputs (:data:`bractivate.outputs.TABLE_INPUTS`), and
:func:`table_job` is what the workflow's table rules call, one job per table, so that a change
to one table's inputs reruns that table alone.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Mapping, Sequence

from bractivate.outputs import TABLE_INPUTS, TRIAL_TABLES, table_formats, table_names
from bractivate.report.frames import activation_blocks, dice_time, model_frame, paired_trials
from bractivate.report.loaders import (load_ablation_metrics, load_baseline_metrics, load_search_hours,
                                       load_train_metrics)
from bractivate.report.render import ReportTable, write_formats
from bractivate.report.tables import (paired_comparison, table2_dice, table3_search_hours, table_ablation,
                                      table_activation, table_dice_time)

Inputs = Mapping[str, Sequence[str]]


def _table2(inputs: Inputs) -> ReportTable:
    baselines = load_baseline_metrics(inputs["baselines"]) if inputs["baselines"] else None
    return table2_dice(model_frame(load_train_metrics(inputs["train"]), baselines))


def _table3(inputs: Inputs) -> ReportTable:
    return table3_search_hours(load_search_hours(inputs["histories"]))


def _ablation(inputs: Inputs) -> ReportTable:
    return table_ablation(load_ablation_metrics(inputs["ablation"]))


def _activation(inputs: Inputs) -> ReportTable:
    return table_activation(activation_blocks(load_ablation_metrics(inputs["ablation"])))


def _dice_time(inputs: Inputs) -> ReportTable:
    return table_dice_time(dice_time(load_train_metrics(inputs["all_train"])))


def _paired(inputs: Inputs) -> ReportTable:
    return paired_comparison(paired_trials(load_train_metrics(inputs["train"])))


def _rows(frame, key: str, title: str, caption: str) -> ReportTable:
    """A per-trial table: the frame itself is both its TSV and its HTML page."""
    return ReportTable(TRIAL_TABLES[key], title, caption, frame, frame)


def _paired_trials(inputs: Inputs) -> ReportTable:
    return _rows(paired_trials(load_train_metrics(inputs["train"])), "paired_trials", "Paired trials",
                 "Per-trial test Dice of main and random.")


def _activation_trials(inputs: Inputs) -> ReportTable:
    return _rows(activation_blocks(load_ablation_metrics(inputs["ablation"])), "activation_trials",
                 "Block activations per trial", "Mean |conv2| per trial, model and block on the test "
                 "split, with the model's test Dice.")


TABLE_JOBS: dict[str, Callable[[Inputs], ReportTable]] = {
    "table2": _table2, "table3": _table3, "ablation": _ablation, "activation": _activation,
    "dice_time": _dice_time, "paired": _paired, "paired_trials": _paired_trials,
    "activation_trials": _activation_trials,
}


def _paths(value) -> list[str]:
    return [value] if isinstance(value, (str, Path)) else list(value)


def table_job(key: str, inputs: Inputs, outputs: Mapping[str, str | Path]) -> ReportTable:
    """A table rule: build table ``key`` from its named inputs (lists of paths, or one path)
    and write it to ``outputs`` (format -> path, the formats of
    :func:`bractivate.outputs.table_formats`)."""
    if key not in TABLE_JOBS:
        raise ValueError(f"unknown table {key!r}; expected one of {sorted(TABLE_JOBS)}")
    missing = [name for name in TABLE_INPUTS[key] if name not in inputs]
    if missing:
        raise ValueError(f"table {key}: inputs {missing} missing (expected {list(TABLE_INPUTS[key])})")
    unexpected = sorted(set(outputs) - set(table_formats(key)))
    if unexpected:
        raise ValueError(f"table {key}: outputs {unexpected} unknown (expected {list(table_formats(key))})")
    table = TABLE_JOBS[key]({name: _paths(inputs[name]) for name in TABLE_INPUTS[key]})
    write_formats(table, outputs)
    return table


def tables_job(*, train, baselines, ablation, histories, outputs: Mapping[str, str | Path],
               all_train=None) -> dict[str, ReportTable]:
    """Every table at once, as the per-table rules build them: ``outputs`` names each file
    ``<key>`` (TSV) or ``<key>_<format>``; a table none of whose files is named is skipped.
    ``all_train``: the train metrics of every experiment, for the Dice:time table (``train``'s
    where not given)."""
    inputs = {"train": train, "baselines": baselines, "ablation": ablation, "histories": histories,
              "all_train": all_train or train}
    tables = {}
    for key in table_names():
        paths = {fmt: outputs[name] for fmt in table_formats(key)
                 if (name := key if fmt == "tsv" else f"{key}_{fmt}") in outputs}
        if paths:
            tables[key] = table_job(key, inputs, paths)
    return tables
