"""Tables from fake stage outputs: the numbers in the tables are the ones in the files."""

from __future__ import annotations

import html
import json
import math
import statistics
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bractivate.outputs import TABLE_INPUTS, TABLES, TRIAL_TABLES, table_formats, table_names
from bractivate.report import (
    activation_blocks, fmt_mean_std, fmt_sci, latex_escape, load_ablation_metrics,
    load_histories, load_search_hours, load_train_metrics, paired_comparison, paired_trials,
    model_frame, table2_dice, tables_job,
)
from bractivate.report.jobs import TABLE_JOBS, table_job

from helpers import ABLATION_MODELS, DATASETS, EXPERIMENTS, TRIALS, dump_json, write_stage_outputs


def table_outputs(root: Path) -> dict[str, str]:
    names = {"table2": "table2_dice", "table3": "table3_search_hours", "ablation": "table_ablation",
             "activation": "table_activation", "dice_time": "table_dice_time", "paired": "paired_main_random"}
    outputs = {}
    for key, name in names.items():
        for suffix, ext in (("", "tsv"), ("_md", "md"), ("_tex", "tex"), ("_html", "html")):
            outputs[key + suffix] = str(root / "results" / "tables" / f"{name}.{ext}")
    outputs["paired_trials"] = str(root / "results" / "tables" / "paired_main_random_trials.tsv")
    outputs["activation_trials"] = str(root / "results" / "tables" / "table_activation_trials.tsv")
    outputs["paired_trials_html"] = str(root / "results" / "tables" / "paired_main_random_trials.html")
    outputs["activation_trials_html"] = str(root / "results" / "tables" / "table_activation_trials.html")
    return outputs


@pytest.fixture(scope="module")
def stage(tmp_path_factory):
    root = tmp_path_factory.mktemp("stage")
    return root, write_stage_outputs(root)


@pytest.fixture(scope="module")
def written(stage):
    root, paths = stage
    outputs = table_outputs(root)
    tables_job(train=paths["train"], baselines=paths["baselines"], ablation=paths["ablation"],
               histories=paths["history"], outputs=outputs, all_train=paths["train"])
    return outputs


def _metrics(paths, **match) -> list[dict]:
    rows = [json.loads(Path(p).read_text()) for p in paths]
    return [r for r in rows if all(r[k] == v for k, v in match.items())]


def _tsv(path) -> pd.DataFrame:
    return pd.read_csv(path, sep="\t", keep_default_na=False, na_values=[""])


def test_table2_numbers_are_the_trial_mean_and_sample_std(stage, written):
    _, paths = stage
    table = _tsv(written["table2"])
    sources = {"main": "Bractivate", "random": "Random search", "unet": "UNet", "unetpp": "UNet++"}
    assert list(pd.unique(table["model"])) == list(sources.values())
    assert len(table) == len(sources) * len(DATASETS)
    for source, model in sources.items():
        for dataset in DATASETS:
            key = "experiment" if source in ("main", "random") else "model"
            rows = _metrics(paths["train"] if key == "experiment" else paths["baselines"],
                            dataset=dataset, **{key: source})
            dice = [r["test_dice"] for r in rows]
            params = [r["params"] for r in rows]
            (row,) = table[(table["model"] == model) & (table["dataset"] == dataset)].to_dict("records")
            assert row["source"] == source and row["n"] == 3
            assert row["dice_mean"] == pytest.approx(statistics.mean(dice), abs=1e-12)
            assert row["dice_std"] == pytest.approx(statistics.stdev(dice), abs=1e-12)
            assert row["params_mean"] == pytest.approx(statistics.mean(params))
            mantissa, exponent = f"{statistics.mean(params):.1e}".split("e")
            spread = f"{statistics.mean(dice):.3f} ± {statistics.stdev(dice):.3f}"
            assert row["cell"] == f"{spread} ({mantissa}e{int(exponent)})"


