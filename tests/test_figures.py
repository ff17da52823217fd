"""Every figure draws from fake stage outputs into a real PNG and PDF whose text lies inside
it and does not overlap."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
import yaml
from PIL import Image

import bractivate.figures as figures
import bractivate.plotting as plotting
from bractivate.figures import FIGURE_JOBS, figure_job, search_trace_figure
from bractivate.outputs import DEPTH_STUDY, FIGURE_INPUTS, FIGURES, report_experiments
from bractivate.plotting import layout_problems
from bractivate.report.frames import dice_time
from bractivate.report.loaders import load_histories, load_train_metrics
from bractivate.report.tables import table_dice_time
from helpers import EXPERIMENTS, write_stage_outputs

STYLE = {"dpi": 100, "style": "whitegrid"}
ROOT = Path(__file__).resolve().parents[1]
CONFIGURED_DPI = yaml.safe_load((ROOT / "config.yaml").read_text())["figures"]["dpi"]


@pytest.fixture(autouse=True)
def strict_layout(monkeypatch):
    """Every figure these tests draw fails on clipped or overlapping text."""
    monkeypatch.setattr(plotting, "STRICT_LAYOUT", True)


@pytest.fixture(scope="module")
def stage(tmp_path_factory):
    root = tmp_path_factory.mktemp("stage")
    return root, write_stage_outputs(root)


def _inputs(name: str, paths: dict, dataset: str = "") -> dict:
    """The named inputs (bractivate.outputs.FIGURE_INPUTS) each figure rule of rules/figures.smk
    gives its script (those of one ``dataset`` only when given)."""
    if dataset:
        paths = {kind: [p for p in files if f"/{dataset}/" in p] for kind, files in paths.items()}
    experiments = report_experiments(EXPERIMENTS, "main")[name]

    def runs(kind):
        return [p for p in paths[kind] if any(f"/{e}/trial" in p for e in experiments)]

    first_trial = [p for p in paths["activations"] if "/trial1/" in p]
    kinds = {"best": lambda: runs("best"), "metrics": lambda: runs("train"), "history": lambda: runs("history"),
             "baselines": lambda: paths["baselines"], "activations": lambda: first_trial,
             "ablation": lambda: [p.replace("activations.h5", "metrics.json") for p in first_trial]}
    return {kind: kinds[kind]() for kind in FIGURE_INPUTS[name]}


def check_figure(png, pdf) -> None:
    with Image.open(png) as image:
        image.load()
        width, height = image.size
        pixels = np.asarray(image.convert("L"), dtype=float)
    assert 300 <= width <= 6000 and 300 <= height <= 6000, (png, image.size)
    assert pixels.std() > 0, f"{png} is blank"
    # Something besides the background covers a fair share of the picture.
    assert (pixels < 250).mean() > 0.02, png
    with open(pdf, "rb") as fh:
        assert fh.read(5) == b"%PDF-"


@pytest.fixture(scope="module")
def one_run(tmp_path_factory):
    """One data set, one trial: the demo's and the tiny preset's shape (narrowest figures)."""
    root = tmp_path_factory.mktemp("one")
    return root, write_stage_outputs(root, datasets=("lungs",), trials=(1,), seed=1)


def test_every_figure_the_workflow_names_has_a_job():
    assert sorted(FIGURE_JOBS) == sorted(FIGURES) == sorted(FIGURE_INPUTS)


@pytest.mark.parametrize("name", sorted(FIGURE_JOBS))
def test_one_trial_figures_keep_their_text_inside(name, one_run, tmp_path):
    _, paths = one_run
    out = [tmp_path / f"{name}.png"]
    assert figure_job(name, _inputs(name, paths), out, {"dpi": CONFIGURED_DPI, "style": "whitegrid"}) == out


def test_layout_check_finds_clipped_legends_titles_and_overlaps(tmp_path):
    fig, ax = plt.subplots(figsize=(3, 2), layout="constrained")
    ax.plot([0, 1], [0, 1], label="a line with a long label")
    fig.legend(loc="center left", bbox_to_anchor=(0.8, 0.5))  # hangs past the right edge
    ax.set_title("a title far too long to fit in a figure three inches wide, cut off")
    assert layout_problems(fig, 100) == [
        "figure legend 0 is clipped by the figure's edge",
        "title 'a title far too long to fit in a figure three inches wide, cut off' is clipped by "
        "the figure's edge"]
    with pytest.raises(ValueError, match="2 layout problem"):
        plotting.save_figure(fig, [tmp_path / "bad.png"], 100)
    assert not (tmp_path / "bad.png").exists()
    fig, axes = plt.subplots(1, 2, figsize=(2, 2), layout=None)
    axes[0].set_ylabel("left")
    axes[1].set_ylabel("a label between the panels")
    axes[1].set_xticks([0, 1], ["first tick label", "second tick label"])
    problems = layout_problems(fig, 100)
    plt.close(fig)
    assert "tick label 'first tick label' of 'axes' overlaps tick label 'second tick label' of 'axes'" in problems
    assert any(p.endswith("overlaps axis label 'a label between the panels'") for p in problems)


def test_fig5_bars_are_the_dice_time_table(stage, tmp_path, monkeypatch):
    _, paths = stage
    inputs = _inputs("fig5", paths)
    drawn = {}
    save = figures.save_figure

    def keep(fig, out, dpi):
        drawn["ratios"] = [[bar.get_height() for bar in row[2].patches] for row in
                           np.reshape(fig.axes[:6], (2, 3))]
        drawn["title"] = fig._suptitle.get_text()
        return save(fig, out, dpi)

    monkeypatch.setattr(figures, "save_figure", keep)
    figure_job("fig5", inputs, [tmp_path / "fig5.png"], STYLE)
    table = table_dice_time(dice_time(load_train_metrics(inputs["metrics"]))).tidy
    for ratios, dataset in zip(drawn["ratios"], ["lungs", "em_cells"]):
        expected = table.set_index(["dataset", "experiment"]).loc[dataset].loc[list(DEPTH_STUDY)]
        np.testing.assert_allclose(ratios, expected["dice_time_mean"], rtol=1e-12)
    assert drawn["title"] == "seconds per epoch: Keras backend torch, device cpu"


@pytest.mark.parametrize("name", sorted(FIGURE_JOBS))
def test_figure_writes_png_and_pdf(name, stage, tmp_path):
    _, paths = stage
    out = [tmp_path / f"{name}.png", tmp_path / f"{name}.pdf"]
    written = figure_job(name, _inputs(name, paths), out, STYLE)
    assert written == out
    check_figure(*out)
    assert not list(tmp_path.glob(".*tmp*")), "temporary files left behind"


def test_dpi_scales_the_png(stage, tmp_path):
    _, paths = stage
    sizes = []
    for dpi in (60, 120):
        png = tmp_path / f"fig9_{dpi}.png"
        figure_job("fig9", _inputs("fig9", paths, "lungs"), [png], {"dpi": dpi, "style": "ticks"})
        sizes.append(Image.open(png).size)
    assert sizes[1] == pytest.approx((2 * sizes[0][0], 2 * sizes[0][1]), abs=2)


def test_pdf_is_reproducible(stage, tmp_path):
    _, paths = stage
    first, second = tmp_path / "a.pdf", tmp_path / "b.pdf"
    figure_job("fig4", _inputs("fig4", paths, "lungs"), [first], STYLE)
    figure_job("fig4", _inputs("fig4", paths, "lungs"), [second], STYLE)
    assert first.read_bytes() == second.read_bytes()


def test_traces_cope_with_failed_and_all_failed_searches(stage, tmp_path):
    _, paths = stage
    history = load_histories(paths["history"][:2])
    assert np.isinf(history["score"]).any()
    # A search whose every evaluation failed has no finite best score at all.
    dead = history[history["trial"] == 1].assign(trial=9, score=np.inf, best_so_far=np.inf, outcome="failed")
    frame = pd.concat([history, dead], ignore_index=True)
    out = [tmp_path / "traces.png", tmp_path / "traces.pdf"]
    assert search_trace_figure(frame, out, {**STYLE, "dpi": 150}) == out
    check_figure(*out)


def test_unknown_figure_is_named():
    with pytest.raises(ValueError, match="unknown figure 'fig8'"):
        figure_job("fig8", {}, [], STYLE)
