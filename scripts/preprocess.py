"""Rule preprocess: read the raw layout, resize, normalise, split, write the HDF5 file."""

from pathlib import Path

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/..")  # the package beside the workflow (conda envs too)

from bractivate.runtime import setup_snakemake_job  # noqa: E402

setup_snakemake_job(snakemake)

from bractivate.data import preprocess_stage  # noqa: E402
from bractivate.io import read_json  # noqa: E402

# The download job wrote the raw files and a manifest naming their folder; a `path:` data set is read in place.
raw = Path(snakemake.input.raw)
root = Path(read_json(raw)["root"]) if raw.suffix == ".json" else raw
preprocess_stage(snakemake.wildcards.dataset, snakemake.params.entry, root, snakemake.output.h5,
                 image_size=snakemake.params.image_size, split=snakemake.params.split, seed=snakemake.params.seed)
