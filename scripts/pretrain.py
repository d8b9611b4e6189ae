"""Pretrain one arm with one seed (rule pretrain)."""

from pathlib import Path

from viclip.runtime import setup_job

log = setup_job(snakemake.log[0], snakemake.threads)

from viclip.train.corpus import load_corpus  # noqa: E402  (after logging is set up)
from viclip.model.viclip import ViCLIPConfig  # noqa: E402
from viclip.train.pretrain import pretrain  # noqa: E402

p = snakemake.params
model_cfg = ViCLIPConfig.from_dict(p.model)
sampler, tokens = load_corpus(snakemake.input.frames, snakemake.input.index, snakemake.input.captions, model_cfg,
                              p.train["augment"], p.train["flip"])
log.info("arm %s seed %s: %d clips, mask ratio %s", snakemake.wildcards.arm, p.seed, len(sampler), p.mask_ratio)
summary = pretrain(model_cfg, p.train, p.mask_ratio, sampler, tokens, p.seed, Path(snakemake.output.checkpoint).parent,
                   snakemake.output.train_log)
log.info("done: %s", summary)
