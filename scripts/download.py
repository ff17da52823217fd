"""Rule download: fetch and verify a data set's files, or generate its synthetic stand-in."""

import sys
import warnings

sys.path.insert(0, f"{snakemake.scriptdir}/..")  # the package beside the workflow (conda envs too)

from bractivate.runtime import setup_snakemake_job  # noqa: E402

setup_snakemake_job(snakemake)

from bractivate.data import FirstUseWarning, obtain, read_checksums  # noqa: E402
from bractivate.io import write_json  # noqa: E402

params = snakemake.params
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always", FirstUseWarning)
    try:
        root = obtain(snakemake.wildcards.dataset, params.entry, params.root,
                      checksums=params.checksums, strict=params.strict)
    finally:  # to the job log and to the terminal, where the user sees a digest trusted on first use
        for warning in caught:
            for stream in (sys.stderr, sys.__stderr__):
                print(f"WARNING: {warning.message}", file=stream)
write_json(snakemake.output.manifest, {"dataset": snakemake.wildcards.dataset, "root": str(root),
                                       "entry": params.entry, "sha256": read_checksums(params.checksums)})
