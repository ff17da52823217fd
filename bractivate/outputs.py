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

# The tables rule's tables: the key it writes each under (bractivate.report.tables_job) and
# the file name under results/tables/, each written in every one of TABLE_FORMATS.
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

FIGURES = ("fig4", "fig5", "fig6", "fig7", "fig9", "search_traces")
FIGURE_FORMATS = ("png", "pdf")


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
