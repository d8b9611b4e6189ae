"""Figures of differences to the baseline: dot-and-interval plots, one panel per benchmark family.

Each panel is one block of the table (zero-shot classification, zero-shot
retrieval, fine-tuned classification, fine-tuned retrieval); its rows are the
block's metric columns, labelled horizontally, and each arm is a dot (mean Δ
over seeds) with the table's 95% interval (paired bootstrap, or t). An arm
keeps one colour in every figure (`arm_colours`, keyed by its name), so the
all-arms figure and the per-ablation figures read alike. A percentage difference cannot leave
[-baseline mean, 100 - baseline mean]: intervals are clipped to that range.
"""

from __future__ import annotations

import math
import os
import zlib
from collections.abc import Iterable

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from viclip.eval.catalog import DISPLAY, Column, columns
from viclip.io import atomic_path
from viclip.report.bootstrap import ITEM_PAIRED, SEED_PAIRED
from viclip.report.stats import NO_CI

PROTOCOL_SHORT = {"zeroshot": "ZS", "finetuned": "FT"}
# Colour-blind-safe (Okabe-Ito), in the order the default arms take them; other names hash into the rest.
PALETTE = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#882255", "#000000", "#999999")
KNOWN = {"baseline": 7, "nomask": 0, "samecompute": 1, "fineonly": 2, "coarseonly": 3}


def arm_colours(arms: Iterable[str]) -> dict[str, str]:
    """A fixed colour per arm name: the same arm has the same colour in every figure of every config.

    Arms named as the defaults take their colour; others take the palette entry their name hashes to
    (crc32, stable across runs), stepping on to a free one if an arm of the same call already has it.
    """
    out: dict[str, str] = {}
    arms = list(dict.fromkeys(arms))
    taken = {KNOWN[a] for a in arms if a in KNOWN}
    for arm in arms:
        if arm in KNOWN:
            out[arm] = PALETTE[KNOWN[arm]]
            continue
        i = zlib.crc32(arm.encode()) % len(PALETTE)
        for _ in range(len(PALETTE)):
            if i not in taken:
                break
            i = (i + 1) % len(PALETTE)
        taken.add(i)
        out[arm] = PALETTE[i]
    return out


def tick_label(col: Column) -> str:
    """Readable column name, e.g. 'K400 ZS top-1' or 'MSR-VTT FT T2V'."""
    return f"{DISPLAY[col.benchmark]} {PROTOCOL_SHORT.get(col.protocol, col.protocol)} {col.label}"


def row_label(col: Column) -> str:
    """A row of a family's panel: the panel names the protocol, so 'K400 top-1' or 'MSR-VTT T2V'."""
    return f"{DISPLAY[col.benchmark]} {col.label}"


