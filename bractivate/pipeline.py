"""Stage-level jobs shared by the command line and the workflow's scripts: each reads inputs,
calls the package and writes its outputs atomically."""

from __future__ import annotations

import contextlib
import logging
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import keras
import pandas as pd

from bractivate.baselines import build_baseline
from bractivate.compat import tensorflow_taken_as_unavailable
from bractivate.errors import TrainingFailed
from bractivate.evaluation import SearchSettings, check_setting_types, settings_from_dict
from bractivate.genome import Genome
from bractivate.io import Dataset, atomic_path, read_json, write_json, write_table
from bractivate.model import MIN_SIZE, block_sizes, build_model, count_params
from bractivate.progress import Progress
from bractivate.schema import check_bounds, defaults
from bractivate.search import run_search
from bractivate.train import (accelerator_visible, fit, seed_everything,
                              split_metrics, tensorflow_unused, use_precision)

log = logging.getLogger(__name__)


def _describe_row(row: dict) -> str:
    return (f"{row['genome_hash']} ({row['origin']}) depth={row['genome']['depth']} "
            f"filters={row['genome']['filters']} params={row['params']} epochs={row['epochs']} "
            f"val_dice={row['val_dice']:.3f} score={row['score']:.4g} {row['outcome']}"
            + (f" ({row['error']})" if row["error"] else ""))


def _saved_search(state_path) -> tuple[int, dict | None]:
    """Evaluations a saved search state holds and its best ok row, for the progress report (a
    state that cannot be read counts as none: the search itself says what is wrong with it)."""
    if not Path(state_path).is_file():
        return 0, None
    try:
        rows = read_json(state_path).get("rows") or []
    except (OSError, ValueError, AttributeError):
        return 0, None
    ok = [r for r in rows if isinstance(r, dict) and r.get("outcome") == "ok"]
    return len(rows), min(ok, key=lambda r: r["score"], default=None)


def run_search_job(data: Dataset, settings: SearchSettings, best_path, history_path, state_path,
                   provenance: dict | None = None, stream=None) -> tuple[Genome, dict]:
    """Run or resume a search; write ``best_genome.json`` (genome, its row, settings). Progress
    goes to ``stream`` (standard error): a bar on a terminal, a log line per evaluation otherwise.

    The state must not be one of the outputs, and an output already there must be one a search
    wrote: a user's own file is refused, not replaced (docs/reliability.md)."""
    check_search_outputs(best_path, history_path, state_path)
    done, best = _saved_search(state_path)

    def report(row: dict) -> None:
        nonlocal best
        if row["evaluation"] == 0:  # a new search (also one that replaced a state made on other data)
            best = None
        if row["outcome"] == "ok" and (best is None or row["score"] < best["score"]):
            best = row
        shown = "-" if best is None else f"score {best['score']:.4g} (val Dice {best['val_dice']:.3f})"
        bar.step(row["evaluation"] + 1, shown, _describe_row(row))

    with Progress(settings.evaluations, "evaluation", "search", min(done, settings.evaluations), stream) as bar:
        genome, row = run_search(data, settings, state_path, history_path, on_evaluation=report,
                                 provenance=provenance)
    summary = {k: v for k, v in row.items() if k != "genome"}
    write_json(best_path, {"genome": genome.to_dict(), "result": summary, "settings": settings.to_dict(),
                           "keras_backend": keras.config.backend(), **(provenance or {})})
    log.info("best genome %s: score %.4g, val Dice %.3f", genome.hash, row["score"], row["val_dice"])
    return genome, row


def check_search_outputs(best_path, history_path, state_path) -> None:
    """Refuse a state path that is an output, and an existing output that a search did not write."""
    best_path, history_path, state_path = Path(best_path), Path(history_path), Path(state_path)
    for output in (best_path, history_path):
        if state_path.resolve() == output.resolve():
            raise ValueError(f"{state_path}: the search state would replace the search's own output "
                             f"{output.name}; give --state another file")
    advice = "it is left as it is: move it or choose another output folder"
    if best_path.exists():
        data = read_json(best_path) if best_path.is_file() else None
        if not (isinstance(data, dict) and {"genome", "result", "settings"} <= set(data)):
            raise ValueError(f"{best_path}: exists and is not a best genome that a search wrote; {advice}")
    if history_path.exists():
        header = ""
        if history_path.is_file():
            with open(history_path, "rb") as fh:
                header = fh.readline(10_000).decode("utf-8", "replace")
        if not {"evaluation", "genome_hash", "outcome"} <= set(header.rstrip("\r\n").split("\t")):
            raise ValueError(f"{history_path}: exists and is not a search history (no evaluation, genome_hash "
                             f"and outcome columns); {advice}")


