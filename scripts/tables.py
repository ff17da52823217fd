"""Rule tables: Table 2, Table 3, the ablation and block-activation tables, Dice:time and the
paired main-vs-random comparison."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/..")  # the package beside the workflow (conda envs too)

from bractivate.runtime import setup_snakemake_job  # noqa: E402

setup_snakemake_job(snakemake)

from bractivate.report import tables_job  # noqa: E402

tables_job(
    train=snakemake.input.train, baselines=snakemake.input.baselines,
    ablation=snakemake.input.ablation, histories=snakemake.input.histories,
    outputs=dict(snakemake.output.items()), all_train=snakemake.input.all_train,
)
