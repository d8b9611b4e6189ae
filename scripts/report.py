"""Rule report: the ablation table (LaTeX, CSV, HTML) with its cost block, the figures of
differences to the baseline (all arms, one per ablation) and the training curves."""

import time

import pandas as pd

from viclip.io import atomic_path
from viclip.report.compute import compute_table, render_compute
from viclip.report.curves import plot_curves
from viclip.report.divergence import check_runs
from viclip.report.figure import plot_deltas
from viclip.report.html_table import render_html
from viclip.report.intervals import Intervals
from viclip.report.published import reference_for
from viclip.report.table import is_synthetic, load_records, render_latex, summarise, write_outputs
from viclip.runtime import setup_job

log = setup_job(snakemake.log[0], snakemake.threads)
p, inp, out = snakemake.params, snakemake.input, snakemake.output
trained = [a for a in p.arms if a not in p.released]  # released weights: reference rows, no cost or curves here
logs = {arm: [f for f in inp.logs if f.split("/")[2] == arm] for arm in trained}
check_runs(logs)  # a diverged run fails the rule, named, before anything is averaged
records = load_records(inp.records)
families = [a["arms"] for a in p.ablations]
t0 = time.perf_counter()
summary = summarise(records, p.arms, p.baseline, families, released=p.released, intervals=Intervals(**p.intervals))
log.info(
    "intervals (%s): %s in %.2f s",
    p.intervals,
    summary["ci_method"][summary["ci_method"] != ""].value_counts().to_dict(),
    time.perf_counter() - t0,
)
synthetic = is_synthetic(records)
reference = reference_for(p.model["name"], synthetic)
n_clips = len(pd.read_parquet(inp.index, columns=["clip_id"]))
cost = compute_table(trained, p.baseline, p.model, p.train, p.mask, n_clips, logs)
compute = render_compute(cost, p.labels)
tex = render_latex(
    summary, p.arms, p.baseline, p.labels, synthetic, compute=compute, reference=reference, released=p.released
)
write_outputs(summary, tex, out.csv, out.tex)
with atomic_path(out.compute) as tmp:
    cost.to_csv(tmp, index=False)
with atomic_path(out.html) as tmp:
    tmp.write_text(render_html(summary, p.arms, p.baseline, p.labels, synthetic, reference, cost, p.released))
plot_deltas(summary, trained, p.baseline, p.labels, out.png, out.pdf, synthetic)
for ablation, png, pdf in zip(p.ablations, out.ablation_png, out.ablation_pdf, strict=True):
    plot_deltas(
        summary, [p.baseline, *ablation["arms"]], p.baseline, p.labels, png, pdf, synthetic, title=ablation["title"]
    )
plot_curves(logs, p.labels, out.curves, synthetic)
log.info("%d records from %d arms -> %s", len(records), len(p.arms), out.tex)
log.info("reference row: %s", reference.display if reference else "none (synthetic or unpublished model)")
log.info("ablation figures: %s", ", ".join(a["name"] for a in p.ablations) or "none")
log.info("pretraining cost:\n%s", cost.to_string(index=False))
