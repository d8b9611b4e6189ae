"""Fine-tuning on the training engine: both tasks, their logs and records, and resuming after a kill.

The job is the real one (`viclip.train.finetune.run_job`, and as a process
`python -m viclip.train.finetune`) on benchmark files the test writes: noisy
single-colour clips, labelled (classification) or captioned (retrieval) by
their colour, and a tiny random pretrained model.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from test_resume import start_worker, wait_until
from tiny_model import tiny

from viclip.model.factory import initial_model
from viclip.model.viclip import ViCLIPConfig
from viclip.train import checkpoint
from viclip.train.distributed import Dist
from viclip.train.finetune import run_job
from viclip.train.state import PREEMPTED_EXIT

REPO = Path(__file__).resolve().parents[1]
TINY = ViCLIPConfig.from_dict(tiny(drop_path=0.1))
COLOURS = {"red": (220, 40, 40), "green": (40, 190, 60), "blue": (50, 80, 230), "yellow": (235, 220, 50)}
TIMING = {"seconds", "clips_per_s", "tokens_per_s", "peak_mem_mb", "mfu"}
N_TRAIN, N_TEST, BATCH, EPOCHS = 32, 16, 8, 3  # 4 steps per epoch, 12 per task


def write_bench(root: Path, name: str, task: str) -> str:
    """A benchmark in the standard layout (frames.npy, frames.parquet, meta.json) with train and test splits."""
    names = list(COLOURS)
    n = N_TRAIN + N_TEST
    colour = np.arange(n) % len(names)
    rng = np.random.default_rng(1)
    frames = np.stack([np.broadcast_to(np.array(COLOURS[names[k]], np.uint8), (8, 16, 16, 3)) for k in colour])
    frames = np.clip(frames + rng.normal(0, 20, frames.shape), 0, 255).astype(np.uint8)
    rows = pd.DataFrame(
        {"clip_id": [f"{name}-{i}" for i in range(n)], "split": ["train"] * N_TRAIN + ["test"] * N_TEST, "n_frames": 8}
    )
    meta = {"name": name, "task": task, "synthetic": True}
    if task == "classification":
        rows["label"] = colour
        meta.update(classes=names, templates=["a {} clip.", "{}"])
    else:  # two captions per video: which one a step uses is drawn per clip
        rows["texts"] = [[f"a {names[k]} clip", f"something {names[k]}"] for k in colour]
    root.mkdir(parents=True, exist_ok=True)
    np.save(root / "frames.npy", frames)
    rows.to_parquet(root / "frames.parquet", index=False)
    (root / "meta.json").write_text(json.dumps(meta))
    return str(root)


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> dict:
    tmp = tmp_path_factory.mktemp("inputs")
    pretrained = tmp / "pretrained.pt"
    checkpoint.save(pretrained, initial_model(TINY, 0))
    return {
        "pretrained": str(pretrained),
        "k400": write_bench(tmp / "k400", "k400", "classification"),
        "msrvtt": write_bench(tmp / "msrvtt", "msrvtt", "retrieval"),
    }


def job(inputs: dict, out: Path, tasks=("k400", "msrvtt"), **execution) -> dict:
    return dict(
        arm="base",
        seed=3,
        tasks=list(tasks),
        bench_dirs=[inputs[t] for t in tasks],
        pretrained=inputs["pretrained"],
        threads=1,
        finetune={"epochs": EPOCHS, "batch_size": BATCH, "lr": 1e-3, "weight_decay": 0.05, "warmup_steps": 2},
        train={"augment": True, "flip": False},
        execution={"deterministic": True, "log_every": 1, **execution},
        checkpoints=[str(out / t / "checkpoint.pt") for t in tasks],
        train_logs=[str(out / t / "log.jsonl") for t in tasks],
        records=[str(out / "eval" / f"{t}-finetuned.json") for t in tasks],
    )


def lines(path) -> list[dict]:
    return [json.loads(x) for x in Path(path).read_text().splitlines()]


def replayable(records: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if k not in TIMING} for r in records]


def weights(path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)["model"]


@pytest.fixture(scope="module")
def reference(inputs, tmp_path_factory) -> dict:
    torch.set_num_threads(1)
    spec = job(inputs, tmp_path_factory.mktemp("reference"))
    run_job(spec, Dist())
    return spec


def test_both_tasks_train_log_and_score_above_chance(reference):
    for task, ckpt, log_path, record_path in zip(
        reference["tasks"], reference["checkpoints"], reference["train_logs"], reference["records"]
    ):
        saved = torch.load(ckpt, map_location="cpu", weights_only=True)
        assert saved["task"] == task and saved["config"]["embed_dim"] == TINY.embed_dim
        assert ("head.weight" in saved["model"]) == (task == "k400")  # the classifier is what is saved
        log = lines(log_path)
        steps = [r for r in log if r["kind"] == "step"]
        epochs = [r for r in log if r["kind"] == "epoch"]
        assert len(steps) == EPOCHS * N_TRAIN // BATCH and len(epochs) == EPOCHS
        assert all(r["task"] == task and r["stage"] == "finetune" for r in log)
        assert all({"loss", "lr", "clips_per_s", "grad_norm"} <= r.keys() for r in steps)
        lrs = [r["lr"] for r in steps]
        assert lrs[0] < lrs[1] < lrs[2] == pytest.approx(1e-3) and lrs[2:] == sorted(lrs[2:], reverse=True)
        assert epochs[-1]["loss"] < epochs[0]["loss"]
        record = json.loads(Path(record_path).read_text())
        assert record["protocol"] == "finetuned" and record["benchmark"] == task and record["run"] == "base/seed3"
        assert record["details"]["train_clips"] == N_TRAIN and record["details"]["steps"] == len(steps)
        chance = 1 / record["details"]["n_candidates"]
        key = "top1" if task == "k400" else "t2v_r1"
        assert record["metrics"][key] > chance, record["metrics"]
        assert not (Path(ckpt).parent / "resume").exists()  # nothing left to resume


def test_only_the_trained_parameters_are_in_the_wrapped_modules_graph(inputs):
    """DDP without find_unused_parameters needs every trainable parameter of the module to get a gradient."""
    from viclip.data.benchmarks.load import load_benchmark
    from viclip.model.tokenizer import tokenizer_for
    from viclip.train.finetune_tasks import (
        ClassificationTask,
        Classifier,
        RetrievalTask,
    )

    for name in ("k400", "msrvtt"):
        model = initial_model(TINY, 0)
        bench = load_benchmark(inputs[name], TINY.num_frames, TINY.image_size)
        if name == "k400":
            task = ClassificationTask(
                Classifier(model, torch.randn(4, TINY.embed_dim)), bench.splits["train"], 4, 0, (8,)
            )
        else:
            task = RetrievalTask(model, tokenizer_for(TINY), bench.splits["train"], 4, 0, (8,))
        mb = next(task.batches(0, 0, 0, 4, Dist(), 0))
        task.loss(task.module(*mb.inputs), mb.targets, Dist()).backward()
        trainable = {n: p for n, p in task.model.named_parameters() if p.requires_grad}
        assert trainable and all(p.grad is not None for p in trainable.values()), name
        assert any(n.startswith("text_encoder") for n in trainable) == (name == "msrvtt")


def saved_steps(spec: dict, task: int) -> list[int]:
    d = Path(spec["checkpoints"][task]).parent / "resume"
    return sorted(int(p.stem.split("-")[1]) for p in d.glob("step-*.pt")) if d.is_dir() else []


def assert_same_job(a: dict, b: dict) -> None:
    for ca, cb in zip(a["checkpoints"], b["checkpoints"]):
        wa, wb = weights(ca), weights(cb)
        assert wa.keys() == wb.keys()
        for k in wa:
            assert torch.equal(wa[k], wb[k]), (ca, k)
    for la, lb in zip(a["train_logs"], b["train_logs"]):
        assert replayable(lines(la)) == replayable(lines(lb))
    for ra, rb in zip(a["records"], b["records"]):
        ma, mb = (json.loads(Path(r).read_text()) for r in (ra, rb))
        assert ma["metrics"] == mb["metrics"] and ma["details"] == mb["details"]


def test_sigkill_in_the_second_task_then_rerun_is_identical(inputs, reference, tmp_path, caplog):
    spec = job(inputs, tmp_path / "run", checkpoint_every=1)
    proc = start_worker(spec, tmp_path / "job.json", "viclip.train.finetune")
    # mid-epoch in retrieval, after classification finished (its final resume point stays until the job ends)
    wait_until(
        lambda: (s := saved_steps(spec, 1)) and s[-1] >= 5 and s[-1] % (N_TRAIN // BATCH),
        proc,
        "a mid-epoch resume point of the second task",
        120.0,
    )
    proc.kill()
    assert proc.wait() == -signal.SIGKILL
    assert saved_steps(spec, 0)[-1] == EPOCHS * N_TRAIN // BATCH  # the finished task's final resume point
    torch.set_num_threads(1)
    with caplog.at_level(logging.INFO, logger="viclip"):
        run_job(spec, Dist())  # the rerun: Snakemake's retry or a requeued Slurm job
    resumed = [r.getMessage() for r in caplog.records if r.getMessage().startswith("resuming from")]
    assert len(resumed) == 2 and "step-000000012.pt" in resumed[0] and "step-000000012.pt" not in resumed[1]
    assert_same_job(reference, spec)
    assert not saved_steps(spec, 0) and not saved_steps(spec, 1)


def test_sigterm_saves_exits_75_and_the_rerun_continues(inputs, reference, tmp_path):
    spec = job(inputs, tmp_path / "run", tasks=("k400",))
    proc = start_worker(spec, tmp_path / "job.json", "viclip.train.finetune")
    wait_until(lambda: saved_steps(spec, 0) == [N_TRAIN // BATCH], proc, "the first epoch's resume point", 120.0)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == PREEMPTED_EXIT
    assert "stopped by SIGTERM" in (tmp_path / "job.log").read_text()
    assert not Path(spec["checkpoints"][0]).exists()
    run_job(spec, Dist())
    ref = {k: [v[0]] if isinstance(v, list) else v for k, v in reference.items()}
    assert_same_job(ref, spec)


@pytest.mark.slow
def test_two_gloo_processes_under_torchrun_match_one(inputs, tmp_path):
    """The global batch split over 2 ranks (DDP, gathered contrastive loss) trains the same model as one process.

    Without drop path: its per-step draws are per rank, so they differ with the process count.
    """
    from dataclasses import replace

    from viclip.train import launch
    from viclip.train.finetune import launch_command

    pretrained = tmp_path / "pretrained.pt"
    checkpoint.save(pretrained, initial_model(replace(TINY, drop_path=0.0), 0))
    inputs = {**inputs, "pretrained": str(pretrained)}
    reference = job(inputs, tmp_path / "one")
    torch.set_num_threads(1)
    run_job(reference, Dist())
    spec = job(inputs, tmp_path / "two", nproc=2)
    cmd = launch_command(launch.job_spec(tmp_path / "job.json", **spec), 2, stop_timeout_s=30)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    done = subprocess.run(cmd, env=env, cwd=REPO, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    for ca, cb in zip(reference["checkpoints"], spec["checkpoints"]):
        wa, wb = weights(ca), weights(cb)
        for k in wa:
            a, b = wa[k], wb[k]
            if k.endswith("in_proj_bias"):
                # the key bias shifts every logit of a query alike: its gradient is zero but for rounding,
                # which Adam scales up to full steps; compare the query and value biases
                w = a.shape[0] // 3
                a, b = torch.cat([a[:w], a[2 * w :]]), torch.cat([b[:w], b[2 * w :]])
            torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-5, msg=lambda m, where=f"{cb} {k}": f"{where}: {m}")
    for la, lb in zip(reference["train_logs"], spec["train_logs"]):
        for a, b in zip(lines(la), lines(lb)):
            assert b["loss"] == pytest.approx(a["loss"], rel=1e-4)
