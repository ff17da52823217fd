"""The evolutionary search (SPEC §8, paper Fig. 3 and §4.5).

    queue <- `population` random genomes
    until `evaluations` genomes have been trained:
        g <- pop front; train and score g
        if score < best score: best <- g; push g back
        else: push mutate(best) back

The whole search state — queue, best, RNG state and every finished evaluation — is one JSON
file written atomically after each evaluation, so a killed search restarts where it stopped and
never trains a finished evaluation again. The history TSV is rewritten from that state.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
from pathlib import Path
from typing import Callable

import keras
import numpy as np
import pandas as pd

from bractivate.genome import Genome, random_genome
from bractivate.io import Dataset, read_json, write_json, write_table
from bractivate.mutation import NoEligibleBlock, dendritic_mutation
from bractivate.train import SearchSettings, evaluate

log = logging.getLogger(__name__)

STATE_VERSION = 1
HISTORY_COLUMNS = [
    "evaluation", "genome_hash", "origin", "parent_hash", "depth", "filters", "edges", "params",
    "seconds_per_epoch", "train_seconds", "flops_per_epoch", "epochs", "val_bcl", "val_dice", "score", "activity",
    "outcome", "error",
]


def _training_seed(seed: int, genome_hash: str) -> int:
    """Seed of a genome's weights: the same genome starts from the same weights in a search."""
    return int(hashlib.sha256(f"{seed}:{genome_hash}".encode()).hexdigest()[:8], 16)


class _State:
    """Queue, best genome, RNG and finished evaluations of one search."""

    def __init__(self, settings: SearchSettings):
        self.settings = settings
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
        return {"version": STATE_VERSION, "settings": self.settings.to_dict(), "queue": self.queue,
                "rows": self.rows, "best": self.best, "rng": self.rng.bit_generator.state,
                "keras_backend": keras.config.backend()}

    @classmethod
    def from_dict(cls, data: dict, settings: SearchSettings, path: Path) -> "_State":
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


def history_frame(rows: list[dict]) -> pd.DataFrame:
    """One row per trained genome, JSON columns for edges and activities (SPEC §8)."""
    table = []
    for row in rows:
        genome = row["genome"]
        flat = {k: row[k] for k in HISTORY_COLUMNS if k in row}
        flat.update(depth=genome["depth"], filters=genome["filters"],
                    edges=json.dumps(genome["edges"], separators=(",", ":")),
                    activity=json.dumps(row["activity"], sort_keys=True, separators=(",", ":")))
        table.append(flat)
    return pd.DataFrame(table, columns=HISTORY_COLUMNS)


def run_search(
    data: Dataset,
    settings: SearchSettings,
    state_path: str | Path,
    history_path: str | Path | None = None,
    evaluate_fn: Callable[[Genome, Dataset, SearchSettings, int], dict] = evaluate,
    on_evaluation: Callable[[dict], None] | None = None,
) -> tuple[Genome, dict]:
    """Run (or resume) a search; return the best genome and its history row."""
    state_path = Path(state_path)
    if state_path.exists():
        state = _State.from_dict(read_json(state_path), settings, state_path)
        log.info("resuming search from %s after %d evaluations", state_path, len(state.rows))
    else:
        state = _State(settings)
    cache = {row["genome_hash"]: i for i, row in enumerate(state.rows)}

    def save() -> None:
        write_json(state_path, state.to_dict())
        if history_path is not None:
            write_table(history_path, history_frame(state.rows))

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
            result = evaluate_fn(genome, data, settings, _training_seed(settings.seed, genome.hash))
            row = {"evaluation": len(state.rows), "genome_hash": genome.hash, "origin": item["origin"],
                   "parent_hash": item["parent_hash"], "genome": genome.to_dict(), **result}
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
        raise RuntimeError(f"all {len(state.rows)} evaluations failed; see the history's error column")
    best = state.rows[state.best]
    return Genome.from_dict(best["genome"]), best
