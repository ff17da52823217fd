"""Helpers the test modules share: small deterministic data sets, the workflow copied to a
temporary folder, a local HTTP server for downloads and fake stage outputs for the report.
Test modules import from here, never from each other."""

from __future__ import annotations

import hashlib
import json
import math
import shutil
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING

import h5py
import numpy as np
import pandas as pd
from PIL import Image

from bractivate.genome import block_names, random_genome
from bractivate.io import Dataset
from bractivate.search import HISTORY_COLUMNS

if TYPE_CHECKING:  # the search settings import Keras; only tiny_settings needs them
    from bractivate.evaluation import SearchSettings

# The workflow in a temporary folder

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
# The package too: the scripts import the one beside the Snakefile, so the copy tests this checkout.
WORKFLOW_FILES = ("Snakefile", "rules", "scripts", "schemas", "presets", "envs", "profiles", "report", "config.yaml",
                  "bractivate")


def snakemake(*args, cwd=ROOT, timeout=600, check=True) -> subprocess.CompletedProcess:
    """Run this environment's ``snakemake`` with ``args`` in ``cwd``; with ``check``, a failure
    raises an AssertionError that carries the ends of its stdout and stderr."""
    done = subprocess.run([str(BIN / "snakemake"), *args], cwd=cwd, capture_output=True, text=True, timeout=timeout)
    if check and done.returncode != 0:
        raise AssertionError(f"snakemake {' '.join(args)} failed:\n{done.stdout[-4000:]}\n{done.stderr[-6000:]}")
    return done


def copy_workflow(dest: Path) -> Path:
    """Copy the workflow's files (``WORKFLOW_FILES``) of this checkout into ``dest``."""
    for name in WORKFLOW_FILES:
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, dest / name)
        elif src.exists():
            shutil.copy(src, dest / name)
    return dest


# Data sets and settings

def blob_dataset(n: int = 32, size: int = 64, seed: int = 0) -> Dataset:
    """Bright discs on a noisy background; the mask is the discs. 70/10/20 split."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    images = np.empty((n, size, size, 1), "float32")
    masks = np.empty((n, size, size, 1), "uint8")
    for i in range(n):
        mask = np.zeros((size, size), bool)
        for _ in range(rng.integers(1, 4)):
            cy, cx = rng.integers(8, size - 8, 2)
            mask |= (yy - cy) ** 2 + (xx - cx) ** 2 < rng.integers(4, 10) ** 2
        image = 0.6 * mask + 0.2 + 0.1 * rng.standard_normal((size, size))
        image = (image - image.min()) / (image.max() - image.min())
        images[i, ..., 0], masks[i, ..., 0] = image, mask
    order = rng.permutation(n)
    n_train, n_val = round(0.7 * n), round(0.1 * n)
    splits = {"train": np.sort(order[:n_train]), "val": np.sort(order[n_train:n_train + n_val]),
              "test": np.sort(order[n_train + n_val:])}
    return Dataset(images, masks, splits, [f"blob{i}" for i in range(n)], {"source": "test"})


def blob_folder(root: Path, n: int, seed: int, masks: bool = True, size: tuple[int, int] = (24, 20)) -> None:
    """``n`` grayscale images of a bright disc on noise (and its mask), of a native size that is
    not the model's."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size[0], :size[1]]
    (root / "images").mkdir(parents=True)
    if masks:
        (root / "masks").mkdir()
    for i in range(n):
        cy, cx = rng.integers(7, size[0] - 7), rng.integers(7, size[1] - 7)
        disc = (yy - cy) ** 2 + (xx - cx) ** 2 < 36
        image = np.clip(0.6 * disc + 0.2 + 0.08 * rng.standard_normal(size), 0, 1)
        Image.fromarray((image * 255).astype(np.uint8)).save(root / "images" / f"s{i}.png")
        if masks:
            Image.fromarray((disc * 255).astype(np.uint8)).save(root / "masks" / f"s{i}.png")


def tiny_settings(**overrides) -> SearchSettings:
    """Search settings that run in seconds; ``overrides`` replace single fields."""
    from bractivate.evaluation import SearchSettings

    values = dict(population=3, evaluations=6, epochs=2, patience=1, min_delta=0.0, batch_size=8,
                  depth_range=(1, 2), filter_range=(2, 4), time_measure="flops", execution="eager", seed=0)
    values.update(overrides)
    return SearchSettings(**values)


