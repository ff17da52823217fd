"""The paper's tables from the stage outputs (docs/method.md#outputs), one job per module:

- :mod:`~bractivate.report.loaders` read each kind of stage output into a tidy frame with its
  provenance (data set, experiment or model, trial, seed, genome hash);
- :mod:`~bractivate.report.frames` derive the frames tables and figures share;
- :mod:`~bractivate.report.formatting` writes numbers and names as the tables show them;
- :mod:`~bractivate.report.tables` builds each table from those frames (pure functions);
- :mod:`~bractivate.report.render` writes a table as TSV, Markdown, LaTeX and HTML;
- :mod:`~bractivate.report.jobs` holds the table registry and the table rules' job.

The names below are the package's public face, importable from ``bractivate.report``.
"""

from bractivate.report.formatting import MISSING, MODEL_NAMES, auto_decimals, fmt_mean_std, fmt_sci
from bractivate.report.frames import (activation_blocks, block_order, dice_time, model_frame, paired_trials,
                                      summarise)
from bractivate.report.jobs import TABLE_JOBS, table_job, tables_job
from bractivate.report.loaders import (load_ablation_metrics, load_baseline_metrics, load_histories,
                                       load_search_hours, load_search_results, load_train_metrics,
                                       read_activations, with_search_settings)
from bractivate.report.render import (ReportTable, latex_escape, to_html, to_latex, to_markdown, write_formats,
                                      write_report_table)
from bractivate.report.tables import (ablation_targets, paired_comparison, table2_dice, table3_search_hours,
                                      table_ablation, table_activation, table_dice_time)

__all__ = [
    "MISSING", "MODEL_NAMES", "TABLE_JOBS", "ReportTable", "ablation_targets", "activation_blocks",
    "auto_decimals", "block_order", "dice_time", "fmt_mean_std", "fmt_sci", "latex_escape",
    "load_ablation_metrics", "load_baseline_metrics", "load_histories", "load_search_hours",
    "load_search_results", "load_train_metrics", "model_frame", "paired_comparison", "paired_trials",
    "read_activations", "summarise", "table2_dice", "table3_search_hours", "table_ablation",
    "table_activation", "table_dice_time", "table_job", "tables_job", "to_html", "to_latex", "to_markdown",
    "with_search_settings", "write_formats", "write_report_table",
]
