"""Rule train_best: train a search's best genome in full and score it on the test split."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/..")  # the package beside the workflow (conda envs too)

from bractivate.runtime import setup_snakemake_job  # noqa: E402

setup_snakemake_job(snakemake)

from bractivate.genome import Genome  # noqa: E402
from bractivate.io import load_dataset, read_json  # noqa: E402
from bractivate.pipeline import train_genome_job  # noqa: E402

wc, train = snakemake.wildcards, snakemake.params.train
train_genome_job(
    Genome.load(snakemake.input.best), load_dataset(snakemake.input.data), train, seed=snakemake.params.seed,
    model_path=snakemake.output.model, metrics_path=snakemake.output.metrics,
    history_path=snakemake.output.history,
    provenance={"dataset": wc.dataset, "experiment": wc.experiment, "trial": int(wc.trial)},
    min_size=read_json(snakemake.input.best)["settings"]["min_size"],  # the network that was searched
)
