"""MSR-VTT with the 1k-A (JSFusion) test split of 1,000 videos and the 9k train split.

annotations, either form per split (told apart by content):
- CLIP4Clip files (msrvtt_data.zip): test: MSRVTT_JSFUSION_test.csv
  (columns key, vid_key, video_id, sentence: one caption per video);
  train: MSRVTT_train.9k.csv (column video_id) plus data_json: MSRVTT_data.json,
  whose "sentences" [{video_id, caption}] give the 20 captions of each train video;
- UMT/VINDLU json: test: msrvtt_test1k.json, train: the 9k train json,
  a list of {"video": "video7020.mp4", "caption": str | [str]}.
Videos: `video{N}.mp4` (MSRVTT.zip of frozen-in-time: MSRVTT/videos/all/).

Not supported: the full 2,990-video test split and the 7k/Miech splits
(other protocols than the paper's).
"""

from __future__ import annotations

from viclip.data.benchmarks.readers.common import (
    AnnotationError,
    Entry,
    Listing,
    check_splits,
    is_umt_json,
    load_json,
    read_csv_rows,
    source_path,
    text_field,
    umt_entries,
)


def _sentences(path) -> dict[str, list[str]]:
    data = load_json(path)
    if not isinstance(data, dict) or not isinstance(data.get("sentences"), list):
        raise AnnotationError(f"{path}: missing field 'sentences' (a list of {{video_id, caption}})")
    out: dict[str, list[str]] = {}
    for i, item in enumerate(data["sentences"]):
        where = f"sentences[{i}]"
        if not isinstance(item, dict) or "video_id" not in item or "caption" not in item:
            raise AnnotationError(f"{path}: {where}: needs fields 'video_id' and 'caption'")
        out.setdefault(text_field(item["video_id"], path, where, "video_id"), []).append(
            text_field(item["caption"], path, where, "caption")
        )
    return out


def read(annotations: dict, splits: list[str] | None = None) -> Listing:
    entries, sources, sentences = [], {}, None
    for split in check_splits(annotations, splits, ("train", "test"), "msrvtt", extra=("data_json",)):
        path = source_path(annotations, split, "msrvtt")
        sources[split] = path
        if is_umt_json(path):
            entries += umt_entries(path, split, "msrvtt")
            continue
        rows = read_csv_rows(path, ("video_id",))
        if rows and "sentence" in rows[0][1]:
            by_video: dict[str, list[str]] = {}
            for line, row in rows:
                vid = text_field(row["video_id"], path, f"line {line}", "video_id")
                by_video.setdefault(vid, []).append(text_field(row["sentence"], path, f"line {line}", "sentence"))
        else:
            if sentences is None:
                sources["data_json"] = source_path(annotations, "data_json", "msrvtt")
                sentences = _sentences(sources["data_json"])
            by_video = {}
            for line, row in rows:
                vid = text_field(row["video_id"], path, f"line {line}", "video_id")
                if vid not in sentences:
                    raise AnnotationError(
                        f"{path}: line {line}: video_id {vid!r} has no caption in {sources['data_json']}"
                    )
                by_video[vid] = sentences[vid]
        entries += [Entry(vid, split, (vid,), texts=texts) for vid, texts in by_video.items()]
    return Listing("retrieval", entries, sources, eval_split="test")
