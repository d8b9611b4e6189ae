"""Pretrain one arm with one seed (rule pretrain), in this process or under torchrun.

`pretrain.execution` is read from the config rather than params: it says how
the job runs (processes, checkpoint interval, logging), never what it
computes, so changing it must not rerun finished training.
"""

from pathlib import Path

from viclip.runtime import setup_job

log = setup_job(snakemake.log[0], snakemake.threads)

from viclip.train import launch  # noqa: E402  (after logging is set up)
from viclip.train.worker import run_job  # noqa: E402

p = snakemake.params
execution = dict(snakemake.config["pretrain"].get("execution", {}))
out_dir = Path(snakemake.output.checkpoint).parent
out_dir.mkdir(parents=True, exist_ok=True)
nodes, per_node = launch.processes(execution)
corpus = {k: getattr(snakemake.input, k) for k in ("frames", "index", "manifest") if k in snakemake.input.keys()}
spec = dict(
    model=p.model,
    train=p.train,
    mask_ratio=p.mask_ratio,
    seed=p.seed,
    **corpus,
    captions=snakemake.input.captions,
    out_dir=str(out_dir),
    log_path=snakemake.output.train_log,
    execution=execution,
    threads=max(1, snakemake.threads // per_node),
)
log.info(
    "arm %s seed %s: mask ratio %s, %d node(s) x %d process(es)",
    snakemake.wildcards.arm,
    p.seed,
    p.mask_ratio,
    nodes,
    per_node,
)

launch.run_here_or_torchrun(spec, execution, run_job, "viclip.train.worker", out_dir)
