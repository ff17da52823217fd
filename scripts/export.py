"""Rule export: a trained model as ONNX and a bioimage.io model package (bractivate export)."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/..")  # the package beside the workflow (conda envs too)

from bractivate.runtime import setup_snakemake_job  # noqa: E402

setup_snakemake_job(snakemake)

from bractivate.export import export_model  # noqa: E402

export_model(
    snakemake.input.model, snakemake.output.package, data_path=snakemake.input.data,
    genome_path=snakemake.input.best, tolerance=snakemake.params.tolerance,
    overwrite=True,  # Snakemake removed the folder before the job; a rerun replaces it
)
