"""Rule download: fetch and verify a data set's files, or generate its synthetic stand-in."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/..")  # the package beside the workflow (conda envs too)

from bractivate.runtime import setup_snakemake_job  # noqa: E402

setup_snakemake_job(snakemake)

from bractivate.data import obtain  # noqa: E402
from bractivate.io import write_json  # noqa: E402

root = obtain(snakemake.wildcards.dataset, snakemake.params.entry, snakemake.params.root)
write_json(snakemake.output.manifest, {"dataset": snakemake.wildcards.dataset, "root": str(root),
                                       "entry": snakemake.params.entry})
