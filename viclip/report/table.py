"""Ablation table: load evaluation records, summarise per arm, render LaTeX.

The summary is long format (one row per arm and catalog column) and holds
percentages: record fractions are multiplied by 100 once, here, so the CSV,
the table and the figure all speak the same unit.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

import pandas as pd

from viclip.eval.catalog import DISPLAY, Column, columns
from viclip.io import atomic_path
from viclip.report import bootstrap, stats
from viclip.report.intervals import Intervals
from viclip.report.outcomes import check_same_items, outcomes
from viclip.report.published import Published, citation

REQUIRED_FIELDS = ("arm", "seed", "benchmark", "protocol", "metrics")
SUMMARY_COLUMNS = [
    "arm",
    "group",
    "benchmark",
    "protocol",
    "metric",
    "label",
    "n_seeds",
    "mean",
    "std",
    "delta",
    "ci_low",
    "ci_high",
    "ci_method",
    "n_items",
    "resamples",
    "p_value",
    "p_holm",
]
SYNTHETIC_MARK = r"$^\dagger$"


# --------------------------------------------------------------------------- loading


def load_records(paths: Iterable[str | os.PathLike]) -> list[dict]:
    """Read evaluation records; each gets ``_source`` (its path) for error messages.

    Raises ValueError naming the file (and field) when a file is not JSON, not
    an object, or lacks one of REQUIRED_FIELDS.
    """
    records = []
    for path in paths:
        path = Path(path)
        try:
            rec = json.loads(path.read_text())
        except json.JSONDecodeError as err:
            raise ValueError(f"{path}: not valid JSON ({err})") from err
        if not isinstance(rec, dict):
            raise ValueError(f"{path}: expected a JSON object, got {type(rec).__name__}")
        for field in REQUIRED_FIELDS:
            if field not in rec:
                raise ValueError(f"{path}: missing required field '{field}'")
        if not isinstance(rec["metrics"], dict):
            raise ValueError(f"{path}: field 'metrics' must be an object")
        try:
            rec["seed"] = _as_int(rec["seed"])
        except (TypeError, ValueError) as err:
            raise ValueError(f"{path}: field 'seed' is not an integer: {rec['seed']!r}") from err
        rec["_source"] = str(path)
        records.append(rec)
    return records


def is_synthetic(records: Iterable[dict]) -> bool:
    """True if any record says it was evaluated on the synthetic world."""
    return any(bool(r.get("synthetic", False)) for r in records)


def _as_int(value: object) -> int:
    if isinstance(value, bool):
        raise TypeError("bool is not a seed")
    as_float = float(value)  # accepts "3" and 3.0, rejects "a"
    if not as_float.is_integer():
        raise ValueError(value)
    return int(as_float)


# --------------------------------------------------------------------------- summary


def summarise(
    records: Sequence[dict],
    arms: list[str],
    baseline: str,
    families: Sequence[Sequence[str]] | None = None,
    released: Sequence[str] = (),
    intervals: Intervals | None = None,
) -> pd.DataFrame:
    """Long-format summary in percent: one row per (arm, catalog column).

    Records of arms not in ``arms`` are ignored. Every listed arm needs every
    column for every seed it has; otherwise ValueError lists what is missing.
    The baseline row has NaN delta/CI/p and an empty ci_method. ``families``
    are the ablations' arm lists: ``p_holm`` is Holm-adjusted over every
    (arm, column) test of one family; an arm in no family is a family of its own.
    ``released`` arms (released weights, one run each) are reference rows: like the
    baseline's, their delta/CI/p are NaN, as no ablation compares them.
    ``intervals`` chooses how differences get their interval (`_differences`);
    ``n_items`` and ``resamples`` say what a bootstrap interval rests on.
    """
    if baseline not in arms:
        raise ValueError(f"baseline arm '{baseline}' is not among arms {arms}")
    intervals = intervals or Intervals()
    runs = _index_runs(records, arms)
    values = _index_values(runs, arms)  # arm -> seed -> key -> percent
    cols = columns()
    compared = [a for a in arms if a != baseline and a not in released]
    diffs = _differences(runs, values, compared, baseline, intervals)
    rows = []
    for arm in arms:
        for col in cols:
            by_seed = _values_of(values, arm, col)
            mean, std = stats.mean_std(list(by_seed.values()))
            row = {
                "arm": arm,
                "group": col.group,
                "benchmark": col.benchmark,
                "protocol": col.protocol,
                "metric": col.metric,
                "label": col.label,
                "n_seeds": len(by_seed),
                "mean": mean,
                "std": std,
                "delta": math.nan,
                "ci_low": math.nan,
                "ci_high": math.nan,
                "ci_method": "",
                "n_items": math.nan,
                "resamples": math.nan,
                "p_value": math.nan,
                "p_holm": math.nan,
            }
            if arm in compared:
                diff, n_items = diffs[(arm, col.key)]
                row.update(
                    delta=diff.delta,
                    ci_low=diff.ci_low,
                    ci_high=diff.ci_high,
                    ci_method=diff.method,
                    p_value=diff.p_value,
                )
                if diff.method in (bootstrap.SEED_PAIRED, bootstrap.ITEM_PAIRED):
                    row.update(n_items=n_items, resamples=intervals.resamples)
            rows.append(row)
    df = pd.DataFrame(rows, columns=SUMMARY_COLUMNS)
    for family in _families(arms, baseline, families):
        sel = df["arm"].isin(family)
        df.loc[sel, "p_holm"] = stats.holm(df.loc[sel, "p_value"].tolist())
    return df


def _families(arms: list[str], baseline: str, families: Sequence[Sequence[str]] | None) -> list[list[str]]:
    """Disjoint arm groups for the Holm adjustment: the given ablations' arms, then each arm left over."""
    out, seen = [], {baseline}
    for family in families or []:
        members = [a for a in family if a in arms and a not in seen]
        seen.update(members)
        if members:
            out.append(members)
    return out + [[a] for a in arms if a not in seen]


