"""Tests for viclip.report: statistics, the LaTeX and HTML tables, the published reference row,
the ablations, the delta figures and the training curves."""

from __future__ import annotations

import json
import math
import re
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import compile_latex
from scipy import stats as sps

from viclip.eval.catalog import columns
from viclip.report import stats
from viclip.report.ablations import Ablation, ablations
from viclip.report.curves import curves_figure, plot_curves, read_log
from viclip.report.divergence import check_runs, diverged
from viclip.report.figure import arm_colours, delta_figure, feasible, plot_deltas, tick_label
from viclip.report.html_table import render_html
from viclip.report.published import PUBLISHED, VICLIP_B16, VICLIP_L14, reference_for
from viclip.report.table import (
    is_synthetic,
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
                records.append(
                    {
                        "arm": arm,
                        "seed": seed,
                        "run": f"{arm}/seed{seed}",
                        "benchmark": bench,
                        "protocol": proto,
                        "synthetic": True,
                        "task": "x",
                        "metrics": metrics,
                        "n_queries": 300,
                        "n_candidates": 40,
                    }
                )
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
    recs = [
        r
        for r in make_records()
        if (r["arm"], r["seed"], r["benchmark"], r["protocol"]) != ("minus", 1, "k400", "zeroshot")
    ]
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
DELTA_CELL = re.compile(r"^\$[+-]?\d+\.\d(\^\*)?\$( \{\\scriptsize\[\$-?\d+\.\d\$, \$-?\d+\.\d\$\]\})?$")


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
    # a constant shift survives Holm's adjustment (starred); noise of +-3 on 3 seeds does not
    assert "$-10.0^*$ {\\scriptsize[$-10.0$, $-10.0$]}" in cells
    assert "$+1.0$ {\\scriptsize[$-6.5$, $8.5$]}" in cells
    assert "Holm" in tex


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
    caption = tex[tex.index("\\caption{") : tex.index("\\label{")]
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


# --------------------------------------------------------------------------- published reference row

CATALOG_KEYS = [c.key for c in columns()]


def test_published_values_are_catalog_columns_in_percent():
    assert set(PUBLISHED) == {"viclip-b16", "viclip-l14"}
    for ref in PUBLISHED.values():
        assert set(ref.values) <= set(CATALOG_KEYS), ref.model
        assert all(0.0 < v < 100.0 for v in ref.values.values())
        assert set(ref.sources) == set(ref.groups())  # every block with values names its source
    assert len(VICLIP_L14.values) == 30  # the paper's Tables 3-6 cover every column for L/14
    assert len(VICLIP_B16.values) == 10  # B/16: zero-shot Kinetics, MSR-VTT zero-shot and fine-tuned


def test_published_numbers_spot_checked_against_the_paper():
    # [P Tab. 3, 5, 4, 6] InternVid-10M-FLT rows, and [P Tab. 11] "InternVid (ours)" for B/16.
    assert VICLIP_L14.values["k400/zeroshot/top1"] == 64.80
    assert VICLIP_L14.values["k700/zeroshot/avg"] == 66.38
    assert VICLIP_L14.values["msvd/zeroshot/v2t_r1"] == 75.1
    assert VICLIP_L14.values["ssv2/finetuned/top5"] == 93.2
    assert VICLIP_L14.values["anet/finetuned/t2v_r1"] == 49.8
    assert VICLIP_B16.values["k600/zeroshot/top1"] == 55.37
    assert VICLIP_B16.values["msrvtt/zeroshot/v2t_r1"] == 38.5
    assert VICLIP_B16.values["msrvtt/finetuned/t2v_r1"] == 49.0
    assert "ssv2/finetuned/top1" not in VICLIP_B16.values


@pytest.mark.parametrize(
    "ref, top5",
    [
        (VICLIP_L14, {"k400": 86.60, "k600": 84.86, "k700": 78.46}),
        (VICLIP_B16, {"k400": 83.70, "k600": 81.17, "k700": 72.87}),
    ],
)
def test_published_avg_implies_the_specs_top5(ref, top5):
    """AVG = (top-1 + top-5) / 2, so each AVG/top-1 pair implies a top-5; the spec derived the same."""
    for bench, expected in top5.items():
        implied = 2 * ref.values[f"{bench}/zeroshot/avg"] - ref.values[f"{bench}/zeroshot/top1"]
        assert implied == pytest.approx(expected, abs=1e-9)


def test_reference_only_at_paper_scale():
    assert reference_for("viclip-l14", synthetic=False) is VICLIP_L14
    assert reference_for("viclip-b16", synthetic=False) is VICLIP_B16
    assert reference_for("viclip-l14", synthetic=True) is None  # synthetic stand-ins: never
    assert reference_for("tiny", synthetic=False) is None  # the paper has no such model
    real = [dict(r, synthetic=False) for r in make_records()]
    assert not is_synthetic(real) and is_synthetic(make_records())
    assert reference_for("viclip-b16", is_synthetic(real)) is VICLIP_B16
    assert reference_for("viclip-b16", is_synthetic(real + make_records()[:1])) is None


def test_latex_reference_rows(summary):
    tex = render_latex(summary, ARMS, "baseline", LABELS, synthetic=False, reference=VICLIP_L14)
    tables = ["Tab. 3", "Tab. 5", "Tab. 4", "Tab. 6"]  # zero-shot cls, zero-shot ret, ft cls, ft ret
    rows = [line for line in tex.splitlines() if line.startswith("\\textit{ViCLIP-L/14 published")]
    assert len(rows) == 4
    for line, table in zip(rows, tables):
        assert f"paper {table}" in line
    cells = [c.strip() for c in rows[0][:-2].split(" & ")[1:]]
    assert cells == [
        "\\textit{64.8}",
        "\\textit{75.7}",
        "\\textit{62.2}",
        "\\textit{73.53}",
        "\\textit{54.3}",
        "\\textit{66.38}",
    ]
    assert tex.count("\\textbf{") == 30  # published numbers never take the bold of our best arm
    assert "2307.06942" in tex and "not runs of this workflow" in tex
    assert tex.count("\\midrule") == 4 + 4  # each block: header rule and the rule above its reference row


def test_latex_reference_blanks_and_missing_blocks(summary):
    tex = render_latex(summary, ARMS, "baseline", LABELS, synthetic=False, reference=VICLIP_B16)
    rows = [
        [c.strip() for c in line[:-2].split(" & ")]
        for line in tex.splitlines()
        if line.startswith("\\textit{ViCLIP-B/16")
    ]
    assert len(rows) == 3  # no fine-tuned classification numbers for B/16: no row there
    zs_ret = rows[1]
    assert "paper Tab. 11" in zs_ret[0]
    assert zs_ret[1:] == ["\\textit{38.6}", "\\textit{38.5}"] + ["--"] * 8
    assert "README" in rows[0][0]


def test_latex_reference_compiles(tmp_path, summary):
    compile_latex(tmp_path, render_latex(summary, ARMS, "baseline", LABELS, synthetic=False, reference=VICLIP_B16))


# --------------------------------------------------------------------------- HTML table


class TableCells(HTMLParser):
    """Rows of every <table>: (table class, row class, row data-arm, header text, [(data-key, cell text)])."""

    def __init__(self):
        super().__init__()
        self.rows, self.tables, self._row, self._cell, self._text = [], [], None, None, []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "table":
            self.tables.append(a.get("data-group") or a.get("class"))
        elif tag == "tr":
            self._row = [self.tables[-1], a.get("class"), a.get("data-arm"), None, []]
        elif tag in ("td", "th") and self._row is not None:
            self._cell, self._text = (tag, a.get("data-key")), []

    def handle_data(self, data):
        if self._cell is not None:
            self._text.append(data)

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None and self._row is not None:
            kind, key = self._cell
            text = "".join(self._text).strip()
            if kind == "th" and self._row[3] is None and not self._row[4]:
                self._row[3] = text
            else:
                self._row[4].append((key, text))
            self._cell = None
        elif tag == "tr" and self._row is not None:
            self.rows.append(tuple(self._row))
            self._row = None


def parse_table(page: str) -> TableCells:
    parser = TableCells()
    parser.feed(page)
    parser.close()
    return parser


def test_html_table_cells(summary):
    page = render_html(summary, ARMS, "baseline", LABELS, synthetic=True)
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    parsed = parse_table(page)
    groups = list(dict.fromkeys(c.group for c in columns()))
    assert parsed.tables == groups
    arm_rows = [r for r in parsed.rows if r[1] == "arm"]
    for arm in ARMS:
        cells = [c for r in arm_rows if r[2] == arm for c in r[4]]
        assert [k for k, _ in cells] == CATALOG_KEYS  # exactly the catalog columns, in order
        assert {r[3] for r in arm_rows if r[2] == arm} == {LABELS[arm]}
    noisy = dict(c for r in arm_rows if r[2] == "noisy" for c in r[4])
    assert noisy["k400/zeroshot/top1"] == "52.0 ± 3.6"
    deltas = [c for r in parsed.rows if r[1] == "delta" and r[2] == "minus" for _, c in r[4]]
    assert len(deltas) == 30 and "-10.0 [-10.0, -10.0]" in deltas
    assert page.count("<b>") == 30
    assert "\u2020Synthetic stand-ins" in page and not any(r[1] == "reference" for r in parsed.rows)
    assert "no_mlp &amp; 50%" in page  # labels are escaped


def test_html_table_reference_row_and_compute(summary):
    cost = pd.DataFrame(
        [
            {
                "arm": "baseline",
                "mask_ratio": 0.9,
                "flops": 2e15,
                "seconds_mean": 10.0,
                "seconds_std": 1.0,
                "n_seeds": 3,
                "flops_vs_baseline": 1.0,
                "seconds_vs_baseline": 1.0,
            },
            {
                "arm": "minus",
                "mask_ratio": 0.0,
                "flops": 3e15,
                "seconds_mean": 12.0,
                "seconds_std": float("nan"),
                "n_seeds": 1,
                "flops_vs_baseline": 1.5,
                "seconds_vs_baseline": 1.2,
            },
        ]
    )
    page = render_html(summary, ARMS, "baseline", LABELS, synthetic=False, reference=VICLIP_B16, compute=cost)
    parsed = parse_table(page)
    refs = [r for r in parsed.rows if r[1] == "reference"]
    assert [r[0] for r in refs] == ["Zero-shot classification", "Zero-shot retrieval R@1", "Fine-tuned retrieval R@1"]
    assert [c for _, c in refs[1][4]] == ["38.6", "38.5"] + [""] * 8
    assert "paper Tab. 11" in refs[1][3]
    assert "\u2020" not in page and "Synthetic" not in page
    compute_rows = [r for r in parsed.rows if r[0] == "compute" and r[2]]
    assert [(r[2], [c for _, c in r[4]]) for r in compute_rows] == [
        ("baseline", ["0.9", "2", "1.00", "10.0 ± 1.0", "1.00"]),
        ("minus", ["0", "3", "1.50", "12.0", "1.20"]),
    ]
    assert "PFLOPs" in page


def test_html_table_ignores_metrics_outside_the_catalog():
    """Dual-softmax (dsl_*) and other extra keys in records never reach the headline table."""
    recs = make_records()
    for r in recs:
        if "t2v_r1" in r["metrics"]:
            r["metrics"].update(dsl_t2v_r1=0.987, dsl_v2t_r1=0.986)
    summary = summarise(recs, ARMS, "baseline")
    assert not summary["metric"].str.startswith("dsl").any()
    page = render_html(summary, ARMS, "baseline", LABELS, synthetic=True)
    tex = render_latex(summary, ARMS, "baseline", LABELS, synthetic=True)
    for text in (page, tex):
        assert "98.7" not in text and "98.6" not in text and "dsl" not in text


# --------------------------------------------------------------------------- ablations


DEFAULT_ARMS = {
    "baseline": {"label": "Baseline", "captions": "fused", "mask_ratio": 0.9},
    "nomask": {"label": "No masking", "captions": "fused", "mask_ratio": 0.0},
    "fineonly": {"label": "Fine only", "captions": "summary", "mask_ratio": 0.9},
    "coarseonly": {"label": "Coarse only", "captions": "coarse", "mask_ratio": 0.9},
}


def test_ablations_derived_from_the_arms():
    assert ablations(DEFAULT_ARMS, "baseline") == [
        Ablation("masking", "Video masking", ("nomask",)),
        Ablation("captions", "Caption scales", ("fineonly", "coarseonly")),
    ]
    arms = {
        **DEFAULT_ARMS,
        "samecompute": {"label": "No masking, same compute", "captions": "fused", "mask_ratio": 0.0, "epochs": 3},
        "both": {"label": "Both", "captions": "coarse", "mask_ratio": 0.0},
        "longer": {"label": "Longer", "captions": "fused", "mask_ratio": 0.9, "epochs": 20},
    }
    got = {a.name: a for a in ablations(arms, "baseline")}
    assert got["masking"].arms == ("nomask", "samecompute")  # a same-compute arm belongs to masking
    assert got["both"] == Ablation("both", "Both", ("both",))  # two things changed: its own figure
    assert got["longer"].arms == ("longer",)
    assert ablations({"baseline": DEFAULT_ARMS["baseline"]}, "baseline") == []


def test_ablations_explicit_and_checked():
    explicit = {"coarse": {"title": "Coarse captions", "arms": ["coarseonly", "fineonly"]}}
    assert ablations(DEFAULT_ARMS, "baseline", explicit) == [
        Ablation("coarse", "Coarse captions", ("fineonly", "coarseonly"))
    ]  # config order, as the table
    with pytest.raises(ValueError, match=r"report\.ablations\.coarse\.arms: 'ghost' is not an arm"):
        ablations(DEFAULT_ARMS, "baseline", {"coarse": {"arms": ["ghost"]}})
    with pytest.raises(ValueError, match=r"report\.ablations\.x\.arms: 'baseline' is the baseline"):
        ablations(DEFAULT_ARMS, "baseline", {"x": {"arms": ["baseline"]}})
    with pytest.raises(ValueError, match=r"report\.ablations\.x\.arms: needs at least one arm"):
        ablations(DEFAULT_ARMS, "baseline", {"x": {"arms": []}})
    with pytest.raises(ValueError, match=r"report\.ablations\.a/b: name must match"):
        ablations(DEFAULT_ARMS, "baseline", {"a/b": {"arms": ["nomask"]}})


def test_config_default_ablations(repo):
    import yaml

    cfg = yaml.safe_load((repo / "config.yaml").read_text())
    got = ablations(cfg["arms"], cfg["report"]["baseline"], cfg["report"].get("ablations"))
    assert [(a.name, a.arms) for a in got] == [
        ("masking", ("nomask", "samecompute")),
        ("captions", ("fineonly", "coarseonly")),
    ]


# --------------------------------------------------------------------------- per-ablation figures


def dots(fig) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray, str]]:
    """Arm -> (dot x over all panels, interval low ends, high ends, colour) of a delta figure."""
    out: dict[str, list] = {}
    for ax in fig.axes:
        for line in ax.get_lines():
            gid = line.get_gid() or ""
            if gid.startswith("dot:"):
                out.setdefault(gid[4:], [[], [], [], None])[0].extend(line.get_xdata())
                out[gid[4:]][3] = line.get_color()
        for coll in ax.collections:
            gid = coll.get_gid() or ""
            if gid.startswith("ci:"):
                for seg in coll.get_segments():
                    out[gid[3:]][1].append(seg[0][0])
                    out[gid[3:]][2].append(seg[1][0])
    return {a: (np.array(x), np.array(lo), np.array(hi), c) for a, (x, lo, hi, c) in out.items()}


