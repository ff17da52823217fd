import json
import logging
import math
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import keras
import numpy as np
import pandas as pd
import pytest

import bractivate.search
from bractivate.evaluation import SearchSettings, evaluate
from bractivate.genome import Genome
from bractivate.report import load_search_hours
from bractivate.search import HISTORY_COLUMNS, data_fingerprint, run_search

from helpers import blob_dataset, tiny_settings

HERE = Path(__file__).parent


def fake_evaluate(genome, data, settings, seed):
    """A cheap deterministic stand-in for training: smaller and deeper is better."""
    bcl = 0.5 / genome.depth + 0.01 * len(genome.edges) + 0.001 * genome.filters
    activity = {b: 1.0 + (hash(b + genome.hash) % 7) for b in genome.blocks}
    return {"params": 100 * genome.filters, "seconds_per_epoch": 1.0, "flops_per_epoch": 1e9,
            "epochs": 1, "val_bcl": bcl, "val_dice": 1 - bcl, "score": bcl, "activity": activity,
            "outcome": "ok", "error": ""}


def test_search_loop_follows_the_queue_rule(tmp_path, blobs):
    settings = tiny_settings(population=4, evaluations=30, depth_range=(2, 4), filter_range=(4, 16))
    calls = []

    def counting(genome, *args):
        calls.append(genome.hash)
        return fake_evaluate(genome, *args)

    best, row = run_search(blobs, settings, tmp_path / "state.json", tmp_path / "h.tsv", counting)
    history = pd.read_csv(tmp_path / "h.tsv", sep="\t")
    assert list(history["evaluation"]) == list(range(30))
    assert len(set(calls)) == len(calls) == 30  # no genome trained twice
    assert list(history["origin"][:4]) == ["initial"] * 4
    assert set(history["origin"][4:]) <= {"mutation", "random"}
    assert row["score"] == history["score"].min() and best.hash == row["genome_hash"]
    mutated = history[history["origin"] == "mutation"]
    assert len(mutated) > 0
    by_hash = history.set_index("genome_hash")
    for _, child in mutated.iterrows():  # a child keeps its parent's depth and width, gains edges
        parent = by_hash.loc[child.parent_hash]
        assert parent.evaluation < child.evaluation
        assert (parent.depth, parent.filters) == (child.depth, child.filters)
        assert len(json.loads(child.edges)) > len(json.loads(parent.edges))


def test_failed_genomes_get_the_worst_score_and_the_search_goes_on(tmp_path, blobs):
    def flaky(genome, data, settings, seed):
        if genome.depth == 1:
            return {**fake_evaluate(genome, data, settings, seed), "score": math.inf,
                    "outcome": "failed", "error": "ValueError: injected"}
        return fake_evaluate(genome, data, settings, seed)

    best, row = run_search(blobs, tiny_settings(evaluations=10), tmp_path / "s.json", tmp_path / "h.tsv", flaky)
    history = pd.read_csv(tmp_path / "h.tsv", sep="\t")
    assert len(history) == 10 and best.depth == 2
    assert (history[history["depth"] == 1]["outcome"] == "failed").all()


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory, blobs):
    """A real search of 6 evaluations (2 epochs each), run once for the tests below."""
    folder = tmp_path_factory.mktemp("uninterrupted")
    run_search(blobs, tiny_settings(seed=1), folder / "state.json", folder / "history.tsv")
    return pd.read_csv(folder / "history.tsv", sep="\t")


@pytest.mark.slow
def test_real_search_of_six_evaluations(uninterrupted):
    history = uninterrupted
    assert len(history) == 6 and list(history["evaluation"]) == list(range(6))
    assert history["genome_hash"].is_unique
    assert (history["outcome"] == "ok").all()
    assert history["params"].gt(0).all() and history["flops_per_epoch"].gt(0).all()
    assert history["val_dice"].between(0, 1).all() and history["val_bcl"].gt(0).all()
    assert set(history["origin"][3:]) <= {"mutation", "random"}
    activity = json.loads(history["activity"][0])
    assert set(activity) == set(Genome.from_dict({"depth": int(history["depth"][0]), "filters": 2}).blocks)


