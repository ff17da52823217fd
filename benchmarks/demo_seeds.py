"""The demo's Table 2 under other seeds: `presets/demo.yaml` with `seed` set to each of the given
values (a different seed stands in for another machine's numerics), each in a fresh copy of the
workflow, one after the other.

    python benchmarks/demo_seeds.py [--seeds 1 2 3] [--cores 2] [--table2-only]

One JSON line per seed: the wall time of the DAG, every Table 2 test Dice (model × data set, the
mean over the demo's one trial), the lowest of them, and which models were flagged `collapsed`.
``--table2-only`` runs only the jobs Table 2 is made of (the searches and full trainings of
`main` and `random`, and the baselines), so its wall time is not the demo's.
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

from bractivate.config import read_yaml
from bractivate.outputs import BRACTIVATE, CONTROL
from bractivate.report import load_baseline_metrics, load_train_metrics, model_frame, table2_dice

ROOT = Path(__file__).resolve().parent.parent
WORKFLOW = ("Snakefile", "config.yaml", "rules", "scripts", "schemas", "presets", "envs", "report", "bractivate")


def run_demo(seed: int, cores: int, work: Path, table2_only: bool = False) -> dict:
    for name in WORKFLOW:
        source = ROOT / name
        (shutil.copytree if source.is_dir() else shutil.copy)(source, work / name)
    snakemake = Path(sys.executable).with_name("snakemake")
    datasets = list(read_yaml(work / "presets/demo.yaml")["datasets"])
    models = read_yaml(work / "config.yaml")["baselines"]["models"]
    train = [f"results/train/{d}/{e}/trial1/metrics.json" for d in datasets for e in (BRACTIVATE, CONTROL)]
    baselines = [f"results/baselines/{d}/{m}/trial1/metrics.json" for d in datasets for m in models]
    start = time.perf_counter()
    targets = ["--", *train, *baselines] if table2_only else []
    subprocess.run([str(snakemake), "--cores", str(cores), "--configfile", "presets/demo.yaml",
                    "--config", f"seed={seed}", "--quiet", "rules", *targets], cwd=work, check=True)
    wall = time.perf_counter() - start
    frame = model_frame(load_train_metrics([work / f for f in train]),
                        load_baseline_metrics([work / f for f in baselines]))
    table = table2_dice(frame).tidy
    dice = {f"{row.source}/{row.dataset}": round(row.dice_mean, 3) for row in table.itertuples()}
    return {"benchmark": "demo_seeds", "seed": seed, "table2_only": table2_only, "wall_s": round(wall, 1),
            "min_dice": min(dice.values()),
            "collapsed": sorted(f"{row.source}/{row.dataset}" for row in table.itertuples() if row.collapsed),
            "table2": dice}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--table2-only", action="store_true")
    args = parser.parse_args()
    for seed in args.seeds:
        with tempfile.TemporaryDirectory() as tmp:
            print(json.dumps(run_demo(seed, args.cores, Path(tmp), args.table2_only)), flush=True)


if __name__ == "__main__":
    main()
