"""Rule search: run (or resume) one search and write its best genome and history."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/..")  # the package beside the workflow (conda envs too)

from bractivate.runtime import setup_snakemake_job  # noqa: E402

setup_snakemake_job(snakemake)

from bractivate.io import load_dataset  # noqa: E402
from bractivate.pipeline import run_search_job  # noqa: E402
from bractivate.evaluation import SearchSettings  # noqa: E402

wc = snakemake.wildcards
run_search_job(
    load_dataset(snakemake.input.data), SearchSettings.from_dict(snakemake.params.settings),
    snakemake.output.best, snakemake.output.history, snakemake.params.state,
    provenance={"dataset": wc.dataset, "experiment": wc.experiment, "trial": int(wc.trial)},
)
