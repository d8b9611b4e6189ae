"""Benchmarks in one standard layout: `manifest.parquet`, `meta.json`, `videos/`.

manifest columns: clip_id, path (relative to the benchmark folder, or absolute
for real benchmarks), split ("train", "val" or "test"), n_frames (set when
decoded), and either `label` (int64) or `texts` (every caption; paragraph
benchmarks store the sentences in temporal order); optional start_s/end_s and
sentence_times. meta.json: name, task, synthetic, paragraph, eval_split,
counts, source, and for classification `classes` (+ `templates`).
Real benchmarks are prepared by `viclip.data.benchmarks.readers`.
"""