def test_table3_hours_are_the_sum_of_the_search_clock(stage, written):
    _, paths = stage
    table = _tsv(written["table3"])
    assert len(table) == len(DATASETS) * len(EXPERIMENTS)
    for row in table.to_dict("records"):
        hours = [pd.read_csv(p, sep="\t")["elapsed_seconds"].sum() / 3600 for p in paths["history"]
                 if f"/{row['dataset']}/{row['experiment']}/" in p]
        assert row["n"] == len(hours) == 3
        assert row["hours_mean"] == pytest.approx(statistics.mean(hours), rel=1e-12)
        assert row["hours_std"] == pytest.approx(statistics.stdev(hours), rel=1e-12)
        assert row["cell"].startswith(f"{statistics.mean(hours):.2f} ± ")


def test_ablation_table_means_drops_and_blocks(stage, written):
    _, paths = stage
    table = _tsv(written["ablation"])
    # per data set the most active block's row, then the control's
    assert list(table["dataset"]) == [d for d in DATASETS for _ in range(2)]
    assert list(table["target"]) == ["most active", "control"] * len(DATASETS)
    for row in table[table["target"] == "control"].to_dict("records"):
        rows = [r for r in _metrics(paths["ablation"], dataset=row["dataset"]) if r["control_block"]]
        assert row["block"] == "dec0" and row["n"] == len(rows) == 2
        for name in ("intact", "zeroed", "retrained"):
            key = "intact_dice" if name == "intact" else f"control_{name}_dice"
            assert row[f"{name}_mean"] == pytest.approx(statistics.mean(r[key] for r in rows), abs=1e-12)
        drops = [r["intact_dice"] - r["control_zeroed_dice"] for r in rows]
        assert row["drop_zeroed_mean"] == pytest.approx(statistics.mean(drops), abs=1e-12)
    assert "| control | dec0 | 2 |" in Path(written["ablation_md"]).read_text()
    for row in table[table["target"] == "most active"].to_dict("records"):
        rows = _metrics(paths["ablation"], dataset=row["dataset"])
        assert row["block"] == "dec1, mid" and row["n"] == 3
        for name in ("intact", "zeroed", "retrained"):
            values = [r[f"{name}_dice"] for r in rows]
            assert row[f"{name}_mean"] == pytest.approx(statistics.mean(values), abs=1e-12)
            assert row[f"{name}_std"] == pytest.approx(statistics.stdev(values), abs=1e-12)
        drops = [r["intact_dice"] - r["zeroed_dice"] for r in rows]
        assert row["drop_zeroed_mean"] == pytest.approx(statistics.mean(drops), abs=1e-12)
        assert row["drop_zeroed_std"] == pytest.approx(statistics.stdev(drops), abs=1e-12)
        assert row["drop_zeroed_mean"] > 0
        retrain_drops = [r["intact_dice"] - r["retrained_dice"] for r in rows]
        assert row["drop_retrained_mean"] == pytest.approx(statistics.mean(retrain_drops), abs=1e-12)


def test_activation_table_averages_each_block_over_the_trials_that_have_it(stage, written):
    _, paths = stage
    table = _tsv(written["activation"])
    per_trial = _tsv(written["activation_trials"])
    for dataset in DATASETS:
        part = table[table["dataset"] == dataset]
        # network order of the deepest genome: encoder down, bottleneck, decoder up
        assert list(part["block"]) == ["enc0", "enc1", "enc2", "mid", "dec2", "dec1", "dec0"]
        assert set(part["ablated_block"]) == {"dec1, mid"}
        rows = _metrics(paths["ablation"], dataset=dataset)
        for row in part.to_dict("records"):
            having = [r for r in rows if row["block"] in r["blocks"]]
            assert row["n"] == len(having) == (2 if row["block"] == "enc2" or row["block"] == "dec2" else 3)
            for model in ABLATION_MODELS:
                values = [r["mean_abs_activation"][model][row["block"]] for r in having]
                assert row[f"{model}_mean"] == pytest.approx(statistics.mean(values), abs=1e-12)
                assert row[f"{model}_std"] == pytest.approx(statistics.stdev(values), abs=1e-12)
            ratios = [r["mean_abs_activation"]["zeroed"][row["block"]]
                      / r["mean_abs_activation"]["intact"][row["block"]] for r in having]
            assert row["zeroed_ratio_mean"] == pytest.approx(statistics.mean(ratios), abs=1e-12)
        # the rows behind the table: one per trial, model and block, with the model's test Dice
        trials = per_trial[per_trial["dataset"] == dataset]
        assert len(trials) == sum(3 * len(r["blocks"]) for r in rows)
        first = trials[(trials["trial"] == 1) & (trials["model"] == "zeroed")]
        assert list(first["block"]) == ["enc0", "enc1", "enc2", "mid", "dec2", "dec1", "dec0"]
        assert set(first["test_dice"]) == {_metrics(paths["ablation"], dataset=dataset, trial=1)[0]["zeroed_dice"]}


