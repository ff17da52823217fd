"""The evolutionary search (docs/method.md#search, paper Fig. 3 and §4.5).

    queue <- `population` random genomes
    until `evaluations` genomes have been trained:
        g <- pop front; train and score g
        if score < best score: best <- g; push g back
        else: push mutate(best) back

The whole search state — queue, best, RNG state and every finished evaluation — is one JSON
file written atomically after each evaluation, so a killed search restarts where it stopped and
never trains a finished evaluation again. The history TSV is rewritten from that state.

The state records a fingerprint of its data set (:func:`data_fingerprint`); a state made on
other data is moved aside, never deleted, and the search starts afresh. Each evaluation records
the search's own clock: ``evaluate_seconds`` (build, train, validate) and ``elapsed_seconds``
(that plus the search's overhead since the previous evaluation finished), and the attempt (job
run) that trained it; the sum of ``elapsed_seconds`` is the search time of Table 3.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import time
from collections import Counter
from pathlib import Path
from typing import Callable

import keras
import numpy as np
import pandas as pd

from bractivate.errors import SearchFailed
from bractivate.evaluation import SearchSettings, evaluate
from bractivate.genome import Genome, random_genome
from bractivate.io import Dataset, read_json, write_json, write_table
from bractivate.mutation import NoEligibleBlock, dendritic_mutation

log = logging.getLogger(__name__)

STATE_VERSION = 1
HISTORY_COLUMNS = [
    "evaluation", "genome_hash", "origin", "parent_hash", "depth", "filters", "edges", "params",
    "seconds_per_epoch", "train_seconds", "evaluate_seconds", "elapsed_seconds", "attempt", "flops_per_epoch",
    "epochs", "val_bcl", "val_dice", "score", "activity", "outcome", "error",
]


def _training_seed(seed: int, genome_hash: str) -> int:
    """Seed of a genome's weights: the same genome starts from the same weights in a search."""
    return int(hashlib.sha256(f"{seed}:{genome_hash}".encode()).hexdigest()[:8], 16)


def data_fingerprint(data: Dataset) -> str:
    """SHA-256 of a data set's images, masks and split indices: what a search result depends on.

    Hashing the arrays (not the HDF5 attributes) also catches a data set rebuilt from the same
    raw files by other preprocessing; it takes well under a second for the paper's data sets."""
    digest = hashlib.sha256()
    for array in (data.images, data.masks, *(data.splits[name] for name in sorted(data.splits))):
        array = np.ascontiguousarray(array)
        digest.update(f"{array.dtype.str}{array.shape}".encode())
        digest.update(memoryview(array).cast("B"))
    return digest.hexdigest()


# What only a search state holds; other JSON files (a user's notes, best_genome.json) lack them.
STATE_KEYS = ("version", "settings", "queue", "rows", "best", "rng")
STATE_KIND = "bractivate search state"


def read_state(path: Path) -> dict:
    """Read a search state, refusing any other file before it is resumed, moved aside or replaced.

    ``--state`` may point anywhere: a user's own JSON file there must be left as it is
    (docs/reliability.md), so a file is taken as a state only when it has every key a search
    writes (and, since it was added, the ``kind`` marker)."""
    advice = "--state takes only a file that a search wrote; the file is left as it is: choose another path"
    if not path.is_file():
        raise ValueError(f"{path}: not a file; expected a search state ({advice})")
    data = read_json(path)
    missing = [k for k in STATE_KEYS if k not in data] if isinstance(data, dict) else list(STATE_KEYS)
    kind = data.get("kind", STATE_KIND) if isinstance(data, dict) else None
    if missing or kind != STATE_KIND or not isinstance(data.get("queue"), list) \
            or not isinstance(data.get("rows"), list):
        what = f"no {', '.join(missing)}" if missing else f"kind {kind!r}" if kind != STATE_KIND else "malformed"
        raise ValueError(f"{path}: not a search state ({what}); {advice}")
    return data


def _move_aside(path: Path, tag: str) -> Path:
    """Rename a state file to a free ``<stem>.<tag>[.k].json`` beside it and return the new path."""
    for k in range(1000):
        aside = path.with_name(f"{path.stem}.{tag}{f'.{k}' if k else ''}{path.suffix}")
        if not aside.exists():
            path.rename(aside)
            return aside
    raise RuntimeError(f"{path}: too many old states beside it; delete some")


