"""Figure: difference to the baseline per metric column, with 95% CIs."""

from __future__ import annotations

import math
import os

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from viclip.eval.catalog import DISPLAY, Column, columns
from viclip.io import atomic_path

PROTOCOL_SHORT = {"zeroshot": "ZS", "finetuned": "FT"}
GROUP_GAP = 1.0  # empty slots between groups, in units of one column


def tick_label(col: Column) -> str:
    """Readable column name, e.g. 'K400 ZS top-1' or 'MSR-VTT FT T2V'."""
    return f"{DISPLAY[col.benchmark]} {PROTOCOL_SHORT.get(col.protocol, col.protocol)} {col.label}"


def plot_deltas(
    summary: pd.DataFrame,
    arms: list[str],
    baseline: str,
    arm_labels: dict[str, str],
    path_png: str | os.PathLike,
    path_pdf: str | os.PathLike,
    synthetic: bool,
    title: str | None = None,
) -> None:
    """Write ``delta_figure`` as PNG and PDF, each atomically."""
    fig = delta_figure(summary, arms, baseline, arm_labels, synthetic, title)
    with atomic_path(path_png) as tmp:
        fig.savefig(tmp, format="png", dpi=150)
    # Fixed PDF metadata keeps reruns byte-stable for Snakemake's change detection.
    with atomic_path(path_pdf) as tmp:
        fig.savefig(tmp, format="pdf", metadata={"CreationDate": None})


def delta_figure(
    summary: pd.DataFrame,
    arms: list[str],
    baseline: str,
    arm_labels: dict[str, str],
    synthetic: bool,
    title: str | None = None,
) -> Figure:
    """Grouped bars of Δ vs baseline (percentage points) with CI error bars.

    ``summary`` is the long-format frame from ``table.summarise`` (percent);
    only ``arms`` are drawn, so one ablation's figure passes its own arms.
    ``title`` (e.g. the ablation's name) leads the figure title.
    """
    cols = columns()
    others = [a for a in arms if a != baseline]
    lookup = {(str(r["arm"]), f"{r['benchmark']}/{r['protocol']}/{r['metric']}"): r for r in summary.to_dict("records")}

    # x position per column, with a gap between groups so blocks read apart.
    x, group_spans, pos = [], [], 0.0
    for i, col in enumerate(cols):
        if i and col.group != cols[i - 1].group:
            pos += GROUP_GAP
        if not group_spans or group_spans[-1][0] != col.group:
            group_spans.append([col.group, pos, pos])
        group_spans[-1][2] = pos
        x.append(pos)
        pos += 1.0
    x = np.asarray(x)

    fig = Figure(figsize=(15, 6.5), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    width = 0.8 / max(len(others), 1)
    palette = [f"C{i}" for i in range(10)]
    for k, arm in enumerate(others):
        rows = []
        for col in cols:
            if (arm, col.key) not in lookup:
                raise ValueError(f"summary has no row for arm '{arm}' column '{col.key}'")
            rows.append(lookup[(arm, col.key)])
        delta = np.array([float(r["delta"]) for r in rows])
        lo = np.array([_num(r["ci_low"]) for r in rows])
        hi = np.array([_num(r["ci_high"]) for r in rows])
        # Columns without a CI (single seed) get no whisker rather than a fake zero-width one.
        # Clip float noise: a point interval can come out as -1e-15, which matplotlib rejects.
        yerr = np.clip(np.vstack([delta - lo, hi - delta]), 0.0, None)
        offset = (k - (len(others) - 1) / 2) * width
        ax.bar(
            x + offset,
            delta,
            width,
            label=arm_labels.get(arm, arm),
            color=palette[k % len(palette)],
            yerr=yerr,
            error_kw={"elinewidth": 0.9, "capsize": 2, "ecolor": "0.25"},
        )

    ax.axhline(0.0, color="black", linewidth=0.8)
    ax.set_xticks(x, [tick_label(c) for c in cols], rotation=60, ha="right", rotation_mode="anchor", fontsize=8.5)
    ax.set_xlim(x[0] - 0.7, x[-1] + 0.7)
    ax.set_ylabel(f"Δ vs {arm_labels.get(baseline, baseline)} (percentage points)")
    ax.grid(axis="y", linewidth=0.4, alpha=0.5)
    ax.set_axisbelow(True)

    # Group separators and names; names sit in axes-fraction y so they stay on top.
    for i, (name, first, last) in enumerate(group_spans):
        if i:
            ax.axvline(first - (GROUP_GAP + 1) / 2, color="0.6", linewidth=0.8, linestyle="--")
        ax.text(
            (first + last) / 2,
            1.01,
            name,
            transform=ax.get_xaxis_transform(),
            ha="center",
            va="bottom",
            fontsize=9.5,
            fontweight="bold",
        )

    what = "Difference to the baseline per metric (mean over seeds, 95% t-interval)"
    title = f"{title}: {what[0].lower()}{what[1:]}" if title else what
    if synthetic:
        title += (
            "\nSynthetic stand-ins: benchmark slots rendered by the embedded synthetic world, not the real datasets"
        )
    ax.set_title(title, fontsize=11, pad=22)
    if others:
        # Outside the axes: inside, it would hide bars or whiskers of some column.
        fig.legend(loc="outside right upper", fontsize=9, frameon=True)
    else:
        ax.text(0.5, 0.5, "no arms besides the baseline", transform=ax.transAxes, ha="center")
    return fig


def _num(value: object) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan
