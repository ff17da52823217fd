"""Rule baseline: train one baseline model under the shared protocol."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/..")  # the package beside the workflow (conda envs too)

from bractivate.runtime import setup_snakemake_job  # noqa: E402

setup_snakemake_job(snakemake)

from bractivate.baselines import build_baseline  # noqa: E402
from bractivate.io import load_dataset  # noqa: E402
from bractivate.pipeline import train_full  # noqa: E402
from bractivate.train import seed_everything, use_precision  # noqa: E402

wc, train = snakemake.wildcards, snakemake.params.train
data = load_dataset(snakemake.input.data)
seed_everything(snakemake.params.seed)
use_precision(train["precision"])
train_full(
    build_baseline(wc.model, data.input_shape, width_scale=snakemake.params.width_scale), data, **train,
    model_path=None,
    metrics_path=snakemake.output.metrics, history_path=snakemake.output.history,
    provenance={"dataset": wc.dataset, "model": wc.model, "trial": int(wc.trial),
                "seed": snakemake.params.seed, "width_scale": snakemake.params.width_scale},
)
