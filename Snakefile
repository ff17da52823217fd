# Bractivate: evolutionary search of UNet dendritic skip connections (docs/method.md#workflow).
#   snakemake --cores 8 --resources gpu=1                  the paper's full set-up
#   snakemake --cores 2 --configfile presets/demo.yaml     minutes on a laptop CPU
from snakemake.utils import min_version, validate

min_version("9.0")


configfile: "config.yaml"


# A --configfile or --config that names `datasets` replaces config.yaml's data sets instead of
# merging into them, so a preset or a user's own data never drags in the paper's downloads.
# Private API of Snakemake (pinned 9.27.1): `overwrite_config` holds what the command line gave.
# If an upgrade renames it, parsing fails here with an AttributeError, and
# tests/test_workflow.py::test_a_preset_replaces_the_data_sets says so.
if "datasets" in workflow.config_settings.overwrite_config:
    config["datasets"] = workflow.config_settings.overwrite_config["datasets"]


validate(config, "schemas/config.schema.yaml")


include: "rules/common.smk"
include: "rules/data.smk"
include: "rules/search.smk"
include: "rules/train.smk"
include: "rules/ablation.smk"
include: "rules/baselines.smk"
include: "rules/figures.smk"
include: "rules/export.smk"


rule all:
    default_target: True
    input:
        all_targets(),


# Opt-in: `snakemake export_all` (about 10 s a model on a CPU, and the export's own dependencies).
rule export_all:
    input:
        export_outputs(),
