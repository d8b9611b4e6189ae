"""The real-model (`hf`) captioning backend, offline on CPU, with tiny random-weight models.

Tiny models of every backend class (BLIP-2, BLIP, GIT, VisionEncoderDecoder,
T5, Llama) are built with a tokenizer trained in the test
(viclip/captions/tiny.py) and saved like real checkpoints; clips are
rendered mp4s. Their captions are gibberish, but loading, batching, prompts,
frame sharing, the cache, resumption and the workflow rules are the real
ones. Run: .venv/bin/python -m pytest tests/test_captions_real.py -q
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import torch
import yaml

from viclip.captions import decode, tiny
from viclip.captions.backends import image_captioner
from viclip.captions.base import Clip
from viclip.captions.coarse import coarse_captions, coarse_table, coarse_task
from viclip.captions.frames import frame_captions, frames_table, frames_task
from viclip.captions.fused import fused_captions
from viclip.captions.hf import HFImageCaptioner, HFSummarizer
from viclip.captions.io import VARIANT_COLUMNS, read_clips
from viclip.captions.settings import ExecutionSettings, ModelSettings, summarizer_settings
from viclip.captions.shards import Runner, caption_images
from viclip.captions.sheet import render_sheet
from viclip.captions.summary import summary_captions
from viclip.data.synthetic import render_corpus
from viclip.data.video import VideoError, write_mp4

CPU = torch.device("cpu")
WORLD = {"seed": 7, "frame_size": 32, "fps": 8, "pixel_noise": 4.0, "heldout_fraction": 0.25}


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, Path]:
    return tiny.build(tmp_path_factory.mktemp("models"))


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    """A rendered corpus of 7 clips (16 frames each); its manifest doubles as the frame index."""
    out = tmp_path_factory.mktemp("corpus")
    render_corpus(WORLD, {"name": "t", "seed": 3, "n_clips": 7, "events_per_clip": 1, "frames_per_event": 16}, out)
    return out / "clips.parquet"


def _captioner(path, batch=4, **kw) -> HFImageCaptioner:
    return HFImageCaptioner(ModelSettings(**{"model": str(path), "max_new_tokens": 5, **kw}), batch, CPU)


def _summarizer(path, batch=4, **kw) -> HFSummarizer:
    return HFSummarizer(summarizer_settings({"model": str(path), "max_new_tokens": 5, **kw}, "test"), batch, CPU)


# ---------------------------------------------------------------- backends


@pytest.mark.parametrize("name", ["blip2", "blip", "git", "vision_encoder_decoder"])
def test_image_captioners_are_deterministic_and_batch_independent(models, name):
    images = [np.random.default_rng(i).integers(0, 256, (40, 56, 3), dtype=np.uint8) for i in range(5)]
    a = _captioner(models[name], batch=2).caption_images(images)
    b = _captioner(models[name], batch=5).caption_images(images)
    assert len(a) == 5 and all(isinstance(t, str) and "\n" not in t for t in a)
    assert a == b


def test_prompt_is_cut_from_captions(models):
    images = [np.full((32, 32, 3), v, dtype=np.uint8) for v in (0, 128)]
    for name in ("blip2", "git", "blip"):
        for text in _captioner(models[name], prompt="a photo of").caption_images(images):
            assert not text.startswith("a photo of"), (name, text)


def test_caption_many_splits_back_per_clip(models):
    cap = _captioner(models["blip"], batch=3)
    frames = [np.zeros((1, 32, 32, 3), np.uint8), np.full((4, 32, 32, 3), 200, np.uint8)]
    clips = [Clip("a", "a.mp4", 16), Clip("b", "b.mp4", 16)]
    out = cap.caption_many(clips, [np.array([8]), np.arange(4)], frames)
    assert [len(o) for o in out] == [1, 4]
    assert out[1] == cap.caption_images(list(frames[1]))
    with pytest.raises(ValueError, match="decoded frames"):
        cap.caption_many(clips, [np.array([8]), np.arange(4)], None)


@pytest.mark.parametrize("name", ["t5", "llama"])
def test_summarizers_write_one_line_per_clip(models, name):
    s = _summarizer(models[name], batch=2, num_beams=2)
    frames = [["a red circle", "a blue square"], ["a dog runs"], ["x", "y", "z"]]
    out = s.summarize_many(["a", "b", "c"], frames)
    assert len(out) == 3 and all(isinstance(t, str) and "\n" not in t for t in out)
    assert out == _summarizer(models[name], batch=3, num_beams=2).summarize_many(["a", "b", "c"], frames)
    fused = s.fuse_many(["a"], ["a man in a kitchen."], [["a man", "a knife"]])
    assert len(fused) == 1


def test_summarizer_prompts(models):
    s = _summarizer(
        models["llama"], prompt="Frames: {frames}. Summary:", fusion_prompt="Scene: {coarse}. Frames: {frames}."
    )
    assert s.summary_prompt(["a {red} circle.", "a dog"]) == "Frames: a {red} circle; a dog. Summary:"
    assert s.fusion_prompt("a kitchen.", ["a man"]) == "Scene: a kitchen. Frames: a man."
    # the tiny Llama ships a chat template, as instruction-tuned causal LMs do; T5 has none
    assert s.render("hi") == "<s>user: hi</s><s>assistant:"
    assert _summarizer(models["llama"], chat="false").render("hi") == "hi"
    assert _summarizer(models["t5"]).render("hi") == "hi"
    fp = s.fingerprint("summary")
    assert fp["prompt"] == "Frames: {frames}. Summary:" and s.fingerprint("fusion")["prompt"].startswith("Scene:")


def test_settings_errors_name_the_key(tmp_path):
    with pytest.raises(ValueError, match=r"captions.hf.coarse: unknown key\(s\) temperature"):
        ModelSettings.from_config({"model": "x", "temperature": 0.7}, "captions.hf.coarse")
    with pytest.raises(ValueError, match=r"captions.hf.summarizer.prompt: needs a \{frames\}"):
        summarizer_settings({"model": "x", "prompt": "summarize"}, "captions.hf.summarizer")
    with pytest.raises(ValueError, match="dtype"):
        ModelSettings.from_config({"model": "x", "dtype": "int8"}, "w")
    missing = {"backend": "hf", "hf": {"coarse": {"model": str(tmp_path / "nowhere")}}}
    with pytest.raises(FileNotFoundError, match="captions.hf.coarse.model"):
        image_captioner(missing, "coarse").load()
    with pytest.raises(ValueError, match="captions.hf.frames: missing"):
        image_captioner(missing, "frame")
    with pytest.raises(ValueError, match="unknown key"):
        ExecutionSettings.from_config({"batchsize": 3})


def test_local_model_identity_follows_the_files(models, tmp_path):
    a = _captioner(models["blip"]).fingerprint()
    assert a == _captioner(models["blip"]).fingerprint()
    assert a != _captioner(models["blip"], max_new_tokens=6).fingerprint()
    copy = tmp_path / "blip"
    tiny.blip(copy, seed=9)
    assert _captioner(copy).fingerprint()["files"] != a["files"]
    assert a != _captioner(models["blip"], prompt="a photo of").fingerprint()


# ---------------------------------------------------------------- driver: shared decoding, cache, resume


def _tasks(models, n_frames=4):
    return [coarse_task(_captioner(models["blip2"])), frames_task(_captioner(models["git"], batch=8), n_frames)]


def test_both_captioners_share_one_decode_per_clip(models, corpus, monkeypatch):
    clips = read_clips(corpus)
    calls = []
    real = decode.clip_frames
    monkeypatch.setattr(decode, "clip_frames", lambda c, i, b="decord": calls.append(c.clip_id) or real(c, i, b))
    shared = caption_images(clips, _tasks(models), Runner(chunk=3))
    assert sorted(calls) == sorted(c.clip_id for c in clips)  # once per clip for both captioners
    calls.clear()
    alone = coarse_captions(clips, _captioner(models["blip2"]), Runner(chunk=3))
    assert len(calls) == len(clips)
    assert coarse_table(clips, shared["coarse"]).equals(alone)
    # the frames each captioner saw are the ones it asked for
    direct = _captioner(models["git"], batch=8).caption_images(
        list(decode.clip_frames(clips[2], shared["frames"][0][2]))
    )
    assert shared["frames"][1][2] == direct


def test_frame_tables_and_window(models, tmp_path):
    # A 3 s file whose clip is the window [1 s, 2.5 s): frame indices count from the window start.
    frames = np.stack([np.full((32, 32, 3), 10 * i, np.uint8) for i in range(24)])
    write_mp4(tmp_path / "long.mp4", frames, fps=8)
    clip = Clip("w", str(tmp_path / "long.mp4"), 12, None, 1.0, 2.5)
    got = decode.clip_frames(clip, np.array([0, 11]))
    assert abs(int(got[0].mean()) - 80) <= 3 and abs(int(got[1].mean()) - 190) <= 3
    with pytest.raises(VideoError, match="long.mp4"):
        decode.clip_frames(clip, np.array([12]))
    table = frame_captions([clip], _captioner(models["blip"]), 4)
    assert list(table.columns) == list(VARIANT_COLUMNS["frames"])
    assert table["frame_indices"][0] == [1, 4, 7, 10] and len(table["captions"][0]) == 4


def test_cache_skips_done_work_and_keys_on_settings(models, corpus, tmp_path):
    clips = read_clips(corpus)
    run = Runner(str(tmp_path / "cache"), "s0of1", chunk=2)
    first = caption_images(clips, _tasks(models), run)
    assert len(list((tmp_path / "cache" / "coarse").glob("*/*.parquet"))) == 1  # chunks compacted

    counted = _tasks(models)
    seen = []
    for t in counted:
        real = t.captioner.caption_many
        t.captioner.caption_many = lambda c, i, f, real=real: seen.append(len(c)) or real(c, i, f)
    again = caption_images(clips, counted, run)
    assert seen == [] and again["coarse"][1] == first["coarse"][1] and again["frames"][1] == first["frames"][1]

    # another prompt for the coarse captioner: coarse captions are redone, frame captions come back
    other = [coarse_task(_captioner(models["blip2"], prompt="a photo of")), counted[1]]
    caption_images(clips, other, run)
    assert seen == []
    assert len(list((tmp_path / "cache" / "coarse").glob("*/fingerprint.json"))) == 2
    # a clip whose video bytes change is another clip
    frames = np.zeros((16, 32, 32, 3), np.uint8)
    write_mp4(tmp_path / "v.mp4", frames)
    c = Clip(clips[0].clip_id, str(tmp_path / "v.mp4"), 16)
    out = caption_images([c], [counted[1]], run)
    assert len(out["frames"][1][0]) == 4


def test_a_failed_shard_resumes_from_finished_chunks(models, corpus, tmp_path):
    clips = read_clips(corpus)
    # The last clip claims more frames than its file has: decoding fails in the last chunk.
    broken = clips[:-1] + [Clip(clips[-1].clip_id, clips[-1].path, 64, clips[-1].spec)]
    run = Runner(str(tmp_path / "cache"), "s0of1", chunk=2)
    with pytest.raises(VideoError, match=Path(clips[-1].path).name):
        caption_images(broken, _tasks(models), run)
    files = list((tmp_path / "cache" / "frames").glob("*/s0of1-*.parquet"))
    assert len(files) == 3  # chunks of 2 clips, each written when done

    counted = _tasks(models)
    seen = []
    real = counted[1].captioner.caption_many
    counted[1].captioner.caption_many = lambda c, i, f: seen.append([x.clip_id for x in c]) or real(c, i, f)
    resumed = caption_images(clips, counted, run)
    assert seen == [[clips[-1].clip_id]]  # only the unfinished clip is captioned again
    fresh = caption_images(clips, _tasks(models), Runner(chunk=3))
    assert resumed["frames"][1] == fresh["frames"][1] and resumed["coarse"][1] == fresh["coarse"][1]


def test_summary_and_prompted_fusion_with_cache(models, corpus, tmp_path):
    clips = read_clips(corpus)
    out = caption_images(clips, _tasks(models), Runner())
    co, fr = coarse_table(clips, out["coarse"]), frames_table(clips, out["frames"])
    run = Runner(str(tmp_path / "cache"), "s0of1", chunk=3)
    s = _summarizer(models["t5"])
    su = summary_captions(fr, s, run)
    assert list(su.columns) == ["clip_id", "caption"] and su["clip_id"].tolist() == co["clip_id"].tolist()
    fu = fused_captions("summary_prompted", co, frames=fr, summarizer=_summarizer(models["llama"]), run=run)
    assert fu["clip_id"].tolist() == co["clip_id"].tolist()
    assert fused_captions("concat", co, su)["caption"].tolist() == [
        f"{a.rstrip('. ')}. {b}" for a, b in zip(co["caption"], su["caption"])
    ]
    # a second summarizer run reads every summary from the cache
    called = []
    s2 = _summarizer(models["t5"])
    s2.generate = lambda prompts: called.append(prompts) or []
    assert summary_captions(fr, s2, run).equals(su) and called == []


def test_sample_sheet(models, corpus, tmp_path):
    clips = read_clips(corpus)
    out = caption_images(clips, _tasks(models), Runner())
    co, fr = coarse_table(clips, out["coarse"]), frames_table(clips, out["frames"])
    su = summary_captions(fr, _summarizer(models["t5"]))
    tables = {"coarse": co, "frames": fr, "summary": su, "fused": fused_captions("concat", co, su)}
    shown = render_sheet(clips, tables, tmp_path / "sheet.png", n_clips=3)
    assert shown == [clips[0].clip_id, clips[3].clip_id, clips[6].clip_id]
    assert (tmp_path / "sheet.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# ---------------------------------------------------------------- the workflow rules


def _hf_config(repo, models, **over) -> dict:
    cfg = yaml.safe_load((repo / "config.yaml").read_text())
    cfg["corpus"].update(n_clips=4, frames_per_event=8)
    c = cfg["captions"]
    c.update(backend="hf", frames_per_clip=2, shards=1, sheet_clips=2)
    c["hf"] = {
        "coarse": {"model": str(models["blip2"]), "max_new_tokens": 4},
        "frames": {"model": str(models["git"]), "max_new_tokens": 4},
        "summarizer": {"model": str(models["t5"]), "max_new_tokens": 4},
    }
    c["execution"].update(
        share_frames=True, chunk_clips=2, cache_dir="cache", batch_size={"coarse": 4, "frames": 8, "summarizer": 4}
    )
    for k, v in over.items():
        c[k] = v
    return cfg


VARIANT_FILES = [f"results/captions/synthetic/{v}.parquet" for v in VARIANT_COLUMNS]


def smk(snakemake_bin, repo, workdir, *args, check=True, timeout=600) -> subprocess.CompletedProcess:
    cmd = [snakemake_bin, "-s", str(repo / "Snakefile"), "--directory", str(workdir), *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}")
    return proc


def planned(output: str) -> dict[str, int]:
    """Jobs per rule in a dry run's job table."""
    counts, inside = {}, False
    for line in output.splitlines():
        if line.startswith("job ") and "count" in line:
            inside = True
            continue
        if inside:
            parts = line.split()
            if not parts or parts[0] == "total":
                break
            if not parts[0].startswith("-"):
                counts[parts[0]] = int(parts[1])
    return counts


