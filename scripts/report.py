"""The ablation table with its cost block, the CSVs and the figure of differences (rule report)."""

import pandas as pd

from viclip.io import atomic_path
from viclip.report.compute import compute_table, render_compute
from viclip.report.figure import plot_deltas
from viclip.report.table import is_synthetic, load_records, render_latex, summarise, write_outputs
from viclip.runtime import setup_job

log = setup_job(snakemake.log[0], snakemake.threads)
p, inp, out = snakemake.params, snakemake.input, snakemake.output
records = load_records(inp.records)
summary = summarise(records, p.arms, p.baseline)
synthetic = is_synthetic(records)
n_clips = len(pd.read_parquet(inp.index, columns=["clip_id"]))
logs = {arm: [f for f in inp.logs if f.split("/")[2] == arm] for arm in p.arms}
cost = compute_table(p.arms, p.baseline, p.model, p.train, p.mask, n_clips, logs)
tex = render_latex(summary, p.arms, p.baseline, p.labels, synthetic, compute=render_compute(cost, p.labels))
write_outputs(summary, tex, out.csv, out.tex)
with atomic_path(out.compute) as tmp:
    cost.to_csv(tmp, index=False)
plot_deltas(summary, p.arms, p.baseline, p.labels, out.png, out.pdf, synthetic)
log.info("%d records from %d arms -> %s", len(records), len(p.arms), out.tex)
log.info("pretraining cost:\n%s", cost.to_string(index=False))