def _differences(
    runs: dict[tuple[str, int, str, str], dict],
    values: dict[str, dict[int, dict[str, float]]],
    compared: list[str],
    baseline: str,
    intervals: Intervals,
) -> dict[tuple[str, str], tuple[stats.Difference, int | None]]:
    """(arm, column key) -> (arm - baseline, test items it rests on) for every compared arm.

    The paired bootstrap (viclip.report.bootstrap) where every record of the comparison keeps its
    per-item outcomes and `intervals.method` is "bootstrap"; Student-t over seeds otherwise (older
    records, or a benchmark whose records keep no items). Column by column: one item draw serves all
    the arms of a column.
    """
    out = {}
    base_seeds = sorted(values[baseline])
    for col in columns():
        base_recs = [runs[(baseline, s, col.benchmark, col.protocol)] for s in base_seeds]
        check_same_items(base_recs)
        arms = {}
        for arm in compared:
            recs = [runs[(arm, s, col.benchmark, col.protocol)] for s in sorted(values[arm])]
            check_same_items(base_recs + recs)
            arms[arm] = outcomes(recs, col.metric, scale=100.0) if intervals.method == "bootstrap" else None
        base = outcomes(base_recs, col.metric, scale=100.0) if intervals.method == "bootstrap" else None
        boot = [a for a, o in arms.items() if o is not None and base is not None]
        if boot:  # one item draw for the column, then each arm's own seed draws
            resampled = bootstrap.item_resamples(
                [base] + [arms[a] for a in boot], intervals.generator(col.key), intervals.resamples
            )
            for arm, per_seed in zip(boot, resampled[1:], strict=True):
                delta = float(arms[arm].per_seed.mean() - base.per_seed.mean())
                paired = sorted(values[arm]) == base_seeds
                rng = intervals.generator(arm, col.key)
                diff = bootstrap.compare(per_seed, resampled[0], delta, paired, rng, intervals.level)
                out[(arm, col.key)] = (diff, base.hits.shape[1])
        for arm in (a for a in compared if a not in boot):
            t = stats.difference(_values_of(values, arm, col), _values_of(values, baseline, col), intervals.level)
            out[(arm, col.key)] = (t, None)
    return out


