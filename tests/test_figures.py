"""Every figure draws from fake stage outputs into a real PNG and PDF."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from bractivate.figures import DEPTH_STUDY, FIGURE_JOBS, LOSS_STUDY, figure_job, search_trace_figure
from bractivate.report import load_histories
from test_report import write_stage_outputs

STYLE = {"dpi": 100, "style": "whitegrid"}


@pytest.fixture(scope="module")
def stage(tmp_path_factory):
    root = tmp_path_factory.mktemp("stage")
    return root, write_stage_outputs(root)


def _inputs(name: str, paths: dict, dataset: str = "") -> dict:
    """The named inputs each figure rule of rules/figures.smk gives its script (those of one
    ``dataset`` only when given)."""
    if dataset:
        paths = {kind: [p for p in files if f"/{dataset}/" in p] for kind, files in paths.items()}

    def runs(kind, *experiments):
        return [p for p in paths[kind] if any(f"/{e}/trial" in p for e in experiments)]

    first_trial = [p for p in paths["activations"] if "/trial1/" in p]
    return {
        "fig4": {"best": runs("best", "main")},
        "fig5": {"metrics": runs("train", *DEPTH_STUDY), "best": runs("best", *DEPTH_STUDY)},
        "fig6": {"ablation": [p.replace("activations.h5", "metrics.json") for p in first_trial],
                 "activations": first_trial},
        "fig7": {"metrics": runs("train", "main", "random"), "baselines": paths["baselines"]},
        "fig9": {"metrics": runs("train", *LOSS_STUDY), "best": runs("best", *LOSS_STUDY)},
        "search_traces": {"history": paths["history"]},
    }[name]


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
