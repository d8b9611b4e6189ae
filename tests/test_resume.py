"""Killed and signalled training processes resume to the uninterrupted result.

The training process is the real worker (`python -m viclip.train.pretrain`)
on corpus files the test writes, in deterministic mode on CPU:
- SIGKILL mid-epoch (no chance to save anything) after a few periodic resume
  points exist: the rerun ends bit-identical, with the same log values;
- SIGTERM (what scancel and the Slurm time limit send): the process saves at
  the next step boundary, exits 75, and the rerun continues from there;
- the same under torchrun with 2 ranks, signalled the way Slurm does it
  (every process of the job), through the launcher (slow).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from test_pretrain import TINY, replayable, train_cfg, write_toy_corpus

from viclip.train import launch
from viclip.train.distributed import Dist
from viclip.train.pretrain import run_job
from viclip.train.state import PREEMPTED_EXIT

REPO = Path(__file__).resolve().parents[1]
STEPS_PER_EPOCH = 6  # 48 clips, batch 8: 4 epochs + a half tuning epoch = 27 steps


def job(tmp_path: Path, out: str, **execution) -> dict:
    files = write_toy_corpus(tmp_path / "corpus", n=48, size=32)
    model = {**TINY, "image_size": 32}  # 64 patch tokens: slow enough to be caught mid-run
    return dict(
        model=model,
        train=train_cfg(epochs=4, tune_epochs=0.5),
        mask_ratio=0.5,
        seed=4,
        threads=1,
        **files,
        out_dir=str(tmp_path / out),
        log_path=str(tmp_path / out / "log.jsonl"),
        execution={"deterministic": True, "log_every": 2, **execution},
    )


def steps_saved(out_dir: Path) -> list[int]:
    d = out_dir / "resume"
    return sorted(int(p.stem.split("-")[1]) for p in d.glob("step-*.pt")) if d.is_dir() else []


def start_worker(spec: dict, path: Path, module: str = "viclip.train.pretrain") -> subprocess.Popen:
    """The job `spec` (written to `path`) in a process of its own, as Snakemake or Slurm starts it."""
    path.write_text(json.dumps(spec))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    log = open(path.with_suffix(".log"), "w")
    return subprocess.Popen(
        [sys.executable, "-m", module, str(path)], stdout=log, stderr=subprocess.STDOUT, env=env, cwd=REPO
    )


def wait_until(condition, proc: subprocess.Popen, what: str, timeout: float = 300.0) -> None:
    end = time.monotonic() + timeout
    while not condition():
        if proc.poll() is not None:
            pytest.fail(f"the training process ended (status {proc.returncode}) before {what}")
        if time.monotonic() > end:
            proc.kill()
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.005)


def last_step_logged(out_dir: Path) -> int:
    """The newest step line's step in a running job's log (0 before any); a line still being written is skipped."""
    path = out_dir / "log.jsonl"
    text = path.read_text() if path.exists() else ""
    done = [json.loads(x) for x in text[: text.rfind("\n") + 1].splitlines()]
    return max((r["step"] for r in done if r["kind"] == "step"), default=0)


def lines(out_dir: Path) -> list[dict]:
    return [json.loads(x) for x in (out_dir / "log.jsonl").read_text().splitlines()]


def weights(out_dir: Path) -> dict:
    return torch.load(out_dir / "checkpoint.pt", map_location="cpu", weights_only=True)["model"]


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("reference")
    torch.set_num_threads(1)
    run_job(job(tmp, "run"), Dist())
    return tmp / "run"


def assert_same_run(a: Path, b: Path) -> None:
    wa, wb = weights(a), weights(b)
    assert wa.keys() == wb.keys()
    for k in wa:
        assert torch.equal(wa[k], wb[k]), k
    assert replayable(lines(a)) == replayable(lines(b))


def test_sigkill_mid_epoch_then_rerun_is_bit_identical(reference, tmp_path):
    spec = job(tmp_path, "run", checkpoint_every=2)
    out = Path(spec["out_dir"])
    proc = start_worker(spec, tmp_path / "job.json")
    # a few periodic resume points, the newest mid-epoch (not at an epoch end)
    wait_until(
        lambda: len(s := steps_saved(out)) >= 2 and s[-1] >= 4 and s[-1] % STEPS_PER_EPOCH,
        proc,
        "two periodic resume points",
    )
    proc.kill()
    assert proc.wait() == -signal.SIGKILL
    assert not (out / "checkpoint.pt").exists()
    saved = steps_saved(out)
    assert 1 <= len(saved) <= 2  # the last two are kept
    newest = torch.load(out / "resume" / f"step-{saved[-1]:09d}.pt", map_location="cpu", weights_only=True)
    assert newest["position"]["step"] > 0 or newest["position"]["phase"] == 1
    torch.set_num_threads(1)
    run_job(spec, Dist())  # the rerun: Snakemake's retry or a requeued Slurm job
    assert_same_run(reference, out)
    assert not (out / "resume").exists()


def test_tensorboard_after_sigkill_and_rerun_shows_the_log(tmp_path):
    """With the TensorBoard mirror on, a killed and rerun job's curves are exactly log.jsonl's lines."""
    pytest.importorskip("tensorboard")
    from test_tensorboard import curves, log_curves

    spec = job(tmp_path, "run", checkpoint_every=2, tensorboard=True, log_every=1)
    out = Path(spec["out_dir"])
    proc = start_worker(spec, tmp_path / "job.json")
    wait_until(lambda: len(s := steps_saved(out)) >= 1 and s[-1] >= 4, proc, "a periodic resume point")
    proc.kill()
    proc.wait()
    assert list((out / "tensorboard").glob("events.out.tfevents.*"))  # the killed attempt's file
    torch.set_num_threads(1)
    run_job(spec, Dist())
    assert len(list((out / "tensorboard").glob("events.out.tfevents.*"))) == 1  # the killed attempt's is replaced
    logged = lines(out)
    shown = curves(out / "tensorboard")
    assert shown == log_curves(logged)
    assert len(shown["step/loss"]) == sum(r["kind"] == "step" for r in logged) > STEPS_PER_EPOCH


def test_sigterm_saves_exits_75_and_the_rerun_continues(reference, tmp_path):
    spec = job(tmp_path, "run")  # no periodic resume points: only epoch ends and the signal
    out = Path(spec["out_dir"])
    proc = start_worker(spec, tmp_path / "job.json")
    # Signalled once a step past the first epoch's resume point is logged: a signal that came just after that
    # resume point was written could rightly stop there, and the save below would not show a new one.
    wait_until(lambda: last_step_logged(out) > STEPS_PER_EPOCH, proc, "a step of the second epoch")
    before = last_step_logged(out)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=120) == PREEMPTED_EXIT
    text = (tmp_path / "job.log").read_text()
    assert "received SIGTERM" in text and "stopped by SIGTERM" in text
    saved = steps_saved(out)
    # the stop's resume point: the step boundary after the signal (or the epoch end, when it came just there)
    assert saved[-1] >= before > STEPS_PER_EPOCH
    assert not (out / "checkpoint.pt").exists()
    logged = lines(out)
    assert logged[-1]["step" if logged[-1]["kind"] == "step" else "steps"] <= saved[-1]
    torch.set_num_threads(1)
    run_job(spec, Dist())
    assert_same_run(reference, out)


def children(pid: int) -> list[int]:
    return [
        int(x)
        for task in Path(f"/proc/{pid}/task").glob("*")
        if (task / "children").exists()
        for x in (task / "children").read_text().split()
    ]


@pytest.mark.slow  # two torchrun launches of 2 ranks: ~1 min here
def test_torchrun_job_signalled_like_slurm_resumes(reference, tmp_path):
    spec = job(tmp_path, "run", nproc=2, checkpoint_every=3)
    out = Path(spec["out_dir"])
    path = launch.job_spec(tmp_path / "job.json", **spec)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    code = (
        "import sys; from viclip.train import launch, pretrain; "
        f"sys.exit(launch.run(launch.torchrun_command({str(path)!r}, 2, pretrain.__name__), sys.stdout))"
    )
    with open(tmp_path / "launcher.log", "w") as log:
        proc = subprocess.Popen([sys.executable, "-c", code], stdout=log, stderr=subprocess.STDOUT, env=env, cwd=REPO)
        wait_until(lambda: len(steps_saved(out)) >= 1, proc, "a resume point")
        # Slurm signals every process of the job: the launcher, torchrun and both ranks (which then have it
        # twice, once from torchrun)
        torchrun = children(proc.pid)
        ranks = [pid for t in torchrun for pid in children(t)]
        for pid in [proc.pid, *torchrun, *ranks]:
            os.kill(pid, signal.SIGTERM)
        rc = proc.wait(timeout=180)
    text = (tmp_path / "launcher.log").read_text()
    assert rc != 0, text[-3000:]
    assert "stopped by SIGTERM" in text, text[-3000:]
    stopped_at = steps_saved(out)[-1]
    assert not (out / "checkpoint.pt").exists()
    with open(tmp_path / "rerun.log", "w") as log:
        rc = launch.run(launch.torchrun_command(path, 2, run_job.__module__), log)
    assert rc == 0, (tmp_path / "rerun.log").read_text()[-3000:]
    assert f"resuming from {out / 'resume'}" in (tmp_path / "rerun.log").read_text()
    assert stopped_at < 27
    # 2 ranks sum in another order than 1: the same run to float tolerance (see test_distributed)
    a, b = weights(reference), weights(out)
    for k in a:
        if not k.endswith("in_proj_bias"):
            torch.testing.assert_close(a[k], b[k], rtol=1e-4, atol=1e-5, msg=k)
    np.testing.assert_allclose([r["loss"] for r in lines(reference)], [r["loss"] for r in lines(out)], rtol=1e-5)