@pytest.mark.slow
def test_killed_search_resumes_and_matches_an_uninterrupted_run(tmp_path, uninterrupted):
    """SIGKILL five times in a row, each time once a different number of evaluations (drawn at
    random) is saved; every restart resumes, no evaluation is lost or trained twice, and
    (time_measure: flops) the genomes equal those of the uninterrupted run."""
    state, history = tmp_path / "state.json", tmp_path / "history.tsv"
    cmd = [sys.executable, str(HERE / "search_worker.py"), str(state), str(history), "1", "6"]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    kill_points = sorted(np.random.default_rng(11).choice(np.arange(0, 6), size=5, replace=False))
    saved_before, clocks, worker_seconds = [], [], 0.0
    for point in kill_points:
        started = time.monotonic()
        worker = subprocess.Popen(cmd, env=env, stderr=subprocess.DEVNULL)
        deadline = time.time() + 300
        while time.time() < deadline and worker.poll() is None:
            if state.exists() and len(json.loads(state.read_text())["rows"]) >= point:
                worker.send_signal(signal.SIGKILL)
                break
            time.sleep(0.02)
        assert worker.wait() == -signal.SIGKILL, f"the worker finished before it could be killed at {point}"
        worker_seconds += time.monotonic() - started
        rows = json.loads(state.read_text())["rows"]
        assert point <= len(rows) < 6
        assert [r["genome_hash"] for r in rows[: len(saved_before)]] == saved_before  # nothing lost
        assert [r["elapsed_seconds"] for r in rows[: len(clocks)]] == clocks  # nor its time
        saved_before, clocks = [r["genome_hash"] for r in rows], [r["elapsed_seconds"] for r in rows]
    started = time.monotonic()
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    worker_seconds += time.monotonic() - started
    assert done.returncode == 0, done.stderr[-2000:]
    assert f"resuming search from {state} after {len(saved_before)} evaluations" in done.stderr
    table = pd.read_csv(history, sep="\t")
    assert list(table["evaluation"]) == list(range(6)) and table["genome_hash"].is_unique
    assert list(table["genome_hash"][: len(saved_before)]) == saved_before
    assert list(table["genome_hash"]) == list(uninterrupted["genome_hash"])
    # Same genomes, same training; float reductions may round differently from process to process.
    assert np.allclose(table["score"], uninterrupted["score"], rtol=1e-2)
    # The search's clock covers every attempt: each attempt's evaluations keep their own time,
    # which holds the training and fits within the time the workers ran.
    assert table["elapsed_seconds"].tolist()[: len(clocks)] == clocks
    assert table["attempt"].is_monotonic_increasing and table["attempt"].nunique() >= 2
    assert (table["elapsed_seconds"] >= table["evaluate_seconds"]).all()
    assert (table["evaluate_seconds"] >= table["train_seconds"]).all() and table["train_seconds"].gt(0).all()
    assert table["elapsed_seconds"].sum() < worker_seconds


def test_the_history_carries_its_provenance(tmp_path, blobs):
    provenance = {"dataset": "blobs", "experiment": "main", "trial": 2}
    run_search(blobs, tiny_settings(evaluations=2), tmp_path / "s.json", tmp_path / "h.tsv", fake_evaluate,
               provenance=provenance)
    table = pd.read_csv(tmp_path / "h.tsv", sep="\t")
    assert list(table.columns[:3]) == ["dataset", "experiment", "trial"] and len(table) == 2
    assert table[["dataset", "experiment", "trial"]].drop_duplicates().to_dict("records") == [provenance]


def test_resume_refuses_other_settings(tmp_path, blobs):
    run_search(blobs, tiny_settings(evaluations=3), tmp_path / "s.json", None, fake_evaluate)
    with pytest.raises(ValueError, match="other settings \\(epochs differ\\)"):
        run_search(blobs, tiny_settings(evaluations=3, epochs=9), tmp_path / "s.json", None, fake_evaluate)
    # a larger budget extends the same search
    run_search(blobs, tiny_settings(evaluations=5), tmp_path / "s.json", tmp_path / "h.tsv", fake_evaluate)
    assert len(pd.read_csv(tmp_path / "h.tsv", sep="\t")) == 5
    # a search begun on another Keras backend is not resumed: its wall-clock scores differ
    state = json.loads((tmp_path / "s.json").read_text())
    (tmp_path / "s.json").write_text(json.dumps({**state, "keras_backend": "jax"}))
    with pytest.raises(ValueError, match=f"keras_backend 'jax' != '{keras.config.backend()}' differ"):
        run_search(blobs, tiny_settings(evaluations=6), tmp_path / "s.json", None, fake_evaluate)


