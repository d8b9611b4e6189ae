"""The ablation table, its CSV and the figure of differences (rule report)."""

from viclip.report.figure import plot_deltas
from viclip.report.table import is_synthetic, load_records, render_latex, summarise, write_outputs
from viclip.runtime import setup_job

log = setup_job(snakemake.log[0], snakemake.threads)
p = snakemake.params
records = load_records(snakemake.input)
summary = summarise(records, p.arms, p.baseline)
synthetic = is_synthetic(records)
tex = render_latex(summary, p.arms, p.baseline, p.labels, synthetic)
write_outputs(summary, tex, snakemake.output.csv, snakemake.output.tex)
plot_deltas(summary, p.arms, p.baseline, p.labels, snakemake.output.png, snakemake.output.pdf, synthetic)
log.info("%d records from %d arms -> %s", len(records), len(p.arms), snakemake.output.tex)