def test_ablation_figure_draws_only_its_arms_with_their_intervals(tmp_path):
    recs = make_records(arms=["baseline", "minus", "noisy", "short"])
    arms = ["baseline", "minus", "noisy", "short"]
    df = summarise(recs, arms, "baseline")
    labels = {**LABELS, "short": "Short"}
    fig = delta_figure(df, ["baseline", "noisy"], "baseline", labels, synthetic=False, title="Noise")
    got = dots(fig)
    assert list(got) == ["noisy"]  # one ablation's figure: its arms only
    x, lows, highs, _ = got["noisy"]
    assert len(x) == 30 and len(lows) == 30
    np.testing.assert_allclose(x, 1.0)  # delta of 'noisy' in every column
    np.testing.assert_allclose(lows, -6.452413135, rtol=1e-8)  # its paired 95% interval's low end
    np.testing.assert_allclose(highs, 8.452413135, rtol=1e-8)
    assert fig._suptitle.get_text().startswith("Noise: difference to the baseline")
    # one panel per family, row labels horizontal
    assert [ax.get_title(loc="left") for ax in fig.axes] == list(dict.fromkeys(c.group for c in columns()))
    for ax in fig.axes:
        assert all(t.get_rotation() == 0 for t in ax.get_yticklabels() + ax.get_xticklabels())

    fig2 = delta_figure(df, ["baseline", "minus", "short"], "baseline", labels, synthetic=False, title="Two")
    got2 = dots(fig2)
    assert list(got2) == ["minus", "short"]
    np.testing.assert_allclose(got2["minus"][0], -10.0)
    np.testing.assert_allclose(got2["short"][0], 2.0)

    png, pdf = tmp_path / "ablations" / "noise.png", tmp_path / "ablations" / "noise.pdf"
    plot_deltas(df, ["baseline", "noisy"], "baseline", labels, png, pdf, synthetic=False, title="Noise")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and pdf.read_bytes()[:5] == b"%PDF-"


