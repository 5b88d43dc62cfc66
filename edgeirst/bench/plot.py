"""``--plot F.png``: accuracy against FPS (bubble area = GMACs, one bubble per measured model /
backend / precision with accuracy, the Pareto front drawn and labelled), beside the latency
of every row as bars (median, whiskers from the fastest run to p90).

matplotlib is the optional ``plot`` extra; ``plot_available()`` says whether it imports.
"""

from __future__ import annotations

import importlib.util
import io
import textwrap
from collections.abc import Sequence
from pathlib import Path

from edgeirst.bench.report import write_atomic
from edgeirst.bench.rows import Row

INSTALL_HINT = "pip install 'edgeirst[plot]'"
MARKERS = {"onnxruntime": "o", "torch": "s", "tensorrt": "^"}
METRIC_NAMES = {"iou": "IoU", "ap50": "AP50", "niou": "nIoU", "pd": "Pd"}


def plot_available() -> bool:
    return importlib.util.find_spec("matplotlib") is not None


def pareto_front(points: Sequence[tuple[float, float]]) -> list[int]:
    """Indices of the points no other point beats on both axes (higher x and higher y are
    better), ordered by x ascending."""
    order = sorted(range(len(points)), key=lambda i: (-points[i][0], -points[i][1]))
    front, best_y = [], float("-inf")
    for i in order:
        if points[i][1] > best_y:
            front.append(i)
            best_y = points[i][1]
    return sorted(front, key=lambda i: points[i][0])


def _labels(ax, items: Sequence[tuple[float, float, str]]) -> None:
    """Annotate points, each label at the first of a few offsets where it overlaps no label
    placed before it (greedy; enough for the handful of bubbles a bench plots)."""
    fig = ax.figure
    renderer = fig.canvas.get_renderer()
    placed = []
    offsets = [(9, 7, "left"), (9, -22, "left"), (-9, 7, "right"), (-9, -22, "right"), (9, 24, "left"),
               (9, -38, "left"), (-9, 24, "right"), (-9, -38, "right")]
    for x, y, text in items:
        for k, (dx, dy, ha) in enumerate(offsets):
            a = ax.annotate(text, (x, y), xytext=(dx, dy), textcoords="offset points", fontsize=8.5, ha=ha, zorder=4)
            box = a.get_window_extent(renderer).expanded(1.2, 1.4)
            if not any(box.overlaps(b) for b in placed) or k == len(offsets) - 1:
                placed.append(box)
                break
            a.remove()


RECORDED = "recorded val metrics, not measured here"


def plotted_accuracy(rows: Sequence[Row], metric: str | None) -> tuple[str | None, dict[int, float], bool]:
    """(metric, row index -> value, recorded): the accuracy the bench measured (``--data``), else
    the val metrics recorded in the models' metadata, so a bench without data still places
    every trained model (labelled as recorded, not measured)."""
    for recorded in (False, True):
        value = (lambda r, k: (r.recorded or {}).get(k)) if recorded else (lambda r, k: getattr(r, k))
        for key in ([metric] if metric else ["iou", "ap50"]):
            got = {i: value(r, key) for i, r in enumerate(rows) if value(r, key) is not None and r.fps}
            if got:
                return key, got, recorded
    return metric, {}, False


