"""Figures from a run's typed results drawn with matplotlib: PR curves and the
speed/accuracy scatter (the qualitative mosaic needs no figure library:
``bgbench.reports.mosaic``). matplotlib is imported when a figure is drawn, not with this
module.

Every figure is written twice, as PDF (vector, TrueType fonts, as IEEE and ACM ask) and as
a 300-dpi PNG, one paper column wide (3.5 in), so that, placed at that width, no text is
smaller than 8 pt; legends sit below the axes, never over the data."""

from __future__ import annotations

import math
import os
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from bgbench.scoring.aggregate import protocol_display
from bgbench.records.types import Results
from bgbench.scoring.metrics import pr_curve

MARKERS = {"classical": "o", "deep": "s", "plugin": "^", "": "D"}
COLUMN_WIDTH = 3.5  # inches: one column of a two-column paper
DPI = 300
STYLE = {
    "font.size": 8, "axes.titlesize": 8, "axes.labelsize": 8, "xtick.labelsize": 8, "ytick.labelsize": 8,
    "legend.fontsize": 8, "legend.title_fontsize": 8, "figure.titlesize": 8, "font.family": "DejaVu Sans",
    "axes.linewidth": 0.6, "grid.linewidth": 0.5, "lines.linewidth": 1.3, "lines.markersize": 5,
    "xtick.major.width": 0.6, "ytick.major.width": 0.6, "xtick.minor.width": 0.4, "ytick.minor.width": 0.4,
    "legend.frameon": False, "legend.handlelength": 1.6, "legend.columnspacing": 1.2,
    "pdf.fonttype": 42, "ps.fonttype": 42, "savefig.dpi": DPI, "figure.dpi": 100,
    # every string drawn is text: no mathtext ($...$ in a dataset, scene or method name) and no TeX
    "text.parse_math": False, "text.usetex": False,
}


class _Figures:
    """What the plots need of pyplot, on matplotlib's object API: no pyplot import (about
    0.2 s), no global backend switch, no figure registry to close."""

    @staticmethod
    def figure(*, figsize, layout=None):
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        fig = Figure(figsize=figsize, layout=layout)
        FigureCanvasAgg(fig)  # drawn with Agg, as pyplot's headless backend would
        return fig

    @staticmethod
    def subplots(nrows: int = 1, ncols: int = 1, *, figsize, layout=None, squeeze: bool = True, gridspec_kw=None):
        fig = _Figures.figure(figsize=figsize, layout=layout)
        return fig, fig.subplots(nrows, ncols, squeeze=squeeze, gridspec_kw=gridspec_kw)

    @staticmethod
    def get_cmap(name: str):
        import matplotlib

        return matplotlib.colormaps[name]


@contextmanager
def _style():
    import matplotlib

    with matplotlib.rc_context(STYLE):
        yield _Figures()


FORK_PDF = False  # inside ``forked_pdfs``: save leaves each figure's PDF to a forked child
_pdf_children: list[tuple[int, Any, Path]] = []  # (pid, figure, pdf) forked by save, reaped by forked_pdfs


@contextmanager
def forked_pdfs(on: bool = True, timeout: float = 60.0) -> Iterator[None]:
    """Inside the block (``on``, and where the OS can fork), ``save`` leaves each figure's
    PDF to a forked child and goes on with the PNG and the figures after it (a PDF takes
    about twice a PNG's time: the font subsetting). Only for a process with one thread (the
    report worker): a fork copies no other thread. On the way out, also when the block
    raises, every child is reaped against one deadline ``timeout`` seconds away (a child
    still running then is killed), and then each PDF whose child failed or was killed is
    written in this process: no child outlives the block, no PDF is left half written."""
    global FORK_PDF
    FORK_PDF = on and hasattr(os, "fork")
    try:
        yield
    finally:
        FORK_PDF = False
        children = _pdf_children[:]
        _pdf_children.clear()
        failed = _reap(children, time.monotonic() + timeout)
        with _style():
            for fig, pdf in failed:
                _save_pdf(fig, pdf)


def _reap(children: list[tuple[int, Any, Path]], deadline: float) -> list[tuple[Any, Path]]:
    """(figure, pdf) of the children that did not exit 0 by ``deadline``; every child is
    reaped, one still running at the deadline (or when this is interrupted) killed first."""
    failed, left = [], list(children)
    try:
        while left:
            pid, fig, pdf = left[0]
            done, status = os.waitpid(pid, os.WNOHANG)
            if not done and time.monotonic() < deadline:
                time.sleep(0.002)
                continue
            if not done:
                os.kill(pid, 9)
                os.waitpid(pid, 0)
            if not done or status != 0:
                failed.append((fig, pdf))
            left.pop(0)
    finally:
        for pid, _, _ in left:  # interrupted: nothing is left running or unreaped
            os.kill(pid, 9)
            os.waitpid(pid, 0)
    return failed


def save(fig, out: Path) -> list[Path]:
    """``out`` as a 300-dpi PNG and as a PDF (same stem); inside ``forked_pdfs`` the PDF is
    written by a forked child."""
    out = Path(out)
    png, pdf = out.with_suffix(".png"), out.with_suffix(".pdf")
    with _style():  # pdf.fonttype is read when saving
        engine = fig.get_layout_engine()
        if engine is not None:  # laid out once for both files: the same layout in either order and process
            engine.execute(fig)
            fig.set_layout_engine("none")
        child = os.fork() if FORK_PDF else None
        if child == 0:
            ok = False
            try:
                _save_pdf(fig, pdf)
                ok = True
            finally:
                os._exit(0 if ok else 1)  # the child never returns into the report
        if child is not None:
            _pdf_children.append((child, fig, pdf))
        fig.savefig(png, dpi=DPI, metadata={"Software": None})
        if child is None:
            _save_pdf(fig, pdf)
    return [png, pdf]


def _save_pdf(fig, pdf: Path) -> None:
    fig.savefig(pdf, metadata={"CreationDate": None, "Creator": None, "Producer": None})  # reproducible bytes


def _legend_below(fig, handles, labels, title: str | None = None):
    """A legend under the axes, in as many columns as fit the figure's width."""
    renderer = fig.canvas.get_renderer()  # measures text without drawing the figure
    width = fig.get_figwidth() * fig.dpi
    for ncol in (3, 2, 1):
        leg = fig.legend(handles, labels, loc="outside lower center", ncol=min(ncol, len(labels)), title=title)
        if ncol == 1 or leg.get_window_extent(renderer).width <= 0.97 * width:
            return leg
        leg.remove()
    return leg


def _legend_rows(labels: list[str], width_in: float) -> int:
    """A guess at the legend's rows (for the figure's height): about 0.075 in a character."""
    longest = max((len(s) for s in labels), default=1) * 0.075 + 0.45
    ncol = max(1, min(3, int(width_in / longest), len(labels)))
    return math.ceil(len(labels) / ncol)


def _title(text: str, width: int = 56) -> str:
    """A title on lines that fit one column at 8 pt (a protocol's options can be long)."""
    import textwrap

    return "\n".join(textwrap.wrap(text, width, break_on_hyphens=False)) or text


def _pooled_hist(results: Results, label: str, protocol: str, dataset: str) -> np.ndarray | None:
    """The histograms of every ok job of ``label`` under protocol key ``protocol`` on
    ``dataset``, summed: the pixels the dataset's PR curve and AP pool."""
    hs = [[j.histograms["negative"], j.histograms["shadow"], j.histograms["positive"]]  # type: ignore[index]  # ok: set
          for j in results.jobs_of(label, protocol, ok=True) if j.key.dataset == dataset]
    return np.sum(hs, axis=0) if hs else None


TABLE_POINT = "markers: overall Re, Pr as tabled (per-video means); curves: pooled pixels"


def pr_points(results: Results, protocol: str, dataset: str) -> dict[str, tuple[float | None, float | None]]:
    """label -> (recall, precision) as the tables print them: the dataset's ``overall`` (the
    mean of the category means of per-video values), the point each method is marked at."""
    out = {}
    for s in results.under(protocol):
        d = s.datasets.get(dataset)
        if d is not None:
            out[s.label] = (d.overall.get("recall"), d.overall.get("precision"))
    return out


def _xy(v: Any) -> float:
    return math.nan if v is None else float(v)


