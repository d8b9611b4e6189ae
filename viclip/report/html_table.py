"""The ablation table as a self-contained HTML page, for the Snakemake report.

The same cells as the LaTeX table (viclip.report.table): one table per
catalog group, mean ± std per arm, Δ to the baseline with its interval, the
best mean in bold, the published reference row at paper scale, and the
pretraining cost per arm.
"""

from __future__ import annotations

import html
import math

import pandas as pd

from viclip.eval.catalog import DISPLAY, Column, columns
from viclip.report.compute import UNITS
from viclip.report.published import Published, citation
from viclip.report.table import (
    _best_means,
    _cell,
    _cell_lookup,
    _fmt,
    _isnan,
    describe_intervals,
    describe_seeds,
    published_delta,
    reference_cell,
    released_note,
)

STYLE = """
body { font-family: system-ui, sans-serif; margin: 1.5em; color: #1a1a1a; }
table { border-collapse: collapse; margin: 0.6em 0 1.6em 0; font-size: 0.9em; }
caption { text-align: left; font-weight: bold; padding-bottom: 0.3em; }
th, td { padding: 0.25em 0.6em; text-align: center; white-space: nowrap; }
thead tr:first-child th { border-top: 2px solid #333; }
thead tr:last-child th { border-bottom: 1px solid #333; }
tbody tr:last-child > * { border-bottom: 2px solid #333; }
tbody th { text-align: left; font-weight: normal; }
tr.delta th { padding-left: 1.6em; color: #555; }
tr.delta td { color: #333; }
span.ci { color: #666; font-size: 0.85em; }
tr.reference > * { font-style: italic; border-top: 1px solid #999; }
tr.released > * { border-top: 1px solid #999; }
p.note { max-width: 70em; }
"""
DAGGER = "\u2020"


def render_html(
    summary: pd.DataFrame,
    arms: list[str],
    baseline: str,
    arm_labels: dict[str, str],
    synthetic: bool,
    reference: Published | None = None,
    compute: pd.DataFrame | None = None,
    released: list[str] | tuple[str, ...] = (),
) -> str:
    """A complete HTML document; ``compute`` is the frame from viclip.report.compute.compute_table.

    `released` arms (measured released weights) come last, beside the published row, as in the LaTeX table.
    """
    cells = _cell_lookup(summary)
    arms = [a for a in arms if a not in released] + [a for a in arms if a in released]
    label = {arm: arm_labels.get(arm, arm) for arm in arms}
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        "<title>ViCLIP ablation table</title>",
        f"<style>{STYLE}</style></head><body>",
        "<h1>ViCLIP ablations</h1>",
        f'<p class="note">{html.escape(_caption(summary, arms, baseline, label, synthetic, reference, released))}</p>',
    ]
    for group in dict.fromkeys(c.group for c in columns()):
        cols = [c for c in columns() if c.group == group]
        parts.append(_group_table(group, cols, cells, arms, baseline, label, synthetic, reference, released))
    if compute is not None:
        parts.append(_compute_table(compute, label))
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def _caption(
    summary: pd.DataFrame,
    arms: list[str],
    baseline: str,
    label: dict[str, str],
    synthetic: bool,
    reference: Published | None,
    released: list[str] | tuple[str, ...] = (),
) -> str:
    measured = [a for a in arms if a in released]
    arms = [a for a in arms if a not in released]
    seeds, _, single = describe_seeds(summary, arms)
    how, test = describe_intervals(summary, arms)
    text = f"Numbers are percentages, mean ± std over {seeds}. Δ is the difference to the baseline ({label[baseline]})"
    if how:
        text += f" with its 95% confidence interval in brackets ({how})"
    if single:
        text += "; no interval where an arm has a single seed"
    if how:
        text += (
            f". Intervals are per comparison; ablation.csv's p_holm is each difference's {test} p-value "
            "after Holm's adjustment over all arms and columns of its ablation"
        )
    text += ". Bold: best mean per column."
    if reference is not None:
        text += (
            f" Italic reference rows: {citation(reference)}; blank where the sources report none. "
            "They are not runs of this workflow" + "".join(f"; {n}" for n in reference.notes) + "."
        )
    if measured:
        text += " " + released_note([label[a] for a in measured], reference)
    if synthetic:
        text += (
            f" {DAGGER}Synthetic stand-ins: every benchmark slot is rendered by the embedded synthetic "
            "world, not the real dataset of that name, so the numbers are not comparable to published "
            "results on the real benchmarks."
        )
    return text


