"""Rule baseline: train one baseline model under the shared protocol."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/..")  # the package beside the workflow (conda envs too)

from bractivate.runtime import setup_snakemake_job  # noqa: E402

setup_snakemake_job(snakemake)

from bractivate.io import load_dataset  # noqa: E402
from bractivate.pipeline import train_baseline_job  # noqa: E402

wc = snakemake.wildcards
train_baseline_job(
    wc.model, load_dataset(snakemake.input.data), snakemake.params.train, seed=snakemake.params.seed,
    width_scale=snakemake.params.width_scale,
    metrics_path=snakemake.output.metrics, history_path=snakemake.output.history,
    provenance={"dataset": wc.dataset, "trial": int(wc.trial)},
)