def _write(workdir: Path, name: str, cfg: dict) -> Path:
    path = workdir / name
    path.write_text(yaml.safe_dump(cfg))
    return path


def _dry(snakemake_bin, repo, workdir, cfg, name, *targets) -> str:
    return smk(snakemake_bin, repo, workdir, "-n", *targets, "--configfile", str(_write(workdir, name, cfg))).stdout


@pytest.fixture(scope="module")
def hf_run(tmp_path_factory, repo, models, snakemake_bin) -> Path:
    """The caption rules with the hf backend on a rendered 4-clip corpus: every variant."""
    work = tmp_path_factory.mktemp("hf_workflow")
    _write(work, "config.yaml", _hf_config(repo, models))
    smk(snakemake_bin, repo, work, "--cores", "2", *VARIANT_FILES)
    return work


def test_hf_rules_write_every_variant_with_the_shared_schema(hf_run):
    base = hf_run / "results/captions/synthetic"
    index = pd.read_parquet(hf_run / "results/data/synthetic/frames.parquet")
    for variant, columns in VARIANT_COLUMNS.items():
        df = pd.read_parquet(base / f"{variant}.parquet")
        assert tuple(df.columns) == columns, variant
        assert df["clip_id"].tolist() == index["clip_id"].tolist(), variant
    assert all(len(c) == 2 for c in pd.read_parquet(base / "frames.parquet")["captions"])
    log = (hf_run / "logs/captions/images-synthetic-0.log").read_text()
    assert "Blip2ForConditionalGeneration" in log and "GitForCausalLM" in log
    assert len(list((hf_run / "cache").glob("*/*/fingerprint.json"))) == 3  # coarse, frames, summary


def test_changing_the_summarizer_reruns_only_summary_and_fusion(hf_run, repo, models, snakemake_bin):
    targets = VARIANT_FILES
    cfg = _hf_config(repo, models)
    cfg["captions"]["hf"]["summarizer"]["prompt"] = "Frames: {frames}. In one sentence:"
    jobs = planned(_dry(snakemake_bin, repo, hf_run, cfg, "s.yaml", *targets))
    assert jobs == {"summarize": 1, "fuse": 1, "gather_captions": 2}, jobs

    # How jobs run is not what they compute, and the fusion prompt is read only
    # under summary_prompted: neither reruns anything.
    cfg = _hf_config(repo, models)
    cfg["captions"]["execution"].update(
        chunk_clips=5, decode_workers=1, batch_size={"coarse": 1, "frames": 2, "summarizer": 1}
    )
    cfg["captions"]["hf"]["summarizer"]["fusion_prompt"] = "{coarse}; {frames}"
    out = _dry(snakemake_bin, repo, hf_run, cfg, "e.yaml", *targets)
    assert "Nothing to be done" in out, out[-2000:]


def test_shards_split_every_caption_job(repo, snakemake_bin, tmp_path):
    cfg = yaml.safe_load((repo / "config.yaml").read_text())
    cfg["captions"]["shards"] = 3
    _write(tmp_path, "config.yaml", cfg)
    jobs = planned(smk(snakemake_bin, repo, tmp_path, "-n", "captions").stdout)
    for rule in ("caption_coarse", "caption_frames", "summarize", "fuse", "caption_sheet"):
        assert jobs[rule] == 3, (rule, jobs)
    assert jobs["gather_captions"] == 4 and jobs["caption_stats"] == 1


@pytest.mark.slow
def test_full_hf_run_with_shards_and_sheets(repo, models, snakemake_bin, tmp_path):
    """Two shards with share_frames off: separate image jobs, a sheet per shard; a coarse change reruns coarse only."""
    cfg = _hf_config(repo, models, shards=2)
    cfg["corpus"]["n_clips"] = 5
    cfg["captions"]["execution"]["share_frames"] = False
    _write(tmp_path, "config.yaml", cfg)
    smk(snakemake_bin, repo, tmp_path, "--cores", "2", "captions")
    base = tmp_path / "results/captions/synthetic"
    assert len(pd.read_parquet(base / "fused.parquet")) == 5
    stats = json.loads((base / "stats.json").read_text())
    assert set(stats["variants"]) == set(VARIANT_COLUMNS) and stats["variants"]["frames"]["n"] == 10
    assert (base / "stats.tsv").read_text().startswith("variant\t")
    assert [len(pd.read_parquet(base / f"shards/{k}/coarse.parquet")) for k in (0, 1)] == [2, 3]
    for k in (0, 1):
        assert (base / f"shards/{k}/sheet.png").read_bytes()[:4] == b"\x89PNG"
    cfg["captions"]["hf"]["coarse"]["max_new_tokens"] = 5
    jobs = planned(_dry(snakemake_bin, repo, tmp_path, cfg, "c.yaml", "captions"))
    assert jobs == {
        "caption_coarse": 2,
        "fuse": 2,
        "gather_captions": 2,
        "caption_stats": 1,
        "caption_sheet": 2,
        "captions": 1,
    }, jobs
    # prompted fusion reads the frame captions and the summarizer instead of the summary
    cfg = _hf_config(repo, models, shards=2, fusion="summary_prompted")
    cfg["corpus"]["n_clips"] = 5
    cfg["captions"]["execution"]["share_frames"] = False
    jobs = planned(_dry(snakemake_bin, repo, tmp_path, cfg, "p.yaml", "captions"))
    assert jobs == {"fuse": 2, "gather_captions": 1, "caption_stats": 1, "caption_sheet": 2, "captions": 1}, jobs
    _write(tmp_path, "config.yaml", cfg)
    smk(snakemake_bin, repo, tmp_path, "--cores", "2", "captions")
    assert len(list((tmp_path / "cache" / "fusion").glob("*/fingerprint.json"))) == 1


@pytest.mark.slow
def test_a_killed_shard_job_resumes(repo, models, snakemake_bin, tmp_path):
    """SIGKILL the workflow once a shard's first chunks are cached; the rerun captions only the rest."""
    cfg = _hf_config(repo, models)
    cfg["corpus"]["n_clips"] = 16
    cfg["captions"]["execution"]["chunk_clips"] = 1
    _write(tmp_path, "config.yaml", cfg)
    target = "results/captions/synthetic/shards/0/coarse.parquet"
    smk(snakemake_bin, repo, tmp_path, "--cores", "1", "results/data/synthetic/frames.parquet")
    proc = subprocess.Popen(
        [snakemake_bin, "-s", str(repo / "Snakefile"), "--directory", str(tmp_path), "--cores", "1", target],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    cache = tmp_path / "cache" / "frames"
    deadline = time.time() + 300
    while not list(cache.glob("*/synthetic.s0of1-*.parquet")) and time.time() < deadline and proc.poll() is None:
        time.sleep(0.01)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (tmp_path / target).exists(), "the job finished before it could be killed"
    done = len(list(cache.glob("*/synthetic.s0of1-*.parquet")))
    assert done >= 1

    smk(snakemake_bin, repo, tmp_path, "--unlock", target)  # a killed Snakemake leaves its lock behind
    smk(snakemake_bin, repo, tmp_path, "--cores", "1", "--rerun-incomplete", target)
    log = (tmp_path / "logs/captions/images-synthetic-0.log").read_text()
    line = next(ln for ln in log.splitlines() if "from the cache" in ln)
    cached = int(line.split('"frames": ')[1].split("}")[0])
    assert 1 <= cached < 16, line
    clips = read_clips(tmp_path / "results/data/synthetic/frames.parquet")
    tasks = [
        coarse_task(_captioner(models["blip2"], max_new_tokens=4)),
        frames_task(_captioner(models["git"], max_new_tokens=4), 2),
    ]
    fresh = caption_images(clips, tasks, Runner())
    assert pd.read_parquet(tmp_path / target).equals(coarse_table(clips, fresh["coarse"]))
    frames = pd.read_parquet(tmp_path / "results/captions/synthetic/shards/0/frames.parquet")
    assert [list(c) for c in frames["captions"]] == fresh["frames"][1]


@pytest.mark.slow
def test_synthetic_and_hf_backends_write_identical_schemas(hf_run, repo, snakemake_bin, tmp_path):
    cfg = yaml.safe_load((hf_run / "config.yaml").read_text())
    cfg["captions"]["backend"] = "synthetic"
    _write(tmp_path, "config.yaml", cfg)
    smk(snakemake_bin, repo, tmp_path, "--cores", "2", *VARIANT_FILES)
    for variant in VARIANT_COLUMNS:
        real = pq.read_schema(hf_run / f"results/captions/synthetic/{variant}.parquet").remove_metadata()
        synthetic = pq.read_schema(tmp_path / f"results/captions/synthetic/{variant}.parquet").remove_metadata()
        assert real.equals(synthetic), (variant, real, synthetic)
