"""Benchmarks in one standard layout: `manifest.parquet`, `meta.json`, `videos/`.

manifest columns: clip_id, path (relative to the benchmark folder), split
("train" or "test"), n_frames, and either `label` (int, classification) or
`texts` (list of query strings, retrieval; one joined paragraph for
paragraph benchmarks). meta.json: name, task, synthetic, paragraph, and for
classification `classes` and `templates`.
"""