def test_a_search_on_changed_data_starts_afresh_and_keeps_the_old_state(tmp_path, blobs, caplog):
    state = tmp_path / "trial1.json"
    calls = []

    def counting(genome, *args):
        calls.append(genome.hash)
        return fake_evaluate(genome, *args)

    run_search(blobs, tiny_settings(evaluations=3), state, tmp_path / "h.tsv", counting)
    first = state.read_text()
    assert json.loads(first)["data_sha256"] == data_fingerprint(blobs)
    # same settings and same data: resumes, trains nothing
    run_search(blob_dataset(), tiny_settings(evaluations=3), state, tmp_path / "h.tsv", counting)
    assert len(calls) == 3 and state.read_text().replace('"attempts": 2', '"attempts": 1') == first
    # same settings, other data (the same arrays with one pixel changed): a new search
    changed = blob_dataset()
    changed.images[0, 0, 0, 0] += 0.5
    caplog.clear()  # the resume above logs "resuming" where an earlier test left INFO enabled
    with caplog.at_level(logging.INFO, logger="bractivate.search"):
        run_search(changed, tiny_settings(evaluations=3), state, tmp_path / "h.tsv", counting)
    assert len(calls) == 6
    aside = tmp_path / f"trial1.data-{data_fingerprint(blobs)[:12]}.json"
    assert aside.read_text().replace('"attempts": 2', '"attempts": 1') == first  # kept, not deleted
    assert json.loads(state.read_text())["data_sha256"] == data_fingerprint(changed)
    assert [r["attempt"] for r in json.loads(state.read_text())["rows"]] == [1, 1, 1]
    assert f"search state {state} was made on other data" in caplog.text and str(aside) in caplog.text
    assert "resuming" not in caplog.text
    # a split change alone is other data too
    moved = blob_dataset()
    moved.splits["val"], moved.splits["test"] = moved.splits["test"][:3], np.sort(np.concatenate(
        [moved.splits["val"], moved.splits["test"][3:]]))
    assert data_fingerprint(moved) not in (data_fingerprint(blobs), data_fingerprint(changed))


def test_the_search_clock_sums_evaluations_across_attempts(tmp_path, blobs, monkeypatch):
    """A fake clock: each evaluation takes 11 s and each save of the state 2 s; the first
    attempt dies in its fourth evaluation and its three finished ones keep their time."""
    now = [0.0]
    monkeypatch.setattr(bractivate.search, "time", SimpleNamespace(perf_counter=lambda: now[0]))
    real_write_json = bractivate.search.write_json

    def slow_write_json(*args):
        real_write_json(*args)
        now[0] += 2.0

    monkeypatch.setattr(bractivate.search, "write_json", slow_write_json)
    killed, finished = {"after": 3}, []

    def timed(genome, *args):
        now[0] += 1.0
        if killed["after"] == 0:
            raise KeyboardInterrupt  # the job dies mid-training
        killed["after"] -= 1
        now[0] += 10.0
        finished.append(now[0])
        return fake_evaluate(genome, *args)

    state, history = tmp_path / "s.json", tmp_path / "results/search/lungs/main/trial1/history.tsv"
    provenance = {"dataset": "lungs", "experiment": "main", "trial": 1}
    with pytest.raises(KeyboardInterrupt):
        run_search(blobs, tiny_settings(evaluations=6), state, history, timed, provenance=provenance)
    killed["after"] = -1
    now[0] += 500.0  # the time between the attempts is no search time
    second = now[0]
    run_search(blobs, tiny_settings(evaluations=6), state, history, timed, provenance=provenance)
    table = pd.read_csv(history, sep="\t")
    assert list(table["attempt"]) == [1, 1, 1, 2, 2, 2]
    assert table["evaluate_seconds"].tolist() == [11.0] * 6
    # each evaluation also carries the saves since the one before (2 s, and 2 s more for each queue
    # pop of a genome already trained); only the killed evaluation and the pause are not counted
    assert all(e >= 13.0 and (e - 13.0) % 2 == 0 for e in table["elapsed_seconds"])
    assert table["elapsed_seconds"].sum() == finished[2] - 0.0 + finished[-1] - second
    hours = load_search_hours([history])
    assert hours.loc[0, ["dataset", "experiment", "trial"]].tolist() == ["lungs", "main", 1]
    assert hours.loc[0, "hours"] == pytest.approx(table["elapsed_seconds"].sum() / 3600)
    assert hours.loc[0, "hours"] > table.query("attempt == 2")["elapsed_seconds"].sum() / 3600 > 0


