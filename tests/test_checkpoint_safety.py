"""Hostile, damaged and reproducible checkpoints.

- A checkpoint whose pickle would run a command (`posix.system`) is refused by
  every loader before anything in it runs; the message names the file and the
  config key, and never passes on torch's advice to load with
  `weights_only=False`.
- A damaged newest resume point is set aside with a warning and the run goes
  on from the good one before it, never from step 0 on its own.
- Two runs of the same deterministic job write byte-identical `checkpoint.pt`
  files (the sha256 that evaluation records carry): timings are in the log.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from test_pretrain import (
    BATCH,
    CFG,
    N_CLIPS,
    N_FRAMES,
    TINY,
    FailingSampler,
    Interrupted,
    assert_same_weights,
    run,
    state,
    toy_clips,
    train_cfg,
    write_toy_corpus,
)

from viclip.eval.records import file_sha256
from viclip.model.checkpoints import UnreadableCheckpoint, load_torch, read_state_dict
from viclip.model.tokenizer import WordHashTokenizer
from viclip.model.viclip import ViCLIP
from viclip.train import checkpoint
from viclip.train.distributed import Dist
from viclip.train.pretrain import run_job
from viclip.train.state import ResumeError, ResumeStore

REPO = Path(__file__).resolve().parents[1]
ADVICE = ("weights_only", "add_safe_globals", "trusted source")


class RunsACommand:
    """Unpickling this would call os.system (pickled as `posix.system`): it must never be unpickled."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


class RunsASubprocess(RunsACommand):
    def __reduce__(self):
        return (subprocess.call, (["touch", str(self.marker)],))


class NotATensor:
    """A harmless class: still a pickled Python object, which a checkpoint never needs."""


def hostile(path: Path, payload) -> Path:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.save({"model": {"temp": torch.zeros(())}, "config": payload}, path)
    return path


@pytest.fixture()
def marker(tmp_path) -> Path:
    return tmp_path / "the-command-ran"


def assert_clean_refusal(message: str, path: Path, key: str | None) -> None:
    assert str(path) in message
    if key:
        assert key in message
    assert not any(a in message for a in ADVICE), message


@pytest.mark.parametrize("kind", [RunsACommand, RunsASubprocess])
def test_a_checkpoint_that_runs_a_command_is_refused_by_every_loader(tmp_path, marker, kind):
    path = hostile(tmp_path / "hostile.pt", kind(marker))
    with pytest.raises(UnreadableCheckpoint) as info:
        load_torch(path, "model.clip_pretrained")
    assert_clean_refusal(str(info.value), path, "model.clip_pretrained")
    assert "refused" in str(info.value) and "could run code" in str(info.value)
    assert info.value.__cause__ is None and info.value.__suppress_context__  # torch's text is not chained
    if kind is RunsACommand:
        assert "posix.system" in str(info.value)

    with pytest.raises(ValueError) as info:
        read_state_dict(path, key="model.clip_pretrained")
    assert_clean_refusal(str(info.value), path, "model.clip_pretrained")

    with pytest.raises(ValueError) as info:
        checkpoint.load_model(path, key="eval.checkpoint")
    assert_clean_refusal(str(info.value), path, "eval.checkpoint")
    assert not marker.exists()


def test_a_pickled_class_is_refused_with_its_name(tmp_path):
    path = hostile(tmp_path / "classy.pt", NotATensor())
    with pytest.raises(UnreadableCheckpoint) as info:
        load_torch(path, "model.clip_pretrained")
    assert "NotATensor" in str(info.value)
    assert_clean_refusal(str(info.value), path, "model.clip_pretrained")


def test_a_truncated_checkpoint_is_called_damaged(tmp_path):
    checkpoint.save(tmp_path / "ck.pt", ViCLIP(CFG))
    data = (tmp_path / "ck.pt").read_bytes()
    cut = tmp_path / "cut.pt"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(UnreadableCheckpoint) as info:
        load_torch(cut, "model.clip_pretrained")
    assert "truncated" in str(info.value)
    assert_clean_refusal(str(info.value), cut, "model.clip_pretrained")


def test_a_hostile_clip_pretrained_file_names_the_key_and_the_file(tmp_path, marker):
    """`model.clip_pretrained` is read by open_clip's own torch.load(weights_only=True)."""
    pytest.importorskip("open_clip")
    from test_clip_init import SMALL, SMALL_CLIP

    from viclip.model.factory import initial_model
    from viclip.model.viclip import ViCLIPConfig

    (tmp_path / "tiny-clip.json").write_text(json.dumps({**SMALL_CLIP, "quick_gelu": True}))
    weights = hostile(tmp_path / "clip.pt", RunsACommand(marker))
    cfg = ViCLIPConfig(
        **{**SMALL, "init": "clip", "clip_name": str(tmp_path / "tiny-clip.json"), "clip_pretrained": str(weights)}
    )
    with pytest.raises(ValueError) as info:
        initial_model(cfg, 0)
    assert_clean_refusal(str(info.value), weights, "model.clip_pretrained")
    assert "posix.system" in str(info.value)
    assert not marker.exists()


