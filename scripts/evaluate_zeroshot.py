"""Zero-shot evaluation of one pretrained run on every zero-shot benchmark (rule evaluate_zeroshot)."""

from viclip.runtime import device, setup_job

log = setup_job(snakemake.log[0], snakemake.threads)

from viclip.eval.zeroshot_run import zero_shot_records  # noqa: E402
from viclip.io import atomic_json  # noqa: E402

w, p = snakemake.wildcards, snakemake.params
records = zero_shot_records(snakemake.input.checkpoint, p.bench_dirs, p.settings, w.arm, int(w.seed), device())
for record, out in zip(records, snakemake.output, strict=True):
    atomic_json(record, out)
