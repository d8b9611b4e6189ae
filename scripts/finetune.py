"""Fine-tune one pretrained run on its task(s) and score each test split (rule finetune).

`finetune.execution` is read from the config rather than params: it says how
the job runs (processes, resume-point interval, logging), never what it
computes, so changing it must not rerun finished fine-tuning. Several
processes run under torchrun, one `python -m viclip.train.finetune` each.
"""

from viclip.runtime import setup_job

log = setup_job(snakemake.log[0], snakemake.threads)

from viclip.train.execution import Execution  # noqa: E402  (after logging is set up)
from viclip.train.finetune import FinetuneJob, run  # noqa: E402

w, p, out = snakemake.wildcards, snakemake.params, snakemake.output
execution = Execution.from_config(snakemake.config["finetune"].get("execution"), "finetune.execution")
job = FinetuneJob(
    arm=w.arm,
    seed=p.seed,
    tasks=p.plan["tasks"],
    bench_dirs=p.plan["bench_dirs"],
    pretrained=snakemake.input.checkpoint,
    finetune=p.finetune,
    train=p.train,
    checkpoints=list(out.checkpoint),
    train_logs=list(out.train_log),
    records=list(out.record),
    execution=execution,
    threads=max(1, snakemake.threads // execution.per_node),
)
log.info(
    "arm %s seed %s: fine-tuning %s on %d node(s) x %d process(es)",
    w.arm,
    p.seed,
    ", ".join(job.tasks),
    execution.nodes,
    execution.per_node,
)
run(job)
