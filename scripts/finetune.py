"""Fine-tune one pretrained run on its task(s) and score each test split (rule finetune).

`finetune.execution` is read from the config rather than params: it says how
the job runs (processes, resume-point interval, logging), never what it
computes, so changing it must not rerun finished fine-tuning. Several
processes run under torchrun, one `python -m viclip.train.finetune` each.
"""

from pathlib import Path

from viclip.runtime import setup_job

log = setup_job(snakemake.log[0], snakemake.threads)

from viclip.train import launch  # noqa: E402  (after logging is set up)
from viclip.train.finetune import run_job  # noqa: E402

w, p, out = snakemake.wildcards, snakemake.params, snakemake.output
execution = dict(snakemake.config["finetune"].get("execution", {}))
nodes, per_node = launch.processes(execution)
spec = dict(
    arm=w.arm,
    seed=p.seed,
    tasks=p.plan["tasks"],
    bench_dirs=p.plan["bench_dirs"],
    pretrained=snakemake.input.checkpoint,
    finetune=p.finetune,
    train=p.train,
    execution=execution,
    checkpoints=list(out.checkpoint),
    train_logs=list(out.train_log),
    records=list(out.record),
    threads=max(1, snakemake.threads // per_node),
)
for path in spec["checkpoints"]:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
log.info(
    "arm %s seed %s: fine-tuning %s on %d node(s) x %d process(es)",
    w.arm,
    p.seed,
    ", ".join(spec["tasks"]),
    nodes,
    per_node,
)

launch.run_here_or_torchrun(spec, execution, run_job, "viclip.train.finetune", Path(spec["checkpoints"][0]).parent)
