"""Where a baseline's training time goes, and what the lean paths save: one baseline trained by
``bractivate.train.fit`` on a synthetic demo-size set, each variant in a process of its own
(the Keras backend is fixed at import), variants alternating over rounds.

    python benchmarks/baseline_fit.py [--models r2unet,unetpp,nasunet] [--rounds 2] [--epochs 30]
        [--profile DIR]

Variants per model:

- keras-unet-collection baselines (TensorFlow backend): ``compiled`` is what ``fit`` does (the
  end-of-epoch statistics re-estimation and validation passes as traced functions), ``eager``
  runs those two passes as eager calls of the model, as ``fit`` did before;
- NAS-UNet (PyTorch backend): ``torch`` (execution ``torch``: its layers replayed as torch
  calls) against ``auto`` (Keras's own training steps).

Each run prints one JSON line: seconds to import Keras, to build the model, for ``fit`` in all,
its first epoch (tracing included), the median of the others and every epoch's, and the seconds
inside the re-estimation and validation passes. The last line gives, per model, the median ``fit``
seconds of each variant and their ratio. With ``--profile DIR`` each run also writes its
``cProfile`` statistics to ``DIR/<model>_<variant>.pstats`` (read them with ``python -m pstats``).
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import machine, synthetic_dataset

ROOT = Path(__file__).resolve().parents[1]
VARIANTS = {"nasunet": ("torch", "auto")}
DEFAULT_VARIANTS = ("compiled", "eager")


def run_one(model_name: str, variant: str, epochs: int, data_path: str) -> dict:
    """One ``fit`` of ``model_name`` on the HDF5 set ``data_path``, in this process (the
    backend is already set)."""
    start = time.perf_counter()
    import keras

    imported = time.perf_counter()
    sys.path.insert(0, str(ROOT))
    from bractivate import train
    from bractivate.baselines import build_baseline
    from bractivate.io import load_dataset

    data = load_dataset(data_path)
    seconds = {"recalibrate": 0.0, "validate": 0.0}

    def timed(name, fn):
        def wrapper(*args, **kwargs):
            t = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                seconds[name] += time.perf_counter() - t
        return wrapper

    train.recalibrate_batchnorm = timed("recalibrate", train.recalibrate_batchnorm)
    train.mean_bce = timed("validate", train.mean_bce)
    if variant == "eager":  # the passes as fit ran them before: eager calls of the model
        train.compiled_forward = lambda model, execution: model
    epoch_seconds = []
    end_of_training = train.ValidateAndStop.on_train_end

    def keep_seconds(self, logs=None):
        epoch_seconds.extend(self.seconds)
        end_of_training(self, logs)

    train.ValidateAndStop.on_train_end = keep_seconds
    train.seed_everything(2)
    model = build_baseline(model_name, data.input_shape, width_scale=0.0625)
    built = time.perf_counter()
    execution = variant if variant in ("torch", "auto") else "torch"
    run = train.fit(model, data, epochs=epochs, batch_size=4, learning_rate=0.01, execution=execution)
    done = time.perf_counter()
    return {"model": model_name, "variant": variant, "backend": keras.config.backend(), "epochs": run.epochs,
            "import_s": round(imported - start, 2), "build_s": round(built - imported, 2),
            "fit_s": round(done - built, 2), "first_epoch_s": round(epoch_seconds[0], 2),
            "median_epoch_s": round(statistics.median(epoch_seconds[1:]), 3),
            "epoch_s": [round(s, 2) for s in epoch_seconds],
            "recalibrate_s": round(seconds["recalibrate"], 2), "validate_s": round(seconds["validate"], 2),
            "machine": machine()}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="r2unet,unetpp,nasunet")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--images", type=int, default=20, help="synthetic em images (the demo's 20)")
    parser.add_argument("--size", type=int, default=64, help="image side after preprocessing (the demo's 64)")
    parser.add_argument("--profile", type=Path, metavar="DIR", help="write each run's cProfile statistics here")
    parser.add_argument("--one", nargs=3, metavar=("MODEL", "VARIANT", "DATA"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.one:
        model, variant, data = args.one
        if args.profile:
            args.profile.mkdir(parents=True, exist_ok=True)
            with cProfile.Profile() as profile:
                result = run_one(model, variant, args.epochs, data)
            profile.dump_stats(args.profile / f"{model}_{variant}.pstats")
        else:
            result = run_one(model, variant, args.epochs, data)
        print(json.dumps(result))
        return
    tmp = Path(tempfile.mkdtemp(prefix="baseline_fit_"))
    data = synthetic_dataset(tmp, "em", args.images, seed=2, image_size=args.size)
    results = []
    for _ in range(args.rounds):
        for name in args.models.split(","):
            for variant in VARIANTS.get(name, DEFAULT_VARIANTS):
                backend = "torch" if name == "nasunet" else "tensorflow"
                env = {**os.environ, "KERAS_BACKEND": backend, "CUDA_VISIBLE_DEVICES": "",
                       "OMP_NUM_THREADS": "1", "TF_NUM_INTRAOP_THREADS": "1", "TF_NUM_INTEROP_THREADS": "1",
                       "TF_CPP_MIN_LOG_LEVEL": "3"}
                done = subprocess.run([sys.executable, __file__, "--one", name, variant, str(data),
                                       "--epochs", str(args.epochs),
                                       *(["--profile", str(args.profile.resolve())] if args.profile else [])],
                                      env=env, capture_output=True, text=True, check=True)
                results.append(json.loads(done.stdout.strip().splitlines()[-1]))
                print(json.dumps(results[-1]), flush=True)
    shutil.rmtree(tmp)
    summary = {}
    for name in args.models.split(","):
        fits = {v: sorted(r["fit_s"] for r in results if r["model"] == name and r["variant"] == v)
                for v in VARIANTS.get(name, DEFAULT_VARIANTS)}
        medians = {v: statistics.median(f) for v, f in fits.items()}
        fast, slow = VARIANTS.get(name, DEFAULT_VARIANTS)
        summary[name] = {**{f"fit_s_{v}": m for v, m in medians.items()},
                         f"ratio_{slow}_over_{fast}": round(medians[slow] / medians[fast], 2)}
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