def test_arm_keeps_its_colour_in_every_figure():
    recs = make_records(arms=["baseline", "minus", "noisy", "short"])
    df = summarise(recs, ["baseline", "minus", "noisy", "short"], "baseline")
    every = dots(delta_figure(df, ["baseline", "minus", "noisy", "short"], "baseline", LABELS, synthetic=False))
    alone = dots(delta_figure(df, ["baseline", "short"], "baseline", LABELS, synthetic=False))
    assert alone["short"][3] == every["short"][3]  # not the first palette entry just because it is drawn first
    assert len({every[a][3] for a in every}) == 3
    colours = arm_colours(["baseline", "nomask", "samecompute", "fineonly", "coarseonly", "x", "y"])
    assert len(set(colours.values())) == 7
    assert arm_colours(["nomask"]) == {"nomask": colours["nomask"]}  # keyed by name, not position
    assert arm_colours(["y", "x"])["x"] == arm_colours(["x"])["x"]


def test_intervals_clipped_to_the_feasible_range():
    lo, hi = feasible(np.array([-109.0, -5.0]), np.array([48.5, 120.0]), np.array([90.0, 10.0]))
    np.testing.assert_allclose(lo, [-90.0, -5.0])  # an arm cannot score below 0 %
    np.testing.assert_allclose(hi, [10.0, 90.0])  # nor above 100 %


