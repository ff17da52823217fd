"""The demo's Table 2 under other seeds: `presets/demo.yaml` with `seed` set to each of the given
values (a different seed stands in for another machine's numerics), each in a fresh copy of the
workflow, one after the other.

    python benchmarks/demo_seeds.py [--seeds 1 2 3] [--cores 2]

One JSON line per seed: the wall time of the DAG, every Table 2 test Dice (model × data set, the
mean over the demo's one trial), the lowest of them, and which models were flagged `collapsed`.
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

ROOT = Path(__file__).resolve().parent.parent
WORKFLOW = ("Snakefile", "config.yaml", "rules", "scripts", "schemas", "presets", "envs", "report", "bractivate")


def run_demo(seed: int, cores: int, work: Path) -> dict:
    for name in WORKFLOW:
        source = ROOT / name
        (shutil.copytree if source.is_dir() else shutil.copy)(source, work / name)
    snakemake = Path(sys.executable).with_name("snakemake")
    start = time.perf_counter()
    subprocess.run([str(snakemake), "--cores", str(cores), "--configfile", "presets/demo.yaml",
                    "--config", f"seed={seed}", "--quiet", "rules"], cwd=work, check=True)
    wall = time.perf_counter() - start
    table = pd.read_csv(work / "results/tables/table2_dice.tsv", sep="\t")
    dice = {f"{row.source}/{row.dataset}": round(row.dice_mean, 3) for row in table.itertuples()}
    return {"benchmark": "demo_seeds", "seed": seed, "wall_s": round(wall, 1), "min_dice": min(dice.values()),
            "collapsed": sorted(f"{row.source}/{row.dataset}" for row in table.itertuples() if row.collapsed),
            "table2": dice}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--cores", type=int, default=2)
    args = parser.parse_args()
    for seed in args.seeds:
        with tempfile.TemporaryDirectory() as tmp:
            print(json.dumps(run_demo(seed, args.cores, Path(tmp))), flush=True)


if __name__ == "__main__":
    main()
