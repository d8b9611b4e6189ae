"""Tests for viclip.data.subset: first N, random, the DIV sampling and the FLT filter."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from viclip.data.internvid import clean_metadata
from viclip.data.subset import SubsetError, check_config, div_sample, select_indices, select_subset, top_fraction


def successive_inclusion(weights: np.ndarray, size: int) -> np.ndarray:
    """Exact inclusion probability of each item when `size` items are drawn one by one, without
    replacement, each draw proportional to weight among the items left (enumerates every order)."""
    incl = np.zeros(len(weights))
    for order in itertools.permutations(range(len(weights)), size):
        p, left = 1.0, weights.sum()
        for i in order:
            p *= weights[i] / left
            left -= weights[i]
        incl[list(order)] += p
    return incl


# videos 0..3 with 4, 2, 1, 1 clips: DIV gives every video the same total weight
VIDEO = np.array([0, 0, 0, 0, 1, 1, 2, 3])


def test_div_inclusion_probabilities_match_successive_sampling():
    weights = 1.0 / np.bincount(VIDEO)[VIDEO]
    expected = successive_inclusion(weights, 3)
    assert expected.sum() == pytest.approx(3)
    seeds = 4000
    hits = np.zeros(len(VIDEO))
    for seed in range(seeds):
        hits[div_sample(VIDEO, 3, seed)] += 1
    observed = hits / seeds
    sigma = np.sqrt(expected * (1 - expected) / seeds)
    assert np.all(np.abs(observed - expected) < 4 * sigma + 1e-9), (observed, expected)
    # far from uniform sampling's 3/8 per clip; each video is drawn at about the same rate
    assert observed[0] < 0.25 and observed[6] > 0.6
    per_video = np.bincount(VIDEO, weights=observed)  # expected clips per video: 0.88, 0.81, 0.66, 0.66
    assert per_video.max() - per_video.min() < 0.3


def test_div_does_not_over_represent_videos_with_many_clips():
    # one video with 900 clips next to 900 single-clip videos: uniform sampling would take ~half
    # of a 100-clip sample from the big video; DIV gives it the weight of one video
    video = np.concatenate([np.zeros(900, int), np.arange(1, 901)])
    from_big = [np.count_nonzero(video[div_sample(video, 100, seed)] == 0) for seed in range(30)]
    assert np.mean(from_big) < 0.5
    per_video = [len(np.unique(video[div_sample(video, 100, seed)])) for seed in range(30)]
    assert np.mean(per_video) > 99


def test_div_is_the_official_numpy_procedure():
    """Same draw as Data/InternVid/div_sampling.py: global seed, then np.random.choice with p."""
    rng = np.random.default_rng(0)
    video = rng.integers(0, 40, size=500)
    counts = {v: np.count_nonzero(video == v) for v in set(video.tolist())}
    p = np.array([1.0 / counts[v] for v in video.tolist()])
    np.random.seed(42)
    official = np.random.choice(len(video), 120, replace=False, p=p / p.sum())
    assert np.array_equal(div_sample(video, 120, 42), official)


def test_div_is_deterministic_and_seed_dependent():
    video = np.repeat(np.arange(50), np.arange(1, 51))
    cfg = {"method": "div", "size": 200, "seed": 3}
    a = select_indices(cfg, len(video), video)
    assert np.array_equal(a, select_indices(cfg, len(video), video))
    assert not np.array_equal(a, select_indices({**cfg, "seed": 4}, len(video), video))
    assert len(np.unique(a)) == 200 and np.all(np.diff(a) > 0)  # distinct rows, table order


def test_first_and_random():
    assert select_indices({"method": "first", "size": 3}, 10).tolist() == [0, 1, 2]
    a = select_indices({"method": "random", "size": 4, "seed": 1}, 10)
    assert np.array_equal(a, select_indices({"method": "random", "size": 4, "seed": 1}, 10))
    assert len(set(a.tolist())) == 4 and a.tolist() == sorted(a.tolist())
    hits = np.zeros(10)
    for seed in range(1000):
        hits[select_indices({"method": "random", "size": 4, "seed": seed}, 10)] += 1
    assert np.all(np.abs(hits / 1000 - 0.4) < 4 * np.sqrt(0.24 / 1000))


def test_flt_keeps_the_top_fraction_with_ties_in_table_order():
    umt = np.array([0.30, 0.45, 0.40, 0.40, 0.20, 0.40, 0.50, 0.10, 0.40, 0.35])
    assert top_fraction(umt, 0.5).tolist() == [6, 1, 2, 3, 5]  # 0.40 ties: rows 2, 3, 5 in, row 8 out
    assert top_fraction(umt, 0.3).tolist() == [6, 1, 2]
    video = np.arange(10)
    cfg = {"method": "flt", "size": None, "seed": 0, "flt_top_fraction": 0.5}
    assert select_indices(cfg, 10, video, umt).tolist() == [1, 2, 3, 5, 6]
    picks = {tuple(select_indices({**cfg, "size": 3, "seed": s}, 10, video, umt)) for s in range(40)}
    assert len(picks) > 3 and all(set(p) <= {1, 2, 3, 5, 6} for p in picks)
    with pytest.raises(SubsetError, match="more than the top 0.5 by UMT score"):
        select_indices({**cfg, "size": 6}, 10, video, umt)


def test_flt_samples_the_survivors_by_video():
    # 20 top clips: 19 from one video, 1 from another; DIV over the survivors picks the lone one half the time
    umt = np.concatenate([np.full(19, 0.9), [0.8], np.full(20, 0.1)])
    video = np.concatenate([np.zeros(19, int), [1], np.arange(2, 22)])
    cfg = {"method": "flt", "size": 1, "flt_top_fraction": 0.5}
    lone = np.mean([select_indices({**cfg, "seed": s}, 40, video, umt)[0] == 19 for s in range(400)])
    assert 0.4 < lone < 0.6


@pytest.mark.parametrize(
    "cfg, message",
    [
        ({"method": "best", "size": 1}, "subset.method"),
        ({"method": "first", "size": 0}, "subset.size"),
        ({"method": "first", "size": 2.5}, "subset.size"),
        ({"method": "div", "size": 5}, "subset.seed"),
        ({"method": "flt", "size": 5, "seed": 1}, "subset.flt_top_fraction"),
        ({"method": "flt", "size": 5, "seed": 1, "flt_top_fraction": 1.5}, "subset.flt_top_fraction"),
        ({"method": "first", "size": 5, "sed": 1}, "unknown key"),
    ],
)
def test_bad_config_names_the_key(cfg, message):
    with pytest.raises(SubsetError, match=message):
        check_config(cfg)


@pytest.mark.parametrize("method", ["first", "random", "div", "flt"])
def test_size_beyond_the_table_is_an_error_and_null_takes_all(method):
    video, umt = np.arange(10) // 3, np.linspace(0, 1, 10)
    cfg = {"method": method, "size": 11, "seed": 0, "flt_top_fraction": 1.0}
    with pytest.raises(SubsetError, match="size: 11 is more than .*10 .*set size: null"):
        select_indices(cfg, 10, video, umt)
    assert select_indices({**cfg, "size": None}, 10, video, umt).tolist() == list(range(10))


# ---------------------------------------------------------------- on a clean table file


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    """A clean table from jsonl: 300 videos with 1..15 clips each (sizes cycle), random UMT scores."""
    tmp = tmp_path_factory.mktemp("subset")
    rng = np.random.default_rng(7)
    with open(tmp / "meta.jsonl", "w") as f:
        for v in range(300):
            for c in range(v % 15 + 1):
                f.write(
                    json.dumps(
                        {
                            "YoutubeID": f"v{v:010d}",
                            "Start_timestamp": f"00:{c:02d}:00.000",
                            "End_timestamp": f"00:{c:02d}:05.000",
                            "Caption": f"clip {c} of video {v}",
                            "Aesthetic_Score": 5.0,
                            "UMT_Score": round(float(rng.uniform(0.2, 0.5)), 3),
                        }
                    )
                    + "\n"
                )
    clean_metadata(tmp / "meta.jsonl", tmp / "clips.parquet", tmp / "rejects.tsv", row_group_size=500)
    return tmp / "clips.parquet"


@pytest.mark.parametrize("method", ["first", "random", "div", "flt"])
def test_select_subset_writes_the_chosen_rows(clips, tmp_path, method):
    cfg = {"method": method, "size": 150, "seed": 5, "flt_top_fraction": 0.3}
    stats = select_subset(clips, tmp_path / "subset.parquet", cfg, batch_size=256)
    full = pd.read_parquet(clips)
    sub = pq.read_table(tmp_path / "subset.parquet")
    assert sub.schema.equals(pq.read_schema(clips), check_metadata=False)
    sub = sub.to_pandas()
    assert len(sub) == stats.selected == 150 and stats.available == len(full) == 2400
    assert sub.clip_id.is_unique and set(sub.clip_id) <= set(full.clip_id)
    assert sub.source_line.is_monotonic_increasing  # table order kept
    row_of = {cid: i for i, cid in enumerate(full.clip_id)}
    idx = np.array([row_of[c] for c in sub.clip_id])
    video = pd.factorize(full.youtube_id)[0]
    assert np.array_equal(idx, select_indices(cfg, len(full), video, full.umt_score.to_numpy()))
    assert pd.DataFrame.equals(sub.reset_index(drop=True), full.iloc[idx].reset_index(drop=True))
    assert stats.videos_selected == sub.youtube_id.nunique() and stats.videos_available == 300
    if method == "first":
        assert idx.tolist() == list(range(150))
    if method == "flt":
        assert stats.pool == 720 and sub.umt_score.min() >= np.sort(full.umt_score)[::-1][719]


def test_select_subset_is_deterministic(clips, tmp_path):
    cfg = {"method": "div", "size": 100, "seed": 11}
    select_subset(clips, tmp_path / "a.parquet", cfg)
    select_subset(clips, tmp_path / "b.parquet", cfg)
    select_subset(clips, tmp_path / "c.parquet", {**cfg, "seed": 12})
    a, b, c = (pd.read_parquet(tmp_path / f"{n}.parquet").clip_id.tolist() for n in "abc")
    assert a == b and a != c


def test_select_subset_errors_name_the_file_and_leave_no_output(clips, tmp_path):
    with pytest.raises(SubsetError, match=r"clips\.parquet: subset\.size: 5000 is more than the table \(2400"):
        select_subset(clips, tmp_path / "s.parquet", {"method": "div", "size": 5000, "seed": 1})
    assert not (tmp_path / "s.parquet").exists()


def test_flt_without_scores_is_a_clear_error(tmp_path):
    with open(tmp_path / "m.jsonl", "w") as f:
        for i in range(4):
            f.write(
                json.dumps(
                    {
                        "YoutubeID": f"v{i:010d}",
                        "Start_timestamp": "00:00:00.000",
                        "End_timestamp": "00:00:05.000",
                        "Caption": "c",
                    }
                )
                + "\n"
            )
    clean_metadata(tmp_path / "m.jsonl", tmp_path / "c.parquet", tmp_path / "r.tsv")
    with pytest.raises(SubsetError, match=r"c\.parquet: umt_score is missing in 4 of 4 rows"):
        select_subset(
            tmp_path / "c.parquet",
            tmp_path / "s.parquet",
            {"method": "flt", "size": 2, "seed": 0, "flt_top_fraction": 0.5},
        )
    assert (
        select_subset(tmp_path / "c.parquet", tmp_path / "s.parquet", {"method": "div", "size": 2, "seed": 0}).selected
        == 2
    )
