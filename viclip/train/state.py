"""Resume points of a training run, random-number states, and stopping on a signal.

Resume points are `step-<n>.pt` files in one directory, written atomically
and durably (temp file synced to disk, then renamed), so a file that exists
is complete even after a node crash; the newest that loads and carries this
run's fingerprint wins, the last `keep` are kept. Files left by other
settings are removed when a run starts: they can never be resumed by it.

A resume point that does not load (truncated by a full disk, damaged by
hand) is set aside as `step-<n>.pt.corrupt`, with a warning, and the run
resumes from the newest good one before it; good ones are never removed
for it. When resume points exist but none of them loads, `latest` raises
`ResumeError` instead of silently training again from step 0.

Preemption: SIGTERM (Slurm's scancel and time limit, torchrun passing on a
stop) and SIGUSR1 (`sbatch --signal=USR1@...`) only set a flag; the loop
checks it between optimizer steps, writes a resume point there and raises
`Preempted`. Entry points exit with `PREEMPTED_EXIT` (75, EX_TEMPFAIL): any
non-zero status is a failed job to Slurm and Snakemake, which `--retries`
(or a Slurm requeue) resubmits, and the resubmitted job resumes.
"""

from __future__ import annotations

import logging
import random
import re
import signal
from pathlib import Path

import numpy as np
import torch

from viclip.model.checkpoints import UnreadableCheckpoint, load_torch
from viclip.train.checkpoint import write_torch

log = logging.getLogger("viclip")

PREEMPTED_EXIT = 75
STOP_SIGNALS = (signal.SIGTERM, signal.SIGUSR1)
_NAME = re.compile(r"^step-(\d+)\.pt$")


class Preempted(Exception):
    """Training stopped on a signal after writing a resume point."""

    def __init__(self, signum: int, path: Path | None):
        super().__init__(f"stopped by {signal.Signals(signum).name}; resume point {path}")
        self.signum, self.path = signum, path


class ResumeError(RuntimeError):
    """Resume points of a run exist, but none of them can be read."""


class ResumeStore:
    def __init__(self, directory: str | Path, fingerprint: str, keep: int = 2):
        if keep < 1:
            raise ValueError("keep must be at least 1")
        self.dir, self.fingerprint, self.keep = Path(directory), fingerprint, keep

    def _files(self) -> list[tuple[int, Path]]:
        if not self.dir.is_dir():
            return []
        found = [(int(m.group(1)), p) for p in self.dir.iterdir() if (m := _NAME.match(p.name))]
        return sorted(found, reverse=True)

    def latest(self) -> dict | None:
        """The newest readable resume point of this run, or None when there is none.

        Every rank of a run calls this at once: whatever one rank renames or
        removes, the others skip.
        """
        chosen, chosen_path, damaged = None, None, []
        for _step, path in self._files():
            try:
                state = load_torch(path)
            except FileNotFoundError:  # set aside or removed by another rank meanwhile
                continue
            except UnreadableCheckpoint as exc:
                damaged.append((path, str(exc)))
                continue
            if not isinstance(state, dict):
                damaged.append((path, f"{path}: not a resume point (a {type(state).__name__})"))
            elif state.get("fingerprint") != self.fingerprint:
                log.info("%s: written with other settings; removed", path)
                path.unlink(missing_ok=True)
            elif chosen is None:
                chosen, chosen_path = state, path
        if damaged and chosen is None:
            raise ResumeError(
                f"{self.dir}: none of the resume points can be read, and training does not start over from "
                "step 0 by itself:\n  "
                + "\n  ".join(reason for _, reason in damaged)
                + f"\nTo train this run again from the start, delete {self.dir} and rerun."
            )
        for path, reason in damaged:
            aside = path.with_name(path.name + ".corrupt")
            try:
                path.replace(aside)
            except FileNotFoundError:
                pass
            log.warning("unreadable resume point set aside as %s (%s)", aside, reason)
        if chosen is not None:
            if damaged:
                log.warning("resuming from %s, the newest readable resume point", chosen_path)
            else:
                log.info("resuming from %s", chosen_path)
        return chosen

    def save(self, state: dict, step: int) -> Path:
        path = self.dir / f"step-{step:09d}.pt"
        write_torch({**state, "fingerprint": self.fingerprint}, path)  # on disk before older ones go
        for _, old in self._files()[self.keep :]:
            old.unlink(missing_ok=True)
        return path

    def clear(self) -> None:
        """Remove the run's resume points (and any set aside as damaged) once the run is done."""
        for _, path in self._files():
            path.unlink(missing_ok=True)
        if self.dir.is_dir():
            for aside in self.dir.glob("step-*.pt.corrupt"):
                aside.unlink(missing_ok=True)
            if not any(self.dir.iterdir()):
                self.dir.rmdir()


def rng_states() -> dict:
    """Every global random stream of this process (python, numpy, torch CPU, CUDA)."""
    version, key, gauss = random.getstate()
    kind, np_key, pos, has_gauss, cached = np.random.get_state()
    # plain lists and tensors: resume points are read with weights_only=True, which refuses numpy arrays
    state = {
        "python": [version, list(key), gauss],
        "numpy": [kind, np_key.tolist(), pos, has_gauss, cached],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_states(state: dict) -> None:
    version, key, gauss = state["python"]
    random.setstate((version, tuple(key), gauss))
    kind, np_key, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, np.array(np_key, dtype=np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


class StopFlag:
    """Set by SIGTERM/SIGUSR1 while installed (main thread only; elsewhere signals keep their handlers)."""

    def __init__(self):
        self.signum: int | None = None
        self._previous: dict[int, object] = {}

    def _handle(self, signum, frame) -> None:
        self.signum = signum
        log.warning("received %s: will save a resume point after this step and stop", signal.Signals(signum).name)

    def __enter__(self) -> StopFlag:
        try:
            for sig in STOP_SIGNALS:
                self._previous[sig] = signal.signal(sig, self._handle)
        except ValueError:  # not the main thread
            pass
        return self

    def __exit__(self, *exc) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()
