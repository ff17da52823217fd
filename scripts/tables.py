"""Rules table2_dice, table3_search_hours, table_ablation, table_activation, table_dice_time,
paired_main_random and the per-trial tables: build the rule's table and write it in each of its
formats."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/..")  # the package beside the workflow (conda envs too)

from bractivate.runtime import setup_snakemake_job  # noqa: E402

setup_snakemake_job(snakemake)

from bractivate.report.jobs import table_job  # noqa: E402

table_job(snakemake.params.table, dict(snakemake.input.items()), dict(snakemake.output.items()))
