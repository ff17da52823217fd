# Target lists, input functions and wildcard constraints shared by every stage.
from bractivate.outputs import (
    BRACTIVATE,
    CLAIMS_FORMATS,
    CLAIMS_TABLE,
    CONTROL,
    FIGURE_FORMATS,
    FIGURES,
    TABLE_FORMATS,
    TABLES,
    TRIAL_TABLE_FORMATS,
    TRIAL_TABLES,
    report_experiments,
)

# The config is checked in the Snakefile (bractivate.config.check_config_values).
DATASETS = list(config["datasets"])
EXPERIMENTS = list(config["experiments"])
TRIALS = list(range(1, config["trials"] + 1))
BASELINES = config["baselines"]["models"]
ABLATED = config["ablation"]["experiment"]
GPU_RULE_THREADS = config["threads"]


wildcard_constraints:
    dataset="|".join(DATASETS),
    experiment="|".join(EXPERIMENTS),
    trial=r"\d+",
    model="|".join(BASELINES) or "none",


def search_settings(wildcards):
    """The experiment's search settings on top of the shared ones, seeded per trial."""
    settings = {**config["search"], **config["experiments"][wildcards.experiment]}
    return {**settings, "seed": config["seed"] + int(wildcards.trial)}


def baseline_backend(wildcards):
    """keras-unet-collection builds its models with tensorflow.keras; NAS-UNet is our own."""
    return config["keras_backend"] if wildcards.model == "nasunet" else "tensorflow"


def raw_input(wildcards):
    """Where preprocess reads a data set: the download manifest, or the user's own folder."""
    entry = config["datasets"][wildcards.dataset]
    if entry["source"] == "path":
        return entry["path"]
    return f"resources/raw/{wildcards.dataset}.json"


def search_outputs(experiments=None):
    return expand(
        "results/search/{dataset}/{experiment}/trial{trial}/best_genome.json",
        dataset=DATASETS,
        experiment=experiments or EXPERIMENTS,
        trial=TRIALS,
    )


def train_outputs(experiments=None):
    return expand(
        "results/train/{dataset}/{experiment}/trial{trial}/metrics.json",
        dataset=DATASETS,
        experiment=experiments or EXPERIMENTS,
        trial=TRIALS,
    )


def export_outputs():
    """The ONNX file and bioimage.io package of every trained model of `export.experiments`."""
    return expand(
        "results/export/{dataset}/{experiment}/trial{trial}",
        dataset=DATASETS,
        experiment=[e for e in config["export"]["experiments"] if e in EXPERIMENTS],
        trial=TRIALS,
    )


def ablation_outputs():
    return expand(
        "results/ablation/{dataset}/trial{trial}/metrics.json",
        dataset=DATASETS,
        trial=TRIALS,
    )


def baseline_outputs():
    return expand(
        "results/baselines/{dataset}/{model}/trial{trial}/metrics.json",
        dataset=DATASETS,
        model=BASELINES,
        trial=TRIALS,
    )


# The experiments each result is made from (docs/method.md#experiments), and the tables' and figures' names:
# bractivate.outputs holds them for these rules and for bractivate.report and bractivate.figures.
REPORT_EXPERIMENTS = report_experiments(EXPERIMENTS, ABLATED)
# The experiments whose full trainings the claims compare (docs/method.md#claims), where configured.
CLAIM_EXPERIMENTS = [
    e for e in (BRACTIVATE, CONTROL, "bcl", "deep5", "deep7") if e in EXPERIMENTS
]
SEARCH_HISTORIES = expand(
    "results/search/{dataset}/{experiment}/trial{trial}/history.tsv",
    dataset=DATASETS,
    experiment=EXPERIMENTS,
    trial=TRIALS,
)


def report_outputs():
    """Every table and figure whose experiments config.yaml defines."""
    wanted = [
        name
        for name, experiments in REPORT_EXPERIMENTS.items()
        if set(experiments) <= set(EXPERIMENTS)
    ]
    outputs = []
    if "tables" in wanted:
        outputs += expand(
            "results/tables/{table}.{ext}", table=TABLES.values(), ext=TABLE_FORMATS
        )
        outputs += expand(
            "results/tables/{table}.{ext}",
            table=TRIAL_TABLES.values(),
            ext=TRIAL_TABLE_FORMATS,
        )
    if "claims" in wanted:
        outputs += expand(
            "results/tables/{table}.{ext}", table=CLAIMS_TABLE, ext=CLAIMS_FORMATS
        )
    figures = [name for name in FIGURES if name in wanted]
    return outputs + expand(
        "results/figures/{figure}.{ext}", figure=figures, ext=FIGURE_FORMATS
    )


def all_targets():
    return (
        search_outputs()
        + train_outputs()
        + ablation_outputs()
        + baseline_outputs()
        + report_outputs()
    )