def test_dice_time_ratio_is_dice_over_seconds_per_trial(stage, written):
    _, paths = stage
    table = _tsv(written["dice_time"])
    assert len(table) == len(DATASETS) * len(EXPERIMENTS)
    for row in table.to_dict("records"):
        rows = _metrics(paths["train"], dataset=row["dataset"], experiment=row["experiment"])
        ratios = [r["test_dice"] / r["seconds_per_epoch"] for r in rows]
        assert row["n"] == 3
        assert row["dice_time_mean"] == pytest.approx(statistics.mean(ratios), rel=1e-12)
        assert row["dice_time_std"] == pytest.approx(statistics.stdev(ratios), rel=1e-12)
        assert row["seconds_mean"] == pytest.approx(statistics.mean(r["seconds_per_epoch"] for r in rows))
        assert (row["keras_backend"], row["device"]) == ("torch", "cpu")
    md = Path(written["dice_time_md"]).read_text()
    assert "| Dice:time (1/s) |" in md and "| torch | cpu |" in md


def test_activation_table_names_old_ablation_outputs(stage, tmp_path):
    _, paths = stage
    record = json.loads(Path(paths["ablation"][0]).read_text())
    del record["mean_abs_activation"]
    old = dump_json(tmp_path / "results/ablation/lungs/trial1/metrics.json", record)
    with pytest.raises(ValueError, match=r"data set 'lungs', trial 1: no 'mean_abs_activation'"):
        activation_blocks(load_ablation_metrics([old]))


def test_paired_comparison_differences_and_t_test(stage, written):
    _, paths = stage
    trials = _tsv(written["paired_trials"])
    summary = _tsv(written["paired"])
    for dataset in DATASETS:
        main, rand = ({r["trial"]: r["test_dice"] for r in _metrics(paths["train"], dataset=dataset,
                                                                      experiment=e)}
                      for e in ("main", "random"))
        diffs = [main[t] - rand[t] for t in TRIALS]
        part = trials[trials["dataset"] == dataset].sort_values("trial")
        assert list(part["trial"]) == list(TRIALS)
        np.testing.assert_allclose(part["difference"], diffs, atol=1e-12)
        np.testing.assert_allclose(part["test_dice_main"], [main[t] for t in TRIALS])
        (row,) = summary[summary["dataset"] == dataset].to_dict("records")
        mean, sd = statistics.mean(diffs), statistics.stdev(diffs)
        t = mean / (sd / math.sqrt(len(diffs)))
        from scipy.stats import t as student

        assert row["n"] == 3 and row["test"] == "paired t"
        assert row["mean_difference"] == pytest.approx(mean, abs=1e-12)
        assert row["std_difference"] == pytest.approx(sd, abs=1e-12)
        assert row["t"] == pytest.approx(t, rel=1e-9)
        assert row["p"] == pytest.approx(2 * student.sf(abs(t), len(diffs) - 1), rel=1e-9)


def test_markdown_latex_and_tsv_agree(written):
    for key in ("table2", "table3", "ablation", "activation", "dice_time", "paired"):
        tidy = _tsv(written[key])
        md = Path(written[f"{key}_md"]).read_text()
        tex = Path(written[f"{key}_tex"]).read_text()
        page = Path(written[f"{key}_html"]).read_text()
        cells = [c for c in tidy.columns if c == "cell" or c.endswith("_cell")]
        assert cells, key
        for value in tidy[cells].to_numpy().ravel():
            assert f"| {value} |" in md or f" {value} |" in md
            assert latex_escape(value) in tex
            assert f"<td>{html.escape(value)}</td>" in page
        for dataset in DATASETS:
            assert dataset in md and latex_escape(dataset) in tex
        assert "±" in md and "±" not in tex and r"$\pm$" in tex
        assert r"em\_cells" in tex and "em_cells" not in tex
        assert tex.count(r"\begin{tabular}") == 1 and tex.rstrip().endswith(r"\end{table}")
        header, rule = md.splitlines()[2:4]
        assert header.count("|") == rule.count("|")


