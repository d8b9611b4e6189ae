"""DiDeMo (Localizing Moments in Video), paragraph retrieval.

annotations, either form per split (told apart by content):
- LocalizingMoments files: train: train_data.json, val: val_data.json,
  test: test_data.json; a list of {"video", "description", "times", ...}, one
  entry per moment. `times` are the annotators' [first, last] 5-second
  segment indices; a sentence's window is [mean first * 5, (mean last + 1) * 5]
  seconds (as CLIP4Clip computes it). The sentences of a video are put in
  temporal order and their windows kept in `sentence_times`;
- UMT/VINDLU json (didemo_ret_{train,val,test}.json): a list of
  {"video", "caption": [sentences]}; the sentences stay in file order and
  carry no times.
Videos: the `video` name (e.g. `{flickr id}.mov`, `.mp4` when converted),
matched by stem with any configured extension.

Option first_30s: the annotations cover only the first 30 s of each video
(longer ones were cut for annotation); true sets start_s=0, end_s=30 as UMT's
`trimmed30` does. Default false, as ViCLIP's zero-shot configs.
Not supported: CLIP4Clip's {split}_list.txt (the json already lists the videos).
"""

from __future__ import annotations

import os
from pathlib import Path

from viclip.data.benchmarks.readers.common import (
    AnnotationError,
    Entry,
    Listing,
    check_splits,
    is_umt_json,
    read_json_records,
    source_path,
    strip_video_suffix,
    text_field,
    umt_entries,
)

SEGMENT_S = 5.0


def _window(times, path: Path, where: str) -> list[float]:
    def pair(t) -> bool:
        numbers = (
            isinstance(t, list)
            and len(t) == 2
            and all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in t)
        )
        return numbers and 0 <= t[0] <= t[1]

    if not (isinstance(times, list) and times and all(pair(t) for t in times)):
        raise AnnotationError(
            f"{path}: {where}: field 'times' must be a non-empty list of [first, last] segment indices, got {times!r}"
        )
    first = sum(t[0] for t in times) / len(times)
    last = sum(t[1] for t in times) / len(times)
    return [first * SEGMENT_S, (last + 1) * SEGMENT_S]


def read_moments(path: Path, split: str) -> list[Entry]:
    moments: dict[str, list[tuple[list[float], str]]] = {}
    for where, item in read_json_records(path, ("video", "description", "times"), "{video, description, times}"):
        video = text_field(item["video"], path, where, "video")
        sentence = text_field(item["description"], path, where, "description")
        moments.setdefault(video, []).append((_window(item["times"], path, where), sentence))
    entries = []
    for video, items in moments.items():
        items.sort(key=lambda m: m[0])  # stable: equal windows keep file order
        stem = strip_video_suffix(os.path.basename(video))
        entries.append(
            Entry(
                strip_video_suffix(video),
                split,
                (video, stem),
                texts=[t for _, t in items],
                sentence_times=[w for w, _ in items],
            )
        )
    return entries


def read(annotations: dict, splits: list[str] | None = None, *, first_30s: bool = False) -> Listing:
    entries, sources = [], {}
    for split in check_splits(annotations, splits, ("train", "val", "test"), "didemo"):
        path = source_path(annotations, split, "didemo")
        sources[split] = path
        entries += umt_entries(path, split, "didemo") if is_umt_json(path) else read_moments(path, split)
    if first_30s:
        for e in entries:
            e.start_s, e.end_s = 0.0, 30.0
    return Listing("retrieval", entries, sources, paragraph=True, eval_split="test", notes={"first_30s": first_30s})
