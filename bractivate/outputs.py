"""The report's names, defined once: the experiments it compares, its tables and figures, and
the experiments each is made from. The workflow's rules (``rules/common.smk``,
``rules/figures.smk``), :mod:`bractivate.report` and :mod:`bractivate.figures` read them here,
so renaming an experiment or adding a figure is one edit.
"""

from __future__ import annotations

from typing import Iterable

BRACTIVATE = "main"  # the experiment reported as Bractivate (docs/method.md#experiments)
CONTROL = "random"  # the random-search control
DEPTH_STUDY = (BRACTIVATE, "deep5", "deep7")  # Fig. 5 (docs/method.md#experiments)
LOSS_STUDY = (BRACTIVATE, "bcl")  # Fig. 9: ELS vs BCL selection

# The models of an ablation (docs/method.md#ablation), in this order: the trained one, the most
# active block's dendrites zeroed and retrained without them, and the same two for the control
# block. Metrics keys are ``<model>_dice``; the maps file's groups ``maps/<model>``.
ABLATION_MODELS = ("intact", "zeroed", "retrained", "control_zeroed", "control_retrained")

# The report's tables: the key bractivate.report.jobs.TABLE_JOBS builds each under and the
# file name under results/tables/, each written in every one of TABLE_FORMATS.
TABLES = {
    "table2": "table2_dice",
    "table3": "table3_search_hours",
    "ablation": "table_ablation",
    "activation": "table_activation",
    "dice_time": "table_dice_time",
    "paired": f"paired_{BRACTIVATE}_{CONTROL}",
}
TABLE_FORMATS = ("tsv", "md", "tex", "html")
# The claims rule's table (docs/method.md#claims), written in CLAIMS_FORMATS.
CLAIMS_TABLE = "claims"
CLAIMS_FORMATS = TABLE_FORMATS
# The per-trial rows behind two of the tables, as TSV and HTML.
TRIAL_TABLES = {f"{key}_trials": f"{TABLES[key]}_trials" for key in ("paired", "activation")}
TRIAL_TABLE_FORMATS = ("tsv", "html")

# Each table's and per-trial table's named inputs, the names its job reads them under
# (bractivate.report.jobs.TABLE_JOBS): ``train`` the full trainings of the tables' experiments,
# ``all_train`` those of every experiment, ``baselines``, ``ablation`` (every trial) and
# ``histories`` (the searches' own clocks). The workflow gives each table only these.
TABLE_INPUTS = {
    "table2": ("train", "baselines"),
    "table3": ("histories",),
    "ablation": ("ablation",),
    "activation": ("ablation",),
    "dice_time": ("all_train",),
    "paired": ("train",),
    "paired_trials": ("train",),
    "activation_trials": ("ablation",),
}

FIGURES = ("fig4", "fig5", "fig6", "fig7", "fig9", "search_traces")
FIGURE_FORMATS = ("png", "pdf")
# Each figure's named inputs, the names bractivate.figures.FIGURE_JOBS reads them under:
# ``best`` and ``history`` the searches of the figure's experiments (report_experiments),
# ``metrics`` their full trainings, ``baselines`` every baseline, ``ablation`` and
# ``activations`` the first trial's ablation metrics and maps.
FIGURE_INPUTS = {
    "fig4": ("best",),
    "fig5": ("metrics", "best"),
    "fig6": ("ablation", "activations"),
    "fig7": ("metrics", "baselines"),
    "fig9": ("metrics", "best"),
    "search_traces": ("history",),
}


def table_names() -> dict[str, str]:
    """Every table the report writes, the per-trial ones included: key -> file name."""
    return {**TABLES, **TRIAL_TABLES}


def table_formats(key: str) -> tuple[str, ...]:
    """The formats table ``key`` is written in (a per-trial table only as TSV and HTML)."""
    if key in TABLES:
        return TABLE_FORMATS
    if key in TRIAL_TABLES:
        return TRIAL_TABLE_FORMATS
    raise ValueError(f"unknown table {key!r}; expected one of {sorted(table_names())}")


def report_experiments(experiments: Iterable[str], ablated: str) -> dict[str, tuple[str, ...]]:
    """The experiments the tables (``tables``) and each figure are made from, given the
    config's experiments and the one its ablation takes: the report makes a result only where
    the config defines all of them."""
    return {
        "tables": (BRACTIVATE, CONTROL),
        "claims": (BRACTIVATE,),
        "fig4": (BRACTIVATE,),
        "fig5": DEPTH_STUDY,
        "fig6": (ablated,),
        "fig7": (BRACTIVATE, CONTROL),
        "fig9": LOSS_STUDY,
        "search_traces": tuple(experiments),
    }
