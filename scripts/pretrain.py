"""Pretrain one arm with one seed (rule pretrain), in this process or under torchrun.

`pretrain.execution` is read from the config rather than params: it says how
the job runs (processes, checkpoint interval, logging), never what it
computes, so changing it must not rerun finished training.
"""

import sys
import tempfile
from pathlib import Path

from viclip.runtime import setup_job

log = setup_job(snakemake.log[0], snakemake.threads)

from viclip.train import launch  # noqa: E402  (after logging is set up)
from viclip.train.distributed import Dist  # noqa: E402
from viclip.runtime import device  # noqa: E402
from viclip.train.state import PREEMPTED_EXIT, Preempted  # noqa: E402
from viclip.train.worker import run_job  # noqa: E402

p = snakemake.params
execution = dict(snakemake.config["pretrain"].get("execution", {}))
out_dir = Path(snakemake.output.checkpoint).parent
out_dir.mkdir(parents=True, exist_ok=True)
nodes, per_node = launch.processes(execution)
corpus = {k: getattr(snakemake.input, k) for k in ("frames", "index", "manifest") if k in snakemake.input.keys()}
spec = dict(model=p.model, train=p.train, mask_ratio=p.mask_ratio, seed=p.seed, **corpus,
            captions=snakemake.input.captions, out_dir=str(out_dir),
            log_path=snakemake.output.train_log, execution=execution,
            threads=max(1, snakemake.threads // per_node))
log.info("arm %s seed %s: mask ratio %s, %d node(s) x %d process(es)", snakemake.wildcards.arm, p.seed,
         p.mask_ratio, nodes, per_node)

if nodes * per_node == 1:
    try:
        summary = run_job(spec, Dist(device=device()))
    except Preempted as exc:
        log.warning("%s; exiting %d so the job is retried", exc, PREEMPTED_EXIT)
        sys.exit(PREEMPTED_EXIT)
    log.info("done: %s", summary)
else:
    with tempfile.TemporaryDirectory(dir=out_dir, prefix=".job-") as tmp:
        job = launch.job_spec(Path(tmp) / "job.json", **spec)
        stop = execution.get("stop_timeout_s", 120)
        cmd = (launch.slurm_command(job, per_node, nodes, stop) if nodes > 1
               else launch.torchrun_command(job, per_node, stop_timeout_s=stop))
        log.info("launching %s", " ".join(cmd))
        sys.stdout.flush()
        rc = launch.run(cmd, sys.stdout)
    if rc:
        log.error("training processes exited with status %d", rc)
        sys.exit(rc)
    log.info("done")
