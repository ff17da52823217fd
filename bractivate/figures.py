"""The paper's figures, drawn with seaborn from the stage outputs only (docs/method.md#outputs).

Each figure function takes tidy frames from :mod:`bractivate.report` (or paths to the files it
reads), the output paths (PNG and PDF) and the ``figures`` config (``dpi``, ``style``), writes
every path atomically and returns the paths it wrote. :func:`figure_job` is what the workflow's
figure rules call.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
from pathlib import Path
from typing import Callable, Mapping, Sequence

import matplotlib

matplotlib.use("Agg")  # files only; never a window, even where a display is set

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402
from matplotlib import ticker  # noqa: E402
from matplotlib.colors import Normalize  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.patches import FancyArrowPatch  # noqa: E402

from bractivate.compat import side_titles, suptitle  # noqa: E402
from bractivate.genome import Genome  # noqa: E402
from bractivate.io import atomic_path  # noqa: E402
from bractivate.outputs import ABLATION_MODELS, DEPTH_STUDY, LOSS_STUDY  # noqa: E402
from bractivate.report import (  # noqa: E402
    dice_time, fmt_sci, load_ablation_metrics, load_baseline_metrics, load_histories,
    load_search_results, load_train_metrics, model_frame, read_activations, summarise,
    with_search_settings,
)

log = logging.getLogger(__name__)
OP_COLORS = {"concat": "tab:blue", "add": "tab:orange"}
MAIN_PATH_COLOR = "0.55"
ACTIVITY_CMAP = "viridis"
ACTIVATION_CMAP = "magma"
ACTIVATION_IMAGES = 1  # test images per data set in Fig. 6 (three rows each)
MODELS = ABLATION_MODELS  # Fig. 6's rows
MARKERS = "osD^vPX*<>"
STRICT_LAYOUT = False  # raise instead of logging when a figure's text is clipped or overlaps


@contextlib.contextmanager
def _styled(style: Mapping):
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


def _grid(rows: int, cols: int, width: float, height: float, **kwargs):
    return plt.subplots(rows, cols, figsize=(width * cols, height * rows), squeeze=False,
                        layout="constrained", **kwargs)


def _shared_legend(fig, axes, title: str | None = None, extra: Sequence = ()) -> None:
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


def _log_axis(ax, values, which: str = "x") -> None:
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


def _order(values) -> list:
    return list(pd.unique(pd.Series(values)))


# ------------------------------------------------------------------------------ Fig. 4


def u_layout(depth: int, dx: float = 0.6) -> dict[str, tuple[float, float]]:
    """Block positions of a UNet drawn as a U: encoder down the left, the bottleneck at the
    bottom, decoder up the right (``dec_i`` level with ``enc_i``)."""
    pos = {f"enc{i}": (dx * i, -i) for i in range(depth)}
    pos["mid"] = (dx * depth, -depth)
    pos.update({f"dec{i}": (dx * (2 * depth - i), -i) for i in range(depth)})
    return pos


def draw_genome(ax, genome: Genome, activity: Mapping[str, float], norm: Normalize, cmap) -> None:
    """One architecture: blocks coloured by activity (grey where it is unknown), the main path
    as grey arrows, dendritic edges as curved arrows coloured by op."""
    pos = u_layout(genome.depth)
    shrink = 9  # points: about the node radius
    for src, dst in zip(genome.blocks, genome.blocks[1:]):
        ax.add_patch(FancyArrowPatch(pos[src], pos[dst], arrowstyle="-|>", mutation_scale=9,
                                     color=MAIN_PATH_COLOR, lw=1.4, shrinkA=shrink, shrinkB=shrink,
                                     zorder=1))
    for edge in genome.edges:
        x_src, x_dst, x_mid = pos[edge.src][0], pos[edge.dst][0], pos["mid"][0]
        # Bend edges within one side outwards so they do not run along the main path.
        rad = -0.35 if x_dst <= x_mid else 0.35 if x_src >= x_mid else 0.15
        ax.add_patch(FancyArrowPatch(pos[edge.src], pos[edge.dst], arrowstyle="-|>",
                                     mutation_scale=9, connectionstyle=f"arc3,rad={rad}",
                                     color=OP_COLORS[edge.op], lw=1.1, alpha=0.9,
                                     shrinkA=shrink, shrinkB=shrink, zorder=2))
    values = [activity.get(b, np.nan) for b in genome.blocks]
    colors = [cmap(norm(v)) if v is not None and np.isfinite(v) else (0.85, 0.85, 0.85, 1.0)
              for v in values]
    xs, ys = zip(*(pos[b] for b in genome.blocks))
    ax.scatter(xs, ys, s=200, c=colors, edgecolors="black", linewidths=0.6, zorder=3)
    mid_x = pos["mid"][0]
    for block in genome.blocks:
        x, y = pos[block]
        side = -1 if x < mid_x else 1 if x > mid_x else 0
        ax.annotate(f"{block}\n{genome.widths[block]}", (x, y), xytext=(14 * side, -15 * (side == 0)),
                    textcoords="offset points", ha={-1: "right", 0: "center", 1: "left"}[side],
                    va="center" if side else "top", fontsize=6)
    ax.set_xlim(-0.9, 2 * mid_x + 0.9)
    ax.set_ylim(-genome.depth - 0.8, 0.6)
    ax.set_axis_off()


def architecture_figure(searches: pd.DataFrame, paths: Sequence, style: Mapping) -> list[Path]:
    """Fig. 4: the best genome of each search, one panel per data set (row) × trial (column)."""
    datasets, trials = _order(searches["dataset"]), sorted(searches["trial"].unique())
    values = [v for a in searches["activity"] for v in a.values() if v is not None and np.isfinite(v)]
    low, high = (min(values), max(values)) if values else (0.0, 1.0)
    norm = Normalize(low, high if high > low else low + 1.0)
    cmap = plt.get_cmap(ACTIVITY_CMAP)
    with _styled(style):
        fig, axes = _grid(len(datasets), len(trials), 3.2, 2.9)
        for ax in axes.ravel():
            ax.set_axis_off()
        for row in searches.itertuples(index=False):
            ax = axes[datasets.index(row.dataset), trials.index(row.trial)]
            genome = Genome.from_dict(row.genome)
            draw_genome(ax, genome, row.activity, norm, cmap)
            params = f", {fmt_sci(row.search_params)} params" if pd.notna(row.search_params) else ""
            ax.set_title(f"{row.dataset}, trial {row.trial}: {row.experiment} {genome.hash[:8]}\n"
                         f"depth {genome.depth}, {genome.filters} filters{params}", fontsize=7)
        fig.colorbar(plt.cm.ScalarMappable(norm=norm, cmap=cmap), ax=axes.ravel().tolist(),
                     label="block activity", shrink=0.6)
        legend = [Line2D([], [], color=MAIN_PATH_COLOR, lw=1.4, label="main path")]
        legend += [Line2D([], [], color=c, lw=1.1, label=f"dendrite ({op})") for op, c in OP_COLORS.items()]
        # One row where the panels are wide enough for it; one column under a single panel.
        fig.legend(handles=legend, loc="outside lower center", ncol=3 if len(trials) > 1 else 1,
                   frameon=False)
        return save_figure(fig, paths, style["dpi"])


# ------------------------------------------------------------------------------ Fig. 5


def depth_figure(train: pd.DataFrame, paths: Sequence, style: Mapping,
                 experiments: Sequence[str] = DEPTH_STUDY) -> list[Path]:
    """Fig. 5: test Dice vs seconds per epoch and vs parameters (log) per depth range, and the
    Dice:time ratio (paper §5.2) of each search, trials as points and mean ± std over trials as
    a bar with error bars, as in the Dice:time table; one row per data set (``train`` from
    :func:`bractivate.report.with_search_settings`). The title names the backend and device
    the seconds were measured on."""
    frame = dice_time(train[train["experiment"].isin(experiments)]).merge(
        train[["dataset", "experiment", "trial", "depth_range"]], on=["dataset", "experiment", "trial"])
    frame = frame.assign(search=frame["experiment"] + " (depth " + frame["depth_range"] + ")")
    hue_order, datasets = _order(frame["search"]), _order(frame["dataset"])
    palette = dict(zip(hue_order, sns.color_palette("deep", len(hue_order))))
    ratio = summarise(frame, ["dataset", "search"], "dice_time")
    with _styled(style):
        fig, axes = _grid(len(datasets), 3, 3.1, 2.7)
        for (ax_time, ax_params, ax_ratio), dataset in zip(axes, datasets):
            part = frame[frame["dataset"] == dataset]
            for ax, x in ((ax_time, "seconds_per_epoch"), (ax_params, "params")):
                sns.scatterplot(data=part, x=x, y="test_dice", hue="search", style="search",
                                hue_order=hue_order, style_order=hue_order, palette=palette, s=45, ax=ax)
                ax.set_title(dataset)
                ax.set_ylabel("test Dice")
            ax_time.set_xlabel("seconds per epoch")
            _log_axis(ax_params, part["params"])
            ax_params.set_xlabel("parameters")
            means = ratio[ratio["dataset"] == dataset].set_index("search").reindex(hue_order)
            ax_ratio.bar(range(len(hue_order)), means["dice_time_mean"],
                         yerr=np.nan_to_num(means["dice_time_std"]), capsize=3,
                         color=[palette[h] for h in hue_order], alpha=0.45)
            sns.stripplot(data=part, x="search", y="dice_time", hue="search", order=hue_order,
                          hue_order=hue_order, palette=palette, size=4, jitter=0.15, legend=False,
                          ax=ax_ratio)
            ax_ratio.set_xticks(range(len(hue_order)),
                                [h.split(" (")[0] for h in hue_order])
            ax_ratio.set(title=f"{dataset}: Dice:time", xlabel="search", ylabel="test Dice / (s / epoch)")
        _shared_legend(fig, axes, "search")
        fig.suptitle(f"seconds per epoch: Keras backend {_joined(frame['keras_backend'])}, "
                     f"device {_joined(frame['device'])}", fontsize=8)
        return save_figure(fig, paths, style["dpi"])


def _joined(values) -> str:
    return ", ".join(map(str, _order(values)))


# ------------------------------------------------------------------------------ Fig. 6


def activation_figure(ablation: pd.DataFrame, activation_paths: Sequence, paths: Sequence,
                      style: Mapping, count: int = ACTIVATION_IMAGES) -> list[Path]:
    """Fig. 6: per data set (one panel group each) and test image, the channel-mean |conv2|
    map of every block in the network's order (columns) for the intact model, the model with
    the ablated block's dendrites zeroed and the one retrained without them, and the same two
    for the control block beside it (rows, where the genome has a control block); one colour
    scale per row, so a row shows where in the network that model's activation lies. Row labels
    give each model's test Dice on the whole test split."""
    maps = [read_activations(p, count) for p in activation_paths]
    if not maps:
        raise ValueError("no activation maps given")
    dice = ablation.set_index(["dataset", "trial"])
    columns = 2 + max(len(m["blocks"]) for m in maps)  # the image, its mask, the blocks
    with _styled(style):
        fig = plt.figure(layout="constrained", figsize=(1.05 * columns + 0.9,
                                                         sum(1.0 + 1.05 * _rows(m) * len(m["images"])
                                                             for m in maps)))
        heights = [_rows(m) * len(m["images"]) + 0.4 for m in maps]
        for sub, m in zip(np.atleast_1d(fig.subfigures(len(maps), 1, height_ratios=heights)), maps):
            key = (m["dataset"], m["trial"])
            if key not in dice.index:
                raise ValueError(f"no ablation metrics for data set {key[0]!r}, trial {key[1]}")
            scores = dice.loc[key]
            _activation_panels(sub, m, scores, columns)
        return save_figure(fig, paths, style["dpi"])