def describe_genome(genome: Genome, input_shape=(128, 128, 1)) -> str:
    """A genome as a table: block, feature-map size, width, incoming dendrites; and P."""
    sizes = block_sizes(genome, input_shape)
    lines = [f"genome {genome.hash}: depth {genome.depth}, filters {genome.filters}",
             f"{'block':<6} {'size':>9} {'width':>6}  incoming edges"]
    for block in genome.blocks:
        h, w = sizes[block]
        incoming = ", ".join(f"{e.src} ({e.op})" for e in genome.incoming(block)) or "-"
        lines.append(f"{block:<6} {f'{h}x{w}':>9} {genome.widths[block]:>6}  {incoming}")
    lines.append(f"trainable parameters: {count_params(build_model(genome, input_shape)):,}")
    return "\n".join(lines)


def save_model(model, path) -> None:
    """Save a ``.keras`` file atomically."""
    with atomic_path(path) as tmp, _tensorflow_left_unimported():
        model.save(tmp)


@contextlib.contextmanager
def _tensorflow_left_unimported():
    """On a backend other than TensorFlow, with TensorFlow not imported, let Keras' serializer
    take TensorFlow as unavailable: it imports TensorFlow (3.4 s of a PyTorch job,
    docs/benchmarks.md) only to ask whether a value is a ``tf.TensorShape``, which no value can
    be while TensorFlow is not imported."""
    if not tensorflow_unused():
        yield
        return
    # Private API of Keras (bractivate.compat): if it changes, TensorFlow is imported again and
    # tests/test_torch_exec.py::test_seeding_on_torch_matches_keras_and_imports_no_tensorflow fails.
    with tensorflow_taken_as_unavailable():
        yield


def train_full(model, data: Dataset, *, epochs: int, batch_size: int, learning_rate: float,
               patience: int | None, min_delta: float, execution: str, model_path, metrics_path,
               history_path, provenance: dict, precision: str = "float32", monitor: str = "val_loss",
               callbacks=()) -> dict:
    """Full training of one model (docs/method.md#experiments): best validation weights kept, Dice on the test
    split; writes the model (unless ``model_path`` is None), its metrics and its history."""
    run = fit(model, data, epochs=epochs, batch_size=batch_size, learning_rate=learning_rate,
              patience=patience, min_delta=min_delta, execution=execution, precision=precision,
              monitor=monitor, callbacks=callbacks)
    if not run.finite:
        raise TrainingFailed(f"training of {provenance} produced a non-finite loss; "
                             "try a smaller train.learning_rate")
    test = split_metrics(model, data, "test", batch_size)
    val = split_metrics(model, data, "val", batch_size)
    if test["collapsed"]:
        log.warning("%s predicts one class at every pixel of the test split: Dice %.3f is flagged "
                    "'collapsed' (docs/method.md#training-protocol)", provenance, test["dice"])
    metrics = {**provenance, "test_dice": test["dice"], "test_bcl": test["bcl"], "collapsed": test["collapsed"],
               "val_dice": val["dice"], "val_bcl": val["bcl"], "params": count_params(model),
               "epochs": run.epochs, "best_epoch": run.best_epoch + 1,
               "seconds_per_epoch": run.seconds_per_epoch,
               "precision": model.dtype_policy.name, "keras_backend": keras.config.backend(),
               "device": "gpu" if accelerator_visible() else "cpu",  # what seconds_per_epoch ran on
               "n_test": int(len(data.splits["test"]))}
    history = pd.DataFrame({"epoch": range(1, run.epochs + 1), **run.history})
    if model_path is not None:
        save_model(model, model_path)
    write_table(history_path, history)
    write_json(metrics_path, metrics)
    log.info("test Dice %.4f (%d params, %d epochs)", metrics["test_dice"], metrics["params"], run.epochs)
    return metrics


def train_genome_job(genome: Genome, data: Dataset, train: dict, *, seed: int, model_path,
                     metrics_path, history_path, provenance: dict, min_size: int = MIN_SIZE,
                     callbacks=()) -> dict:
    """Build ``genome`` and train it in full with the config's ``train`` settings.

    ``min_size`` must be the search's (``best_genome.json``'s ``settings``): it decides where the
    network stops pooling, so another value trains a different network from the one searched."""
    seed_everything(seed)
    use_precision(train.get("precision", TRAIN_DEFAULTS["precision"]))
    model = build_model(genome, data.input_shape, min_size)
    return train_full(model, data, **train, model_path=model_path, metrics_path=metrics_path,
                      history_path=history_path, callbacks=callbacks,
                      provenance={**provenance, "genome_hash": genome.hash, "seed": seed,
                                  "min_size": min_size})


