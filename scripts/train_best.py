"""Rule train_best: train a search's best genome in full and score it on the test split."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/..")  # the package beside the workflow (conda envs too)

from bractivate.runtime import setup_snakemake_job  # noqa: E402

setup_snakemake_job(snakemake)

from bractivate.io import load_dataset  # noqa: E402
from bractivate.pipeline import train_best_job  # noqa: E402

# The same function as `bractivate train`; the network is built with the search's min_size.
wc = snakemake.wildcards
train_best_job(
    snakemake.input.best, load_dataset(snakemake.input.data), snakemake.params.train, seed=snakemake.params.seed,
    model_path=snakemake.output.model, metrics_path=snakemake.output.metrics,
    history_path=snakemake.output.history,
    provenance={"dataset": wc.dataset, "experiment": wc.experiment, "trial": int(wc.trial)},
)