# ---------------------------------------------------------------- resume points


def steps(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


def truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def test_a_truncated_newest_resume_point_falls_back_to_the_one_before(tmp_path, caplog):
    store = ResumeStore(tmp_path, "mine", keep=3)
    for step in (1, 2, 3):
        store.save({"step": step, "weights": torch.full((64,), float(step))}, step)
    truncate(tmp_path / "step-000000003.pt")
    with caplog.at_level(logging.WARNING, logger="viclip"):
        assert store.latest()["step"] == 2
    assert "step-000000003.pt" in caplog.text and "step-000000002.pt" in caplog.text
    # the good ones stay; the damaged one is set aside, not deleted, and not counted as a resume point
    assert steps(tmp_path) == ["step-000000001.pt", "step-000000002.pt", "step-000000003.pt.corrupt"]
    assert store.latest()["step"] == 2
    store.save({"step": 4}, 4)
    assert store.latest()["step"] == 4
    store.clear()
    assert not tmp_path.exists()


def test_a_hostile_resume_point_is_set_aside_without_running(tmp_path, marker):
    store = ResumeStore(tmp_path, "mine")
    store.save({"step": 1}, 1)
    hostile(tmp_path / "step-000000002.pt", RunsACommand(marker))
    assert store.latest()["step"] == 1
    assert (tmp_path / "step-000000002.pt.corrupt").exists() and not marker.exists()


@pytest.mark.parametrize("keep", [1, 2])
def test_no_readable_resume_point_stops_instead_of_starting_over(tmp_path, keep):
    store = ResumeStore(tmp_path, "mine", keep=keep)
    for step in (1, 2):
        store.save({"step": step}, step)
    for path in tmp_path.glob("step-*.pt"):
        truncate(path)
    with pytest.raises(ResumeError) as info:
        store.latest()
    assert str(tmp_path) in str(info.value) and "step-000000002.pt" in str(info.value)
    assert "weights_only" not in str(info.value)
    assert len(list(tmp_path.glob("step-*.pt"))) == keep  # nothing removed: the user decides


def test_a_run_resumes_from_the_good_point_before_a_truncated_newest(tmp_path, caplog):
    frames, texts = toy_clips()
    toy = frames, WordHashTokenizer(TINY["vocab_size"], TINY["context_length"])(texts)
    full = tmp_path / "full"
    run(toy, full, seed=2, epochs=2, tune_epochs=0)
    out = tmp_path / "run"
    bad = FailingSampler(
        frames, np.full(N_CLIPS, N_FRAMES), CFG.num_frames, CFG.image_size, augment=True, fail_at=7 * BATCH
    )
    with pytest.raises(Interrupted):
        run(toy, out, seed=2, smp=bad, epochs=2, tune_epochs=0, execution={"checkpoint_every": 1})
    assert steps(out / "resume") == ["step-000000005.pt", "step-000000006.pt"]
    truncate(out / "resume" / "step-000000006.pt")  # e.g. a disk that filled up
    with caplog.at_level(logging.WARNING, logger="viclip"):
        run(toy, out, seed=2, epochs=2, tune_epochs=0, execution={"checkpoint_every": 1})
    assert "resuming from" in caplog.text and "step-000000005.pt" in caplog.text
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert log[0]["kind"] == "epoch" and log[0]["steps"] == 4  # epoch 0 came from the resume point
    assert_same_weights(state(full / "checkpoint.pt"), state(out / "checkpoint.pt"))
    assert not (out / "resume").exists()


# ---------------------------------------------------------------- reproducible checkpoints


def test_two_default_runs_write_byte_identical_checkpoints(tmp_path):
    """The job as the workflow runs it, with the shipped config's execution settings."""
    execution = yaml.safe_load((REPO / "config.yaml").read_text())["pretrain"]["execution"]
    files = write_toy_corpus(tmp_path / "corpus")
    hashes = []
    for name in ("a", "b"):
        out = tmp_path / name
        spec = dict(
            model=TINY,
            train=train_cfg(epochs=2, tune_epochs=0.5),
            mask_ratio=0.5,
            seed=0,
            **files,
            out_dir=str(out),
            log_path=str(out / "log.jsonl"),
            execution=execution,
        )
        summary = run_job(spec, Dist(device=torch.device("cpu")))
        assert summary["seconds"] >= 0  # the job still reports its time ...
        hashes.append(file_sha256(out / "checkpoint.pt"))
        saved = torch.load(out / "checkpoint.pt", map_location="cpu", weights_only=True)
        assert "seconds" not in saved["summary"]  # ... but not in the checkpoint
        last = json.loads((out / "log.jsonl").read_text().splitlines()[-1])
        assert last["seconds"] == summary["seconds"]  # the log has it, where the report reads it
    assert hashes[0] == hashes[1]