def _rows(m: Mapping) -> int:
    """Fig. 6's rows per test image of one maps file: the models it holds."""
    return sum(model in m["maps"] for model in MODELS)


def _activation_panels(fig, m: Mapping, scores, columns: int) -> None:
    models = [model for model in MODELS if model in m["maps"]]
    axes = fig.subplots(len(models) * len(m["images"]), columns, squeeze=False)
    cmap = plt.get_cmap(ACTIVATION_CMAP)
    for ax in axes.ravel():
        ax.set_xticks([])
        ax.set_yticks([])
        ax.grid(False)
        for spine in ax.spines.values():
            spine.set_visible(False)
    for k in range(len(m["images"])):
        top = k * len(models)
        axes[top, 0].imshow(m["images"][k], cmap="gray", interpolation="nearest")
        axes[top, 1].imshow(m["masks"][k], cmap="gray", vmin=0, vmax=1, interpolation="nearest")
        axes[top, 0].set_title(f"test image {k}", fontsize=7)
        axes[top, 1].set_title("mask", fontsize=7)
        for i, model in enumerate(models):
            row = axes[top + i]
            values = [m["maps"][model][b][k] for b in m["blocks"] if b in m["maps"][model]]
            norm = Normalize(0.0, max(float(v.max()) for v in values) or 1.0)
            for ax, block in zip(row[2:], m["blocks"]):
                if block in m["maps"][model]:
                    ax.imshow(m["maps"][model][block][k], cmap=cmap, norm=norm, interpolation="nearest")
                else:
                    ax.text(0.5, 0.5, "not in\nmodel", ha="center", va="center", fontsize=6,
                            color="0.4", transform=ax.transAxes)
                if i == 0:
                    role = {m["block"]: " (ablated)", m.get("control"): " (control)"}.get(block, "")
                    ax.set_title(f"{block}{role}", fontsize=7, fontweight="bold" if role else "normal")
            row[2].set_ylabel(f"{model}\nDice {scores[f'{model}_dice']:.3f}", fontsize=7)
            bar = fig.colorbar(plt.cm.ScalarMappable(norm=norm, cmap=cmap), ax=row[-1], shrink=0.9,
                               aspect=10, pad=0.02)
            bar.ax.tick_params(labelsize=6)
            if i == len(models) - 1 and k == len(m["images"]) - 1:
                bar.set_label("mean |conv2|", fontsize=6)
            for ax in row[2 + len(m["blocks"]):]:
                ax.set_axis_off()
            if i:
                row[0].set_axis_off()
                row[1].set_axis_off()
    control = f", control {m['control']}" if m.get("control") else ", no control block"
    fig.suptitle(f"{m['dataset']}, trial {m['trial']}: dendrites of {m['block']} ablated{control} "
                 f"(genome {scores['genome_hash'][:8]})", fontsize=8)