# Downloads

PAYLOAD = bytes(range(256)) * 400  # 100 kB
DIGEST = hashlib.sha256(PAYLOAD).hexdigest()
FAST = dict(retries=2, backoff=0.01, timeout=5, progress=False)


class Server:
    """A local server whose routes behave as the test asks; records every request's Range."""

    def __init__(self):
        self.routes: dict[str, str] = {}
        self.bodies: dict[str, bytes] = {}  # what an "ok" route serves; PAYLOAD by default
        self.requests: list[tuple[str, str | None]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                rng = self.headers.get("Range")
                outer.requests.append((self.path, rng))
                kind = outer.routes.get(self.path, "404")
                if kind == "404":
                    self.send_error(404)
                    return
                if kind == "500":
                    self.send_error(500)
                    return
                body = b"not the file" * 100 if kind == "wrong" else outer.bodies.get(self.path, PAYLOAD)
                first_try = sum(p == self.path for p, _ in outer.requests) == 1
                start = int(rng.split("=")[1].split("-")[0]) if rng else 0
                if start >= len(body):
                    self.send_error(416)
                    return
                if start:
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
                else:
                    self.send_response(200)
                self.send_header("Content-Length", str(len(body) - start))
                self.end_headers()
                if kind == "drop" and first_try:
                    self.wfile.write(body[: len(body) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.wfile.write(body[start:])

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.01,), daemon=True)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}{path}"


# Stage outputs for the tables and figures

DATASETS = ("lungs", "em_cells")  # an underscore, to exercise LaTeX escaping
TRIALS = (1, 2, 3)
EXPERIMENTS = {"main": ("els", [2, 5]), "random": ("els", [2, 5]), "deep5": ("els", [5, 10]),
               "deep7": ("els", [7, 10]), "bcl": ("bcl", [2, 5])}
BASELINES = ("unet", "unetpp")


