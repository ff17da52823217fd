"""Rule ablation: zero and retrain the dendrites of a trained model's most active block."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/..")  # the package beside the workflow (conda envs too)

from bractivate.runtime import setup_snakemake_job  # noqa: E402

setup_snakemake_job(snakemake)

import keras  # noqa: E402

from bractivate.ablation import run_ablation  # noqa: E402
from bractivate.genome import Genome  # noqa: E402
from bractivate.io import load_dataset, read_json  # noqa: E402

best = read_json(snakemake.input.best)
run_ablation(
    keras.saving.load_model(snakemake.input.model, safe_mode=True), Genome.from_dict(best["genome"]),
    load_dataset(snakemake.input.data), train=snakemake.params.train, seed=snakemake.params.seed,
    activity_mode=best["settings"]["activity"], min_size=best["settings"]["min_size"],
    metrics_path=snakemake.output.metrics,
    maps_path=snakemake.output.maps,
    provenance={"dataset": snakemake.wildcards.dataset, "trial": int(snakemake.wildcards.trial),
                "experiment": best["experiment"]},
)