class _State:
    """Queue, best genome, RNG and finished evaluations of one search."""

    def __init__(self, settings: SearchSettings, data_sha256: str = ""):
        self.settings = settings
        self.data_sha256 = data_sha256
        self.attempts = 0
        self.rng = np.random.default_rng(settings.seed)
        self.queue: list[dict] = [
            {"genome": self._random().to_dict(), "origin": "initial", "parent_hash": ""}
            for _ in range(settings.population)
        ]
        self.rows: list[dict] = []
        self.best: int | None = None  # index into rows

    def _random(self) -> Genome:
        s = self.settings
        return random_genome(self.rng, s.depth_range, s.filter_range, s.max_in_edges, s.unet_skips)

    def to_dict(self) -> dict:
        return {"kind": STATE_KIND, "version": STATE_VERSION, "settings": self.settings.to_dict(), "queue": self.queue,
                "rows": self.rows, "best": self.best, "rng": self.rng.bit_generator.state,
                "keras_backend": keras.config.backend(), "data_sha256": self.data_sha256,
                "attempts": self.attempts}

    @classmethod
    def from_dict(cls, data: dict, settings: SearchSettings, path: Path, data_sha256: str = "") -> "_State":
        if data.get("version") != STATE_VERSION:
            raise ValueError(f"{path}: search state version {data.get('version')}, expected {STATE_VERSION}")
        # The budget may grow between runs; anything else would mix two different searches.
        changed = sorted(k for k, v in settings.to_dict().items()
                         if k != "evaluations" and data["settings"].get(k) != v)
        # Wall-clock scores of two backends differ several-fold: one search keeps one backend.
        if data.get("keras_backend") != keras.config.backend():
            changed.append(f"keras_backend {data.get('keras_backend')!r} != {keras.config.backend()!r}")
        if changed:
            raise ValueError(
                f"{path}: saved search used other settings ({', '.join(changed)} differ); "
                "delete the state file to start a new search"
            )
        state = cls.__new__(cls)
        state.settings, state.queue, state.rows, state.best = settings, data["queue"], data["rows"], data["best"]
        state.data_sha256, state.attempts = data_sha256, data.get("attempts", 0)
        state.rng = np.random.default_rng()
        state.rng.bit_generator.state = data["rng"]
        return state

    def child(self, evaluated: set[str], attempts: int = 20) -> dict:
        """The genome pushed back when the popped one did not beat the best: a dendritic
        mutation of the best (or a fresh random genome for the ``random`` control), redrawn up
        to ``attempts`` times while it is one the search already trained."""
        best = self.rows[self.best]
        parent = Genome.from_dict(best["genome"])
        for _ in range(attempts):
            if self.settings.mutation == "dendritic":
                try:
                    genome = dendritic_mutation(parent, best["activity"], self.rng, self.settings.max_new_edges)
                except NoEligibleBlock:
                    break
                item = {"genome": genome.to_dict(), "origin": "mutation", "parent_hash": parent.hash}
            else:
                genome = self._random()
                item = {"genome": genome.to_dict(), "origin": "random", "parent_hash": ""}
            if self.settings.reevaluate or genome.hash not in evaluated:
                return item
        log.info("no new mutation of %s found; pushing a random genome", parent.hash)
        return {"genome": self._random().to_dict(), "origin": "random", "parent_hash": ""}


def history_frame(rows: list[dict], provenance: dict | None = None) -> pd.DataFrame:
    """One row per trained genome, JSON columns for edges and activities (docs/method.md#search);
    ``provenance`` (data set, experiment, trial) leads every row, so the table says what it is
    wherever it is read from."""
    table = []
    for row in rows:
        genome = row["genome"]
        flat = {k: row[k] for k in HISTORY_COLUMNS if k in row}
        flat.update(depth=genome["depth"], filters=genome["filters"],
                    edges=json.dumps(genome["edges"], separators=(",", ":")),
                    activity=json.dumps(row["activity"], sort_keys=True, separators=(",", ":")))
        table.append(flat)
    frame = pd.DataFrame(table, columns=HISTORY_COLUMNS)
    for i, (key, value) in enumerate((provenance or {}).items()):
        frame.insert(i, key, value)
    return frame