def dump_json(path: Path, obj) -> str:
    """Write ``obj`` as JSON to ``path``, its folders made; return the path as a string."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj))
    return str(path)


def _history(path: Path, rng, fail_first: bool, provenance: dict) -> str:
    rows = []
    for evaluation in range(8):
        failed = (fail_first and evaluation < 2) or evaluation == 5
        score = math.inf if failed else float(rng.uniform(0.1, 1.0))
        rows.append({"evaluation": evaluation, "genome_hash": f"{evaluation:016x}", "origin": "initial",
                     "parent_hash": "", "depth": 2, "filters": 8, "edges": "[]", "params": 1000,
                     "seconds_per_epoch": 1.0, "train_seconds": 3.0, "evaluate_seconds": 0.5, "attempt": 1,
                     "flops_per_epoch": 1e9, "epochs": 3,
                     "elapsed_seconds": float(rng.uniform(60, 3000)),
                     "val_bcl": score, "val_dice": 0.5, "score": score, "activity": "{}",
                     "outcome": "failed" if failed else "ok", "error": "OOM" if failed else ""})
    path.parent.mkdir(parents=True, exist_ok=True)
    frame = pd.DataFrame(rows, columns=HISTORY_COLUMNS)
    for i, (key, value) in enumerate(provenance.items()):
        frame.insert(i, key, value)
    frame.to_csv(path, sep="\t", index=False)
    return str(path)


KINDS = ("train", "best", "history", "ablation", "activations", "baselines")
ABLATION_MODELS = ("intact", "zeroed", "retrained")


def block_levels(depth: int) -> list[int]:
    """The resolution level of each block of ``block_names(depth)`` (0 is the input's)."""
    return list(range(depth)) + [depth] + list(reversed(range(depth)))


def write_stage_outputs(root: Path, datasets=DATASETS, trials=TRIALS, seed: int = 0) -> dict[str, list[str]]:
    """Every stage output the tables and figures read, with random but fixed values, laid out
    as the workflow writes them under ``root``. Returns the paths by kind."""
    rng = np.random.default_rng(seed)
    results = root / "results"
    out = {kind: [] for kind in KINDS}
    for dataset in datasets:
        for experiment, (loss, depth_range) in EXPERIMENTS.items():
            for trial in trials:
                genome = random_genome(rng, tuple(depth_range), (4, 16))
                activity = {b: float(rng.uniform(0, 2)) for b in block_names(genome.depth)}
                params = int(rng.integers(10**4, 10**6))
                result = {"evaluation": 3, "genome_hash": genome.hash, "params": params,
                          "val_dice": float(rng.uniform(0.5, 0.9)), "score": float(rng.uniform(0.1, 1)),
                          "activity": activity, "outcome": "ok"}
                settings = {"loss": loss, "depth_range": depth_range, "seed": trial,
                            "mutation": "random" if experiment == "random" else "dendritic"}
                run = results / "search" / dataset / experiment / f"trial{trial}"
                out["best"].append(dump_json(run / "best_genome.json", {
                    "genome": genome.to_dict(), "result": result, "settings": settings,
                    "dataset": dataset, "experiment": experiment, "trial": trial}))
                out["history"].append(_history(run / "history.tsv", rng, fail_first=trial == 1, provenance={
                    "dataset": dataset, "experiment": experiment, "trial": trial}))
                metrics = results / "train" / dataset / experiment / f"trial{trial}" / "metrics.json"
                out["train"].append(dump_json(metrics, {
                    "dataset": dataset, "experiment": experiment, "trial": trial, "genome_hash": genome.hash,
                    "seed": trial, "test_dice": float(rng.uniform(0.6, 0.95)), "test_bcl": 0.3,
                    "val_dice": 0.8, "val_bcl": 0.3, "params": params, "epochs": 20, "best_epoch": 12,
                    "seconds_per_epoch": float(rng.uniform(0.5, 5)), "n_test": 8,
                    "keras_backend": "torch", "device": "cpu"}))
        for model in BASELINES:
            for trial in trials:
                metrics = results / "baselines" / dataset / model / f"trial{trial}" / "metrics.json"
                out["baselines"].append(dump_json(metrics, {
                    "dataset": dataset, "model": model, "trial": trial, "seed": trial,
                    "test_dice": float(rng.uniform(0.6, 0.95)), "test_bcl": 0.3, "val_dice": 0.8,
                    "val_bcl": 0.3, "params": int(rng.integers(10**5, 10**7)), "epochs": 20,
                    "best_epoch": 10, "seconds_per_epoch": 2.0, "n_test": 8}))
        for trial in trials:
            run = results / "ablation" / dataset / f"trial{trial}"
            block = "dec1" if trial < 3 else "mid"
            blocks = block_names(2 + trial % 2)  # depths 3, 2, 3: some blocks in two trials only
            intact = float(rng.uniform(0.8, 0.95))
            activations = {model: {b: float(rng.uniform(0.1, 2)) for b in blocks} for model in ABLATION_MODELS}
            out["ablation"].append(dump_json(run / "metrics.json", {
                "dataset": dataset, "trial": trial, "experiment": "main", "genome_hash": f"{trial:016x}",
                "block": block, "block_activity": 1.5, "edges": [{"src": "enc0", "dst": block, "op": "add"}],
                "intact_dice": intact, "zeroed_dice": intact - float(rng.uniform(0, 0.3)),
                "retrained_dice": intact - float(rng.uniform(-0.05, 0.1)),
                # a control block in trials 1 and 2 only (trial 3's genome has one receiving block)
                "control_block": "dec0" if trial < 3 else None,
                "control_zeroed_dice": intact - float(rng.uniform(0, 0.05)) if trial < 3 else None,
                "control_retrained_dice": intact - float(rng.uniform(-0.05, 0.05)) if trial < 3 else None,
                "params_intact": 50000, "params_retrained": 48000, "blocks": blocks,
                "mean_abs_activation": activations}))
            with h5py.File(run / "activations.h5", "w") as h5:
                h5["images"] = rng.uniform(0, 1, (4, 32, 32, 1)).astype("float32")
                h5["masks"] = (rng.uniform(0, 1, (4, 32, 32, 1)) > 0.5).astype("float32")
                for model in ABLATION_MODELS:
                    for level, name in zip(block_levels(len(blocks) // 2), blocks):
                        if model == "retrained" and name == block:
                            continue  # a model without one of the blocks
                        size = 32 // 2**level
                        h5[f"maps/{model}/{name}"] = rng.uniform(0, 2, (4, size, size)).astype("float32")
                h5.attrs.update(block=block, layer="conv2", blocks=",".join(blocks), dataset=dataset, trial=trial)
                h5.create_group("activity").attrs.update({"enc0": 0.2, block: 1.5})
            out["activations"].append(str(run / "activations.h5"))
    return out