# ------------------------------------------------------------------------------ Fig. 7


def dice_params_figure(models: pd.DataFrame, paths: Sequence, style: Mapping) -> list[Path]:
    """Fig. 7: test Dice vs parameters (log) of every model, one panel per data set: trials
    as faint points, mean ± std over trials as markers with error bars (``models`` from
    :func:`bractivate.report.model_frame`)."""
    model_order, datasets = _order(models["model"]), _order(models["dataset"])
    palette = dict(zip(model_order, sns.color_palette("tab10", len(model_order))))
    markers = dict(zip(model_order, itertools.cycle(MARKERS)))
    means = models.groupby(["dataset", "model"], sort=False).agg(
        dice=("test_dice", "mean"), dice_std=("test_dice", lambda s: s.std(ddof=1)),
        params=("params", "mean")).reset_index()
    with _styled(style):
        fig, axes = _grid(1, len(datasets), 3.3, 3.3)
        for ax, dataset in zip(axes[0], datasets):
            sns.scatterplot(data=models[models["dataset"] == dataset], x="params", y="test_dice",
                            hue="model", palette=palette, alpha=0.35, s=18, legend=False, ax=ax)
            for mean in means[means["dataset"] == dataset].itertuples(index=False):
                ax.errorbar(mean.params, mean.dice, yerr=np.nan_to_num(mean.dice_std), capsize=2,
                            fmt=markers[mean.model], color=palette[mean.model], ms=6, label=mean.model)
            _log_axis(ax, models.loc[models["dataset"] == dataset, "params"])
            ax.set(title=dataset, xlabel="parameters", ylabel="test Dice")
        _shared_legend(fig, axes, "model")
        return save_figure(fig, paths, style["dpi"])