def write_plot(rows: Sequence[Row], path: str | Path, metric: str | None = None, title: str = "") -> Path:
    """Draw the two panels to ``path`` (PNG, written atomically)."""
    # the object API with the Agg canvas: no pyplot, so a caller's matplotlib backend and figures are left alone
    from matplotlib import colormaps
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    measured = [r for r in rows if r.mode == "model" and r.latency_ms is not None]
    metric, values, recorded = plotted_accuracy(measured, metric)
    scored = [measured[i] for i in values]
    n_bars = max(1, len(measured))
    fig = Figure(figsize=(15, max(6.0, 0.32 * n_bars + 2.8)))
    FigureCanvasAgg(fig)
    ax, bx = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1.15, 1]})
    cmap = colormaps["tab10"]
    models = sorted({r.model for r in measured})
    colour = {m: cmap(i % 10) for i, m in enumerate(models)}

    # -- accuracy vs FPS --------------------------------------------------------------------------
    if scored:
        g = [r.gflops or 0.0 for r in scored]
        scale = 1800.0 / max(max(g), 1e-9)
        xs, ys = [r.fps for r in scored], list(values.values())
        for r, x, y, gm in zip(scored, xs, ys, g):
            ax.scatter(x, y, s=max(40.0, gm * scale), color=colour[r.model], alpha=0.45, edgecolor="black",
                       linewidth=0.8, marker=MARKERS.get(r.backend, "o"), zorder=3)
        front = pareto_front(list(zip(xs, ys)))
        if len(front) > 1:
            ax.plot([xs[i] for i in front], [ys[i] for i in front], "--", color="crimson", lw=1.5, zorder=2,
                    label="Pareto front")
        elif front:
            ax.scatter([xs[front[0]]], [ys[front[0]]], marker="*", s=160, color="crimson", zorder=5,
                       label="Pareto front")
        for gm in sorted({round(max(g), 2), round(max(g) / 4, 2)}):
            if gm > 0:
                ax.scatter([], [], s=gm * scale, color="grey", alpha=0.35, edgecolor="black", label=f"{gm:g} GMACs")
        for backend in sorted({r.backend for r in scored}):
            ax.scatter([], [], s=60, marker=MARKERS.get(backend, "o"), color="white", edgecolor="black", label=backend)
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=6, fontsize=8.5, borderpad=0.8,
                  handleheight=4.2, handlelength=3.2, handletextpad=0.6, columnspacing=1.6, framealpha=0.9)
        span_y = max(ys) - min(ys) or 0.05
        if max(xs) / max(min(xs), 1e-9) > 8:
            ax.set_xscale("log")
            ax.set_xlim(min(xs) / 1.6, max(xs) * 2.2)
        else:
            span_x = max(xs) - min(xs) or max(xs) * 0.5 or 1.0
            ax.set_xlim(max(0.0, min(xs) - 0.3 * span_x), max(xs) + 0.45 * span_x)
        ax.set_ylim(min(ys) - 0.6 * span_y, max(ys) + 0.6 * span_y)
        split = next((r.eval_split for r in scored if r.eval_split), None)
        ax.set_ylabel(f"{METRIC_NAMES.get(metric, metric)}" + (f" ({RECORDED})" if recorded else
                                                               f" ({split})" if split else ""))
    else:
        ax.text(0.5, 0.5, "no accuracy measured\n(trained models with --data DIR)", ha="center", va="center",
                transform=ax.transAxes, fontsize=11, color="grey")
        ax.set_ylabel("accuracy")
    ax.set_xlabel(f"FPS (batch {measured[0].batch if measured else 1}, {measured[0].size if measured else ''} px)")
    ax.set_title("accuracy vs speed (bubble area = GMACs)" + (f"\naccuracy: {RECORDED}" if scored and recorded else ""))
    ax.grid(True, alpha=0.3)

    # -- latency bars -----------------------------------------------------------------------------
    labels = [f"{r.model}  {r.backend} {r.precision}" for r in measured]
    med = [r.latency_ms for r in measured]
    lo = [r.latency_ms - (r.min_ms if r.min_ms is not None else r.latency_ms) for r in measured]
    hi = [(r.p90_ms if r.p90_ms is not None else r.latency_ms) - r.latency_ms for r in measured]
    kinds = sorted({(r.backend, r.precision) for r in measured})
    kcolour = {k: colormaps["Set2"](i % 8) for i, k in enumerate(kinds)}
    y = list(range(len(measured)))[::-1]
    bx.barh(y, med, xerr=[lo, hi], color=[kcolour[(r.backend, r.precision)] for r in measured], edgecolor="black",
            linewidth=0.6, capsize=3, error_kw={"elinewidth": 0.9})
    for yi, m, h in zip(y, med, hi):
        bx.text(m + h, yi, f"  {m:.1f}", va="center", ha="left", fontsize=8)
    bx.set_yticks(y)
    bx.set_yticklabels(labels, fontsize=8.5)
    if med and max(med) / max(min(med), 1e-9) > 30:
        bx.set_xscale("log")
        bx.set_xlim(right=max(m + h for m, h in zip(med, hi)) * 3)
    elif med:
        bx.set_xlim(0, max(m + h for m, h in zip(med, hi)) * 1.18)
    bx.set_xlabel("latency ms (median; whiskers: fastest run to p90)")
    bx.set_title("latency per backend / precision")
    for k, c in kcolour.items():
        bx.bar(0, 0, color=c, label=f"{k[0]} {k[1]}")
    if kinds:
        bx.legend(loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=min(4, len(kinds)), fontsize=8.5)
    bx.grid(True, axis="x", alpha=0.3)
    skipped = [r for r in rows if r.mode == "model" and r.latency_ms is None]
    if skipped:
        reasons: dict[str, list[str]] = {}
        for r in skipped:
            reasons.setdefault((r.note or "n/a").removeprefix("n/a: "), []).append(f"{r.model} {r.backend} {r.precision}")
        text = "not measured: " + "; ".join(f"{', '.join(v[:4])}{' ...' if len(v) > 4 else ''} ({k})"
                                             for k, v in list(reasons.items())[:3])
        fig.text(0.5, 0.005, textwrap.shorten(text, 260), ha="center", va="bottom", fontsize=8, color="dimgrey",
                 wrap=True)
    if title:
        fig.suptitle(title, fontsize=9.5)
    fig.tight_layout(rect=(0, 0.04 if skipped else 0, 1, 1))
    if scored:  # labels last: their collision test needs the final axes geometry
        _labels(ax, [(x, y, f"{r.model}\n{r.backend} {r.precision}") for r, x, y in zip(scored, xs, ys)])
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    return write_atomic(path, buf.getvalue())


__all__ = ["INSTALL_HINT", "RECORDED", "pareto_front", "plot_available", "plotted_accuracy", "write_plot"]
