"""The paired bootstrap over seeds and test items (viclip.report.bootstrap) and how the report uses it.

On synthetic numbers: identical arms, a constant shift, reproducibility,
what pairing buys. On records with per-item outcomes like the evaluation
writes them: the table's intervals, captions and fallbacks, the refusal of
records scored on other items, and the acceptance checks.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from viclip.config import ConfigError, validate
from viclip.eval.catalog import columns
from viclip.report import bootstrap, stats
from viclip.report.acceptance import not_finetuned, uninformative
from viclip.report.intervals import Intervals
from viclip.report.outcomes import Outcomes
from viclip.report.table import load_records, render_latex, summarise

REPO = Path(__file__).resolve().parents[1]
R = 2000
SIZES = {"k400": 300, "k600": 300, "k700": 600, "ssv2": 300}  # the default's test sets; retrieval: 200 videos
CAPTIONS = {"msvd": 5}  # captions per video; the other retrieval sets have one


def diff(arm: np.ndarray, base: np.ndarray, paired: bool = True, seed: int = 0, queries=None) -> stats.Difference:
    queries = np.ones(arm.shape[1]) if queries is None else queries
    rng = np.random.default_rng(seed)
    return bootstrap.difference(Outcomes(arm, queries), Outcomes(base, queries), paired, rng, R)


# --------------------------------------------------------------------------- synthetic numbers


def test_identical_arms_give_zero_inside_the_interval_and_p_one():
    rng = np.random.default_rng(0)
    base = (rng.random((3, 200)) < 0.4).astype(float)
    d = diff(base, base.copy())
    assert d.delta == 0.0 and d.ci_low <= 0.0 <= d.ci_high and d.p_value == 1.0
    assert d.method == bootstrap.SEED_PAIRED
    # two arms that differ only by noise of the same law: 0 inside, p far from significance
    other = (rng.random((3, 200)) < 0.4).astype(float)
    d = diff(other, base)
    assert d.ci_low < 0.0 < d.ci_high and d.p_value > 0.2


def test_a_constant_shift_gives_an_interval_around_it():
    rng = np.random.default_rng(1)
    base = rng.normal(50.0, 10.0, (3, 300))
    exact = diff(base + 2.0, base)
    assert (exact.delta, exact.ci_low, exact.ci_high) == pytest.approx((2.0, 2.0, 2.0))
    assert exact.p_value == 1 / R  # every resampled difference is above 0: floored, not 0
    noisy = diff(base + 2.0 + rng.normal(0.0, 3.0, base.shape), base)
    assert noisy.ci_low < 2.0 < noisy.ci_high and noisy.ci_low > 0.0 and noisy.p_value < 0.01
    assert noisy.delta == pytest.approx(2.0, abs=0.5)


def test_the_seed_makes_it_reproducible():
    rng = np.random.default_rng(2)
    arm, base = (rng.random((3, 200)) < 0.45).astype(float), (rng.random((3, 200)) < 0.4).astype(float)
    assert diff(arm, base, seed=5) == diff(arm, base, seed=5)
    assert diff(arm, base, seed=5) != diff(arm, base, seed=6)


def test_pairing_shrinks_the_interval_when_outcomes_are_correlated():
    rng = np.random.default_rng(3)
    # seeds: a seed moves both arms alike (init, data order); paired draws cancel it, independent ones do not
    items = rng.normal(50.0, 5.0, 300)
    seed_shift = np.array([-8.0, 0.0, 8.0])[:, None]
    base = items + seed_shift + rng.normal(0.0, 1.0, (3, 300))
    arm = base + 1.0 + rng.normal(0.0, 1.0, (3, 300))
    paired, unpaired = diff(arm, base, paired=True), diff(arm, base, paired=False)
    assert unpaired.method == bootstrap.ITEM_PAIRED
    assert paired.ci_high - paired.ci_low < (unpaired.ci_high - unpaired.ci_low) / 3
    assert paired.ci_low > 0.0 > unpaired.ci_low
    # items: hard items are hard for both arms; one draw for both cancels that too
    hard = (rng.random(300) < 0.5).astype(float)
    base = np.tile(hard, (3, 1))
    matched = diff(np.clip(base + (rng.random((3, 300)) < 0.1), 0, 1), base)
    shuffled = diff(np.clip(base[:, rng.permutation(300)] + (rng.random((3, 300)) < 0.1), 0, 1), base)
    assert matched.ci_high - matched.ci_low < (shuffled.ci_high - shuffled.ci_low) / 2


def test_a_retrieval_videos_captions_are_drawn_together():
    """T2V: per video the hits among its captions over their number; the ratio is the per-query rate."""
    rng = np.random.default_rng(4)
    queries = rng.integers(1, 6, 200).astype(float)
    base = rng.binomial(queries.astype(int), 0.3, (3, 200)).astype(float)
    arm = rng.binomial(queries.astype(int), 0.5, (3, 200)).astype(float)
    d = diff(arm, base, queries=queries)
    assert d.delta == pytest.approx(arm.sum(1).mean() / queries.sum() - base.sum(1).mean() / queries.sum())
    assert 0.0 < d.ci_low < d.delta < d.ci_high


def test_one_seed_gives_no_interval():
    rng = np.random.default_rng(5)
    d = diff((rng.random((1, 100)) < 0.5).astype(float), (rng.random((1, 100)) < 0.4).astype(float))
    assert d.method == stats.NO_CI and math.isnan(d.ci_low) and math.isnan(d.p_value)


def test_intervals_come_from_the_config_and_the_schema_checks_them(cfg):
    assert Intervals.from_config(cfg["report"]) == Intervals("bootstrap", cfg["report"]["bootstrap"]["resamples"], 0)
    assert Intervals.from_config({"baseline": "b"}) == Intervals()  # left out: the defaults
    with pytest.raises(ValueError, match="report.intervals"):
        Intervals("jackknife")
    cfg["report"]["intervals"] = "jackknife"
    cfg["report"]["bootstrap"]["draws"] = 3
    with pytest.raises(ConfigError) as err:
        validate(cfg, REPO / "configs" / "schema.yaml")
    assert "report.intervals" in str(err.value) and "report.bootstrap" in str(err.value)


# --------------------------------------------------------------------------- records with items


def ranks_for(rng: np.random.Generator, p_hit: np.ndarray) -> list[int]:
    """Rank 0 with probability p_hit per query, else a rank in 1..9."""
    return np.where(rng.random(p_hit.size) < p_hit, 0, rng.integers(1, 10, p_hit.size)).tolist()


def item_records(shift: dict[str, float], seeds=(0, 1, 2), seeds_for=None, sizes=None) -> list[dict]:
    """Records like the evaluation writes, with items: item difficulty shared by all runs, arms shifted."""
    sizes = {**SIZES, **(sizes or {})}
    difficulty = np.random.default_rng(99).random(2000)
    records = []
    for arm, delta in shift.items():
        for seed in (seeds_for or {}).get(arm, seeds):
            rng = np.random.default_rng([seed, len(arm), int(1000 * delta) % 997])
            for bench, protocol in dict.fromkeys((c.benchmark, c.protocol) for c in columns()):
                classification = bench in SIZES
                n = sizes.get(bench, 200)
                p = np.clip(0.6 * difficulty[:n] + delta + 0.02 * seed, 0, 1)
                ids = [f"{bench}-test-{i:05d}" for i in range(n)]
                if classification:
                    r = np.asarray(ranks_for(rng, p))
                    top1, top5 = float((r < 1).mean()), float((r < 5).mean())
                    metrics = {"top1": top1, "top5": top5, "avg": (top1 + top5) / 2}
                    items = {"ids": ids, "rank": {"class": r.tolist()}}
                else:
                    k = CAPTIONS.get(bench, 1)
                    t2v, v2t = np.asarray(ranks_for(rng, np.repeat(p, k))), np.asarray(ranks_for(rng, p))
                    metrics = {"t2v_r1": float((t2v < 1).mean()), "v2t_r1": float((v2t < 1).mean())}
                    items = {"ids": ids, "queries": [k] * n, "rank": {"t2v": t2v.tolist(), "v2t": v2t.tolist()}}
                records.append(
                    {
                        "arm": arm,
                        "seed": seed,
                        "run": f"{arm}/seed{seed}",
                        "benchmark": bench,
                        "protocol": protocol,
                        "task": "classification" if classification else "retrieval",
                        "synthetic": True,
                        "metrics": metrics,
                        "details": {"n_candidates": 40 if classification else n},
                        "items": items,
                    }
                )
    return records


ARMS = {"baseline": 0.0, "minus": -0.15, "same": 0.0}


@pytest.fixture(scope="module")
def records() -> list[dict]:
    return item_records(ARMS)


def rows(df, arm):
    return df[df["arm"] == arm].reset_index(drop=True)


def test_the_table_uses_the_paired_bootstrap_and_says_so(records):
    t0 = time.perf_counter()
    df = summarise(records, list(ARMS), "baseline", [["minus", "same"]], intervals=Intervals(resamples=R))
    assert time.perf_counter() - t0 < 10  # the report job's budget is seconds (measured: docs/ARCHITECTURE.md)
    minus, same = rows(df, "minus"), rows(df, "same")
    assert (minus["ci_method"] == bootstrap.SEED_PAIRED).all() and (minus["resamples"] == R).all()
    assert sorted(set(minus["n_items"])) == [200, 300, 600]
    # hits 15 points less likely: intervals below 0 (top-5 moves less), each with its p-value <= 0.05
    below = minus["ci_high"] < 0
    assert below.sum() >= 28 and (minus[below]["p_value"] <= 0.05).all()
    assert (minus["p_holm"] >= minus["p_value"]).all() and (minus["p_holm"] < 0.05).sum() > 10  # Holm over 60
    assert (same["ci_low"] <= same["delta"]).all() and (same["delta"] <= same["ci_high"]).all()
    t = summarise(records, list(ARMS), "baseline", intervals=Intervals(method="t"))
    assert (rows(t, "minus")["ci_method"] == stats.PAIRED).all()
    np.testing.assert_allclose(minus["delta"], rows(t, "minus")["delta"], atol=1e-9)  # items give the metrics
    np.testing.assert_allclose(minus["mean"], rows(t, "minus")["mean"])
    tex = render_latex(df, list(ARMS), "baseline", {}, synthetic=True)
    caption = tex[tex.index("\\caption{") : tex.index("\\label{")]
    assert f"paired bootstrap over 3 seeds and 200--600 test items, {R} resamples" in caption
    assert "bootstrap $p$-value" in caption and "Holm" in caption and "Student" not in caption
    assert "Student-$t$ over seeds, paired by seed" in render_latex(t, list(ARMS), "baseline", {}, synthetic=True)


def test_the_config_seed_makes_the_table_reproducible(records):
    cols = ["delta", "ci_low", "ci_high", "p_value"]
    one = summarise(records, list(ARMS), "baseline", intervals=Intervals(resamples=R, seed=0))
    again = summarise(records, list(ARMS), "baseline", intervals=Intervals(resamples=R, seed=0))
    other = summarise(records, list(ARMS), "baseline", intervals=Intervals(resamples=R, seed=1))
    assert one[cols].equals(again[cols]) and not one[cols].equals(other[cols])
    # an arm's intervals do not move when another arm joins the table
    alone = summarise(records, ["baseline", "minus"], "baseline", intervals=Intervals(resamples=R, seed=0))
    assert rows(alone, "minus")[cols].equals(rows(one, "minus")[cols])


def test_records_without_items_fall_back_to_t_and_the_caption_names_both(records):
    old = [{k: v for k, v in r.items() if k != "items"} if r["benchmark"] == "k400" else r for r in records]
    df = summarise(old, list(ARMS), "baseline", intervals=Intervals(resamples=R))
    minus = rows(df, "minus")
    k400 = minus["benchmark"] == "k400"
    assert (minus[k400]["ci_method"] == stats.PAIRED).all() and minus[k400]["n_items"].isna().all()
    assert (minus[~k400]["ci_method"] == bootstrap.SEED_PAIRED).all()
    tex = render_latex(df, list(ARMS), "baseline", {}, synthetic=True)
    assert "Student-$t$ over seeds, paired by seed for the 8 comparisons whose records keep no per-item" in tex
    assert "bootstrap or $t$-test $p$-value" in tex


def test_arms_on_other_seeds_draw_seeds_apart_but_items_together():
    recs = item_records({"baseline": 0.0, "short": 0.1}, seeds_for={"short": [3, 4]})
    df = summarise(recs, ["baseline", "short"], "baseline", intervals=Intervals(resamples=R))
    assert (rows(df, "short")["ci_method"] == bootstrap.ITEM_PAIRED).all()
    tex = render_latex(df, ["baseline", "short"], "baseline", {}, synthetic=False)
    assert "bootstrap over 2--3 seeds (per arm)" in tex and "seeds paired where the arms share them" in tex


def test_records_scored_on_other_items_are_refused_naming_both_files(tmp_path, records):
    paths = []
    for r in records:
        r = json.loads(json.dumps(r))
        if (r["arm"], r["seed"], r["benchmark"], r["protocol"]) == ("minus", 1, "msvd", "finetuned"):
            r["items"]["ids"][7] = "msvd-test-99999"
        p = tmp_path / r["arm"] / f"seed{r['seed']}" / f"{r['benchmark']}-{r['protocol']}.json"
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(json.dumps(r))
        paths.append(p)
    loaded = load_records(paths)
    with pytest.raises(
        ValueError, match=r"baseline/seed0/msvd-finetuned\.json and .*minus/seed1/msvd-finetuned\.json"
    ) as err:
        summarise(loaded, list(ARMS), "baseline", intervals=Intervals(resamples=R))
    assert "item 7 is 'msvd-test-00007' in the first and 'msvd-test-99999' in the second" in str(err.value)
    # the t-intervals would not use the items, but they compare the same runs: refused alike
    with pytest.raises(ValueError, match="did not score the same test items"):
        summarise(loaded, list(ARMS), "baseline", intervals=Intervals(method="t"))


def test_items_that_contradict_their_metrics_are_refused(records):
    bad = json.loads(json.dumps(records))
    rec = next(r for r in bad if r["arm"] == "minus" and r["benchmark"] == "k700")
    rec["_source"] = "results/eval/minus/seed0/k700-zeroshot.json"
    rec["metrics"]["top1"] += 0.01
    with pytest.raises(ValueError, match=r"minus/seed0/k700-zeroshot\.json: its items give top1"):
        summarise(bad, list(ARMS), "baseline", intervals=Intervals(resamples=R))


def test_a_single_seed_and_the_released_row_have_no_interval():
    recs = item_records({"baseline": 0.0, "minus": -0.1}, seeds=(0,))
    released = [{k: v for k, v in r.items() if k != "items"} | {"arm": "viclip"} for r in recs if r["arm"] == "minus"]
    df = summarise(recs + released, ["baseline", "minus", "viclip"], "baseline", released=["viclip"])
    assert (rows(df, "minus")["ci_method"] == stats.NO_CI).all() and rows(df, "minus")["ci_low"].isna().all()
    assert rows(df, "viclip")["delta"].isna().all() and (rows(df, "viclip")["ci_method"] == "").all()
    tex = render_latex(df, ["baseline", "minus", "viclip"], "baseline", {}, synthetic=True, released=["viclip"])
    assert "no interval where an arm has a single seed" in tex and "bootstrap" not in tex


def test_acceptance_uses_the_same_intervals(records):
    base = [r for r in records if r["arm"] == "baseline"]
    assert uninformative(base, intervals=Intervals(resamples=R)) == []
    # fine-tuned records here are zero-shot's level: not above it, by the bootstrap as by t
    failing = not_finetuned(base, intervals=Intervals(resamples=R))
    assert len(failing) == 11 and all("interval low end" in f for f in failing)
    lifted = json.loads(json.dumps(base))
    for r in lifted:
        if r["benchmark"] == "k400" and r["protocol"] == "finetuned":
            r["items"]["rank"]["class"] = [0] * len(r["items"]["rank"]["class"])  # every clip right
            r["metrics"] = {"top1": 1.0, "top5": 1.0, "avg": 1.0}
    assert not [f for f in not_finetuned(lifted, intervals=Intervals(resamples=R)) if f.startswith("k400/")]
    for r in lifted:
        if r["benchmark"] == "k400" and r["protocol"] == "zeroshot" and r["seed"] == 1:
            r["items"]["ids"] = r["items"]["ids"][::-1]
    with pytest.raises(ValueError, match="did not score the same test items"):
        not_finetuned(lifted, intervals=Intervals(resamples=R))


def test_the_default_config_sets_the_bootstrap(cfg):
    report = yaml.safe_load((REPO / "config.yaml").read_text())["report"]
    assert report["intervals"] == "bootstrap" and Intervals.from_config(report).resamples >= 2000
