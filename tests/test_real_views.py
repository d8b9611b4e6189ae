"""Real benchmarks: 1 x 1 testing reads the decoded cache, other views read the files, never a substitute."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from viclip.data.benchmarks.load import load_benchmark
from viclip.data.cache import decode_all
from viclip.data.video import VideoError, write_mp4
from viclip.eval.multiview import Views, view_batch
from viclip.io import atomic_npy, atomic_parquet

SIZE, T = 16, 4


@pytest.fixture()
def bench(tmp_path):
    """A 'real' benchmark: non-square videos outside the benchmark folder, absolute paths, decoded once."""
    rng = np.random.default_rng(0)
    videos = tmp_path / "user_videos"
    videos.mkdir()
    rows = []
    for i in range(3):
        path = videos / f"v{i}.mp4"
        write_mp4(path, rng.integers(0, 255, (24, 24, 40, 3), dtype=np.uint8), fps=8)
        rows.append({"clip_id": f"v{i}", "path": str(path), "split": "test", "label": i})
    root = tmp_path / "bench"
    root.mkdir()
    manifest = pd.DataFrame(rows)
    atomic_parquet(manifest, root / "manifest.parquet")
    (root / "meta.json").write_text(
        json.dumps({"name": "k400", "task": "classification", "synthetic": False, "classes": ["a", "b", "c"]})
    )
    frames, kept, failures = decode_all(root, manifest, size=SIZE, num_frames=T)
    assert not failures
    atomic_npy(frames, root / "frames.npy")
    atomic_parquet(kept, root / "frames.parquet")
    return root


def test_one_view_reads_the_cache_and_more_views_read_the_files(bench):
    split = load_benchmark(bench, T, SIZE).splits["test"]
    idx = np.arange(3)
    one = view_batch(split.sampler, idx, Views(1, 1), T)
    assert one.shape == (3, 1, T, 3, SIZE, SIZE)
    # the files give the same single view as the cache, bit for bit
    assert np.array_equal(split.sampler.files.views(idx, 1, 1, T).numpy(), one.numpy())
    many = view_batch(split.sampler, idx, Views(2, 3), T)
    assert many.shape == (3, 6, T, 3, SIZE, SIZE)
    assert not np.array_equal(many[:, 0].numpy(), many[:, 2].numpy())  # crops of a 40x24 frame differ
    assert view_batch(split.sampler, idx, Views(1, 1), 6).shape == (3, 1, 6, 3, SIZE, SIZE)  # another frame count


def test_a_file_that_breaks_after_caching_is_an_error_not_a_substitute(bench):
    split = load_benchmark(bench, T, SIZE).splits["test"]
    path = split.sampler.files.rows["path"].iloc[1]
    with open(path, "r+b") as f:
        f.truncate(200)
    with pytest.raises(VideoError, match="v1.mp4"):
        view_batch(split.sampler, np.arange(3), Views(2, 1), T)


def test_synthetic_benchmarks_have_no_file_views(bench):
    meta = json.loads((bench / "meta.json").read_text())
    (bench / "meta.json").write_text(json.dumps({**meta, "synthetic": True}))
    assert load_benchmark(bench, T, SIZE).splits["test"].sampler.files is None