def test_the_tables_are_the_ones_the_workflow_names(tmp_path):
    # rules/figures.smk writes the tables under bractivate.outputs' names and keys.
    paths = write_stage_outputs(tmp_path, datasets=("lungs",), trials=(1,))
    outputs = table_outputs(tmp_path)
    tables = tables_job(train=paths["train"], baselines=[], ablation=paths["ablation"],
                        histories=paths["history"], outputs=outputs)
    assert {key: table.name for key, table in tables.items()} == {**TABLES, **TRIAL_TABLES}
    for key, name in TRIAL_TABLES.items():
        assert Path(outputs[key]).name == f"{name}.tsv" and Path(outputs[key]).stat().st_size > 0


def test_every_table_has_one_job_that_reads_only_its_inputs(stage, written, tmp_path):
    assert sorted(TABLE_JOBS) == sorted(TABLE_INPUTS) == sorted(table_names())
    _, paths = stage
    kinds = {"train": paths["train"], "all_train": paths["train"], "baselines": paths["baselines"],
             "ablation": paths["ablation"], "histories": paths["history"]}
    for key, name in table_names().items():
        outputs = {fmt: tmp_path / f"{name}.{fmt}" for fmt in table_formats(key)}
        table_job(key, {kind: kinds[kind] for kind in TABLE_INPUTS[key]}, outputs)
        for fmt, path in outputs.items():  # the same bytes as all tables in one call
            assert path.read_bytes() == Path(written[key if fmt == "tsv" else f"{key}_{fmt}"]).read_bytes()
    with pytest.raises(ValueError, match=r"table table3: inputs \['histories'\] missing"):
        table_job("table3", {"train": paths["train"]}, {})
    with pytest.raises(ValueError, match=r"unknown table 'table9'"):
        table_job("table9", {}, {})


def test_one_trial_has_no_spread_and_no_t_test(tmp_path):
    paths = write_stage_outputs(tmp_path, datasets=("lungs",), trials=(1,))
    outputs = table_outputs(tmp_path)
    tables = tables_job(train=paths["train"], baselines=[], ablation=paths["ablation"],
                        histories=paths["history"], outputs=outputs)
    table2 = _tsv(outputs["table2"])
    assert list(table2["source"]) == ["main", "random"]
    assert table2["dice_std"].isna().all() and (table2["n"] == 1).all()
    assert all(" ± – (" in cell for cell in table2["cell"])
    paired = _tsv(outputs["paired"]).iloc[0]
    assert paired["test"] == "n too small"
    assert math.isnan(paired["p"]) and math.isnan(paired["std_difference"])
    assert tables["paired"].display["p"].tolist() == ["n too small"]
    assert r"$\pm$ --" in Path(outputs["table2_tex"]).read_text()


def test_equal_differences_skip_the_t_test():
    pairs = pd.DataFrame({"dataset": ["a"] * 3, "trial": [1, 2, 3], "test_dice_main": [0.9, 0.8, 0.7],
                          "test_dice_random": [0.8, 0.7, 0.6]})
    pairs["difference"] = [0.1, 0.1, 0.1]
    pairs["same_genome"] = [False, True, False]
    table = paired_comparison(pairs)
    row = table.tidy.iloc[0]
    assert row["test"] == "differences all equal" and math.isnan(row["t"])
    assert row["same_genome"] == 1 and table.display.iloc[0]["Same genome"] == "1/3"


def test_same_genome_in_every_trial_is_said_not_tested():
    train = pd.DataFrame({"dataset": ["a"] * 4, "experiment": ["main", "main", "random", "random"],
                          "trial": [1, 2, 1, 2], "seed": [1, 2, 1, 2], "genome_hash": list("xyxy"),
                          "test_dice": [0.9, 0.8, 0.9, 0.8], "params": [10, 20, 10, 20]})
    row = paired_comparison(paired_trials(train)).tidy.iloc[0]
    assert row["test"] == "same genome in every trial" and math.isnan(row["p"])
    table = table2_dice(model_frame(train)).display
    assert table.loc[table["Model"] == "Random search", "a"].item() == "same genome as Bractivate (2/2 trials)"
    assert table.loc[table["Model"] == "Bractivate", "a"].item().startswith("0.850 ± 0.071")


