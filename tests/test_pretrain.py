"""Tests for viclip.train.pretrain, the engine's resume points and checkpoints, on a tiny model and a learnable toy corpus."""

from __future__ import annotations

import json
import os
import shutil
import signal

import numpy as np
import pandas as pd
import pytest
import torch
from tiny_model import tiny

from viclip.data.frames import ClipSampler
from viclip.model.tokenizer import WordHashTokenizer
from viclip.model.viclip import ViCLIP, ViCLIPConfig
from viclip.train import checkpoint
from viclip.train.corpus import Captions, load_corpus
from viclip.train.pretrain import Stage, pretrain, stages, warmup_steps
from viclip.train.state import Preempted, ResumeStore

torch.set_num_threads(1)

TINY = tiny()
CFG = ViCLIPConfig.from_dict(TINY)
COLOURS = {
    "red": (220, 40, 40),
    "green": (40, 190, 60),
    "blue": (50, 80, 230),
    "yellow": (235, 220, 50),
    "purple": (160, 60, 200),
    "orange": (245, 140, 30),
    "white": (240, 240, 240),
    "grey": (100, 100, 100),
}
N_CLIPS, N_FRAMES, BATCH = 32, 8, 8


def train_cfg(**over) -> dict:
    return {
        "epochs": 3,
        "tune_epochs": 0.5,
        "batch_size": BATCH,
        "lr": 3e-3,
        "tune_lr": 1e-4,
        "weight_decay": 0.05,
        "warmup_steps": 2,
        "min_lr_ratio": 0.01,
        "betas": [0.9, 0.98],
        "augment": True,
        "flip": False,
        **over,
    }


def toy_clips(n: int = N_CLIPS, size: int = 16, seed: int = 0) -> tuple[np.ndarray, list[str]]:
    """Noisy single-colour clips; each caption names the clip's colour (so it is learnable)."""
    names = list(COLOURS)
    labels = np.arange(n) % len(names)
    rng = np.random.default_rng(seed)
    frames = np.stack(
        [np.broadcast_to(np.array(COLOURS[names[k]], np.uint8), (N_FRAMES, size, size, 3)) for k in labels]
    )
    frames = np.clip(frames + rng.normal(0, 8, frames.shape), 0, 255).astype(np.uint8)
    return frames, [f"a {names[k]} clip" for k in labels]


def write_toy_corpus(directory, n: int = N_CLIPS, size: int = 16) -> dict:
    """The pipeline's corpus files (frames.npy, frames.parquet, a captions parquet) for the toy clips."""
    directory.mkdir(parents=True, exist_ok=True)
    frames, texts = toy_clips(n, size)
    ids = [f"c{i:04d}" for i in range(n)]
    np.save(directory / "frames.npy", frames)
    pd.DataFrame({"clip_id": ids, "n_frames": N_FRAMES}).to_parquet(directory / "frames.parquet")
    pd.DataFrame({"clip_id": ids, "caption": texts}).to_parquet(directory / "captions.parquet")
    return {
        "frames": str(directory / "frames.npy"),
        "index": str(directory / "frames.parquet"),
        "captions": str(directory / "captions.parquet"),
    }


@pytest.fixture(scope="module")
def toy():
    frames, texts = toy_clips()
    return frames, WordHashTokenizer(TINY["vocab_size"], TINY["context_length"])(texts)


def sampler(frames, augment=True) -> ClipSampler:
    return ClipSampler(frames, np.full(len(frames), N_FRAMES), CFG.num_frames, CFG.image_size, augment=augment)


class Interrupted(Exception):
    pass


class FailingSampler(ClipSampler):
    """A clip source that dies at its `fail_at`-th clip, like a job killed mid-epoch."""

    def __init__(self, *args, fail_at: int, **kw):
        super().__init__(*args, **kw)
        self.fail_at, self.calls = fail_at, 0

    def load(self, idx, train, rng=None):
        self.calls += 1
        if self.calls == self.fail_at:
            raise Interrupted(f"killed at clip {self.calls}")
        return super().load(idx, train, rng)


class SignallingSampler(ClipSampler):
    """A clip source that sends this process a signal at its `at`-th clip (as Slurm would, mid-step)."""

    def __init__(self, *args, at: int, signum: int, **kw):
        super().__init__(*args, **kw)
        self.at, self.signum, self.calls = at, signum, 0

    def load(self, idx, train, rng=None):
        self.calls += 1
        if self.calls == self.at:
            os.kill(os.getpid(), self.signum)
        return super().load(idx, train, rng)


def run(toy, out_dir, *, seed=0, mask_ratio=0.5, smp=None, execution=None, **over) -> dict:
    frames, tokens = toy
    out_dir.mkdir(parents=True, exist_ok=True)
    return pretrain(
        CFG,
        train_cfg(**over),
        mask_ratio,
        smp or sampler(frames),
        tokens,
        seed,
        out_dir,
        out_dir / "log.jsonl",
        execution,
    )


def log_lines(out_dir, kind="epoch") -> list[dict]:
    lines = [json.loads(line) for line in (out_dir / "log.jsonl").read_text().splitlines()]
    return [r for r in lines if kind is None or r["kind"] == kind]


TIMING = {"seconds", "clips_per_s", "tokens_per_s", "peak_mem_mb", "mfu"}


def replayable(lines: list[dict]) -> list[dict]:
    """Log lines without their wall-clock fields: what a resumed run must reproduce exactly."""
    return [{k: v for k, v in r.items() if k not in TIMING} for r in lines]


def state(path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)["model"]


def assert_same_weights(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


def resume_files(out_dir) -> list[str]:
    d = out_dir / "resume"
    return sorted(p.name for p in d.iterdir()) if d.is_dir() else []


# ---------------------------------------------------------------- stages and schedule


def test_stages():
    t = train_cfg(epochs=4, tune_epochs=0.5)
    assert stages(t, 0.9) == [Stage("masked", 4, 0.9, t["lr"], BATCH), Stage("tune", 0.5, 0.0, t["tune_lr"], BATCH)]
    assert [s.name for s in stages(t, 0.0)] == ["unmasked", "tune"]
    assert [s.name for s in stages({**t, "tune_epochs": 0}, 0.9)] == ["masked"]
    # the paper's tuning stage runs a smaller global batch (32 per GPU instead of 512)
    assert stages({**t, "tune_batch_size": 4}, 0.9)[1].batch_size == 4


def test_warmup_in_steps_epochs_and_tune_fraction():
    t = train_cfg(warmup_steps=3)
    assert warmup_steps(t, 0, [4, 4], 32, 8) == 3
    t = {k: v for k, v in t.items() if k != "warmup_steps"} | {"warmup_epochs": 0.5}
    assert warmup_steps(t, 0, [4, 4], 32, 8) == 2  # half of a 4-step epoch
    assert warmup_steps(t, 1, [10], 80, 8) == 2  # tuning: 20% of its steps (0.1 of a 0.5 epoch), as the paper
    assert warmup_steps({**t, "tune_warmup": 0.5}, 1, [10], 80, 8) == 5
    assert warmup_steps(t, 1, [2], 16, 8) == 1  # never 0


def test_batch_larger_than_corpus_is_refused(toy, tmp_path):
    with pytest.raises(ValueError, match="batch size 64 exceeds the 32 clips"):
        run(toy, tmp_path, batch_size=64)


def test_unknown_execution_key_is_refused(toy, tmp_path):
    with pytest.raises(ValueError, match="execution: unknown key.*checkpoint_evry"):
        run(toy, tmp_path, execution={"checkpoint_evry": 3})


# ---------------------------------------------------------------- training


def test_loss_goes_down_on_a_learnable_toy(toy, tmp_path):
    summary = run(toy, tmp_path, epochs=6)
    lines = log_lines(tmp_path)
    masked = [r["loss"] for r in lines if r["stage"] == "masked"]
    assert len(masked) == 6
    assert all(np.isfinite(masked))
    assert masked[-1] < 0.8 * masked[0], masked
    assert masked[0] == pytest.approx(np.log(BATCH), abs=0.4)  # starts near chance
    assert summary["final_temp"] >= CFG.temp_min
    assert [s["name"] for s in summary["stages"]] == ["masked", "tune"]


def test_log_has_epoch_lines_with_stage_names_and_step_lines(toy, tmp_path):
    run(toy, tmp_path, epochs=3, tune_epochs=1, execution={"log_every": 3})
    lines = log_lines(tmp_path)
    assert [(r["stage"], r["epoch"]) for r in lines] == [("masked", 0), ("masked", 1), ("masked", 2), ("tune", 0)]
    assert [r["mask_ratio"] for r in lines] == [0.5, 0.5, 0.5, 0.0]
    for r in lines:
        assert {"loss", "lr", "temp", "seconds", "clips_per_s", "tokens_per_s", "peak_mem_mb", "steps"} <= set(r)
        assert r["peak_mem_mb"] > 0 and r["clips_per_s"] > 0
        assert "mfu" not in r  # MFU only on GPUs with a configured peak
    assert lines[-1]["seconds"] >= lines[0]["seconds"]
    # the cosine schedule ends each stage near min_lr_ratio * lr
    assert lines[2]["lr"] < 0.2 * train_cfg()["lr"]
    # tokens/s counts kept video tokens + the class token + the caption's context
    kept = CFG.num_frames * (CFG.image_size // CFG.patch_size) ** 2 // 2
    assert lines[0]["tokens_per_s"] == pytest.approx(
        lines[0]["clips_per_s"] * (kept + 1 + CFG.context_length), rel=1e-2
    )
    steps = log_lines(tmp_path, "step")
    assert [r["step"] for r in steps] == [3, 6, 9, 12, 15]  # 4 steps per epoch x 4 epochs, every 3rd
    assert all(np.isfinite(r["grad_norm"]) and r["grad_norm"] > 0 for r in steps)
    # the last line is an epoch line carrying the running total of seconds (the report reads it)
    assert json.loads((tmp_path / "log.jsonl").read_text().splitlines()[-1])["kind"] == "epoch"

    no_mask = tmp_path / "nomask"
    run(toy, no_mask, mask_ratio=0.0, epochs=2, tune_epochs=0)
    assert [r["stage"] for r in log_lines(no_mask)] == ["unmasked", "unmasked"]


def test_outputs(toy, tmp_path):
    run(toy, tmp_path, epochs=1, tune_epochs=0, execution={"checkpoint_every": 1})
    assert (tmp_path / "checkpoint.pt").is_file()
    assert not (tmp_path / "resume").exists()  # resume points go once the run is done
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp files left
    model, ckpt = checkpoint.load_model(tmp_path / "checkpoint.pt")
    assert isinstance(model, ViCLIP) and model.cfg == CFG
    assert ckpt["seed"] == 0 and ckpt["summary"]["processes"] == 1
    assert_same_weights(model.state_dict(), ckpt["model"])


def test_same_seed_same_checkpoint_other_seed_differs(toy, tmp_path):
    run(toy, tmp_path / "a", seed=3, epochs=2)
    run(toy, tmp_path / "b", seed=3, epochs=2)
    run(toy, tmp_path / "c", seed=4, epochs=2)
    a, b, c = (state(tmp_path / d / "checkpoint.pt") for d in "abc")
    assert_same_weights(a, b)
    assert not torch.equal(a["vision_encoder.conv1.weight"], c["vision_encoder.conv1.weight"])


def test_lazy_captions_train_like_a_token_table(toy, tmp_path):
    frames, tokens = toy
    _, texts = toy_clips()
    captions = Captions(texts, WordHashTokenizer(TINY["vocab_size"], TINY["context_length"]))
    assert torch.equal(torch.stack([captions[i] for i in range(len(captions))]), tokens)
    run(toy, tmp_path / "table", epochs=1, tune_epochs=0)
    pretrain(
        CFG,
        train_cfg(epochs=1, tune_epochs=0),
        0.5,
        sampler(frames),
        captions,
        0,
        tmp_path / "lazy",
        tmp_path / "lazy" / "log.jsonl",
    )
    assert_same_weights(state(tmp_path / "table" / "checkpoint.pt"), state(tmp_path / "lazy" / "checkpoint.pt"))


def test_loader_threads_give_the_same_run(toy, tmp_path):
    """Clips loaded ahead by threads draw exactly what the step would have drawn itself."""
    run(toy, tmp_path / "inline", epochs=2)
    run(toy, tmp_path / "threads", epochs=2, execution={"loader_workers": 3})
    assert_same_weights(state(tmp_path / "inline" / "checkpoint.pt"), state(tmp_path / "threads" / "checkpoint.pt"))


def test_a_corpus_of_clip_files_trains_through_the_worker(tmp_path):
    """A real corpus (download manifest + mp4 clips, decoded on the fly), through the worker entry point."""
    from viclip.data.video import write_mp4
    from viclip.train.distributed import Dist
    from viclip.train.pretrain import run_job

    frames, texts = toy_clips(16)
    (tmp_path / "videos").mkdir()
    ids = [f"v{i:03d}" for i in range(len(frames))]
    for clip_id, clip in zip(ids, frames):
        write_mp4(tmp_path / "videos" / f"{clip_id}.mp4", clip)
    # start_s/end_s are the clip's times in its source video, not a window of the cut file
    pd.DataFrame(
        {"clip_id": ids, "path": [f"videos/{c}.mp4" for c in ids], "start_s": 100.0, "end_s": 102.0}
    ).to_parquet(tmp_path / "clips.parquet")
    pd.DataFrame({"clip_id": ids[::-1], "caption": texts[::-1]}).to_parquet(tmp_path / "captions.parquet")
    out = tmp_path / "run"
    summary = run_job(
        dict(
            model=TINY,
            train=train_cfg(epochs=1, tune_epochs=0),
            mask_ratio=0.5,
            seed=0,
            manifest=str(tmp_path / "clips.parquet"),
            captions=str(tmp_path / "captions.parquet"),
            out_dir=str(out),
            log_path=str(out / "log.jsonl"),
            execution={"loader_workers": 2},
        ),
        Dist(),
    )
    assert summary["steps"] == 2 and (out / "checkpoint.pt").is_file()
    assert np.isfinite(log_lines(out)[0]["loss"])


# ---------------------------------------------------------------- interruption and resumption


@pytest.mark.parametrize(
    "fail_at",
    [
        6 * BATCH + 3,  # mid masked epoch 1 (step 6 of 12): the last resume point is mid-epoch
        12 * BATCH + 1,  # first clip of the tune stage: the last resume point closed the masked stage
        13 * BATCH + 2,  # mid tune stage (2 tune steps)
    ],
)
def test_interrupted_run_resumes_to_the_identical_checkpoint(toy, tmp_path, fail_at):
    frames, _ = toy
    full = tmp_path / "full"
    run(toy, full, seed=1, epochs=3, tune_epochs=0.5, execution={"log_every": 2})

    broken = tmp_path / "broken"
    bad = FailingSampler(
        frames, np.full(N_CLIPS, N_FRAMES), CFG.num_frames, CFG.image_size, augment=True, fail_at=fail_at
    )
    with pytest.raises(Interrupted):
        run(toy, broken, seed=1, smp=bad, epochs=3, tune_epochs=0.5, execution={"log_every": 2, "checkpoint_every": 1})
    assert not (broken / "checkpoint.pt").exists()
    assert len(resume_files(broken)) == 2  # the last two are kept
    newest = torch.load(broken / "resume" / resume_files(broken)[-1], map_location="cpu", weights_only=True)
    expected = {6 * BATCH + 3: (0, 1, 2), 12 * BATCH + 1: (1, 0, 0), 13 * BATCH + 2: (1, 0, 1)}[fail_at]
    assert tuple(newest["position"].values()) == expected
    assert (newest["optimizer"] is None) == (expected == (1, 0, 0))

    # unrelated work in between must not matter: every random draw is a function of the position
    torch.manual_seed(12345)
    np.random.seed(6789)
    torch.rand(100)
    run(toy, broken, seed=1, epochs=3, tune_epochs=0.5, execution={"log_every": 2, "checkpoint_every": 1})
    assert_same_weights(state(full / "checkpoint.pt"), state(broken / "checkpoint.pt"))
    assert not (broken / "resume").exists()
    assert replayable(log_lines(broken, None)) == replayable(log_lines(full, None))


def test_resume_from_an_older_resume_point(toy, tmp_path):
    """Restoring an intermediate resume point (after the run finished) reruns the tail to the same result."""
    frames, _ = toy
    out = tmp_path / "run"
    bad = FailingSampler(
        frames, np.full(N_CLIPS, N_FRAMES), CFG.num_frames, CFG.image_size, augment=True, fail_at=9 * BATCH
    )
    with pytest.raises(Interrupted):
        run(toy, out, seed=2, smp=bad, epochs=3, tune_epochs=0.5, execution={"checkpoint_every": 3})
    shutil.copytree(out / "resume", tmp_path / "saved")
    run(toy, out, seed=2, epochs=3, tune_epochs=0.5, execution={"checkpoint_every": 3})
    first = state(out / "checkpoint.pt")
    (out / "checkpoint.pt").unlink()
    shutil.copytree(tmp_path / "saved", out / "resume")
    run(toy, out, seed=2, epochs=3, tune_epochs=0.5, execution={"checkpoint_every": 3})
    assert_same_weights(first, state(out / "checkpoint.pt"))


def test_a_damaged_newest_resume_point_falls_back_to_the_one_before(toy, tmp_path):
    frames, _ = toy
    full = tmp_path / "full"
    run(toy, full, seed=2, epochs=3, tune_epochs=0.5)
    out = tmp_path / "run"
    bad = FailingSampler(
        frames, np.full(N_CLIPS, N_FRAMES), CFG.num_frames, CFG.image_size, augment=True, fail_at=7 * BATCH
    )
    with pytest.raises(Interrupted):
        run(toy, out, seed=2, smp=bad, epochs=3, tune_epochs=0.5, execution={"checkpoint_every": 1})
    _, newest = resume_files(out)
    data = (out / "resume" / newest).read_bytes()
    (out / "resume" / newest).write_bytes(data[: len(data) // 2])  # e.g. a disk that filled up
    run(toy, out, seed=2, epochs=3, tune_epochs=0.5, execution={"checkpoint_every": 1})
    assert_same_weights(state(full / "checkpoint.pt"), state(out / "checkpoint.pt"))


def test_resume_point_of_another_config_is_ignored(toy, tmp_path):
    """A resume point left by an interrupted run with other settings must not leak into a new run."""
    frames, _ = toy
    out = tmp_path / "run"
    bad = FailingSampler(
        frames, np.full(N_CLIPS, N_FRAMES), CFG.num_frames, CFG.image_size, augment=True, fail_at=9 * BATCH
    )
    with pytest.raises(Interrupted):
        run(toy, out, seed=2, smp=bad, epochs=3, tune_epochs=0.5, lr=1e-2, execution={"checkpoint_every": 2})
    assert resume_files(out)
    run(toy, out, seed=2, epochs=3, tune_epochs=0.5, execution={"checkpoint_every": 2})
    fresh = tmp_path / "fresh"
    run(toy, fresh, seed=2, epochs=3, tune_epochs=0.5)
    assert_same_weights(state(fresh / "checkpoint.pt"), state(out / "checkpoint.pt"))
    assert replayable(log_lines(out, None)) == replayable(log_lines(fresh, None))


def test_another_micro_batch_resumes_with_global_negatives_only(toy, tmp_path):
    """With one softmax over the global batch the micro-batch only changes float rounding, so a run may resume
    with another (say, on other GPUs); with per-micro-batch negatives it is another run."""
    frames, _ = toy
    for negatives, resumes in (("global", True), ("micro", False)):
        out = tmp_path / negatives
        bad = FailingSampler(
            frames, np.full(N_CLIPS, N_FRAMES), CFG.num_frames, CFG.image_size, augment=True, fail_at=6 * BATCH + 1
        )
        with pytest.raises(Interrupted):
            run(
                toy, out, smp=bad, negatives=negatives, micro_batch=4, execution={"checkpoint_every": 1, "log_every": 1}
            )
        before = log_lines(out, "step")
        run(toy, out, negatives=negatives, micro_batch=8, execution={"checkpoint_every": 1, "log_every": 1})
        after = log_lines(out, "step")
        if resumes:  # the first steps' lines are carried over as written, wall-clock fields included
            assert after[:6] == before[:6]
        else:  # started over: its own losses for other negatives
            assert replayable(after[:6]) != replayable(before[:6])


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGUSR1])
def test_a_stop_signal_saves_at_the_next_step_and_the_rerun_continues(toy, tmp_path, signum):
    frames, _ = toy
    full = tmp_path / "full"
    run(toy, full, seed=5, epochs=3, tune_epochs=0.5)
    out = tmp_path / "run"
    smp = SignallingSampler(
        frames,
        np.full(N_CLIPS, N_FRAMES),
        CFG.num_frames,
        CFG.image_size,
        augment=True,
        at=5 * BATCH + 3,
        signum=signum,
    )  # during step 6 (index 5) of 12
    before = signal.getsignal(signum)
    with pytest.raises(Preempted) as exc:
        run(toy, out, seed=5, smp=smp, epochs=3, tune_epochs=0.5)
    assert exc.value.signum == signum
    assert signal.getsignal(signum) == before  # the handler is only installed while training
    # epoch 0 closed at step 4; the signal came during step 6, which finished and was saved
    assert resume_files(out) == ["step-000000004.pt", "step-000000006.pt"]
    newest = torch.load(out / "resume" / "step-000000006.pt", map_location="cpu", weights_only=True)
    assert newest["position"] == {"phase": 0, "epoch": 1, "step": 2}
    assert not (out / "checkpoint.pt").exists()
    run(toy, out, seed=5, epochs=3, tune_epochs=0.5)
    assert_same_weights(state(full / "checkpoint.pt"), state(out / "checkpoint.pt"))


def test_resume_store_keeps_the_last_two_and_skips_foreign_files(tmp_path):
    store = ResumeStore(tmp_path, "mine", keep=2)
    for step in (1, 2, 3):
        store.save({"step": step}, step)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["step-000000002.pt", "step-000000003.pt"]
    ResumeStore(tmp_path, "theirs").save({"step": 9}, 9)
    (tmp_path / "notes.txt").write_text("not a resume point")
    assert store.latest()["step"] == 3  # the foreign step 9 is removed, not resumed
    assert not (tmp_path / "step-000000009.pt").exists() and (tmp_path / "notes.txt").exists()
    store.clear()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


# ---------------------------------------------------------------- corpus


def test_load_corpus_joins_frames_and_captions(tmp_path):
    files = write_toy_corpus(tmp_path)
    pd.DataFrame({"clip_id": ["c0003", "c0001", "zzz"], "caption": ["x", "y", "z"]}).to_parquet(files["captions"])
    source, captions = load_corpus(files["frames"], files["index"], files["captions"], CFG, True, False)
    assert len(source) == 2 and captions.texts == ["x", "y"]
    frames = np.load(files["frames"])
    assert np.array_equal(source.frames[0], frames[3])


def test_load_corpus_names_a_bad_file(tmp_path):
    files = write_toy_corpus(tmp_path)
    pd.DataFrame({"clip_id": ["c0003"], "text": ["x"]}).to_parquet(files["captions"])
    with pytest.raises(ValueError, match="captions.parquet: missing column 'caption'"):
        load_corpus(files["frames"], files["index"], files["captions"], CFG, True, False)


# ---------------------------------------------------------------- checkpoints


def test_save_and_load_round_trip(tmp_path):
    torch.manual_seed(0)
    model = ViCLIP(CFG)
    checkpoint.save(tmp_path / "ck.pt", model, seed=7, note="x")
    loaded, ckpt = checkpoint.load_model(tmp_path / "ck.pt")
    assert ckpt["seed"] == 7 and ckpt["note"] == "x" and ckpt["config"] == CFG.to_dict()
    assert_same_weights(model.state_dict(), loaded.state_dict())


@pytest.mark.parametrize("content", [b"", b"not a checkpoint at all", bytes(range(256)) * 4])
def test_load_model_on_a_corrupt_file_names_it(tmp_path, content):
    path = tmp_path / "corrupt.pt"
    path.write_bytes(content)
    with pytest.raises(ValueError, match="corrupt.pt"):
        checkpoint.load_model(path)


def test_load_model_on_a_truncated_checkpoint(tmp_path):
    torch.manual_seed(0)
    checkpoint.save(tmp_path / "ck.pt", ViCLIP(CFG))
    data = (tmp_path / "ck.pt").read_bytes()
    (tmp_path / "cut.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="cut.pt"):
        checkpoint.load_model(tmp_path / "cut.pt")


def test_load_model_missing_file_and_entries(tmp_path):
    with pytest.raises(ValueError, match="nothere.pt"):
        checkpoint.load_model(tmp_path / "nothere.pt")
    torch.save({"config": CFG.to_dict()}, tmp_path / "nomodel.pt")
    with pytest.raises(ValueError, match="nomodel.pt.*'model'"):
        checkpoint.load_model(tmp_path / "nomodel.pt")


def test_load_model_rejects_a_mismatched_config(tmp_path):
    torch.manual_seed(0)
    sd = ViCLIP(CFG).state_dict()
    sd.pop("temp")
    torch.save({"model": sd, "config": CFG.to_dict()}, tmp_path / "partial.pt")
    with pytest.raises(ValueError, match="partial.pt.*temp"):
        checkpoint.load_model(tmp_path / "partial.pt")