def _values_of(values: dict[str, dict[int, dict[str, float]]], arm: str, col: Column) -> dict[int, float]:
    return {seed: keyed[col.key] for seed, keyed in values[arm].items()}


def _index_runs(records: Sequence[dict], arms: list[str]) -> dict[tuple[str, int, str, str], dict]:
    """(arm, seed, benchmark, protocol) -> its record, for the listed arms; refuses duplicates."""
    by_run: dict[tuple[str, int, str, str], dict] = {}
    for rec in records:
        if rec["arm"] not in arms:
            continue
        rid = (rec["arm"], int(rec["seed"]), rec["benchmark"], rec["protocol"])
        if rid in by_run:
            raise ValueError(
                f"duplicate record for arm '{rid[0]}' seed {rid[1]} {rid[2]}-{rid[3]}: "
                f"{by_run[rid].get('_source', '?')} and {rec.get('_source', '?')}"
            )
        by_run[rid] = rec
    return by_run


def _index_values(
    by_run: dict[tuple[str, int, str, str], dict], arms: list[str]
) -> dict[str, dict[int, dict[str, float]]]:
    """arm -> seed -> column key -> value in percent; checks completeness."""
    values: dict[str, dict[int, dict[str, float]]] = {arm: {} for arm in arms}
    for arm, seed, _, _ in by_run:
        values[arm].setdefault(seed, {})
    empty = [arm for arm in arms if not values[arm]]
    if empty:
        raise ValueError(f"no evaluation records for arm(s): {', '.join(empty)}")

    missing = []
    for arm in arms:
        for seed in sorted(values[arm]):
            for col in columns():
                value = _lookup(by_run.get((arm, seed, col.benchmark, col.protocol)), col)
                if value is None:
                    missing.append(f"arm '{arm}' seed {seed} metric '{col.key}'")
                else:
                    values[arm][seed][col.key] = 100.0 * value
    if missing:
        shown = "; ".join(missing[:10]) + (f"; ... ({len(missing)} in all)" if len(missing) > 10 else "")
        raise ValueError(f"missing metrics: {shown}")
    return values


def _lookup(rec: dict | None, col: Column) -> float | None:
    """The column's value from its record, or None when absent or not a finite number."""
    if rec is None or col.metric not in rec["metrics"]:
        return None
    try:
        value = float(rec["metrics"][col.metric])
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


# --------------------------------------------------------------------------- LaTeX


def render_latex(
    summary: pd.DataFrame,
    arms: list[str],
    baseline: str,
    arm_labels: dict[str, str],
    synthetic: bool,
    compute: str | None = None,
    reference: Published | None = None,
    released: Sequence[str] = (),
) -> str:
    """A ``table*`` fragment: one booktabs tabular per catalog group.

    `compute`, if given, is a rendered cost block (viclip.report.compute)
    appended last. `reference`, if given, adds the published numbers as an
    italic row under each block they cover (viclip.report.published.reference_for
    decides when). `released` arms (measured released weights) come last in
    each block, beside the published row, with their difference to it.
    Needs ``booktabs`` and ``graphicx`` in the preamble.
    """
    cells = _cell_lookup(summary)
    arms = [a for a in arms if a not in released] + [a for a in arms if a in released]
    label = {arm: latex_escape(arm_labels.get(arm, arm)) for arm in arms}
    groups = list(dict.fromkeys(c.group for c in columns()))

    out = [
        "% Generated by viclip.report.table; needs \\usepackage{booktabs,graphicx}.",
        "\\begin{table*}[t]",
        "\\centering",
        _caption(summary, arms, baseline, label, synthetic, reference, released),
        "\\label{tab:ablation}",
    ]
    for i, group in enumerate(groups):
        if i:
            out.append("\\par\\medskip")
        cols = [c for c in columns() if c.group == group]
        out.append(_group_block(group, cols, cells, arms, baseline, label, synthetic, reference, released))
    if compute:
        out += ["\\par\\medskip", compute]
    out.append("\\end{table*}")
    return "\n".join(out) + "\n"


