"""Drawing helpers shared by the paper's figures (:mod:`bractivate.figures`): the seaborn
style, panel grids, one legend per figure, log axes for parameter counts, and the check that
every label a reader needs lies inside the figure before it is saved.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
from pathlib import Path
from typing import Mapping, Sequence

import matplotlib

matplotlib.use("Agg")  # files only; never a window, even where a display is set

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402
from matplotlib import ticker  # noqa: E402

from bractivate.compat import side_titles, suptitle  # noqa: E402
from bractivate.io import atomic_path  # noqa: E402

log = logging.getLogger(__name__)
STRICT_LAYOUT = False  # raise instead of logging when a figure's text is clipped or overlaps


@contextlib.contextmanager
def styled(style: Mapping):
    with sns.axes_style(style["style"]), sns.plotting_context("paper"):
        yield


def layout_problems(fig, dpi: int) -> list[str]:
    """What a reader of ``fig`` saved at ``dpi`` could not read: a legend, title, axis label,
    tick label or annotation that reaches past the figure's edge, and labels (legends, titles,
    axis and tick labels) that overlap one another. One line per problem; none is good."""
    fig.set_dpi(dpi)
    fig.canvas.draw()  # lays the figure out (constrained layout) at the saved resolution
    renderer = fig.canvas.get_renderer()
    edge = fig.bbox.padded(0.5)  # half a pixel for rounding
    labels: list[tuple[str, object]] = []  # (what, its bounding box in pixels)
    inside: list[tuple[str, object]] = []
    for figure in [fig, *fig.subfigs]:
        title = suptitle(figure)
        if title is not None and title.get_text():
            labels.append((f"suptitle {title.get_text()!r}", title.get_window_extent(renderer)))
        for i, legend in enumerate(figure.legends):
            labels.append((f"figure legend {i}", legend.get_window_extent(renderer)))
    for ax in fig.get_axes():
        if not ax.get_visible():
            continue
        name = ax.get_title() or ax.get_label() or "axes"
        if ax.get_legend() is not None:
            labels.append((f"legend of {name!r}", ax.get_legend().get_window_extent(renderer)))
        titles = [ax.title, *side_titles(ax)]
        labels += [(f"title {t.get_text()!r}", t.get_window_extent(renderer)) for t in titles if t.get_text()]
        inside += [(f"text {t.get_text()!r} in {name!r}", t.get_window_extent(renderer))
                   for t in ax.texts if t.get_visible() and t.get_text()]
        if not ax.axison:
            continue
        for axis in (ax.xaxis, ax.yaxis):
            if not axis.get_visible():
                continue
            if axis.label.get_text():
                labels.append((f"axis label {axis.label.get_text()!r}", axis.label.get_window_extent(renderer)))
            # Only the ticks inside the view are drawn; the locator also places some beyond it.
            low, high = sorted(axis.get_view_interval())
            span = (high - low) * 1e-9
            ticks = [t for loc, t in zip(axis.get_majorticklocs(), axis.get_majorticklabels())
                     if low - span <= loc <= high + span and t.get_visible() and t.get_text()]
            labels += [(f"tick label {t.get_text()!r} of {name!r}", t.get_window_extent(renderer))
                       for t in ticks]
    problems = [f"{what} is clipped by the figure's edge" for what, box in labels + inside
                if not (edge.x0 <= box.x0 and box.x1 <= edge.x1 and edge.y0 <= box.y0 and box.y1 <= edge.y1)]
    shrunk = [(what, box.padded(-0.5)) for what, box in labels]
    for (first, a), (second, b) in itertools.combinations(shrunk, 2):
        if a.width > 0 and b.width > 0 and a.overlaps(b):
            problems.append(f"{first} overlaps {second}")
    return problems


def save_figure(fig, paths: Sequence, dpi: int) -> list[Path]:
    """Write ``fig`` to each path (format from its suffix) atomically and close it. PDFs carry
    no creation date, so the same inputs give the same bytes. Text a reader could not read
    (:func:`layout_problems`) is logged, or raised where ``STRICT_LAYOUT`` is set (the tests)."""
    problems = layout_problems(fig, dpi)
    if problems:
        message = f"{len(problems)} layout problem(s) in the figure for {', '.join(map(str, paths))}: " + \
            "; ".join(problems)
        if STRICT_LAYOUT:
            plt.close(fig)
            raise ValueError(message)
        log.warning(message)
    written = []
    for path in map(Path, paths):
        fmt = path.suffix.lstrip(".").lower()
        metadata = {"CreationDate": None} if fmt == "pdf" else None
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format=fmt, dpi=dpi, metadata=metadata)
        written.append(path)
    plt.close(fig)
    return written


def grid(rows: int, cols: int, width: float, height: float, **kwargs):
    return plt.subplots(rows, cols, figsize=(width * cols, height * rows), squeeze=False,
                        layout="constrained", **kwargs)


def shared_legend(fig, axes, title: str | None = None, extra: Sequence = ()) -> None:
    """One legend for the figure, from the first panel that has labelled artists."""
    handles, labels = [], []
    for ax in np.ravel(axes):
        if not handles:
            handles, labels = ax.get_legend_handles_labels()
        if ax.get_legend() is not None:
            ax.get_legend().remove()
    handles, labels = list(handles) + [h for h in extra], list(labels) + [h.get_label() for h in extra]
    if handles:
        fig.legend(handles, labels, title=title, loc="outside right upper", frameon=False)


def log_axis(ax, values, which: str = "x") -> None:
    """A log axis for parameter counts labelled 200k, 1M, …: ticks at each decade over a wide
    range, at 1 and 3 per decade over one to two decades, at 1, 2 and 5 over about one, at
    every integer multiple over a narrower one, so the labels neither vanish nor collide (at
    1, 2 and 5 per decade, 100k and 200k touch across two decades of a 3-inch panel), and at
    three round values, as on a linear axis, over less than about half a decade (600k, 700k,
    800k and 900k collide on a narrow panel)."""
    values = np.asarray(values, dtype=float)
    values = values[np.isfinite(values) & (values > 0)]
    (ax.set_xscale if which == "x" else ax.set_yscale)("log")
    # The span shown, margins included: two close values still get an axis of about a decade.
    low, high = ax.get_xlim() if which == "x" else ax.get_ylim()
    span = float(np.log10(high / low)) if len(values) and 0 < low < high else 2.0
    axis = ax.xaxis if which == "x" else ax.yaxis
    if span >= 0.6:
        subs = (1.0,) if span >= 2.0 else (1.0, 3.0) if span >= 1.2 else (1.0, 2.0, 5.0)
        axis.set_major_locator(ticker.LogLocator(subs=subs))
    else:
        axis.set_major_locator(ticker.MaxNLocator(nbins=3, steps=[1, 2, 2.5, 5, 10]))
    axis.set_major_formatter(ticker.EngFormatter(sep=""))
    axis.set_minor_formatter(ticker.NullFormatter())


def unique_in_order(values) -> list:
    return list(pd.unique(pd.Series(values)))

