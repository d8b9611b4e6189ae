"""MSVD (Microsoft Research Video Description), many captions per video.

annotations, either form per split (told apart by content):
- UMT json: train/val/test: msvd_ret_{train,val,test}.json, a list of
  {"video": "{id}.avi", "caption": [captions]};
- split lists plus a caption file: train/val/test: {split}_list.txt (one
  video id per line, `{youtube id}_{start}_{end}`; the 1200/100/670 split of
  collaborative-experts and CLIP4Clip) and captions: either
  AllVideoDescriptions.txt ("{id} {caption}" per line, `#` comments) or the
  original corpus csv (video_corpus.csv: VideoID, Start, End, ..., Language,
  Description; only Language == English rows are read).
Every caption of a video is kept (evaluation_protocols.md §4: never join them).
Videos: `{id}.avi` (YouTubeClips/) or any configured extension.

Not supported: CLIP4Clip's raw-captions.pkl. Unpickling runs code from the
file, so the reader never opens pickles; use one of the forms above, which
hold the same captions.
"""

from __future__ import annotations

from pathlib import Path

from viclip.data.benchmarks.readers.common import (
    AnnotationError,
    Entry,
    Listing,
    check_splits,
    is_umt_json,
    read_csv_rows,
    source_path,
    umt_entries,
)


def _read_text(path: Path) -> list[str]:
    try:
        return path.read_text(encoding="utf-8-sig").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise AnnotationError(f"{path}: cannot read ({exc})") from exc


def read_captions(path: Path) -> dict[str, list[str]]:
    if path.suffix.lower() == ".pkl":
        raise AnnotationError(
            f"{path}: pickle files are not read (unpickling runs code); "
            "give AllVideoDescriptions.txt, video_corpus.csv or the UMT json"
        )
    out: dict[str, list[str]] = {}
    if path.suffix.lower() == ".csv":
        for line, row in read_csv_rows(path, ("VideoID", "Start", "End", "Language", "Description")):
            if (row["Language"] or "").strip() != "English" or not (row["Description"] or "").strip():
                continue
            vid, start, end = (row[k].strip() for k in ("VideoID", "Start", "End"))
            if not vid or not start.isdigit() or not end.isdigit():
                raise AnnotationError(
                    f"{path}: line {line}: fields 'VideoID', 'Start', 'End' must be an id and two integers, "
                    f"got {vid!r}, {start!r}, {end!r}"
                )
            out.setdefault(f"{vid}_{start}_{end}", []).append(row["Description"].strip())
        return out
    for n, line in enumerate(_read_text(path), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        vid, _, caption = line.partition(" ")
        if not caption.strip():
            raise AnnotationError(f"{path}: line {n}: expected '<video id> <caption>', got {line!r}")
        out.setdefault(vid, []).append(caption.strip())
    return out


def read(annotations: dict, splits: list[str] | None = None) -> Listing:
    entries, sources, captions = [], {}, None
    for split in check_splits(annotations, splits, ("train", "val", "test"), "msvd", extra=("captions",)):
        path = source_path(annotations, split, "msvd")
        sources[split] = path
        if is_umt_json(path):
            entries += umt_entries(path, split, "msvd")
            continue
        if captions is None:
            sources["captions"] = source_path(annotations, "captions", "msvd")
            captions = read_captions(sources["captions"])
        for n, line in enumerate(_read_text(path), start=1):
            vid = line.strip()
            if not vid:
                continue
            if vid not in captions:
                raise AnnotationError(f"{path}: line {n}: video {vid!r} has no caption in {sources['captions']}")
            entries.append(Entry(vid, split, (vid,), texts=captions[vid]))
    return Listing("retrieval", entries, sources, eval_split="test")
