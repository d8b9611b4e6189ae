"""Pretrain one arm with one seed (rule pretrain), in this process or under torchrun.

`pretrain.execution` is read from the config rather than params: it says how
the job runs (processes, checkpoint interval, logging), never what it
computes, so changing it must not rerun finished training.
"""

from pathlib import Path

from viclip.runtime import setup_job

log = setup_job(snakemake.log[0], snakemake.threads)

from viclip.train.execution import Execution  # noqa: E402  (after logging is set up)
from viclip.train.pretrain import PretrainJob, run  # noqa: E402

p = snakemake.params
execution = Execution.from_config(snakemake.config["pretrain"].get("execution"), "pretrain.execution")
job = PretrainJob(
    model=p.model,
    train=p.train,
    mask_ratio=p.mask_ratio,
    seed=p.seed,
    **{k: getattr(snakemake.input, k) for k in ("frames", "index", "manifest") if k in snakemake.input.keys()},
    captions=snakemake.input.captions,
    out_dir=str(Path(snakemake.output.checkpoint).parent),
    log_path=snakemake.output.train_log,
    execution=execution,
    threads=max(1, snakemake.threads // execution.per_node),
)
log.info(
    "arm %s seed %s: mask ratio %s, %d node(s) x %d process(es)",
    snakemake.wildcards.arm,
    p.seed,
    p.mask_ratio,
    execution.nodes,
    execution.per_node,
)
run(job)