def pr_figure(results: Results, protocol: str, dataset: str):
    """PR curves of every method from its pooled histograms, AP in the legend, and on each
    the tables' operating point (``pr_points``: overall recall and precision, per-video
    values averaged as the tables average them), hollow on a curve. A method with fewer
    than 3 output levels (a 0/255 mask) has no curve: it is drawn as that tabled point
    alone, filled, and its legend says "binary, no AP". The pooled operating point of a
    binary method differs from the tabled one (the pixels of large videos weigh more);
    the figure says which is drawn (``TABLE_POINT``, the legend's title)."""
    curves = []
    points = pr_points(results, protocol, dataset)
    for s in results.under(protocol):
        h = _pooled_hist(results, s.label, protocol, dataset)
        if h is not None:
            curves.append((s.label, pr_curve(h)))
    labels = [f"{m} (binary, no AP)" if pr["binary"] else f"{m} (AP {pr['average_precision']:.3f})"
              for m, pr in curves]
    title = _title(f"PR curves, {dataset}, protocol {protocol_display(protocol, results)}")
    note = _title(TABLE_POINT, 52)
    with _style() as plt:
        rows = _legend_rows(labels, COLUMN_WIDTH)
        fig, ax = plt.subplots(figsize=(COLUMN_WIDTH, 2.7 + 0.16 * rows + 0.14 * title.count("\n")
                                        + 0.13 * (note.count("\n") + 1)), layout="constrained")
        colours = _colours(len(curves))
        lines = []
        for (m, pr), c in zip(curves, colours):
            re_, pr_ = (_xy(v) for v in points.get(m, (None, None)))
            if pr["binary"]:
                lines.append(ax.plot([re_], [pr_], color=c, marker="o", linestyle="", markersize=5, zorder=3,
                                     label=f"{m}: tabled point")[0])
            else:
                lines.append(ax.plot(np.asarray(pr["recall"], float), np.asarray(pr["precision"], float), color=c,
                                     label=f"{m}: pooled curve")[0])
                ax.plot([re_], [pr_], color=c, marker="o", markerfacecolor="white", linestyle="", markersize=5,
                        zorder=3, label=f"{m}: tabled point")
        ax.set_xlabel("recall")
        ax.set_ylabel("precision")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1.02)
        ax.set_title(title)
        ax.grid(alpha=0.3)
        if lines:
            _legend_below(fig, lines, labels, title=note)
    return fig


def pr_shows(results: Results, protocol: str, dataset: str) -> bool:
    """Whether the PR figure has something to show: a curve (a method with at least
    ``MIN_PR_LEVELS`` output levels), or the operating points of two methods or more. One
    binary method's single point is in the metrics table already: no figure for it."""
    hists = [h for s in results.under(protocol) if (h := _pooled_hist(results, s.label, protocol, dataset)) is not None]
    return len(hists) >= 2 or any(not pr_curve(h)["binary"] for h in hists)


def pr_curves(results: Results, protocol: str, dataset: str, out: Path) -> list[Path]:
    """The PR figure as PNG and PDF; none where it has nothing to show (``pr_shows``)."""
    if not pr_shows(results, protocol, dataset):
        return []
    return save(pr_figure(results, protocol, dataset), out)


def _colours(n: int) -> list:
    cmap = _Figures.get_cmap("tab10" if n <= 10 else "tab20")
    return [cmap(i % cmap.N) for i in range(n)]


def log_ticks(lo: float, hi: float) -> list[float]:
    """Three to six plain tick values for a log axis over [lo, hi]: every third, second or
    each power of ten, then 1-3, 1-2-5 or 1-1.5-2-3-5-7 steps; evenly spaced round values
    on a span too short for any of those."""
    from matplotlib.ticker import MaxNLocator

    def within(subs, every=1):
        return [s * 10.0 ** e for e in range(math.floor(math.log10(lo)), math.ceil(math.log10(hi)) + 1)
                if e % every == 0 for s in subs if lo <= s * 10.0 ** e <= hi]

    for subs, every in (((1,), 3), ((1,), 2), ((1,), 1), ((1, 3), 1), ((1, 2, 5), 1), ((1, 1.5, 2, 3, 5, 7), 1)):
        ticks = within(subs, every)
        if len(ticks) >= 3:
            return ticks
    return [t for t in MaxNLocator(nbins=4, steps=[1, 2, 2.5, 5, 10]).tick_values(lo, hi) if lo <= t <= hi]


