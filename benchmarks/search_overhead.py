"""Search overhead: the share of a search's wall time spent outside training epochs (model
build, compile, the val pass with the activity probe, FLOPs count, state and history I/O), on
the demo's lungs data, with the demo's search settings, or (``--paper-epochs``) the paper's
epochs and early stopping (config.yaml's search: 50 epochs, patience 10, min_delta 0.05), or
(``--epochs N``) N epochs without early stopping, so that two executions train the same epochs.

    KERAS_BACKEND=torch python benchmarks/search_overhead.py [--execution eager|auto|graph|torch]
        [--evaluations 8] [--paper-epochs | --epochs N]

Training time is the search history's ``train_seconds``: the wall time of every epoch of every
evaluation (its training steps and its validation). Everything else the search spent is
overhead. Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import keras
import pandas as pd
import yaml

from bractivate.data import prepare
from bractivate.evaluation import SearchSettings
from bractivate.io import load_dataset
from bractivate.search import run_search
from common import machine, workflow_config

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--execution", default="eager", choices=["eager", "auto", "graph", "torch"])
    parser.add_argument("--evaluations", type=int, default=8)
    budget = parser.add_mutually_exclusive_group()
    budget.add_argument("--paper-epochs", action="store_true", help="config.yaml's epochs, patience and min_delta")
    budget.add_argument("--epochs", type=int, help="this many epochs each, without early stopping")
    args = parser.parse_args()
    demo = yaml.safe_load((ROOT / "presets/demo.yaml").read_text())
    settings = {**demo["search"], "evaluations": args.evaluations, "execution": args.execution,
                "depth_range": [2, 5]}
    if args.paper_epochs:
        paper = workflow_config()["search"]
        settings.update({key: paper[key] for key in ("epochs", "patience", "min_delta")})
    elif args.epochs is not None:
        settings.update(epochs=args.epochs, patience=args.epochs, min_delta=0.0)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        prepare("lungs", demo["datasets"]["lungs"], tmp / "raw", tmp / "lungs.h5", image_size=demo["image_size"])
        data = load_dataset(tmp / "lungs.h5")
        start = time.perf_counter()
        run_search(data, SearchSettings.from_dict(settings), tmp / "state.json", tmp / "history.tsv")
        total = time.perf_counter() - start
        history = pd.read_csv(tmp / "history.tsv", sep="\t")
    training = float(history["train_seconds"].sum())
    print(json.dumps({
        "benchmark": "search_overhead", "backend": keras.config.backend(), "execution": args.execution,
        "epochs": settings["epochs"], "machine": machine(),
        "evaluations": len(history), "wall_s": round(total, 2), "training_s": round(training, 2),
        "overhead_share": round(1 - training / total, 4),
        "per_evaluation_overhead_s": round((total - training) / len(history), 3),
    }))


if __name__ == "__main__":
    main()
