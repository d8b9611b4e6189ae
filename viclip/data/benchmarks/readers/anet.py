"""ActivityNet Captions, paragraph retrieval on val_1.

annotations, either form per split (told apart by content):
- the ActivityNet Captions files: train: train.json, val: val_1.json (val_2.json
  works too); an object {"v_<youtube id>": {"duration", "timestamps": [[start, end]],
  "sentences": [...]}}. Sentences are put in temporal order (by start, then
  end) with their windows in `sentence_times` (seconds);
- UMT/VINDLU json (anet_ret_train.json, anet_ret_val_1.json...): a list of
  {"video": "v_<id>.mp4", "caption": [sentences]}, kept in file order.
The manifest's texts are the sentences; meta.paragraph=true tells evaluation
to join them (paragraph-to-video) or use them one by one (sentence-level).
Videos: `v_<id>.{ext}` as the ActivityNet 1.3 download names them, or `<id>.{ext}`.

Not supported: CLIP4Clip's {train,val}_ids.json (the captions file already
lists the videos) and the ActivityNet 1.3 action-detection json.
"""

from __future__ import annotations

from pathlib import Path

from viclip.data.benchmarks.readers.common import (
    AnnotationError,
    Entry,
    Listing,
    check_splits,
    is_umt_json,
    load_json,
    source_path,
    text_field,
    umt_entries,
)


def _number(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def _without_prefix(stem: str) -> tuple[str, ...]:
    return (stem[2:],) if stem.startswith("v_") else ()


def read_captions(path: Path, split: str) -> list[Entry]:
    data = load_json(path)
    if not isinstance(data, dict):
        raise AnnotationError(f"{path}: expected an object {{video id: {{timestamps, sentences}}}}")
    entries = []
    for vid, item in data.items():
        where = f"video {vid!r}"
        if not isinstance(item, dict):
            raise AnnotationError(f"{path}: {where}: expected an object")
        for key in ("timestamps", "sentences"):
            if not isinstance(item.get(key), list) or not item[key]:
                raise AnnotationError(f"{path}: {where}: field '{key}' must be a non-empty list")
        stamps, sentences = item["timestamps"], item["sentences"]
        if len(stamps) != len(sentences):
            raise AnnotationError(f"{path}: {where}: {len(stamps)} timestamps but {len(sentences)} sentences")
        for t in stamps:
            if not (isinstance(t, list) and len(t) == 2 and all(_number(x) for x in t)):
                raise AnnotationError(f"{path}: {where}: field 'timestamps' holds {t!r}, not [start, end] seconds")
        pairs = sorted(
            zip(
                ([float(a), float(b)] for a, b in stamps), (text_field(s, path, where, "sentences") for s in sentences)
            ),
            key=lambda p: p[0],
        )
        entries.append(
            Entry(
                vid,
                split,
                (vid, *_without_prefix(vid)),
                texts=[s for _, s in pairs],
                sentence_times=[w for w, _ in pairs],
            )
        )
    return entries


def read(annotations: dict, splits: list[str] | None = None) -> Listing:
    entries, sources = [], {}
    for split in check_splits(annotations, splits, ("train", "val"), "anet"):
        path = source_path(annotations, split, "anet")
        sources[split] = path
        if is_umt_json(path):
            entries += umt_entries(path, split, "anet", extra_stems=_without_prefix)
        else:
            entries += read_captions(path, split)
    return Listing("retrieval", entries, sources, paragraph=True, eval_split="val")