def latex_escape(text: str) -> str:
    """Escape LaTeX special characters so a plain-text label typesets verbatim."""
    repl = {
        "\\": r"\textbackslash{}",
        "&": r"\&",
        "%": r"\%",
        "$": r"\$",
        "#": r"\#",
        "_": r"\_",
        "{": r"\{",
        "}": r"\}",
        "~": r"\textasciitilde{}",
        "^": r"\textasciicircum{}",
    }
    return "".join(repl.get(ch, ch) for ch in text)


def _cell_lookup(summary: pd.DataFrame) -> dict[tuple[str, str], dict]:
    """(arm, column key) -> summary row; tolerates a summary read back from CSV."""
    lookup = {}
    for row in summary.to_dict("records"):
        key = f"{row['benchmark']}/{row['protocol']}/{row['metric']}"
        lookup[(str(row["arm"]), key)] = row
    return lookup


def describe_seeds(summary: pd.DataFrame, arms: list[str]) -> tuple[str, str, bool]:
    """For captions: '3 seeds' (or '2-3 seeds (per arm)'), how the t-intervals pair ('' if there are
    none), and whether some comparisons have no interval."""
    rows = summary[summary["arm"].isin(arms)]
    n = sorted({int(v) for v in rows["n_seeds"]})
    seeds = f"{n[0]} seed{'s' if n[0] != 1 else ''}" if len(n) == 1 else f"{n[0]}-{n[-1]} seeds (per arm)"
    methods = set(rows["ci_method"].dropna()) - {""}
    if not methods & {stats.PAIRED, stats.WELCH}:
        how = ""  # no t-interval: a bootstrap or a single seed everywhere
    elif methods & {stats.PAIRED, stats.WELCH} == {stats.PAIRED}:
        how = "paired by seed"
    elif stats.PAIRED in methods:
        how = "paired by seed where the arms share seeds, Welch otherwise"
    else:
        how = "Welch, as the arms do not share seeds"
    return seeds, how, stats.NO_CI in methods


def describe_intervals(summary: pd.DataFrame, arms: list[str], latex: bool = False) -> tuple[str, str]:
    """For captions: how the intervals were formed ('' if none was) and the test behind the p-values."""
    rows = summary[summary["arm"].isin(arms)]
    seeds, how, _ = describe_seeds(summary, arms)
    dash, t = ("--", "$t$") if latex else ("-", "t")
    student = f"Student-{t} over seeds, {how}" if how else ""
    boot = rows[rows["ci_method"].isin([bootstrap.SEED_PAIRED, bootstrap.ITEM_PAIRED])]
    if boot.empty:
        return student, f"{t}-test" if how else ""
    items = sorted({int(n) for n in boot["n_items"]})
    span = f"{items[0]}" + (f"{dash}{items[-1]}" if len(items) > 1 else "")
    paired = set(boot["ci_method"]) == {bootstrap.SEED_PAIRED}
    text = (
        f"{'paired ' if paired else ''}bootstrap over {seeds.replace('-', dash)} and {span} test items, "
        f"{int(boot['resamples'].iloc[0])} resamples; a retrieval video's captions are drawn together"
        + ("" if paired else "; items paired, seeds paired where the arms share them")
    )
    if not how:
        return text, "bootstrap"
    n_t = int(rows["ci_method"].isin([stats.PAIRED, stats.WELCH]).sum())
    return (
        f"{text}; {student} for the {n_t} comparisons whose records keep no per-item outcomes",
        f"bootstrap or {t}-test",
    )


