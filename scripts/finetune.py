"""Fine-tune one pretrained run on its task(s) and score each test split (rule finetune).

`finetune.execution` is read from the config rather than params: it says how
the job runs (processes, resume-point interval, logging), never what it
computes, so changing it must not rerun finished fine-tuning. Several
processes run under torchrun, one `python -m viclip.train.finetune` each.
"""

import sys
import tempfile
from pathlib import Path

from viclip.runtime import setup_job

log = setup_job(snakemake.log[0], snakemake.threads)

from viclip.runtime import device  # noqa: E402  (after logging is set up)
from viclip.train import launch  # noqa: E402
from viclip.train.distributed import Dist  # noqa: E402
from viclip.train.finetune import launch_command, run_job  # noqa: E402
from viclip.train.state import PREEMPTED_EXIT, Preempted  # noqa: E402

w, p, out = snakemake.wildcards, snakemake.params, snakemake.output
execution = dict(snakemake.config["finetune"].get("execution", {}))
nodes, per_node = launch.processes(execution)
spec = dict(arm=w.arm, seed=p.seed, tasks=p.plan["tasks"], bench_dirs=p.plan["bench_dirs"],
            pretrained=snakemake.input.checkpoint, finetune=p.finetune, train=p.train, execution=execution,
            checkpoints=list(out.checkpoint), train_logs=list(out.train_log), records=list(out.record),
            threads=max(1, snakemake.threads // per_node))
for path in spec["checkpoints"]:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
log.info("arm %s seed %s: fine-tuning %s on %d node(s) x %d process(es)", w.arm, p.seed, ", ".join(spec["tasks"]),
         nodes, per_node)

if nodes * per_node == 1:
    try:
        summary = run_job(spec, Dist(device=device()))
    except Preempted as exc:
        log.warning("%s; exiting %d so the job is retried", exc, PREEMPTED_EXIT)
        sys.exit(PREEMPTED_EXIT)
    log.info("done: %s", summary)
else:
    work = Path(spec["checkpoints"][0]).parent
    with tempfile.TemporaryDirectory(dir=work, prefix=".job-") as tmp:
        job = launch.job_spec(Path(tmp) / "job.json", **spec)
        cmd = launch_command(job, per_node, nodes, execution.get("stop_timeout_s", 120))
        log.info("launching %s", " ".join(cmd))
        sys.stdout.flush()
        rc = launch.run(cmd, sys.stdout)
    if rc:
        log.error("fine-tuning processes exited with status %d", rc)
        sys.exit(rc)
    log.info("done")
