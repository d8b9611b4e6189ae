"""The TensorBoard mirror of the training log: what it shows after a fresh run and after a resume."""

import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("tensorboard")
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator  # noqa: E402

from viclip.train.observe import Sinks, global_step  # noqa: E402


def curves(directory: Path) -> dict[str, list[tuple[int, float]]]:
    """Every scalar tag as TensorBoard shows it: (step, value) in order."""
    acc = EventAccumulator(str(directory), size_guidance={"scalars": 0})
    acc.Reload()
    return {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


def log_curves(records: list[dict]) -> dict[str, list[tuple[int, float]]]:
    """The same view computed from log.jsonl records (values rounded to float32, as the event files hold them)."""
    out: dict[str, list] = {}
    for r in records:
        step = global_step(r)
        for k, v in r.items():
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                out.setdefault(f"{r['kind']}/{k}", []).append((step, float(np.float32(v))))
    return out


def record(step: int, loss: float) -> dict:
    return {"kind": "step", "stage": "masked", "step": step, "loss": loss, "lr": 1e-3}


def test_a_resumed_run_shows_one_value_per_step(tmp_path):
    # the killed attempt logged steps 1-6; its resume point holds steps 1-3
    first = Sinks(tmp_path, "run", "fp", tensorboard=True, wandb=False, enabled=True)
    for s in range(1, 7):
        first.scalars(s, record(s, 10.0 + s))
    first.close()
    assert [s for s, _ in curves(tmp_path / "tensorboard")["step/loss"]] == [1, 2, 3, 4, 5, 6]

    kept = [record(s, 10.0 + s) for s in range(1, 4)]
    resumed = Sinks(
        tmp_path, "run", "fp", tensorboard=True, wandb=False, enabled=True, history=[json.dumps(r) for r in kept]
    )
    later = [record(s, 20.0 + s) for s in range(4, 6)]  # the rerun's own steps 4-5 differ from the attempt's
    for r in later:
        resumed.scalars(r["step"], r)
    resumed.close()
    assert curves(tmp_path / "tensorboard") == log_curves(kept + later)


def test_disabled_or_off_writes_nothing(tmp_path):
    for enabled, tensorboard in ((False, True), (True, False)):
        sinks = Sinks(tmp_path, "run", "fp", tensorboard=tensorboard, wandb=False, enabled=enabled)
        sinks.scalars(1, record(1, 1.0))
        sinks.close()
    assert not (tmp_path / "tensorboard").exists()