def test_table2_marks_collapsed_models_and_partly_shared_genomes():
    train = pd.DataFrame({"dataset": ["a"] * 4, "experiment": ["main", "main", "random", "random"],
                          "trial": [1, 2, 1, 2], "seed": [1, 2, 1, 2], "genome_hash": list("xyxz"),
                          "test_dice": [0.9, 0.8, 0.9, 0.0], "params": [10, 20, 10, 30],
                          "collapsed": [False, False, False, True]})
    table = table2_dice(model_frame(train))
    cell = table.display.loc[table.display["Model"] == "Random search", "a"].item()
    assert cell == "0.450 ± 0.636 (2.0e1) [same genome 1/2] [collapsed 1/2]"
    assert table.tidy.set_index("source").loc["main", "collapsed"] == 0


def test_paired_trials_pair_on_trial_number():
    train = pd.DataFrame({"dataset": ["a"] * 4, "experiment": ["main", "main", "random", "random"],
                          "trial": [2, 1, 1, 2], "seed": [2, 1, 1, 2], "genome_hash": list("wxyz"),
                          "test_dice": [0.9, 0.8, 0.5, 0.6]})
    pairs = paired_trials(train).sort_values("trial")
    assert pairs["difference"].round(12).tolist() == [0.3, 0.3]
    assert pairs["genome_hash_random"].tolist() == ["y", "z"]


def test_loaders_keep_provenance_and_name_bad_files(stage, tmp_path):
    _, paths = stage
    train = load_train_metrics(paths["train"])
    assert list(train.columns[:5]) == ["dataset", "experiment", "trial", "seed", "genome_hash"]
    assert len(train) == len(DATASETS) * len(EXPERIMENTS) * len(TRIALS)
    hours = load_search_hours(paths["history"][:1])
    assert hours.loc[0, ["dataset", "experiment", "trial"]].tolist() == ["lungs", "main", 1]
    bad = dump_json(tmp_path / "metrics.json", {"dataset": "lungs"})
    with pytest.raises(ValueError, match=r"metrics.json: keys .*test_dice"):
        load_train_metrics([bad])
    # Provenance comes from the file's content, never from its path: a history without its
    # columns is refused by name, wherever it lies.
    anonymous = tmp_path / "results/search/lungs/main/trial1/history.tsv"
    anonymous.parent.mkdir(parents=True)
    pd.read_csv(paths["history"][0], sep="\t").drop(columns=["dataset", "experiment", "trial"]).to_csv(
        anonymous, sep="\t", index=False)
    with pytest.raises(ValueError, match=r"history.tsv: columns \['dataset', 'experiment', 'trial'\] missing"):
        load_search_hours([anonymous])
    with pytest.raises(ValueError, match="history predates the provenance columns"):
        load_histories([anonymous])


def test_history_best_so_far_ignores_failed_evaluations(stage):
    _, paths = stage
    history = load_histories(paths["history"][:1])  # trial 1: evaluations 0, 1 and 5 failed
    assert history.loc[0, ["dataset", "experiment", "trial"]].tolist() == ["lungs", "main", 1]
    assert np.isinf(history["best_so_far"].iloc[:2]).all()
    ok = history["outcome"] == "ok"
    expected = np.minimum.accumulate(np.where(ok, history["score"], np.inf))
    np.testing.assert_array_equal(history["best_so_far"], expected)
    assert np.isfinite(history["best_so_far"].iloc[2:]).all()
    assert history.loc[5, "best_so_far"] == history.loc[4, "best_so_far"]


def test_formatting():
    assert fmt_sci(123456) == "1.2e5" and fmt_sci(999) == "1.0e3" and fmt_sci(float("nan")) == "–"
    assert fmt_mean_std(0.91234, 0.0042) == "0.912 ± 0.004"
    assert fmt_mean_std(0.91234, float("nan")) == "0.912 ± –"
    assert latex_escape("a_b & 5% ± –") == r"a\_b \& 5\% $\pm$ --"
    assert latex_escape("-0.032 ± 0.011, enc-1, depth 2–5") == r"$-$0.032 $\pm$ 0.011, enc-1, depth 2--5"
