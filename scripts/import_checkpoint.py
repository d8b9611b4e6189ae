"""Released ViCLIP weights as a run's checkpoint (rule import_released).

The file is read tensors-only and loaded strictly into the config's model;
the checkpoint lands where a pretrained run's would, so evaluation and
fine-tuning read it unchanged.
"""

from viclip.runtime import setup_job

log = setup_job(snakemake.log[0], snakemake.threads)

from viclip.train.checkpoint import import_released  # noqa: E402  (after logging is set up)

p = snakemake.params
released = import_released(p.source, p.model, snakemake.output.checkpoint, seed=p.seed, key=p.key)
log.info("%s: %d tensors from %s (sha256 %s)", p.key, released["tensors"], p.source, released["sha256"])
for name, how in released["adapted"].items():
    log.info("adapted %s: %s -> %s (%s)", name, how["from"], how["to"], how["rule"])
