"""Figures of runs and evaluations: training curves, forest plots of scores, grouped bars.

matplotlib (the ``report`` extra) is imported inside the functions that draw, and only through its
object-oriented API (``Figure``, never pyplot), so drawing touches no global backend or state.
The data each figure shows is computed by plain functions first (``panel_lines``), which tests can
check without drawing.
"""

from __future__ import annotations

import fnmatch
import io
import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from .errors import MglkitError
from .runlog import RunFolder, load_run, series

# DejaVu Sans ships with matplotlib and has the Cyrillic ө and ү; SVG text falls back to sans-serif.
FONTS = ["DejaVu Sans", "sans-serif"]
COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"]
STYLES = ["-", "--", ":", "-."]
BASE_COLOR = "#7f7f7f"


class ReportExtraMissing(MglkitError):
    """matplotlib or jinja2 is not installed."""

    exit_code = 2


def require(module: str):
    """Import a module of the ``report`` extra, or say how to install it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise ReportExtraMissing(
            f"reports and plots need {module.split('.')[0]}, which is not installed",
            hint="pip install 'mglkit[report]'",
        ) from None


@dataclass(frozen=True)
class Panel:
    """One chart of training curves: metric names (``*`` matches a reward function's name); the
    main ones are also written as PNGs at the end of a run."""

    key: str
    title: str
    metrics: tuple[str, ...]
    main: bool = True


PANELS = (
    Panel("loss", "Loss", ("loss",)),
    Panel("rewards", "Rewards: chosen and rejected", ("rewards/chosen", "rewards/rejected")),
    Panel("margins", "Reward margin (chosen − rejected)", ("rewards/margins",)),
    Panel("accuracies", "Reward accuracy", ("rewards/accuracies",)),
    Panel("logps", "Log-probabilities: chosen and rejected", ("logps/chosen", "logps/rejected"), main=False),
    Panel("reward", "GRPO reward (total, weighted)", ("reward",)),
    Panel("reward_functions", "GRPO reward by function", ("rewards/*/mean",)),
    Panel("reward_std", "GRPO reward std within groups", ("reward_std", "rewards/*/std"), main=False),
    Panel("kl", "KL to the reference model", ("kl",)),
    Panel("completion_length", "Completion length (tokens)", ("completions/mean_length",)),
    Panel("learning_rate", "Learning rate", ("learning_rate",)),
    Panel("grad_norm", "Gradient norm", ("grad_norm",)),
    Panel("throughput", "Throughput (tokens/s)", ("tokens_per_second",), main=False),
)


@dataclass
class Line:
    """One drawn series: a run's train metric, or its eval points (markers on the same axes)."""

    run: str
    metric: str
    steps: list[float]
    values: list[float]
    color: str
    style: str
    is_eval: bool


def _expand(pattern: str, rows: list[dict]) -> list[str]:
    if "*" not in pattern:
        return [pattern]
    names = dict.fromkeys(k for r in rows for k in r if not k.startswith("eval_"))
    return sorted(n for n in names if fnmatch.fnmatchcase(n, pattern))


def panel_lines(panel: Panel, runs: list[RunFolder]) -> list[Line]:
    """What one panel draws: each run's train series and, for each, the run's ``eval_`` series of
    the same metric at the steps it was evaluated (same color and style). Several runs: a color
    per run, a line style per metric; one run: a color per metric."""
    lines = []
    for index, run in enumerate(runs):
        metrics = [name for pattern in panel.metrics for name in _expand(pattern, run.rows)]
        for number, metric in enumerate(metrics):
            if len(runs) > 1:
                color, style = COLORS[index % len(COLORS)], STYLES[number % len(STYLES)]
            else:
                color, style = COLORS[number % len(COLORS)], "-"
            for name, is_eval in ((metric, False), (f"eval_{metric}", True)):
                steps, values = series(run.rows, name)
                if steps:
                    lines.append(Line(run.name, metric, steps, values, color, style, is_eval))
    return lines


def _label(line: Line, several_runs: bool, several_metrics: bool) -> str:
    if line.is_eval and several_runs:
        return "_nolegend_"  # the legend names the runs; dots are evaluations, as the page says
    parts = [line.run] if several_runs else []
    if several_metrics or not several_runs:
        parts.append(line.metric)
    return " · ".join(parts) + (" (eval)" if line.is_eval else "")


@contextmanager
def _style(salt: str) -> Iterator[None]:
    """Figure style; SVG text stays text (small, sharp, searchable) and element ids are unique per
    figure, so several SVGs can sit inline in one page."""
    matplotlib = require("matplotlib")
    settings = {
        "font.family": FONTS,
        "font.size": 9,
        "axes.titlesize": 10,
        "axes.spines.top": False,
        "axes.spines.right": False,
        "axes.grid": True,
        "grid.alpha": 0.3,
        "legend.fontsize": 8,
        "legend.frameon": False,
        "svg.fonttype": "none",
        "svg.hashsalt": salt,
    }
    with matplotlib.rc_context(settings):
        yield


def _axes_grid(nrows: int, ncols: int, axis: tuple[float, float], margins: tuple[float, float, float, float],
               gaps: tuple[float, float] = (0.0, 0.0)):  # fmt: skip
    """A Figure and its grid of axes, placed in inches: ``axis`` (width, height) of each axes,
    ``margins`` (left, right, top, bottom), ``gaps`` (between columns, between rows). No layout
    engine: it would measure every text and double the drawing time."""
    from matplotlib.figure import Figure

    (axis_w, axis_h), (left, right, top, bottom), (gap_w, gap_h) = axis, margins, gaps
    width = left + ncols * axis_w + (ncols - 1) * gap_w + right
    height = top + nrows * axis_h + (nrows - 1) * gap_h + bottom
    figure = Figure(figsize=(width, height))
    figure.subplots_adjust(left=left / width, right=1 - right / width, top=1 - top / height,
                           bottom=bottom / height, wspace=gap_w / axis_w, hspace=gap_h / axis_h)  # fmt: skip
    return figure, figure.subplots(nrows, ncols, squeeze=False)


def draw_panel(panel: Panel, lines: list[Line], several_runs: bool = False):
    """A Figure of one panel's lines against the optimizer step; with ``several_runs`` the legend
    names the run of each line even when only one run logged this panel's metrics."""
    figure, grid = _axes_grid(1, 1, (4.75, 2.35), (0.72, 0.12, 0.35, 0.5))
    axes = grid[0, 0]
    several_runs = several_runs or len({line.run for line in lines}) > 1
    several_metrics = len({line.metric for line in lines}) > 1
    for line in lines:
        label = _label(line, several_runs, several_metrics)
        if line.is_eval:
            axes.plot(
                line.steps,
                line.values,
                line.style,
                color=line.color,
                marker="o",
                markersize=4,
                linewidth=1,
                alpha=0.9,
                label=label,
            )
        else:  # a run stopped after a step or two still shows its points
            marker = "." if len(line.steps) < 3 else None
            axes.plot(line.steps, line.values, line.style, color=line.color, linewidth=1.3, marker=marker, label=label)
    axes.set_title(panel.title, loc="left")
    axes.set_xlabel("optimizer step")
    if panel.key == "learning_rate":
        axes.ticklabel_format(axis="y", style="sci", scilimits=(-2, 3))
    if len(lines) > 1 or several_runs:
        axes.legend(loc="best")
    return figure


def to_svg(figure) -> str:
    """The figure as an inline ``<svg>`` element that scales to its container."""
    buffer = io.StringIO()
    figure.savefig(buffer, format="svg", metadata={"Date": None})
    text = buffer.getvalue()
    # drawn at its natural size, narrower on a narrow page (the viewBox keeps the aspect ratio)
    return '<svg role="img" style="max-width: 100%; height: auto"' + text[text.index("<svg") + 4 :]


def svg(key: str, draw, *args) -> str:
    """Draw a figure with ``draw(*args)`` in the report's style and return it as inline SVG."""
    with _style(key):
        return to_svg(draw(*args))


def curve_svgs(runs: list[RunFolder]) -> list[tuple[Panel, str]]:
    """Every panel that has data in at least one run, drawn as inline SVG."""
    drawn = []
    for panel in PANELS:
        lines = panel_lines(panel, runs)
        if lines:
            drawn.append((panel, svg(f"curve-{panel.key}", draw_panel, panel, lines, len(runs) > 1)))
    return drawn


def plot_run(run_dir: str | Path) -> list[Path]:
    """PNGs of a run's main curves under ``training_logs/plots/`` (one per main panel with data),
    each written atomically; returns their paths. Raises ``ReportExtraMissing`` without matplotlib;
    any other exception is a failure to plot, which must not fail the run (the caller notes it)."""
    from .outputs import write_file

    run = load_run(run_dir)
    folder = run.path / "training_logs" / "plots"
    written = []
    with _style("png"):
        for panel in (p for p in PANELS if p.main):
            lines = panel_lines(panel, [run])
            if not lines:
                continue
            path = folder / f"{panel.key}.png"
            with write_file(path, "wb") as out:  # light compression: encoding is a fifth of the time
                draw_panel(panel, lines).savefig(out, format="png", dpi=100, metadata={"Software": None},
                                                 pil_kwargs={"compress_level": 1})  # fmt: skip
            written.append(path)
    return written


# ---- evaluation figures


@dataclass
class Interval:
    """One column's score of one metric, with its paired delta from the base when there is one."""

    column: str
    value: float
    low: float
    high: float
    delta: float | None = None
    significant: bool = False


def column_color(column: str, names: list[str]) -> str:
    """Base grey; an adapter the color of the run of the same name in the curves (``names``: the
    runs in the order drawn, then any other adapter columns)."""
    if column == "base" or column not in names:
        return BASE_COLOR
    return COLORS[names.index(column) % len(COLORS)]


def _finite(*values: float | None) -> bool:
    return all(isinstance(v, int | float) and math.isfinite(v) for v in values)


def draw_forest(metrics: dict[str, list[Interval]], names: list[str]):
    """One small forest plot per metric: each column's value and 95 % interval; an adapter's
    delta from the base is written beside it, starred and bold when its interval excludes zero."""
    from matplotlib.ticker import MaxNLocator

    metric_names = list(metrics)
    ncols = min(3, len(metric_names))
    nrows = math.ceil(len(metric_names) / ncols)
    rows = max(len(v) for v in metrics.values())
    label = 0.2 + 0.075 * max((len(i.column) for v in metrics.values() for i in v), default=4)
    figure, grid = _axes_grid(nrows, ncols, (2.0, 0.28 * rows + 0.15), (label, 0.65, 0.3, 0.35), (label + 0.65, 0.65))
    for axes, name in zip(grid.flat, metric_names, strict=False):
        intervals = metrics[name]
        drawn = [(y, i) for y, i in enumerate(intervals) if _finite(i.value, i.low, i.high)]
        colors = [column_color(i.column, names) for _, i in drawn]
        # one call per kind of mark: a forest plot of many metrics is otherwise slow to draw
        axes.hlines([y for y, _ in drawn], [i.low for _, i in drawn], [i.high for _, i in drawn], colors=colors,
                    linewidth=1.4)  # fmt: skip
        axes.scatter([i.value for _, i in drawn], [y for y, _ in drawn], c=colors, s=18, zorder=3)
        for y, item in enumerate(intervals):
            if item.delta is not None and _finite(item.delta):
                text = f"{item.delta:+.3f}" + ("*" if item.significant else "")
                axes.annotate(
                    text,
                    (1.0, y),
                    xycoords=("axes fraction", "data"),
                    xytext=(4, 0),
                    textcoords="offset points",
                    va="center",
                    fontsize=8,
                    fontweight="bold" if item.significant else "normal",
                    color="#b00020" if item.significant else "#555555",
                )
        axes.xaxis.set_major_locator(MaxNLocator(4))
        axes.set_yticks(range(len(intervals)), [i.column for i in intervals])
        axes.set_ylim(len(intervals) - 0.5, -0.5)
        axes.set_title(name, loc="left", fontsize=9)
        axes.grid(axis="y", visible=False)
    for axes in grid.flat[len(metric_names) :]:
        axes.set_visible(False)
    return figure


def draw_group_bars(title: str, groups: dict[str, list[Interval]], names: list[str]):
    """Bars per group key (a period, a degraded kind), one bar per column, 95 % intervals."""
    keys = list(groups)
    columns = list(dict.fromkeys(i.column for items in groups.values() for i in items))
    width = 0.8 / max(1, len(columns))
    rotate = len(keys) > 5
    bottom = 0.45 + (0.045 * max(map(len, keys), default=0) if rotate else 0)
    figure, grid = _axes_grid(1, 1, (max(3.5, 0.28 * len(keys) * len(columns) + 0.6), 2.3), (0.6, 0.1, 0.35, bottom))
    axes = grid[0, 0]
    for offset, column in enumerate(columns):
        found = [(x, i) for x, key in enumerate(keys) for i in groups[key] if i.column == column and _finite(i.value)]
        xs = [x + (offset - (len(columns) - 1) / 2) * width for x, _ in found]
        values = [i.value for _, i in found]
        errors = [[max(0.0, i.value - i.low) for _, i in found], [max(0.0, i.high - i.value) for _, i in found]]
        axes.bar(
            xs,
            values,
            width,
            yerr=errors,
            capsize=1.5,
            color=column_color(column, names),
            label=column,
            error_kw={"linewidth": 0.8},
        )
    axes.set_xticks(range(len(keys)), keys, rotation=30 if rotate else 0, ha="right" if rotate else "center")
    axes.set_title(title, loc="left")
    axes.grid(axis="x", visible=False)
    axes.legend(loc="best")
    return figure