def test_ablation_figure_from_records_on_disk(tmp_path):
    """The script's path: records written to disk, loaded, one figure per derived ablation."""
    arms = {
        "baseline": DEFAULT_ARMS["baseline"],
        "minus": {**DEFAULT_ARMS["nomask"], "label": "Minus"},
        "noisy": {**DEFAULT_ARMS["coarseonly"], "label": "Noisy"},
    }
    recs = load_records(write_records(make_records(), tmp_path / "eval"))
    df = summarise(recs, list(arms), "baseline")
    for ab in ablations(arms, "baseline"):
        png, pdf = tmp_path / f"{ab.name}.png", tmp_path / f"{ab.name}.pdf"
        plot_deltas(
            df,
            ["baseline", *ab.arms],
            "baseline",
            {a: s["label"] for a, s in arms.items()},
            png,
            pdf,
            synthetic=is_synthetic(recs),
            title=ab.title,
        )
        assert png.stat().st_size > 10_000 and pdf.stat().st_size > 1_000
    assert sorted(p.name for p in tmp_path.glob("*.png")) == ["captions.png", "masking.png"]


# --------------------------------------------------------------------------- training curves


def write_log(path: Path, seed: int, masked_epochs=3, tune_epochs=1, repeat=None) -> Path:
    """A log.jsonl as pretraining writes it (loss falls by seed-dependent amounts)."""
    lines = []
    for e in range(masked_epochs):
        lines.append(
            {
                "stage": "masked",
                "epoch": e,
                "mask_ratio": 0.9,
                "loss": 4.0 - e - 0.1 * seed,
                "lr": 1e-3 / (e + 1),
                "temp": 0.07,
                "seconds": 1.0 + e,
                "clips_per_s": 10.0,
            }
        )
        if repeat == e:  # a resumed job redoes an epoch whose checkpoint was lost
            lines.append({**lines[-1], "loss": 99.0})
            lines.append({**lines[-2]})
    for e in range(tune_epochs):
        lines.append(
            {
                "stage": "tune",
                "epoch": e,
                "mask_ratio": 0.0,
                "loss": 0.5 - 0.1 * seed,
                "lr": 1e-4,
                "temp": 0.07,
                "seconds": 10.0 + e,
                "clips_per_s": 10.0,
            }
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(x) + "\n" for x in lines))
    return path