# On PyTorch a non-finite loss surfaces as torch's "all elements of input should be between 0 and 1"
# from the cross-entropy instead of a non-finite loss: the evaluation fails all the same, but the
# message this test checks is TensorFlow's.
@pytest.mark.tensorflow
def test_non_finite_loss_and_absurd_width_are_failed_evaluations(blobs):
    settings = tiny_settings(learning_rate=1e30, epochs=2)
    nan = evaluate(Genome(1, 2), blobs, settings)
    assert nan["outcome"] == "failed" and nan["score"] == math.inf
    assert "non-finite" in nan["error"] or "nan" in nan["error"].lower()
    huge = evaluate(Genome(1, 2**40), blobs, tiny_settings())
    assert huge["outcome"] == "failed" and huge["score"] == math.inf and huge["error"]


def test_settings_are_validated():
    with pytest.raises(ValueError, match="search.population: expected an integer >= 1, got 0"):
        SearchSettings(population=0)
    with pytest.raises(ValueError, match=r"depth_range: expected \[low, high\], each an integer in \[1, 16\], got \[0, 3\]"):
        SearchSettings(depth_range=(0, 3))
    with pytest.raises(ValueError, match="unknown search setting\\(s\\) \\['epoch'\\]"):
        SearchSettings.from_dict({"epoch": 3})


def test_splits_are_cut_once_per_job(blobs):
    x_train, y_train = blobs.split("train")
    again = blobs.split("train")
    assert again[0] is x_train and again[1] is y_train
    assert y_train.dtype == np.float32 and len(x_train) == len(blobs.splits["train"])


def test_the_search_min_size_reaches_train_best_and_the_ablation(tmp_path, blobs):
    """min_size decides where pooling stops: with 16 on 64×64 images the bottleneck stays at
    16×16 (the default, 4, pools it to 8×8), in the trained model and in both ablated ones."""
    import h5py
    import keras

    from bractivate.ablation import run_ablation
    from bractivate.pipeline import train_genome_job

    genome = Genome.from_dict({"depth": 3, "filters": 2, "edges": [{"src": "enc1", "dst": "mid", "op": "add"}]})
    train = {"epochs": 1, "batch_size": 8, "learning_rate": 1e-3, "patience": None, "min_delta": 0.0,
             "execution": "eager"}
    metrics = train_genome_job(genome, blobs, train, seed=0, model_path=tmp_path / "model.keras",
                               metrics_path=tmp_path / "metrics.json", history_path=tmp_path / "history.tsv",
                               provenance={}, min_size=16)
    model = keras.saving.load_model(tmp_path / "model.keras", safe_mode=True)
    assert metrics["min_size"] == 16 and tuple(model.get_layer("mid_conv2").output.shape[1:3]) == (16, 16)
    ablation = run_ablation(model, genome, blobs, train=train, seed=0, activity_mode="weight",
                            metrics_path=tmp_path / "ablation.json", maps_path=tmp_path / "maps.h5",
                            provenance={}, min_size=16)
    assert ablation["block"] == "mid"
    with h5py.File(tmp_path / "maps.h5") as h5:
        shapes = {model: h5[f"maps/{model}/mid"].shape[1:3] for model in ("intact", "zeroed", "retrained")}
    assert shapes == {"intact": (16, 16), "zeroed": (16, 16), "retrained": (16, 16)}


def test_the_docs_name_the_history_columns_in_order():
    """docs/method.md#search lists the history table's columns: its provenance, then HISTORY_COLUMNS."""
    text = " ".join((HERE.parent / "docs" / "method.md").read_text(encoding="utf-8").split())
    bullet = text[text.index("Every evaluation is one row of the history table"):text.index("`best_genome.json` holds")]
    named = re.findall(r"`(\w+)`", re.sub(r"\([^)]*\)", "", bullet))
    assert named == ["dataset", "experiment", "trial", *HISTORY_COLUMNS]
