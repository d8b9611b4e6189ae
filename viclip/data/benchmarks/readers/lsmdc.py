"""LSMDC (Large Scale Movie Description Challenge 2016), 1,000-clip test set.

annotations, either form per split (told apart by content):
- the LSMDC 2016 files: test: LSMDC16_challenge_1000_publictect.csv,
  train: LSMDC16_annos_training.csv, val: LSMDC16_annos_val.csv. Despite the
  name they are tab-separated without header, six fields per line:
  clip id, start/end aligned, start/end extracted, sentence. A clip id may
  repeat in train (several sentences); its sentences are kept in file order;
- UMT/VINDLU json (lsmdc_ret_test_1000.json etc.), a list of {"video", "caption"}.
Videos: `{clip_id}.avi` (or any configured extension), usually inside a folder
per movie (`1001_Flight/1001_Flight_00.00.56.000-00.01.02.004.avi`); the
lookup finds them at any depth.
"""

from __future__ import annotations

from pathlib import Path

from viclip.data.benchmarks.readers.common import (
    AnnotationError,
    Entry,
    Listing,
    check_splits,
    is_umt_json,
    source_path,
    umt_entries,
)


def read_tsv(path: Path) -> dict[str, list[str]]:
    by_clip: dict[str, list[str]] = {}
    try:
        lines = path.read_text(encoding="utf-8-sig").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise AnnotationError(f"{path}: cannot read ({exc})") from exc
    for n, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        fields = line.rstrip("\r\n").split("\t")
        if len(fields) != 6:
            raise AnnotationError(
                f"{path}: line {n}: expected 6 tab-separated fields (clip id, 4 times, sentence), got {len(fields)}"
            )
        clip_id, sentence = fields[0].strip(), fields[5].strip()
        if not clip_id or not sentence:
            raise AnnotationError(f"{path}: line {n}: empty {'clip id' if not clip_id else 'sentence'} field")
        by_clip.setdefault(clip_id, []).append(sentence)
    return by_clip


def read(annotations: dict, splits: list[str] | None = None) -> Listing:
    entries, sources = [], {}
    for split in check_splits(annotations, splits, ("train", "val", "test"), "lsmdc"):
        path = source_path(annotations, split, "lsmdc")
        sources[split] = path
        if is_umt_json(path):
            entries += umt_entries(path, split, "lsmdc")
        else:
            entries += [Entry(cid, split, (cid,), texts=texts) for cid, texts in read_tsv(path).items()]
    return Listing("retrieval", entries, sources, eval_split="test")
