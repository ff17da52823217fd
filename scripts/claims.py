"""Rule claims: the paper's claims tested on this run's outputs (docs/method.md#claims)."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/..")  # the package beside the workflow (conda envs too)

from bractivate.runtime import setup_snakemake_job  # noqa: E402

setup_snakemake_job(snakemake)

from bractivate.claims import claims_job  # noqa: E402

claims_job(
    train=snakemake.input.train, searches=snakemake.input.searches,
    ablation=snakemake.input.ablation, baselines=snakemake.input.baselines,
    outputs=dict(snakemake.output.items()),
)