def _group_table(
    group: str,
    cols: list[Column],
    cells: dict,
    arms: list[str],
    baseline: str,
    label: dict[str, str],
    synthetic: bool,
    reference: Published | None,
    released: list[str] | tuple[str, ...] = (),
) -> str:
    esc = html.escape
    mark = DAGGER if synthetic else ""
    spans: list[tuple[str, int]] = []  # (benchmark, number of adjacent columns)
    for col in cols:
        if spans and spans[-1][0] == col.benchmark:
            spans[-1] = (col.benchmark, spans[-1][1] + 1)
        else:
            spans.append((col.benchmark, 1))
    head1 = "".join(f'<th colspan="{n}">{esc(DISPLAY[b])}{mark}</th>' for b, n in spans)
    head2 = "".join(f"<th>{esc(c.label)}</th>" for c in cols)
    rows = [
        f'<table class="ablation" data-group="{esc(group)}">',
        f"<caption>{esc(group)}</caption>",
        f'<thead><tr><th rowspan="2"></th>{head1}</tr><tr>{head2}</tr></thead>',
        "<tbody>",
    ]
    trained = [a for a in arms if a not in released]
    best = _best_means(cells, cols, trained)  # reference rows (released, published) are not in the running
    for arm in trained:
        tds = []
        for col in cols:
            row = _cell(cells, arm, col)
            mean = _fmt(row["mean"])
            text = f"<b>{mean}</b>" if mean in best[col.key] else mean
            if not _isnan(row["std"]):
                text += f" ± {_fmt(row['std'])}"
            tds.append(f'<td data-key="{esc(col.key)}">{text}</td>')
        rows.append(f'<tr class="arm" data-arm="{esc(arm)}"><th>{esc(label[arm])}</th>{"".join(tds)}</tr>')
        if arm != baseline:
            deltas = "".join(f"<td>{_delta(_cell(cells, arm, col))}</td>" for col in cols)
            rows.append(f'<tr class="delta" data-arm="{esc(arm)}"><th>Δ vs. baseline</th>{deltas}</tr>')
    if reference is not None and group in reference.groups():
        shown = "".join(f"<td>{reference_cell(reference, col)}</td>" for col in cols)
        rows.append(f'<tr class="reference"><th>{esc(reference.label(group))}</th>{shown}</tr>')
    for arm in (a for a in arms if a in released):  # measured released weights, beside the published row
        tds = []
        for col in cols:
            row = _cell(cells, arm, col)
            text = _fmt(row["mean"]) + ("" if _isnan(row["std"]) else f" ± {_fmt(row['std'])}")
            tds.append(f'<td data-key="{esc(col.key)}">{text}</td>')
        rows.append(f'<tr class="released" data-arm="{esc(arm)}"><th>{esc(label[arm])}</th>{"".join(tds)}</tr>')
        if reference is not None and group in reference.groups():
            diffs = "".join(
                f"<td>{published_delta(reference, col, _cell(cells, arm, col)['mean']) or '–'}</td>" for col in cols
            )
            rows.append(f'<tr class="delta" data-arm="{esc(arm)}"><th>Δ vs. published</th>{diffs}</tr>')
    rows += ["</tbody>", "</table>"]
    return "\n".join(rows)


def _delta(row: dict) -> str:
    text = _fmt(row["delta"], signed=True)
    if _isnan(row["ci_low"]) or _isnan(row["ci_high"]):
        return text
    return f'{text} <span class="ci">[{_fmt(row["ci_low"])}, {_fmt(row["ci_high"])}]</span>'


def _compute_table(df: pd.DataFrame, label: dict[str, str]) -> str:
    scale, unit = next((s, u) for s, u in UNITS if df["flops"].max() >= s)
    head = (
        f"<thead><tr><th></th><th>mask ratio</th><th>{unit}</th><th>× baseline</th>"
        "<th>seconds</th><th>× baseline</th></tr></thead>"
    )
    rows = [
        '<table class="compute">',
        "<caption>Pretraining cost (analytic FLOPs, measured seconds)</caption>",
        head,
        "<tbody>",
    ]
    for r in df.itertuples():
        secs = f"{r.seconds_mean:.1f}" + ("" if math.isnan(r.seconds_std) else f" ± {r.seconds_std:.1f}")
        rows.append(
            f'<tr data-arm="{html.escape(r.arm)}"><th>{html.escape(label.get(r.arm, r.arm))}</th>'
            f"<td>{r.mask_ratio:g}</td><td>{r.flops / scale:.3g}</td><td>{r.flops_vs_baseline:.2f}</td>"
            f"<td>{secs}</td><td>{r.seconds_vs_baseline:.2f}</td></tr>"
        )
    rows += ["</tbody>", "</table>"]
    return "\n".join(rows)