def _caption(
    summary: pd.DataFrame,
    arms: list[str],
    baseline: str,
    label: dict[str, str],
    synthetic: bool,
    reference: Published | None = None,
    released: Sequence[str] = (),
) -> str:
    measured = [a for a in arms if a in released]
    arms = [a for a in arms if a not in released]
    seeds, _, single = describe_seeds(summary, arms)
    how, test = describe_intervals(summary, arms, latex=True)
    text = (
        "Ablation results. Numbers are percentages, mean $\\pm$ std over "
        f"{seeds.replace('-', '--')}. $\\Delta$ is the difference to the baseline ({label[baseline]})"
        + (f" with its 95\\% confidence interval in brackets ({how})" if how else "")
    )
    if single:
        text += "; no interval where an arm has a single seed"
    if how:
        text += (
            f". Intervals are per comparison; $^*$ marks a difference whose {test} $p$-value stays below 0.05 "
            "after Holm's adjustment for multiple comparisons over all arms and columns of its ablation"
        )
    text += ". Bold: best mean per column."
    if reference is not None:
        text += (
            f" Italic reference rows: {latex_escape(citation(reference))}; "
            "-- where the sources report none. They are not runs of this workflow"
            + "".join(f"; {latex_escape(n)}" for n in reference.notes)
            + "."
        )
    if measured:
        text += " " + released_note([label[a] for a in measured], reference)
    if synthetic:
        text += (
            f" {SYNTHETIC_MARK}Synthetic stand-ins: every benchmark slot is rendered by "
            "the embedded synthetic world, not the real dataset of that name, so the "
            "numbers are not comparable to published results on the real benchmarks."
        )
    return f"\\caption{{{text}}}"


def _group_block(
    group: str,
    cols: list[Column],
    cells: dict,
    arms: list[str],
    baseline: str,
    label: dict[str, str],
    synthetic: bool,
    reference: Published | None = None,
    released: Sequence[str] = (),
) -> str:
    n = len(cols)
    mark = SYNTHETIC_MARK if synthetic else ""
    # Benchmarks span their adjacent metric columns, in catalog order.
    spans: list[tuple[str, int, int]] = []  # (benchmark, first col, last col), 1-based past the label
    for j, col in enumerate(cols, start=2):
        if spans and spans[-1][0] == col.benchmark:
            spans[-1] = (col.benchmark, spans[-1][1], j)
        else:
            spans.append((col.benchmark, j, j))
    head1 = " & ".join(
        [f"\\textit{{{group}}}"] + [f"\\multicolumn{{{b - a + 1}}}{{c}}{{{DISPLAY[bm]}{mark}}}" for bm, a, b in spans]
    )
    rules = " ".join(f"\\cmidrule(lr){{{a}-{b}}}" for _, a, b in spans)
    head2 = " & ".join([""] + [c.label for c in cols])

    trained = [a for a in arms if a not in released]
    best = _best_means(cells, cols, trained)  # reference rows (released, published) are not in the running
    body = []
    for arm in trained:
        means = []
        for col in cols:
            row = _cell(cells, arm, col)
            m = _fmt(row["mean"])
            if m in best[col.key]:
                m = f"\\textbf{{{m}}}"
            std = row["std"]
            means.append(m if _isnan(std) else f"{m}$\\pm${_fmt(std)}")
        body.append(" & ".join([label[arm]] + means) + " \\\\")
        if arm != baseline:
            deltas = [_delta_cell(_cell(cells, arm, col)) for col in cols]
            body.append(" & ".join(["\\quad $\\Delta$ vs.\\ baseline"] + deltas) + " \\\\")
    published = reference is not None and group in reference.groups()
    if published or len(trained) < len(arms):
        body.append("\\midrule")
    if published:
        shown = [reference_cell(reference, col) for col in cols]
        body.append(
            " & ".join(
                [f"\\textit{{{latex_escape(reference.label(group))}}}"]
                + [f"\\textit{{{v}}}" if v else "--" for v in shown]
            )
            + " \\\\"
        )
    for arm in (a for a in arms if a in released):  # measured released weights, beside the published row
        means = []
        for col in cols:
            row = _cell(cells, arm, col)
            means.append(_fmt(row["mean"]) + ("" if _isnan(row["std"]) else f"$\\pm${_fmt(row['std'])}"))
        body.append(" & ".join([label[arm]] + means) + " \\\\")
        if published:
            diffs = [published_delta(reference, col, _cell(cells, arm, col)["mean"]) for col in cols]
            body.append(
                " & ".join(["\\quad $\\Delta$ vs.\\ published"] + [f"${d}$" if d else "--" for d in diffs]) + " \\\\"
            )

    tabular = "\n".join(
        [
            f"\\begin{{tabular}}{{l{'c' * n}}}",
            "\\toprule",
            head1 + " \\\\",
            rules,
            head2 + " \\\\",
            "\\midrule",
            *body,
            "\\bottomrule",
            "\\end{tabular}",
        ]
    )
    # Shrink-only: a narrow block (4 columns) must not be blown up to full width.
    return f"% {group}\n\\resizebox{{\\ifdim\\width>\\textwidth\\textwidth\\else\\width\\fi}}{{!}}{{%\n{tabular}%\n}}"


