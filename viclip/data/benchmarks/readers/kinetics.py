"""Kinetics-400/600/700 from the official annotation csv files.

annotations: {train: train.csv, val: validate.csv, test: test.csv} (any
subset). Columns: label, youtube_id, time_start, time_end, split (is_cc is
ignored). The test csv of K600 and K700-2020 has no label column and cannot
be used. Labels are mapped through the class list shipped in
`viclip/data/benchmarks/classnames/` (exact name first, then ignoring case,
underscores and quotes, as label folders and mmaction2's lists spell them).

Video files, found anywhere under the root (flat, `{label}/`, `{label_with_underscores}/`,
`{split}/{label}/`...), by the `naming` option:
- "clip" (default): trimmed clips `{youtube_id}_{start:06d}_{end:06d}.{ext}`
  (the official crawler, mmaction2 and CVDF tarballs), also without the zero padding;
- "youtube_id_trimmed": trimmed clips saved as `{youtube_id}.{ext}`;
- "youtube_id_untrimmed": whole YouTube videos `{youtube_id}.{ext}`; the
  manifest then carries start_s/end_s, the clip's window inside the file.

Not supported: the internal `kinetics{400,600,700}_validate.json` of
ViCLIP/UMT (not released) and mmaction2's derived `*_list_videos.txt` lists.
"""

from __future__ import annotations

import re
from functools import cache
from importlib import resources
from pathlib import Path

from viclip.data.benchmarks.readers.common import (
    AnnotationError,
    Entry,
    Listing,
    check_splits,
    read_csv_rows,
    source_path,
)

VERSIONS = (400, 600, 700)
NAMINGS = ("clip", "youtube_id_trimmed", "youtube_id_untrimmed")
YOUTUBE_ID = re.compile(r"[A-Za-z0-9_-]{11}")


@cache
def class_names(version: int) -> tuple[str, ...]:
    """The shipped Kinetics-{version} class names, in label order (mmaction2's label maps; see classnames/README.md)."""
    if version not in VERSIONS:
        raise ValueError(f"no Kinetics-{version} class list; have {VERSIONS}")
    text = resources.files("viclip.data.benchmarks").joinpath(f"classnames/k{version}.txt").read_text(encoding="utf-8")
    return tuple(line for line in text.splitlines() if line)


def normalise(name: str) -> str:
    return " ".join(name.replace("_", " ").replace('"', "").casefold().split())


@cache
def _label_index(version: int) -> tuple[dict[str, int], dict[str, int]]:
    names = class_names(version)
    return {n: i for i, n in enumerate(names)}, {normalise(n): i for i, n in enumerate(names)}


def label_of(name: str, version: int) -> int | None:
    exact, loose = _label_index(version)
    return exact.get(name, loose.get(normalise(name)))


def _seconds(value: str, path: Path, line: int, column: str) -> int:
    try:
        return int(float(value))
    except (TypeError, ValueError):
        raise AnnotationError(f"{path}: line {line}: field '{column}' is not a number: {value!r}") from None


def read(annotations: dict, splits: list[str] | None = None, *, version: int, naming: str = "clip") -> Listing:
    reader = f"kinetics{version}"
    if naming not in NAMINGS:
        raise AnnotationError(f"{reader}: option naming={naming!r} is not one of {NAMINGS}")
    entries, sources = [], {}
    for split in check_splits(annotations, splits, ("train", "val", "test"), reader):
        path = source_path(annotations, split, reader)
        sources[split] = path
        rows = read_csv_rows(path, ("youtube_id", "time_start", "time_end"))
        if rows and "label" not in rows[0][1]:
            raise AnnotationError(
                f"{path}: no 'label' column: this {split} csv has no public labels and cannot be evaluated"
            )
        seen: dict[str, int] = {}
        for line, row in rows:
            yid = (row["youtube_id"] or "").strip()
            if not YOUTUBE_ID.fullmatch(yid):
                raise AnnotationError(
                    f"{path}: line {line}: field 'youtube_id' is not an 11-character YouTube id: {yid!r}"
                )
            start = _seconds(row["time_start"], path, line, "time_start")
            end = _seconds(row["time_end"], path, line, "time_end")
            if end <= start:
                raise AnnotationError(f"{path}: line {line}: time_end {end} is not after time_start {start}")
            label = label_of((row["label"] or "").strip(), version)
            if label is None:
                raise AnnotationError(
                    f"{path}: line {line}: field 'label' {row['label']!r} is not one of the "
                    f"{version} Kinetics-{version} class names"
                )
            clip_id = f"{yid}_{start:06d}_{end:06d}"
            if clip_id in seen:
                if seen[clip_id] != label:
                    raise AnnotationError(f"{path}: line {line}: clip {clip_id} listed again with another label")
                continue
            seen[clip_id] = label
            if naming == "clip":
                entry = Entry(clip_id, split, (clip_id, f"{yid}_{start}_{end}"), label=label)
            elif naming == "youtube_id_trimmed":
                entry = Entry(clip_id, split, (yid,), label=label)
            else:
                entry = Entry(clip_id, split, (yid,), label=label, start_s=float(start), end_s=float(end))
            entries.append(entry)
    return Listing(
        "classification",
        entries,
        sources,
        classes=list(class_names(version)),
        eval_split="val",
        notes={"class_list": f"viclip/data/benchmarks/classnames/k{version}.txt"},
    )
