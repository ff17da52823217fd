"""Parallel scaling: two search trials of the demo preset run by Snakemake with --cores 2
against --cores 1 (goal: speed-up >= 1.7x). Each run starts from a fresh copy of the workflow
with the data already preprocessed, so only the two search jobs are timed.

    python benchmarks/parallel_scaling.py [--dataset lungs] [--experiment main]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

from common import machine

ROOT = Path(__file__).resolve().parents[1]
SNAKEMAKE = str(Path(sys.executable).parent / "snakemake")
FILES = ("Snakefile", "rules", "scripts", "schemas", "presets", "envs", "profiles", "report", "config.yaml")


def run(work: Path, cores: int, targets: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run([SNAKEMAKE, "--cores", str(cores), "--configfile", "presets/demo.yaml", "--config", "trials=2",
                    "--", *targets],
                   cwd=work, check=True, capture_output=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", default="lungs")
    parser.add_argument("--experiment", default="main")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for name in FILES:
            (shutil.copytree if (ROOT / name).is_dir() else shutil.copy)(ROOT / name, work / name)
        subprocess.run([SNAKEMAKE, "--cores", "2", "--configfile", "presets/demo.yaml", "--",
                        f"resources/{args.dataset}.h5"],
                       cwd=work, check=True, capture_output=True)
        targets = [f"results/search/{args.dataset}/{args.experiment}/trial{t}/best_genome.json" for t in (1, 2)]
        seconds, jobs = {}, {}
        for cores in (1, 2):
            shutil.rmtree(work / "results", ignore_errors=True)
            seconds[cores] = run(work, cores, targets)
            # each search job's own wall time, from its Snakemake benchmark file
            jobs[cores] = [round(float(pd.read_csv(path, sep="\t")["s"].iloc[0]), 1) for path in
                           sorted((work / "results/benchmarks/search").rglob("*.tsv"))]
    print(json.dumps({"benchmark": "parallel_scaling", "machine": machine(),
                      "seconds_cores1": round(seconds[1], 1), "seconds_cores2": round(seconds[2], 1),
                      "speedup": round(seconds[1] / seconds[2], 3),
                      "job_seconds_cores1": jobs[1], "job_seconds_cores2": jobs[2]}))


if __name__ == "__main__":
    main()