def test_read_log_orders_stages_and_keeps_the_last_repeat(tmp_path):
    df = read_log(write_log(tmp_path / "log.jsonl", seed=0, repeat=1))
    assert list(df["x"]) == [1, 2, 3, 4]
    assert list(df["stage"]) == ["masked"] * 3 + ["tune"]
    np.testing.assert_allclose(df["loss"], [4.0, 3.0, 2.0, 0.5])


def test_read_log_errors_name_file_and_line(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"stage": "masked", "epoch": 0, "loss": 1.0, "lr": 0.1}\n{"stage": "masked", "epoch": 1}\n')
    with pytest.raises(ValueError, match=r"bad\.jsonl:2: missing field 'loss'"):
        read_log(bad)
    bad.write_text('{"stage": "masked"\n')
    with pytest.raises(ValueError, match=r"bad\.jsonl:1: not valid JSON"):
        read_log(bad)
    bad.write_text("")
    with pytest.raises(ValueError, match=r"bad\.jsonl: empty training log"):
        read_log(bad)


def test_training_curves_one_line_per_seed_and_the_mean(tmp_path):
    logs = {arm: [write_log(tmp_path / arm / f"seed{s}.jsonl", s) for s in SEEDS] for arm in ("baseline", "minus")}
    fig = curves_figure(logs, LABELS, synthetic=True)
    ax_loss, ax_lr = fig.axes
    assert ax_lr.get_yscale() == "log"
    labelled = {line.get_label(): line for line in ax_loss.get_lines() if not line.get_label().startswith("_")}
    assert set(labelled) == {"Baseline (mean of 3 seeds)", "no_mlp & 50% (mean of 3 seeds)"}
    mean = labelled["Baseline (mean of 3 seeds)"]
    np.testing.assert_allclose(mean.get_xdata(), [1, 2, 3, 4])
    np.testing.assert_allclose(mean.get_ydata(), [3.9, 2.9, 1.9, 0.4])  # mean of seeds 0..2
    thin = [
        line
        for line in ax_loss.get_lines()
        if line.get_label().startswith("_") and list(line.get_xdata()) == [1, 2, 3, 4]
    ]
    assert all(line.get_linewidth() < mean.get_linewidth() for line in thin)
    assert len(thin) == 6  # 2 arms x 3 seeds
    tune_marks = [line for line in ax_loss.get_lines() if list(line.get_xdata()) == [3.5, 3.5]]
    assert len(tune_marks) == 2  # the first tuning epoch of each arm


