# Bractivate: evolutionary search of UNet dendritic skip connections (docs/method.md#workflow).
#   snakemake --cores 8 --resources gpu=1                  the paper's full set-up
#   snakemake --cores 2 --configfile presets/demo.yaml     minutes on a laptop CPU
from snakemake.exceptions import WorkflowError
from snakemake.utils import min_version, validate

from bractivate.compat import command_line_config, config_files
from bractivate.config import (
    check_config_values,
    check_workflow_config,
    stop_on_config_error,
)

min_version("9.0")


configfile: "config.yaml"


# A --configfile or --config that names `datasets` replaces config.yaml's data sets instead of
# merging into them, so a preset or a user's own data never drags in the paper's downloads.
# Private API of Snakemake (bractivate.compat, tests/test_compat.py): what the command line gave.
# If an upgrade renames it, parsing fails here with an AttributeError, and
# tests/test_workflow.py::test_a_preset_replaces_the_data_sets says so.
if "datasets" in command_line_config(workflow):
    config["datasets"] = command_line_config(workflow)["datasets"]


# Snakemake reads config files as YAML 1.1 (`1e-4` is a string) and keeps the last of two equal
# keys: read them again with the project's reader, which refuses a duplicate key and coerces
# `1e-4` where the schema expects a number (docs/reliability.md).
# Private API of Snakemake (bractivate.compat, tests/test_compat.py): config.yaml and every
# --configfile. If an upgrade renames it, parsing fails here with an AttributeError, and
# tests/test_workflow.py::test_config_files_are_read_with_the_project_reader says so.
# Every config error ends the run here, before any job, in one line.
try:
    check_workflow_config(
        config, config_files(workflow), f"{workflow.basedir}/schemas/config.schema.yaml"
    )
    validate(config, "schemas/config.schema.yaml")
    check_config_values(config)
except (ValueError, WorkflowError) as err:
    stop_on_config_error(err)


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