def published_delta(reference: Published, col: Column, measured: float) -> str:
    """Measured minus published, signed, one decimal; '' where the sources report no value."""
    value = reference.values.get(col.key)
    return "" if value is None else _fmt(float(measured) - value, signed=True)


def released_note(labels: list[str], reference: Published | None) -> str:
    """Caption text on the released-weights rows; `labels` already escaped for the output format."""
    text = (
        f"{', '.join(labels)}: released weights evaluated by this workflow, with the trained arms' protocol; "
        "one model, run once (no std or interval) and a reference, not part of an ablation (no difference "
        "to the baseline)"
    )
    if reference is not None:
        text += "; the row under it is the measured value minus the published one"
    return text + "."


def reference_cell(reference: Published, col: Column) -> str:
    """A published value with the source's precision (one or two decimals), or '' if not reported."""
    value = reference.values.get(col.key)
    if value is None:
        return ""
    text = f"{value:.2f}"
    return text.removesuffix("0")


def _best_means(cells: dict, cols: list[Column], arms: list[str]) -> dict[str, set[str]]:
    """Per column, the displayed mean(s) to bold; compared as shown so ties bold alike."""
    if len(arms) < 2:
        return {c.key: set() for c in cols}
    best = {}
    for col in cols:
        shown = [_fmt(_cell(cells, arm, col)["mean"]) for arm in arms]
        top = max(float(s) for s in shown)
        best[col.key] = {s for s in shown if float(s) == top}
    return best


def _cell(cells: dict, arm: str, col: Column) -> dict:
    try:
        return cells[(arm, col.key)]
    except KeyError:
        raise ValueError(f"summary has no row for arm '{arm}' column '{col.key}'") from None


def _delta_cell(row: dict) -> str:
    star = "^*" if not _isnan(row.get("p_holm")) and float(row["p_holm"]) < 0.05 else ""
    delta = f"${_fmt(row['delta'], signed=True)}{star}$"
    if _isnan(row["ci_low"]) or _isnan(row["ci_high"]):
        return delta
    return f"{delta} {{\\scriptsize[${_fmt(row['ci_low'])}$, ${_fmt(row['ci_high'])}$]}}"


def _fmt(x: float, signed: bool = False) -> str:
    text = f"{float(x):+.1f}" if signed else f"{float(x):.1f}"
    if text in ("-0.0", "+0.0"):  # rounding noise should not show a sign
        text = "0.0"
    return text


def _isnan(x: object) -> bool:
    try:
        return math.isnan(float(x))
    except (TypeError, ValueError):
        return True


# --------------------------------------------------------------------------- output


def write_outputs(summary: pd.DataFrame, tex: str, csv_path: str | os.PathLike, tex_path: str | os.PathLike) -> None:
    """Write the long-format summary CSV and the LaTeX fragment, each atomically."""
    with atomic_path(csv_path) as tmp:
        summary.to_csv(tmp, index=False)
    with atomic_path(tex_path) as tmp:
        tmp.write_text(tex)