def test_training_curves_single_seed_png(tmp_path):
    logs = {"baseline": [write_log(tmp_path / "b.jsonl", 0)], "minus": [write_log(tmp_path / "m.jsonl", 1, 5, 0)]}
    png = tmp_path / "figs" / "curves.png"
    plot_curves(logs, LABELS, png, synthetic=False)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
    with pytest.raises(ValueError, match="no training logs for arm 'minus'"):
        plot_curves({"baseline": logs["baseline"], "minus": []}, LABELS, png, synthetic=False)


def test_single_seed_captions_claim_no_interval():
    df = summarise(make_records(seeds=[0]), ARMS, "baseline")
    tex = render_latex(df, ARMS, "baseline", LABELS, synthetic=False)
    page = render_html(df, ARMS, "baseline", LABELS, synthetic=False)
    for text in (tex, page):
        assert "no interval where an arm has a single seed" in text
        assert "Welch" not in text and "paired" not in text and "Student" not in text


# --------------------------------------------------------------------------- divergence


def crafted_log(path: Path, losses: list[float], stage="masked") -> Path:
    """A log.jsonl with a step line first (not an epoch) and one epoch line per loss."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [{"kind": "step", "stage": stage, "epoch": 0, "step": 10, "loss": 9.0, "lr": 1e-3}]
    lines += [{"kind": "epoch", "stage": stage, "epoch": e, "loss": x, "lr": 1e-3} for e, x in enumerate(losses)]
    path.write_text("".join(json.dumps(r) + "\n" for r in lines))
    return path


def test_diverged_run_is_refused_by_name(tmp_path):
    """Final loss above the first epoch's mean, or not finite: refused, named; healthy runs pass."""
    healthy = [write_log(tmp_path / "baseline" / f"seed{s}" / "log.jsonl", s) for s in SEEDS]
    check_runs({"baseline": healthy})
    assert diverged(healthy[0]) is None
    bad = crafted_log(tmp_path / "nomask" / "seed0" / "log.jsonl", [3.1, 2.4, 3.3])
    d = diverged(bad)
    assert d is not None and (d.first, d.final) == (3.1, 3.3)
    with pytest.raises(ValueError, match=r"(?s)1 pretraining run\(s\) diverged.*nomask/seed0/log\.jsonl: diverged"):
        check_runs({"baseline": healthy, "nomask": [bad]})
    crafted_log(bad, [3.1, float("nan")])
    assert diverged(bad) is not None