TRAIN_DEFAULTS = defaults("train")


@dataclass(frozen=True)
class TrainSettings:
    """The full training's settings (the config's ``train`` section; every default is the schema's,
    :mod:`bractivate.schema`), typed and bounded like :class:`~bractivate.evaluation.SearchSettings`."""

    epochs: int = TRAIN_DEFAULTS["epochs"]
    batch_size: int = TRAIN_DEFAULTS["batch_size"]
    learning_rate: float = TRAIN_DEFAULTS["learning_rate"]
    patience: int | None = TRAIN_DEFAULTS["patience"]
    min_delta: float = TRAIN_DEFAULTS["min_delta"]
    monitor: str = TRAIN_DEFAULTS["monitor"]
    execution: str = TRAIN_DEFAULTS["execution"]
    precision: str = TRAIN_DEFAULTS["precision"]

    def __post_init__(self) -> None:
        check_setting_types(self, "train")
        check_bounds(self, "train")

    @classmethod
    def from_dict(cls, data: dict) -> "TrainSettings":
        return settings_from_dict(cls, data, "train")

    def to_dict(self) -> dict:
        return asdict(self)


class _EpochProgress(keras.callbacks.Callback):
    """Reports each epoch of a full training to a :class:`~bractivate.progress.Progress`."""

    def __init__(self, progress: Progress):
        super().__init__()
        self.progress, self.best, self.best_epoch = progress, math.inf, 0

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        loss, val = float(logs.get("loss", math.nan)), float(logs.get("val_loss", math.nan))
        if val < self.best:
            self.best, self.best_epoch = val, epoch + 1
        best = "-" if not self.best_epoch else f"val loss {self.best:.4g} (epoch {self.best_epoch})"
        self.progress.step(epoch + 1, best, f"epoch {epoch + 1}: loss {loss:.4g}, val loss {val:.4g}")


def search_provenance(best) -> dict:
    """The data set, experiment and trial a workflow search wrote into its ``best_genome.json``."""
    return {k: best[k] for k in ("dataset", "experiment", "trial") if isinstance(best, dict) and k in best}


def train_best_job(best_path, data: Dataset, settings: TrainSettings | dict, *, seed: int, model_path,
                   metrics_path, history_path, provenance: dict | None = None, stream=None) -> dict:
    """Train a search's best genome in full (``best_genome.json`` as the search wrote it, or a
    bare genome JSON) under the full training's protocol: what the workflow's ``train_best`` rule
    and ``bractivate train`` both run. The network is built with the search's ``min_size``;
    ``provenance`` defaults to the data set, experiment and trial the search file names.
    Progress goes to ``stream`` (standard error): a bar on a terminal, a log line per epoch otherwise."""
    if not isinstance(settings, TrainSettings):
        settings = TrainSettings.from_dict(dict(settings))
    genome = Genome.load(best_path)
    best = read_json(best_path)
    searched = best.get("settings", {}) if isinstance(best, dict) else {}
    min_size = int(searched.get("min_size", MIN_SIZE))
    if provenance is None:
        provenance = search_provenance(best)
    with Progress(settings.epochs, "epoch", "train", stream=stream) as bar:
        return train_genome_job(genome, data, settings.to_dict(), seed=seed, model_path=model_path,
                                metrics_path=metrics_path, history_path=history_path, provenance=provenance,
                                min_size=min_size, callbacks=[_EpochProgress(bar)])



def train_baseline_job(name: str, data: Dataset, train: dict, *, seed: int, width_scale: float,
                       metrics_path, history_path, provenance: dict) -> dict:
    """Build baseline ``name`` and train it in full with the config's ``train`` settings, under
    the protocol and split of the searched genomes; only its metrics and history are kept."""
    seed_everything(seed)
    use_precision(train.get("precision", TRAIN_DEFAULTS["precision"]))
    model = build_baseline(name, data.input_shape, width_scale=width_scale)
    return train_full(model, data, **train, model_path=None, metrics_path=metrics_path,
                      history_path=history_path,
                      provenance={**provenance, "model": name, "seed": seed, "width_scale": width_scale})