def _log_axis(ax, lo: float, hi: float) -> None:
    from matplotlib.ticker import FixedLocator, FuncFormatter, LogLocator, NullFormatter

    ax.set_xscale("log")
    ax.set_xlim(lo, hi)
    ax.xaxis.set_major_locator(FixedLocator(log_ticks(lo, hi)))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _: f"{x:g}"))
    ax.xaxis.set_minor_locator(LogLocator(base=10, subs=np.arange(2, 10), numticks=30))  # type: ignore[arg-type]  # an array of multiples works
    ax.xaxis.set_minor_formatter(NullFormatter())


def speed_accuracy_figure(results: Results, protocol: str, dataset: str):
    """Overall F against frames/s of ``segment`` (log axis); colour per method, marker per
    family (the family its jobs recorded; keyed in grey at the end of the legend when there
    are several)."""
    from matplotlib.lines import Line2D

    points, devices = [], set()
    for s in results.under(protocol):
        d = s.datasets.get(dataset)
        if not d or not d.fps_median or d.overall.get("f_measure") is None:
            continue
        points.append((s.label, s.family, float(d.fps_median), float(d.overall["f_measure"])))  # type: ignore[arg-type]  # not None: checked above
        devices |= {j.timing["device"] for j in results.jobs_of(s.label, protocol, ok=True)  # type: ignore[index]  # ok: set
                    if j.key.dataset == dataset and j.timing.get("device")}  # type: ignore[union-attr]  # ok: set
    fams = sorted({f for _, f, _, _ in points})
    labels = [m for m, _, _, _ in points] + (fams if len(fams) > 1 else [])
    title = _title(f"Speed and accuracy, {dataset}, protocol {protocol_display(protocol, results)}")
    with _style() as plt:
        rows = _legend_rows(labels, COLUMN_WIDTH)
        fig, ax = plt.subplots(figsize=(COLUMN_WIDTH, 2.7 + 0.16 * rows + 0.14 * title.count("\n")),
                               layout="constrained")
        handles = [ax.scatter(x, y, marker=MARKERS.get(fam, "D"), s=28, color=c, zorder=3, linewidths=0)
                   for (_, fam, x, y), c in zip(points, _colours(len(points)))]
        if len(fams) > 1:  # the marker key: one grey marker per family
            handles += [Line2D([], [], marker=MARKERS.get(f, "D"), color="0.45", linestyle="", markersize=5)
                        for f in fams]
        if points:
            xs, ys = [p[2] for p in points], [p[3] for p in points]
            span = max(math.log10(max(xs) / min(xs)), 0.5)
            lo, hi = min(xs) / 10 ** (0.12 * span), max(xs) * 10 ** (0.12 * span)
            _log_axis(ax, lo, hi)
            ymin, ymax = min(ys), max(ys)
            pad = max(0.08 * (ymax - ymin), 0.02)
            ax.set_ylim(max(ymin - pad, 0), ymax + pad)
            if len(points) <= 6:  # direct labels, on the side with room
                mid = math.log10(lo * hi) / 2
                for (m, _, x, y) in points:
                    right = math.log10(x) > mid
                    ax.annotate(m, (x, y), xytext=(-5 if right else 5, 3), textcoords="offset points",
                                ha="right" if right else "left", va="bottom", fontsize=8)
        ax.set_xlabel(f"frames/s of segment on {', '.join(sorted(devices)) or '?'} (log scale)")
        ax.set_ylabel("overall F-measure")
        ax.set_title(title)
        ax.grid(alpha=0.3, which="major")
        if handles:
            _legend_below(fig, handles, labels)
    return fig


def speed_accuracy_shows(results: Results, protocol: str, dataset: str) -> bool:
    """Whether the speed/accuracy scatter has something to show: two methods or more with
    frames/s and an F-measure (one method's point is its row of the tables)."""
    n = 0
    for s in results.under(protocol):
        d = s.datasets.get(dataset)
        n += bool(d and d.fps_median and d.overall.get("f_measure") is not None)
    return n >= 2


def speed_accuracy(results: Results, protocol: str, dataset: str, out: Path) -> list[Path]:
    """The scatter as PNG and PDF; none where it has nothing to show (``speed_accuracy_shows``)."""
    if not speed_accuracy_shows(results, protocol, dataset):
        return []
    return save(speed_accuracy_figure(results, protocol, dataset), out)
