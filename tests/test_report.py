"""Tests for viclip.report: statistics, the LaTeX table and the delta figure."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import compile_latex
from scipy import stats as sps

from viclip.eval.catalog import columns
from viclip.report import stats
from viclip.report.figure import plot_deltas, tick_label
from viclip.report.table import (
    latex_escape,
    load_records,
    render_latex,
    summarise,
    write_outputs,
)

ARMS = ["baseline", "minus", "noisy"]
SEEDS = [0, 1, 2]
NOISE = {0: 0.01, 1: -0.02, 2: 0.04}  # per-seed shift of arm "noisy" vs baseline
LABELS = {"baseline": "Baseline", "minus": "no_mlp & 50%", "noisy": "Noisy #2"}
T_975_DF2 = 4.302652729749462  # Student-t 97.5% quantile, 2 degrees of freedom


def base_value(seed: int, i: int) -> float:
    """Baseline fraction for catalog column i: percent = 50 + seed + 0.1 i."""
    return 0.5 + 0.01 * seed + 0.001 * i


def arm_value(arm: str, seed: int, i: int) -> float:
    shift = {"baseline": 0.0, "minus": -0.1, "noisy": NOISE[seed], "short": 0.02}[arm]
    return base_value(seed, i) + shift


def make_records(arms=ARMS, seeds=SEEDS, seeds_for=None) -> list[dict]:
    """One record per (arm, seed, benchmark, protocol), like the evaluation writes."""
    seeds_for = seeds_for or {}
    records = []
    for arm in arms:
        for seed in seeds_for.get(arm, seeds):
            by_run: dict[tuple[str, str], dict] = {}
            for i, col in enumerate(columns()):
                metrics = by_run.setdefault((col.benchmark, col.protocol), {})
                metrics[col.metric] = arm_value(arm, seed, i)
            for (bench, proto), metrics in by_run.items():
                metrics.setdefault("t2v_medr", 3.0)  # extra keys must be ignored
                records.append({
                    "arm": arm, "seed": seed, "run": f"{arm}/seed{seed}", "benchmark": bench,
                    "protocol": proto, "synthetic": True, "task": "x", "metrics": metrics,
                    "n_queries": 300, "n_candidates": 40,
                })
    return records


def write_records(records: list[dict], root: Path) -> list[Path]:
    paths = []
    for r in records:
        p = root / r["arm"] / f"seed{r['seed']}" / f"{r['benchmark']}-{r['protocol']}.json"
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(json.dumps(r))
        paths.append(p)
    return paths


@pytest.fixture(scope="module")
def summary() -> pd.DataFrame:
    return summarise(make_records(), ARMS, "baseline")


def rows(df: pd.DataFrame, arm: str) -> pd.DataFrame:
    return df[df["arm"] == arm].reset_index(drop=True)


# --------------------------------------------------------------------------- stats


def test_mean_std_single_seed_is_nan():
    assert stats.mean_std([0.3]) == (0.3, pytest.approx(math.nan, nan_ok=True))
    m, s = stats.mean_std([1.0, 2.0, 3.0])
    assert (m, s) == (2.0, 1.0)


def test_paired_difference_by_hand():
    d = stats.difference({0: 1.0, 1: -2.0, 2: 4.0}, {0: 0.0, 1: 0.0, 2: 0.0})
    half = T_975_DF2 * 3.0 / math.sqrt(3)  # sd of (1, -2, 4) is 3
    assert d.method == stats.PAIRED
    assert d.delta == pytest.approx(1.0)
    assert (d.ci_low, d.ci_high) == pytest.approx((1.0 - half, 1.0 + half))
    assert (d.ci_low, d.ci_high) == pytest.approx((-6.452413135, 8.452413135))


def test_welch_when_seeds_differ():
    d = stats.difference({0: 52.0, 1: 53.0}, {0: 50.0, 1: 51.0, 2: 52.0})
    assert d.method == stats.WELCH
    assert d.delta == pytest.approx(1.5)
    # va = 0.5/2, vb = 1/3; Welch df = (va+vb)^2 / (va^2/1 + vb^2/2) = 2.88235
    va, vb = 0.25, 1 / 3
    df = (va + vb) ** 2 / (va**2 + vb**2 / 2)
    half = sps.t.ppf(0.975, df) * math.sqrt(va + vb)
    assert (d.ci_low, d.ci_high) == pytest.approx((1.5 - half, 1.5 + half))
    assert (d.ci_low, d.ci_high) == pytest.approx((-0.98773380, 3.98773380))


def test_single_seed_has_no_interval():
    d = stats.difference({0: 2.0}, {0: 1.0})
    assert d.delta == 1.0 and d.method == stats.NO_CI
    assert math.isnan(d.ci_low) and math.isnan(d.ci_high)


# --------------------------------------------------------------------------- summary


def test_summary_shape_and_columns(summary):
    assert list(summary.columns) == [
        "arm", "group", "benchmark", "protocol", "metric", "label", "n_seeds",
        "mean", "std", "delta", "ci_low", "ci_high", "ci_method"]
    assert len(summary) == len(ARMS) * 30
    assert list(summary["arm"].unique()) == ARMS
    keys = [f"{c.benchmark}/{c.protocol}/{c.metric}" for c in columns()]
    got = rows(summary, "noisy")
    assert [f"{b}/{p}/{m}" for b, p, m in zip(got["benchmark"], got["protocol"], got["metric"])] == keys
    assert (summary["n_seeds"] == 3).all()


def test_summary_baseline(summary):
    b = rows(summary, "baseline")
    # percent values 50 + seed + 0.1 i over seeds 0..2: mean 51 + 0.1 i, std 1
    np.testing.assert_allclose(b["mean"], 51 + 0.1 * np.arange(30))
    np.testing.assert_allclose(b["std"], 1.0)
    assert b["delta"].isna().all() and b["ci_low"].isna().all() and b["ci_high"].isna().all()
    assert (b["ci_method"] == "").all()


def test_summary_constant_shift(summary):
    m = rows(summary, "minus")
    np.testing.assert_allclose(m["mean"], 41 + 0.1 * np.arange(30))
    np.testing.assert_allclose(m["std"], 1.0)
    np.testing.assert_allclose(m["delta"], -10.0)
    # identical per-seed differences: the paired interval collapses to the point
    np.testing.assert_allclose(m["ci_low"], -10.0, atol=1e-9)
    np.testing.assert_allclose(m["ci_high"], -10.0, atol=1e-9)
    assert (m["ci_method"] == "paired-t").all()


def test_summary_paired_interval(summary):
    n = rows(summary, "noisy")
    # values 51, 49, 56 (+0.1 i): mean 52, std sqrt(13); differences 1, -2, 4
    np.testing.assert_allclose(n["mean"], 52 + 0.1 * np.arange(30))
    np.testing.assert_allclose(n["std"], math.sqrt(13))
    np.testing.assert_allclose(n["delta"], 1.0)
    np.testing.assert_allclose(n["ci_low"], -6.452413135, rtol=1e-8)
    np.testing.assert_allclose(n["ci_high"], 8.452413135, rtol=1e-8)
    # and the same as scipy's paired t-test for one column
    i = 7
    a = [100 * arm_value("noisy", s, i) for s in SEEDS]
    b = [100 * arm_value("baseline", s, i) for s in SEEDS]
    ci = sps.ttest_rel(a, b).confidence_interval()
    assert (n["ci_low"][i], n["ci_high"][i]) == pytest.approx((ci.low, ci.high))


def test_summary_welch_for_different_seeds():
    recs = make_records(arms=["baseline", "short"], seeds_for={"short": [0, 1]})
    df = summarise(recs, ["baseline", "short"], "baseline")
    s = rows(df, "short")
    assert (s["ci_method"] == "welch-t").all() and (s["n_seeds"] == 2).all()
    np.testing.assert_allclose(s["delta"], 1.5)
    np.testing.assert_allclose(s["ci_low"], -0.98773380, rtol=1e-7)
    np.testing.assert_allclose(s["ci_high"], 3.98773380, rtol=1e-7)


def test_summary_ignores_unlisted_arms():
    df = summarise(make_records(), ["baseline", "minus"], "baseline")
    assert set(df["arm"]) == {"baseline", "minus"}


def test_missing_metric_names_arm_seed_key():
    recs = make_records()
    for r in recs:
        if (r["arm"], r["seed"], r["benchmark"], r["protocol"]) == ("noisy", 2, "lsmdc", "finetuned"):
            del r["metrics"]["v2t_r1"]
    with pytest.raises(ValueError, match=r"arm 'noisy' seed 2 metric 'lsmdc/finetuned/v2t_r1'"):
        summarise(recs, ARMS, "baseline")


def test_missing_record_names_all_its_metrics():
    recs = [r for r in make_records()
            if (r["arm"], r["seed"], r["benchmark"], r["protocol"]) != ("minus", 1, "k400", "zeroshot")]
    with pytest.raises(ValueError) as err:
        summarise(recs, ARMS, "baseline")
    msg = str(err.value)
    assert "arm 'minus' seed 1 metric 'k400/zeroshot/top1'" in msg
    assert "arm 'minus' seed 1 metric 'k400/zeroshot/avg'" in msg


def test_arm_without_records_and_bad_baseline():
    with pytest.raises(ValueError, match="ghost"):
        summarise(make_records(), ARMS + ["ghost"], "baseline")
    with pytest.raises(ValueError, match="baseline arm 'nope'"):
        summarise(make_records(), ARMS, "nope")


# --------------------------------------------------------------------------- loading


def test_load_records_round_trip(tmp_path):
    recs = make_records()
    loaded = load_records(write_records(recs, tmp_path))
    assert len(loaded) == len(recs)
    assert all("_source" in r for r in loaded)
    df = summarise(loaded, ARMS, "baseline")
    np.testing.assert_allclose(rows(df, "noisy")["delta"], 1.0)


def test_load_records_bad_json_names_file(tmp_path):
    good = write_records(make_records()[:1], tmp_path)
    bad = tmp_path / "broken-record.json"
    bad.write_text('{"arm": "baseline", ')
    with pytest.raises(ValueError, match="broken-record.json"):
        load_records(good + [bad])


@pytest.mark.parametrize("field", ["arm", "seed", "benchmark", "protocol", "metrics"])
def test_load_records_missing_field_names_file_and_field(tmp_path, field):
    rec = make_records()[0]
    del rec[field]
    p = tmp_path / "partial.json"
    p.write_text(json.dumps(rec))
    with pytest.raises(ValueError, match=rf"partial\.json.*'{field}'"):
        load_records([p])


# --------------------------------------------------------------------------- LaTeX


MEAN_CELL = re.compile(r"^(\\textbf\{)?\d+\.\d(\})?(\$\\pm\$\d+\.\d)?$")
DELTA_CELL = re.compile(r"^\$[+-]?\d+\.\d\$( \{\\scriptsize\[\$-?\d+\.\d\$, \$-?\d+\.\d\$\]\})?$")


def table_rows(tex: str, first_cell: str) -> list[list[str]]:
    """Cells (minus the row label) of every tabular row whose first cell is first_cell."""
    out = []
    for line in tex.splitlines():
        if line.endswith("\\\\"):
            cells = [c.strip() for c in line[:-2].split(" & ")]
            if cells[0] == first_cell:
                out.append(cells[1:])
    return out


@pytest.fixture(scope="module")
def tex(summary) -> str:
    return render_latex(summary, ARMS, "baseline", LABELS, synthetic=True)


def test_latex_mean_cells(tex):
    for arm in ARMS:
        blocks = table_rows(tex, latex_escape(LABELS[arm]))
        assert len(blocks) == 4, arm  # one row per group block
        cells = [c for b in blocks for c in b]
        assert len(cells) == 30
        assert all(MEAN_CELL.match(c) for c in cells), cells
        assert all("$\\pm$1.0" in c for c in cells) or arm == "noisy"
    noisy = [c for b in table_rows(tex, latex_escape(LABELS["noisy"])) for c in b]
    assert noisy[0] == "\\textbf{52.0}$\\pm$3.6"  # best mean is bold
    assert tex.count("\\textbf{") == 30  # exactly one best arm per column


def test_latex_delta_rows(tex):
    deltas = table_rows(tex, "\\quad $\\Delta$ vs.\\ baseline")
    assert len(deltas) == 8  # 2 non-baseline arms x 4 groups
    cells = [c for b in deltas for c in b]
    assert len(cells) == 60 and all(DELTA_CELL.match(c) for c in cells), cells
    assert "$-10.0$ {\\scriptsize[$-10.0$, $-10.0$]}" in cells
    assert "$+1.0$ {\\scriptsize[$-6.5$, $8.5$]}" in cells


def test_latex_structure(tex):
    assert "\\begin{table*}" in tex and "\\end{table*}" in tex
    assert "\\label{tab:ablation}" in tex
    for rule in ("\\toprule", "\\midrule", "\\bottomrule"):
        assert tex.count(rule) >= 4, rule
    assert tex.count("\\begin{tabular}") == 4 and tex.count("\\resizebox") == 4
    assert "\\cmidrule(lr){2-3}" in tex
    assert "\\multicolumn{2}{c}{MSR-VTT$^\\dagger$}" in tex
    assert "graphicx" in tex.splitlines()[0]
    # groups appear in catalog order
    groups = list(dict.fromkeys(c.group for c in columns()))
    positions = [tex.index(g) for g in groups]
    assert positions == sorted(positions)
    # metric label header rows
    assert " & top-1 & AVG & top-1 & AVG & top-1 & AVG \\\\" in tex


def test_latex_caption(tex):
    caption = tex[tex.index("\\caption{"):tex.index("\\label{")]
    assert "percentages" in caption and "over 3 seeds" in caption
    assert "95\\%" in caption and "paired by seed" in caption
    assert "synthetic" in caption.lower() and "not the real dataset" in caption


def test_latex_escapes_labels(tex):
    assert "no\\_mlp \\& 50\\%" in tex and "Noisy \\#2" in tex
    assert "no_mlp" not in tex


def test_latex_not_synthetic(summary):
    tex = render_latex(summary, ARMS, "baseline", LABELS, synthetic=False)
    assert "dagger" not in tex and "synthetic" not in tex.lower()


def test_latex_single_seed_has_no_pm():
    recs = make_records(seeds=[0])
    df = summarise(recs, ARMS, "baseline")
    tex = render_latex(df, ARMS, "baseline", LABELS, synthetic=False)
    cells = [c for b in table_rows(tex, "Baseline") for c in b]
    assert len(cells) == 30 and not any("pm" in c for c in cells)
    deltas = [c for b in table_rows(tex, "\\quad $\\Delta$ vs.\\ baseline") for c in b]
    assert "$-10.0$" in deltas and not any("scriptsize" in c for c in deltas)
    assert "over 1 seed." in tex


def test_write_outputs_atomic(tmp_path, summary, tex):
    csv_path = tmp_path / "deep" / "dir" / "ablation.csv"
    tex_path = tmp_path / "other" / "ablation.tex"
    write_outputs(summary, tex, csv_path, tex_path)
    assert tex_path.read_text() == tex
    back = pd.read_csv(csv_path, keep_default_na=False, na_values=[""])
    assert len(back) == 90
    np.testing.assert_allclose(back["mean"], summary["mean"])
    # the CSV carries enough to re-render the same table
    back["ci_method"] = back["ci_method"].fillna("")
    assert render_latex(back, ARMS, "baseline", LABELS, synthetic=True) == tex
    leftovers = [p.name for p in tmp_path.rglob("*") if p.name.endswith(".tmp")]
    assert leftovers == []


def test_latex_compiles(tmp_path, tex):
    compile_latex(tmp_path, tex)


# --------------------------------------------------------------------------- figure


def test_tick_labels_readable():
    labels = [tick_label(c) for c in columns()]
    assert labels[0] == "K400 ZS top-1"
    assert "MSR-VTT FT T2V" in labels and len(set(labels)) == 30


def test_figure_files(tmp_path, summary):
    png, pdf = tmp_path / "fig" / "deltas.png", tmp_path / "fig" / "deltas.pdf"
    plot_deltas(summary, ARMS, "baseline", LABELS, png, pdf, synthetic=True)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
    assert pdf.read_bytes()[:5] == b"%PDF-" and pdf.stat().st_size > 1_000
    assert sorted(p.name for p in png.parent.iterdir()) == ["deltas.pdf", "deltas.png"]


def test_figure_single_seed_without_ci(tmp_path):
    df = summarise(make_records(seeds=[0]), ARMS, "baseline")
    png, pdf = tmp_path / "d.png", tmp_path / "d.pdf"
    plot_deltas(df, ARMS, "baseline", LABELS, png, pdf, synthetic=False)
    assert png.stat().st_size > 0 and pdf.stat().st_size > 0
