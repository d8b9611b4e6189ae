"""Starting the training processes of one job: in this process, or under torchrun.

The job's `Execution` (`pretrain.execution`, `finetune.execution`) decides:
`gpus` GPUs per node on `nodes` nodes, or `nproc` CPU processes (gloo) when
`gpus` is 0. One process trains in the
job's own process; more run under `python -m torch.distributed.run` (an
argument list, never a shell). Across nodes, srun starts one torchrun per
node with a c10d rendezvous on the job's first host (written for Slurm, not
tested on a real multi-node allocation).

Stopping: SIGTERM or SIGUSR1 must reach torchrun or the workers. Slurm
signals every process of a job (scancel, the time limit, `--signal=USR1@T`
without `B:`); a local Snakemake signals the job's process group, which
torchrun is in. torchrun passes the signal on to the workers (they run in
sessions of their own) and gives them `stop_timeout_s` before SIGKILL; a
worker that has the signal twice (from Slurm and from torchrun) stops once:
it finishes its step, saves a resume point and exits `PREEMPTED_EXIT`. The
launcher itself ignores the signals and waits, so the job's exit status is
torchrun's (non-zero after a stop: a failed job, to be retried).
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from viclip.runtime import as_json
from viclip.train.execution import Execution
from viclip.train.state import PREEMPTED_EXIT, STOP_SIGNALS, Preempted

log = logging.getLogger("viclip")

RDZV_PORT = 29511


def job_spec(path: str | Path, **fields) -> Path:
    path = Path(path)
    path.write_text(json.dumps(fields, indent=1, sort_keys=True))
    return path


def torchrun_command(
    spec: str | Path,
    nproc_per_node: int,
    module: str,
    nodes: int = 1,
    endpoint: str | None = None,
    run_id: str = "viclip",
    stop_timeout_s: int = 120,
) -> list[str]:
    """torchrun starting `python -m module spec` per rank; `module` is the rank function's own (`fn.__module__`)."""
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc-per-node",
        str(nproc_per_node),
        "--signals-to-handle",
        "SIGTERM,SIGINT,SIGHUP,SIGQUIT,SIGUSR1",
        "--shutdown-timeout",
        str(stop_timeout_s),
    ]
    if nodes == 1:
        cmd += ["--standalone", "--nnodes", "1"]
    else:
        if not endpoint:
            raise ValueError("a multi-node launch needs a rendezvous endpoint")
        cmd += ["--nnodes", str(nodes), "--rdzv-backend", "c10d", "--rdzv-endpoint", endpoint, "--rdzv-id", run_id]
    return cmd + ["-m", module, str(spec)]


def slurm_command(spec: str | Path, nproc_per_node: int, nodes: int, stop_timeout_s: int, module: str) -> list[str]:
    """srun with one torchrun per node of the current Slurm allocation."""
    if "SLURM_JOB_NODELIST" not in os.environ:
        raise RuntimeError(f"pretrain.execution.nodes is {nodes}: a multi-node run must run inside a Slurm job")
    hosts = subprocess.run(
        ["scontrol", "show", "hostnames", os.environ["SLURM_JOB_NODELIST"]], check=True, capture_output=True, text=True
    ).stdout.split()
    if len(hosts) < nodes:
        raise RuntimeError(f"the Slurm allocation has {len(hosts)} nodes, pretrain.execution.nodes asks for {nodes}")
    run_id = f"viclip-{os.environ.get('SLURM_JOB_ID', 'job')}"
    torchrun = torchrun_command(spec, nproc_per_node, module, nodes, f"{hosts[0]}:{RDZV_PORT}", run_id, stop_timeout_s)
    return ["srun", f"--nodes={nodes}", "--ntasks-per-node=1", "--kill-on-bad-exit=1", *torchrun]


def run(cmd: list[str], stdout) -> int:
    """Run the launcher command to its end and return its exit status; stop signals are left to it."""
    ignored = (*STOP_SIGNALS, signal.SIGINT)
    previous = {sig: signal.signal(sig, signal.SIG_IGN) for sig in ignored}
    try:
        # the child gets default dispositions back for the signals torchrun handles itself
        child = subprocess.Popen(cmd, stdout=stdout, stderr=subprocess.STDOUT, preexec_fn=_default_signals)
        return child.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _default_signals() -> None:
    for sig in (*STOP_SIGNALS, signal.SIGINT):
        signal.signal(sig, signal.SIG_DFL)


def run_here_or_torchrun(spec: dict, execution: Execution, run_rank: Callable, work_dir: str | Path) -> None:
    """Run one training job: in this process when it has one process, else under torchrun (srun across nodes).

    Under torchrun every rank runs `python -m <the module of run_rank> JOB.json`,
    which must call `worker_main` with `run_rank`. Exits the job with
    PREEMPTED_EXIT after a stop signal, or with the launcher's status when the
    processes fail, so Snakemake retries it.
    """
    module = run_rank.__module__
    from viclip.runtime import device
    from viclip.train.distributed import Dist

    nodes, per_node = execution.nodes, execution.per_node
    if nodes * per_node == 1:
        try:
            summary = run_rank(spec, Dist(device=device()))
        except Preempted as exc:
            log.warning("%s; exiting %d so the job is retried", exc, PREEMPTED_EXIT)
            sys.exit(PREEMPTED_EXIT)
        log.info("done: %s", as_json(summary))
        return
    with tempfile.TemporaryDirectory(dir=work_dir, prefix=".job-") as tmp:
        job = job_spec(Path(tmp) / "job.json", **spec)
        stop = execution.stop_timeout_s
        cmd = (
            slurm_command(job, per_node, nodes, stop, module)
            if nodes > 1
            else torchrun_command(job, per_node, module, stop_timeout_s=stop)
        )
        log.info("launching %s", " ".join(cmd))
        sys.stdout.flush()
        rc = run(cmd, sys.stdout)
    if rc:
        log.error("training processes exited with status %d", rc)
        sys.exit(rc)
    log.info("done")


def worker_main(argv: list[str], run_rank: Callable) -> int:
    """`python -m MODULE JOB.json`: one rank of a torchrun job, running `run_rank(spec, dist)`."""
    import torch

    from viclip.train.distributed import from_env, shutdown

    if len(argv) != 1:
        print(f"usage: python -m {run_rank.__module__} JOB.json", file=sys.stderr)
        return 2
    spec = json.loads(Path(argv[0]).read_text())
    torch.set_num_threads(int(spec.get("threads", 1)))
    dist = from_env()
    # every rank reports warnings; only rank 0 narrates
    logging.basicConfig(
        stream=sys.stderr,
        level=logging.INFO if dist.main else logging.WARNING,
        format=f"%(asctime)s rank{dist.rank} %(levelname)s %(message)s",
        force=True,
    )
    try:
        summary = run_rank(spec, dist)
    except Preempted as exc:
        log.warning("%s", exc)
        return PREEMPTED_EXIT
    finally:
        shutdown(dist)
    log.info("done: %s", as_json(summary))
    return 0
