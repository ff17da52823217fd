"""Efficiency of what the search finds: the best `main` genome of a finished demo run against a
full-width UNet baseline (7.6e6 parameters) trained on the same data under the same protocol —
parameter ratio, seconds-per-epoch ratio, test Dice difference (the paper claims 1–2 orders of
magnitude fewer parameters and 2x faster training at comparable Dice). Both models are trained
here, one after the other, on TensorFlow (which keras-unet-collection needs), so their epoch
times compare on the same backend.

    ./run.sh demo && KERAS_BACKEND=tensorflow python benchmarks/efficiency.py [--workdir .]
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import yaml

import keras

from bractivate.baselines import build_baseline
from bractivate.genome import Genome
from bractivate.io import load_dataset, read_json
from bractivate.pipeline import train_full, train_genome_job
from bractivate.train import seed_everything
from common import machine, workflow_config


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workdir", default=".", help="folder of a finished demo run")
    parser.add_argument("--width-scale", type=float, default=1.0)
    args = parser.parse_args()
    work = Path(args.workdir)
    demo = yaml.safe_load((work / "presets/demo.yaml").read_text())
    rows = []
    for dataset in demo["datasets"]:
        best = read_json(work / f"results/search/{dataset}/main/trial1/best_genome.json")
        seed = read_json(work / f"results/train/{dataset}/main/trial1/metrics.json")["seed"]
        data = load_dataset(work / f"resources/{dataset}.h5")
        # the protocol of the demo's train_best: config.yaml's train section under the preset's
        train = {"precision": "float32", **workflow_config(work / "presets/demo.yaml")["train"]}
        with tempfile.TemporaryDirectory() as tmp:
            files = {"model_path": None, "metrics_path": Path(tmp) / "m.json", "history_path": Path(tmp) / "h.tsv"}
            ours = train_genome_job(Genome.from_dict(best["genome"]), data, train, seed=seed, **files,
                                    provenance={"dataset": dataset, "model": "bractivate"})
            seed_everything(seed)
            unet = train_full(build_baseline("unet", data.input_shape, width_scale=args.width_scale), data,
                              **train, **files, provenance={"dataset": dataset, "model": "unet"})
        rows.append({"dataset": dataset, "params_bractivate": ours["params"], "params_unet": unet["params"],
                     "param_ratio": round(unet["params"] / ours["params"], 1),
                     "seconds_per_epoch_ratio": round(unet["seconds_per_epoch"] / ours["seconds_per_epoch"], 2),
                     "dice_bractivate": round(ours["test_dice"], 4), "dice_unet": round(unet["test_dice"], 4),
                     "dice_difference": round(ours["test_dice"] - unet["test_dice"], 4)})
    print(json.dumps({"benchmark": "efficiency", "backend": keras.config.backend(), "machine": machine(),
                      "rows": rows}))


if __name__ == "__main__":
    main()