def test_stalled_seed_is_refused_by_name(tmp_path):
    """Issue 17's same-compute seed 0: 3.76 -> 3.24, below its start but far above its siblings' end."""
    runs = [
        crafted_log(tmp_path / "samecompute" / f"seed{s}" / "log.jsonl", losses)
        for s, losses in enumerate([[3.76, 3.3, 3.24], [3.8, 2.6, 1.9], [3.7, 2.5, 1.8]])
    ]
    assert all(diverged(r) is None for r in runs)
    with pytest.raises(ValueError, match=r"(?s)samecompute/seed0/log\.jsonl: stalled.*final loss 3\.24") as err:
        check_runs({"samecompute": runs})
    assert "seed1" not in str(err.value) and "seed2" not in str(err.value)
    check_runs({"samecompute": runs[1:]})  # two seeds: no median to stand out from


def test_holm_adjusts_within_each_ablation():
    assert stats.holm([0.01, 0.04, math.nan, 0.03, 0.5]) == pytest.approx(
        [0.04, 0.09, math.nan, 0.09, 0.5], nan_ok=True
    )
    recs = make_records(arms=["baseline", "minus", "noisy", "short"])
    arms = ["baseline", "minus", "noisy", "short"]
    one = summarise(recs, arms, "baseline", [["noisy", "short"]])
    alone = summarise(recs, arms, "baseline")
    for arm in ("noisy", "short"):
        p, adj = one[one["arm"] == arm]["p_value"], one[one["arm"] == arm]["p_holm"]
        assert (adj >= p - 1e-12).all()
    # a family of 60 tests adjusts more than the arm's own 30
    n = one[one["arm"] == "noisy"]["p_holm"].to_numpy()
    m = alone[alone["arm"] == "noisy"]["p_holm"].to_numpy()
    assert (n >= m - 1e-12).all()
    assert one[one["arm"] == "baseline"]["p_holm"].isna().all()
    # scipy's paired t-test gives the p-value of the by-hand interval of test_paired_difference_by_hand
    d = stats.difference({0: 1.0, 1: -2.0, 2: 4.0}, {0: 0.0, 1: 0.0, 2: 0.0})
    assert d.p_value == pytest.approx(sps.ttest_rel([1.0, -2.0, 4.0], [0.0, 0.0, 0.0]).pvalue)
