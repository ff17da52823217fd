"""Rules fig4, fig5, fig6, fig7, fig9 and search_traces: draw the rule's figure (PNG and PDF)."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/..")  # the package beside the workflow (conda envs too)

from bractivate.runtime import setup_snakemake_job  # noqa: E402

setup_snakemake_job(snakemake)

from bractivate.figures import figure_job  # noqa: E402

figure_job(
    snakemake.rule, dict(snakemake.input.items()), [snakemake.output.png, snakemake.output.pdf],
    snakemake.params.style,
)
