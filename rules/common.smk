# Target lists, input functions and wildcard constraints shared by every stage.
from bractivate.outputs import (
    BRACTIVATE,
    CLAIMS_FORMATS,
    CLAIMS_TABLE,
    CONTROL,
    FIGURE_FORMATS,
    FIGURE_INPUTS,
    FIGURES,
    TABLE_INPUTS,
    table_formats,
    table_names,
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


# Each stage's outputs as the stage's own rule declares them, `rules.<name>.output.<file>`;
# the functions below run only once every rule file is included.


def with_wildcards(pattern, **values):
    """A rule's output pattern with some wildcards filled in, the others left for the job:
    one path, so that the script reads it as one (not a list)."""
    (path,) = expand(pattern, **values, allow_missing=True)
    return path


def search_outputs(experiments=None):
    return expand(
        rules.search.output.best,
        dataset=DATASETS,
        experiment=experiments or EXPERIMENTS,
        trial=TRIALS,
    )


def search_histories(experiments=None):
    return expand(
        rules.search.output.history,
        dataset=DATASETS,
        experiment=experiments or EXPERIMENTS,
        trial=TRIALS,
    )


def train_outputs(experiments=None):
    return expand(
        rules.train_best.output.metrics,
        dataset=DATASETS,
        experiment=experiments or EXPERIMENTS,
        trial=TRIALS,
    )


def export_outputs():
    """The ONNX file and bioimage.io package of every trained model of `export.experiments`."""
    return expand(
        rules.export.output.package,
        dataset=DATASETS,
        experiment=[e for e in config["export"]["experiments"] if e in EXPERIMENTS],
        trial=TRIALS,
    )


def ablation_outputs(trials=None, output="metrics"):
    return expand(
        getattr(rules.ablation.output, output),
        dataset=DATASETS,
        trial=trials or TRIALS,
    )


def baseline_outputs():
    return expand(
        rules.baseline.output.metrics,
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
# Where the report's tables and figures are written.
TABLE_PATH = "results/tables/{table}.{ext}"
FIGURE_PATH = "results/figures/{figure}.{ext}"


def table_path(table, ext):
    return TABLE_PATH.format(table=table, ext=ext)


def figure_path(figure, ext):
    return FIGURE_PATH.format(figure=figure, ext=ext)


def table_inputs(key):
    """Table `key`'s named inputs (bractivate.outputs.TABLE_INPUTS) as the stage outputs."""
    paths = {
        "train": lambda: train_outputs(REPORT_EXPERIMENTS["tables"]),
        "all_train": train_outputs,
        "baselines": baseline_outputs,
        "ablation": ablation_outputs,
        "histories": search_histories,  # Table 3: the searches' own clocks
    }
    return {name: paths[name]() for name in TABLE_INPUTS[key]}


def figure_inputs(figure):
    """Figure `figure`'s named inputs (bractivate.outputs.FIGURE_INPUTS) as the stage outputs
    of its experiments; Fig. 6 shows the maps of one trial per data set."""
    experiments = REPORT_EXPERIMENTS[figure]
    paths = {
        "best": lambda: search_outputs(experiments),
        "history": lambda: search_histories(experiments),
        "metrics": lambda: train_outputs(experiments),
        "baselines": baseline_outputs,
        "ablation": lambda: ablation_outputs(TRIALS[:1]),
        "activations": lambda: ablation_outputs(TRIALS[:1], "maps"),
    }
    return {name: paths[name]() for name in FIGURE_INPUTS[figure]}


def report_outputs():
    """Every table and figure whose experiments config.yaml defines."""
    wanted = [
        name
        for name, experiments in REPORT_EXPERIMENTS.items()
        if set(experiments) <= set(EXPERIMENTS)
    ]
    outputs = []
    if "tables" in wanted:
        outputs += [
            table_path(name, ext)
            for key, name in table_names().items()
            for ext in table_formats(key)
        ]
    if "claims" in wanted:
        outputs += [table_path(CLAIMS_TABLE, ext) for ext in CLAIMS_FORMATS]
    figures = [name for name in FIGURES if name in wanted]
    return outputs + [
        figure_path(figure, ext) for figure in figures for ext in FIGURE_FORMATS
    ]


def all_targets():
    return (
        search_outputs()
        + train_outputs()
        + ablation_outputs()
        + baseline_outputs()
        + report_outputs()
    )