def plot_deltas(
    summary: pd.DataFrame,
    arms: list[str],
    baseline: str,
    arm_labels: dict[str, str],
    path_png: str | os.PathLike,
    path_pdf: str | os.PathLike,
    synthetic: bool,
    title: str | None = None,
    colours: dict[str, str] | None = None,
) -> None:
    """Write ``delta_figure`` as PNG and PDF, each atomically."""
    fig = delta_figure(summary, arms, baseline, arm_labels, synthetic, title, colours)
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
    colours: dict[str, str] | None = None,
) -> Figure:
    """Dots of Δ vs baseline (percentage points) with clipped 95% intervals, one panel per family.

    ``summary`` is the long-format frame from ``table.summarise`` (percent);
    only ``arms`` are drawn, so one ablation's figure passes its own arms.
    ``colours`` (arm -> colour) defaults to ``arm_colours`` of the summary's arms.
    """
    cols = columns()
    others = [a for a in arms if a != baseline]
    colours = colours or arm_colours(list(dict.fromkeys(summary["arm"].astype(str))))
    lookup = {(str(r["arm"]), f"{r['benchmark']}/{r['protocol']}/{r['metric']}"): r for r in summary.to_dict("records")}
    groups = list(dict.fromkeys(c.group for c in cols))

    sizes = [sum(c.group == g for c in cols) for g in groups]
    fig = Figure(figsize=(12, min(2.0 + 0.2 * max(len(others), 1) * sum(sizes) / 2, 16)), layout="constrained")
    FigureCanvasAgg(fig)
    # zero-shot families on the left, fine-tuned on the right, each column stacked by its families' rows
    sides = [[g for g in groups if not _finetuned(g, cols)], [g for g in groups if _finetuned(g, cols)]]
    grid = fig.add_gridspec(1, 2)
    axes = {}
    for j, side in enumerate(sides):
        if not side:
            continue
        sub = grid[0, j].subgridspec(len(side), 1, height_ratios=[sizes[groups.index(g)] for g in side])
        for i, g in enumerate(side):
            axes[g] = fig.add_subplot(sub[i])

    step = 0.7 / max(len(others), 1)
    for group in groups:
        ax = axes[group]
        gcols = [c for c in cols if c.group == group]
        y = np.arange(len(gcols))[::-1].astype(float)  # first column on top
        for k, arm in enumerate(others):
            rows = []
            for col in gcols:
                if (arm, col.key) not in lookup:
                    raise ValueError(f"summary has no row for arm '{arm}' column '{col.key}'")
                rows.append(lookup[(arm, col.key)])
            base_mean = np.array([_num(lookup[(baseline, c.key)]["mean"]) for c in gcols])
            delta = np.array([_num(r["delta"]) for r in rows])
            lo, hi = feasible(
                np.array([_num(r["ci_low"]) for r in rows]), np.array([_num(r["ci_high"]) for r in rows]), base_mean
            )
            yy = y - (k - (len(others) - 1) / 2) * step  # first arm on top, as in the legend
            has = ~np.isnan(lo)  # a single seed has no interval: a dot alone, not a fake zero-width bar
            ax.hlines(yy[has], lo[has], hi[has], color=colours[arm], linewidth=1.6, gid=f"ci:{arm}")
            ax.plot(
                delta,
                yy,
                "o",
                color=colours[arm],
                markersize=5,
                label=arm_labels.get(arm, arm) if group == groups[0] else None,
                gid=f"dot:{arm}",
            )
        ax.axvline(0.0, color="black", linewidth=0.8)
        ax.set_yticks(y, [row_label(c) for c in gcols], fontsize=9)
        ax.set_ylim(-0.6, len(gcols) - 0.4)
        ax.set_title(group, fontsize=10, fontweight="bold", loc="left")
        ax.grid(axis="x", linewidth=0.4, alpha=0.5)
        ax.set_axisbelow(True)
        ax.tick_params(axis="x", labelsize=8.5)
    for side in sides:
        if side:
            axes[side[-1]].set_xlabel(f"Δ vs {arm_labels.get(baseline, baseline)} (percentage points)", fontsize=9)

    what = f"Difference to the baseline (mean over seeds, 95% {interval_name(summary, others)})"
    title = f"{title}: {what[0].lower()}{what[1:]}" if title else what
    if synthetic:
        title += (
            "\nSynthetic stand-ins: benchmark slots rendered by the embedded synthetic world, not the real datasets"
        )
    fig.suptitle(title, fontsize=11)
    if others:
        fig.legend(loc="outside lower center", ncols=min(len(others), 4), fontsize=9, frameon=True)
    else:
        axes[groups[0]].text(0.5, 0.5, "no arms besides the baseline", transform=axes[groups[0]].transAxes, ha="center")
    return fig


def interval_name(summary: pd.DataFrame, arms: list[str]) -> str:
    """How the drawn intervals were formed, for the title."""
    methods = set(summary[summary["arm"].isin(arms)]["ci_method"].dropna()) - {"", NO_CI}
    boot = methods & {SEED_PAIRED, ITEM_PAIRED}
    if not methods:
        return "no interval with a single seed"
    name = "paired-bootstrap interval" if boot == {SEED_PAIRED} else "bootstrap interval" if boot else "t-interval"
    if boot and methods - boot:
        name = "bootstrap interval, t-interval where records keep no per-item outcomes,"
    return f"{name} clipped to the feasible range"


def _finetuned(group: str, cols: list[Column]) -> bool:
    return any(c.group == group and c.protocol == "finetuned" for c in cols)


def feasible(lo: np.ndarray, hi: np.ndarray, base_mean: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Interval ends clipped to the differences a percentage can make: [-base, 100 - base]."""
    return np.clip(lo, -base_mean, 100.0 - base_mean), np.clip(hi, -base_mean, 100.0 - base_mean)


def _num(value: object) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan
