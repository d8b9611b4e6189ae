"""Tests for viclip.train.pretrain and checkpoint on a tiny model and a learnable toy corpus."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

from viclip.data.frames import ClipSampler
from viclip.model.tokenizer import WordHashTokenizer
from viclip.model.viclip import ViCLIP, ViCLIPConfig
from viclip.train import checkpoint
from viclip.train.pretrain import Stage, pretrain, stages

torch.set_num_threads(1)

TINY = dict(name="tiny", image_size=16, patch_size=8, num_frames=4, vision_width=32, vision_layers=1, vision_heads=2,
            embed_dim=16, drop_path=0.0, tokenizer="word_hash", vocab_size=64, context_length=8, text_width=32,
            text_layers=1, text_heads=2, temp_init=0.07, temp_min=0.01, freeze_text=False)
CFG = ViCLIPConfig.from_dict(TINY)
COLOURS = {"red": (220, 40, 40), "green": (40, 190, 60), "blue": (50, 80, 230), "yellow": (235, 220, 50),
           "purple": (160, 60, 200), "orange": (245, 140, 30), "white": (240, 240, 240), "grey": (100, 100, 100)}
N_CLIPS, N_FRAMES, BATCH = 32, 8, 8


def train_cfg(**over) -> dict:
    return {"epochs": 3, "tune_epochs": 0.5, "batch_size": BATCH, "lr": 3e-3, "tune_lr": 1e-4, "weight_decay": 0.05,
            "warmup_steps": 2, "min_lr_ratio": 0.01, "betas": [0.9, 0.98], **over}


@pytest.fixture(scope="module")
def toy():
    """32 noisy single-colour clips; each caption names the clip's colour (so it is learnable)."""
    names = list(COLOURS)
    labels = np.arange(N_CLIPS) % len(names)
    rng = np.random.default_rng(0)
    frames = np.stack([np.broadcast_to(np.array(COLOURS[names[k]], np.uint8), (N_FRAMES, 16, 16, 3)) for k in labels])
    frames = np.clip(frames + rng.normal(0, 8, frames.shape), 0, 255).astype(np.uint8)
    tokens = WordHashTokenizer(TINY["vocab_size"], TINY["context_length"])([f"a {names[k]} clip" for k in labels])
    return frames, tokens


def sampler(frames, augment=True) -> ClipSampler:
    return ClipSampler(frames, np.full(len(frames), N_FRAMES), CFG.num_frames, CFG.image_size, augment=augment)


class Interrupted(Exception):
    pass


class FailingSampler(ClipSampler):
    """A sampler that dies at its `fail_at`-th training batch, like a job killed mid-epoch."""

    def __init__(self, *args, fail_at: int, **kw):
        super().__init__(*args, **kw)
        self.fail_at, self.calls = fail_at, 0

    def batch(self, idx, train, rng=None):
        self.calls += 1
        if self.calls == self.fail_at:
            raise Interrupted(f"killed at batch {self.calls}")
        return super().batch(idx, train, rng)


def run(toy, out_dir, *, seed=0, mask_ratio=0.5, smp=None, **over) -> dict:
    frames, tokens = toy
    out_dir.mkdir(parents=True, exist_ok=True)
    return pretrain(CFG, train_cfg(**over), mask_ratio, smp or sampler(frames), tokens, seed, out_dir,
                    out_dir / "log.jsonl")


def log_lines(out_dir) -> list[dict]:
    return [json.loads(line) for line in (out_dir / "log.jsonl").read_text().splitlines()]


def state(path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)["model"]


def assert_same_weights(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


# ---------------------------------------------------------------- stages


def test_stages():
    t = train_cfg(epochs=4, tune_epochs=0.5)
    assert stages(t, 0.9) == [Stage("masked", 4, 0.9, t["lr"]), Stage("tune", 0.5, 0.0, t["tune_lr"])]
    assert [s.name for s in stages(t, 0.0)] == ["unmasked", "tune"]
    assert [s.name for s in stages({**t, "tune_epochs": 0}, 0.9)] == ["masked"]


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


def test_log_has_one_line_per_epoch_with_stage_names(toy, tmp_path):
    run(toy, tmp_path, epochs=3, tune_epochs=1)
    lines = log_lines(tmp_path)
    assert [(r["stage"], r["epoch"]) for r in lines] == [("masked", 0), ("masked", 1), ("masked", 2), ("tune", 0)]
    assert [r["mask_ratio"] for r in lines] == [0.5, 0.5, 0.5, 0.0]
    for r in lines:
        assert {"loss", "lr", "temp", "seconds", "clips_per_s"} <= set(r)
    assert lines[-1]["seconds"] >= lines[0]["seconds"]
    # the cosine schedule ends each stage near min_lr_ratio * lr
    assert lines[2]["lr"] < 0.2 * train_cfg()["lr"]

    no_mask = tmp_path / "nomask"
    run(toy, no_mask, mask_ratio=0.0, epochs=2, tune_epochs=0)
    assert [r["stage"] for r in log_lines(no_mask)] == ["unmasked", "unmasked"]


def test_outputs(toy, tmp_path):
    run(toy, tmp_path, epochs=1, tune_epochs=0)
    assert (tmp_path / "checkpoint.pt").is_file()
    assert not (tmp_path / "resume.pt").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp files left
    model, ckpt = checkpoint.load_model(tmp_path / "checkpoint.pt")
    assert isinstance(model, ViCLIP) and model.cfg == CFG
    assert ckpt["seed"] == 0 and "summary" in ckpt
    assert_same_weights(model.state_dict(), ckpt["model"])


def test_same_seed_same_checkpoint_other_seed_differs(toy, tmp_path):
    run(toy, tmp_path / "a", seed=3, epochs=2)
    run(toy, tmp_path / "b", seed=3, epochs=2)
    run(toy, tmp_path / "c", seed=4, epochs=2)
    a, b, c = (state(tmp_path / d / "checkpoint.pt") for d in "abc")
    assert_same_weights(a, b)
    assert not torch.equal(a["vision_encoder.conv1.weight"], c["vision_encoder.conv1.weight"])


@pytest.mark.parametrize("fail_at", [
    6,   # mid masked epoch 1: resume.pt holds optimizer state
    13,  # first batch of the tune stage: resume.pt closed the masked stage (no optimizer state)
    14,  # mid tune stage (2 tune steps): resume.pt is still from the end of the masked stage
])
def test_interrupted_run_resumes_to_the_identical_checkpoint(toy, tmp_path, fail_at):
    frames, _ = toy
    full = tmp_path / "full"
    run(toy, full, seed=1, epochs=3, tune_epochs=0.5)

    broken = tmp_path / "broken"
    bad = FailingSampler(frames, np.full(N_CLIPS, N_FRAMES), CFG.num_frames, CFG.image_size, augment=True,
                         fail_at=fail_at)
    with pytest.raises(Interrupted):
        run(toy, broken, seed=1, smp=bad, epochs=3, tune_epochs=0.5)
    assert (broken / "resume.pt").is_file() and not (broken / "checkpoint.pt").exists()
    saved = torch.load(broken / "resume.pt", map_location="cpu", weights_only=True)
    expected_position = {6: (0, 1), 13: (1, 0), 14: (1, 0)}[fail_at]
    assert (saved["position"]["stage"], saved["position"]["epoch"]) == expected_position
    assert (saved["optimizer"] is None) == (fail_at != 6)
    shutil.copy(broken / "resume.pt", tmp_path / "resume_copy.pt")

    # some unrelated work in between must not matter: the run restores every random stream
    torch.manual_seed(12345)
    np.random.seed(6789)
    torch.rand(100)
    run(toy, broken, seed=1, epochs=3, tune_epochs=0.5)
    assert_same_weights(state(full / "checkpoint.pt"), state(broken / "checkpoint.pt"))
    assert not (broken / "resume.pt").exists()
    stages_logged = [(r["stage"], r["epoch"]) for r in log_lines(broken)]
    assert stages_logged == [(r["stage"], r["epoch"]) for r in log_lines(full)]
    full_losses = [r["loss"] for r in log_lines(full)]
    assert [r["loss"] for r in log_lines(broken)] == full_losses


def test_resume_from_a_copied_resume_file(toy, tmp_path):
    """Deleting checkpoint.pt and restoring an intermediate resume.pt reruns the tail to the same result."""
    frames, _ = toy
    out = tmp_path / "run"
    bad = FailingSampler(frames, np.full(N_CLIPS, N_FRAMES), CFG.num_frames, CFG.image_size, augment=True, fail_at=9)
    with pytest.raises(Interrupted):
        run(toy, out, seed=2, smp=bad, epochs=3, tune_epochs=0.5)
    shutil.copy(out / "resume.pt", tmp_path / "epoch2.pt")
    run(toy, out, seed=2, epochs=3, tune_epochs=0.5)
    first = state(out / "checkpoint.pt")
    (out / "checkpoint.pt").unlink()
    shutil.copy(tmp_path / "epoch2.pt", out / "resume.pt")
    run(toy, out, seed=2, epochs=3, tune_epochs=0.5)
    assert_same_weights(first, state(out / "checkpoint.pt"))


def test_resume_point_of_another_config_is_ignored(toy, tmp_path):
    """A resume.pt left by an interrupted run with other settings must not leak into a new run."""
    frames, _ = toy
    out = tmp_path / "run"
    bad = FailingSampler(frames, np.full(N_CLIPS, N_FRAMES), CFG.num_frames, CFG.image_size, augment=True, fail_at=9)
    with pytest.raises(Interrupted):
        run(toy, out, seed=2, smp=bad, epochs=3, tune_epochs=0.5, lr=1e-2)
    assert (out / "resume.pt").exists()
    (out / "log.jsonl").unlink()
    run(toy, out, seed=2, epochs=3, tune_epochs=0.5)
    fresh = tmp_path / "fresh"
    run(toy, fresh, seed=2, epochs=3, tune_epochs=0.5)
    assert_same_weights(state(fresh / "checkpoint.pt"), state(out / "checkpoint.pt"))


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