# ------------------------------------------------------------------------------ Fig. 9


def loss_figure(train: pd.DataFrame, paths: Sequence, style: Mapping,
                experiments: Sequence[str] = LOSS_STUDY) -> list[Path]:
    """Fig. 9: test Dice and parameters of the models selected under ELS (``main``) and BCL
    (``bcl``), one line per trial joining the pair, one row per data set (``train`` from
    :func:`bractivate.report.with_search_settings`)."""
    frame = train[train["experiment"].isin(experiments)]
    frame = frame.assign(selection=frame["loss"].str.upper() + " (" + frame["experiment"] + ")",
                         trial=frame["trial"].astype(str))
    order = [frame.loc[frame["experiment"] == e, "selection"].iloc[0] for e in experiments
             if (frame["experiment"] == e).any()]
    datasets = _order(frame["dataset"])
    trial_order = sorted(frame["trial"].unique(), key=int)
    with _styled(style):
        fig, axes = _grid(len(datasets), 2, 2.8, 2.6)
        for (ax_dice, ax_params), dataset in zip(axes, datasets):
            part = frame[frame["dataset"] == dataset]
            for ax, y, label in ((ax_dice, "test_dice", "test Dice"), (ax_params, "params", "parameters")):
                sns.pointplot(data=part, x="selection", y=y, hue="trial", order=order,
                              hue_order=trial_order, errorbar=None, markersize=5, linewidth=1.2, ax=ax)
                ax.set(title=dataset, xlabel="selection loss", ylabel=label)
            _log_axis(ax_params, part["params"], "y")
        _shared_legend(fig, axes, "trial")
        return save_figure(fig, paths, style["dpi"])