def all_failed(rows: list[dict], history_path) -> str:
    """The one line of a search whose every evaluation failed: the most common error, and where the rest are."""
    errors = Counter(row.get("error") or "unknown error" for row in rows)
    error, count = errors.most_common(1)[0]
    where = f"the error column of {history_path}" if history_path is not None else "the state's rows"
    return (f"all {len(rows)} evaluations failed, {count} of them with {error}; no genome could be trained "
            f"with these settings on this data: see {where}")


def run_search(
    data: Dataset,
    settings: SearchSettings,
    state_path: str | Path,
    history_path: str | Path | None = None,
    evaluate_fn: Callable[[Genome, Dataset, SearchSettings, int], dict] = evaluate,
    on_evaluation: Callable[[dict], None] | None = None,
    provenance: dict | None = None,
) -> tuple[Genome, dict]:
    """Run (or resume) a search; return the best genome and its history row. ``provenance``
    (data set, experiment, trial) leads every row of the history table.

    A state at ``state_path`` is resumed when it was made on the same data (same
    :func:`data_fingerprint`); one made on other data is moved aside and the search starts afresh.
    """
    mark = time.perf_counter()  # the search's own clock: each evaluation's share since the previous one
    state_path = Path(state_path)
    fingerprint = data_fingerprint(data)
    saved = read_state(state_path) if state_path.exists() or state_path.is_symlink() else None
    if saved is not None and saved.get("data_sha256") != fingerprint:
        aside = _move_aside(state_path, f"data-{str(saved.get('data_sha256') or 'unknown')[:12]}")
        log.warning("search state %s was made on other data (data fingerprint %s, this data %s): "
                    "kept it as %s and starting a new search", state_path, saved.get("data_sha256"),
                    fingerprint, aside)
        saved = None
    if saved is not None:
        state = _State.from_dict(saved, settings, state_path, fingerprint)
        log.info("resuming search from %s after %d evaluations", state_path, len(state.rows))
    else:
        state = _State(settings, fingerprint)
    state.attempts += 1
    cache = {row["genome_hash"]: i for i, row in enumerate(state.rows)}

    def save() -> None:
        write_json(state_path, state.to_dict())
        if history_path is not None:
            write_table(history_path, history_frame(state.rows, provenance))

    save()
    max_pops = 100 * settings.evaluations
    pops = 0
    while len(state.rows) < settings.evaluations:
        pops += 1
        if pops > max_pops:
            raise RuntimeError(f"search made no progress in {max_pops} queue pops")
        item = state.queue.pop(0)
        genome = Genome.from_dict(item["genome"])
        if genome.hash in cache and not settings.reevaluate:
            row = state.rows[cache[genome.hash]]
        else:
            started = time.perf_counter()
            result = evaluate_fn(genome, data, settings, _training_seed(settings.seed, genome.hash))
            now = time.perf_counter()
            row = {"evaluation": len(state.rows), "genome_hash": genome.hash, "origin": item["origin"],
                   "parent_hash": item["parent_hash"], "genome": genome.to_dict(), **result,
                   "evaluate_seconds": now - started, "elapsed_seconds": now - mark, "attempt": state.attempts}
            mark = now  # saving this row, and choosing the next genome, count towards the next one
            state.rows.append(row)
            cache[genome.hash] = row["evaluation"]
            if on_evaluation is not None:
                on_evaluation(row)
        best_score = state.rows[state.best]["score"] if state.best is not None else math.inf
        if row["outcome"] == "ok" and row["score"] < best_score:
            state.best = row["evaluation"]
            state.queue.append(item)
        elif state.best is not None:
            state.queue.append(state.child(set(cache)))
        else:
            state.queue.append({"genome": state._random().to_dict(), "origin": "random", "parent_hash": ""})
        save()
    if state.best is None:
        raise SearchFailed(all_failed(state.rows, history_path))
    best = state.rows[state.best]
    return Genome.from_dict(best["genome"]), best