# ------------------------------------------------------------------------ search traces


def search_trace_figure(histories: pd.DataFrame, paths: Sequence, style: Mapping) -> list[Path]:
    """Best-so-far score vs evaluation, one line per trial, one panel per data set (row) ×
    experiment (column); successful evaluations as faint points, failed ones as red crosses
    along the bottom (``histories`` from :func:`bractivate.report.load_histories`)."""
    datasets, experiments = _order(histories["dataset"]), _order(histories["experiment"])
    trials = sorted(histories["trial"].unique())
    palette = dict(zip(trials, sns.color_palette("deep", len(trials))))
    with _styled(style):
        fig, axes = _grid(len(datasets), len(experiments), 2.9, 2.3)
        for (dataset, experiment), part in histories.groupby(["dataset", "experiment"], sort=False):
            ax = axes[datasets.index(dataset), experiments.index(experiment)]
            for trial, run in part.groupby("trial"):
                finite = run[np.isfinite(run["score"])]
                ax.scatter(finite["evaluation"], finite["score"], s=8, color=palette[trial], alpha=0.3)
                best = run["best_so_far"].where(np.isfinite(run["best_so_far"]))
                ax.plot(run["evaluation"], best, drawstyle="steps-post", color=palette[trial],
                        lw=1.4, label=f"trial {trial}")
                failed = run.loc[~np.isfinite(run["score"]), "evaluation"]
                ax.plot(failed, np.full(len(failed), 0.03), "x", color="tab:red", ms=4,
                        transform=ax.get_xaxis_transform())
            ax.set(title=f"{dataset} / {experiment}", xlabel="evaluation", ylabel="best score so far")
        failed = Line2D([], [], ls="", marker="x", color="tab:red", label="failed evaluation")
        _shared_legend(fig, axes, extra=[failed])
        return save_figure(fig, paths, style["dpi"])


# ------------------------------------------------------------------------------- rules


def _fig4(inputs, paths, style):
    return architecture_figure(load_search_results(inputs["best"]), paths, style)


def _fig5(inputs, paths, style):
    train = with_search_settings(load_train_metrics(inputs["metrics"]), load_search_results(inputs["best"]))
    return depth_figure(train, paths, style)


def _fig6(inputs, paths, style):
    return activation_figure(load_ablation_metrics(inputs["ablation"]), inputs["activations"], paths, style)


def _fig7(inputs, paths, style):
    baselines = load_baseline_metrics(inputs["baselines"]) if inputs.get("baselines") else None
    return dice_params_figure(model_frame(load_train_metrics(inputs["metrics"]), baselines), paths, style)


def _fig9(inputs, paths, style):
    train = with_search_settings(load_train_metrics(inputs["metrics"]), load_search_results(inputs["best"]))
    return loss_figure(train, paths, style)


def _search_traces(inputs, paths, style):
    return search_trace_figure(load_histories(inputs["history"]), paths, style)


FIGURE_JOBS: dict[str, Callable] = {"fig4": _fig4, "fig5": _fig5, "fig6": _fig6, "fig7": _fig7,
                                    "fig9": _fig9, "search_traces": _search_traces}


def figure_job(name: str, inputs: Mapping[str, Sequence[str]], paths: Sequence,
               style: Mapping) -> list[Path]:
    """A figure rule: load its named inputs (lists of paths), draw figure ``name``, write
    ``paths`` (PNG and PDF)."""
    if name not in FIGURE_JOBS:
        raise ValueError(f"unknown figure {name!r}; expected one of {sorted(FIGURE_JOBS)}")
    inputs = {key: [value] if isinstance(value, (str, Path)) else list(value)
              for key, value in inputs.items()}
    return FIGURE_JOBS[name](inputs, paths, style)
