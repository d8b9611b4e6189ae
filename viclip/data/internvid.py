"""InternVid metadata: stream the released jsonl, validate every row, write a clean clip table.

The release (e.g. `InternVid-10M-FLT.jsonl`, ~2.2 GB, ~10.6M rows) is read one
line at a time, plain or gzip-compressed. Each rejected line goes to a TSV
ledger with its line number and the first defect found; kept rows go to a
parquet written row group by row group. Both files appear only when the whole
file has been read (temp file + rename).

Columns read (viclip_spec.md §7.1): YoutubeID, Start_timestamp, End_timestamp,
Caption (required); Aesthetic_Score, UMT_Score (optional: a release without
them gives nulls; InternVid-Full calls the UMT similarity `UMT-SIM`). Other
columns (e.g. the language and type of 10M-FLT-INFO) are ignored.
"""

from __future__ import annotations

import csv
import gzip
import json
import logging
import math
import os
import re
import tempfile
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from viclip.io import atomic_path
from viclip.progress import progress

log = logging.getLogger("viclip")

YOUTUBE_ID = re.compile(r"[A-Za-z0-9_-]{11}")
TIMESTAMP = re.compile(r"(\d{2,}):([0-5]\d):([0-5]\d)\.(\d{3})")

# canonical name -> accepted source keys, first match wins
REQUIRED = {
    "youtube_id": ("YoutubeID",),
    "start": ("Start_timestamp",),
    "end": ("End_timestamp",),
    "caption": ("Caption",),
}
SCORES = {
    "aesthetic_score": ("Aesthetic_Score",),
    "umt_score": ("UMT_Score", "UMT-SIM"),
}

SCHEMA = pa.schema(
    [
        ("clip_id", pa.string()),
        ("youtube_id", pa.string()),
        ("start_s", pa.float64()),
        ("end_s", pa.float64()),
        ("start", pa.string()),
        ("end", pa.string()),
        ("caption", pa.string()),
        ("aesthetic_score", pa.float64()),
        ("umt_score", pa.float64()),
        ("source_line", pa.int64()),  # 1-based line in the jsonl, to trace a clip back
    ]
)
LEDGER_COLUMNS = ["line", "youtube_id", "field", "reason", "detail"]


class MetadataError(ValueError):
    """The file as a whole is unusable (not jsonl, a required field absent everywhere)."""


class Reject(Exception):
    def __init__(self, field: str, reason: str, detail: object = ""):
        super().__init__(field, reason)
        self.field, self.reason, self.detail = field, reason, _short(detail)


@dataclass
class CleanStats:
    lines: int = 0
    clean: int = 0
    rejected: Counter = field(default_factory=Counter)  # (field, reason) -> rows

    @property
    def n_rejected(self) -> int:
        return sum(self.rejected.values())


def clip_id(youtube_id: str, start_ms: int, end_ms: int) -> str:
    """Stable, filename-safe id of a clip (no colons, unlike the raw timestamps)."""
    return f"{youtube_id}_{start_ms}_{end_ms}"


def parse_timestamp(text: object) -> int:
    """`HH:MM:SS.fff` -> milliseconds; ValueError otherwise."""
    m = TIMESTAMP.fullmatch(text) if isinstance(text, str) else None
    if m is None:
        raise ValueError(f"not HH:MM:SS.fff: {text!r}")
    h, mi, s, ms = (int(g) for g in m.groups())
    return ((h * 60 + mi) * 60 + s) * 1000 + ms


def clean_metadata(src: str | Path, out: str | Path, rejects: str | Path, row_group_size: int = 100_000) -> CleanStats:
    """Validate `src` (jsonl or jsonl.gz) into the clean parquet `out` and the TSV ledger `rejects`.

    Duplicated clips (same video and timestamps) keep their first line; the
    others are ledgered after the per-line rejects. Raises MetadataError when
    the file is not InternVid jsonl at all; then neither output is written.
    """
    src = Path(src)
    with atomic_path(out) as tmp_out, atomic_path(rejects) as tmp_rej, _scratch(Path(out)) as stage:
        with open(tmp_rej, "w", newline="") as ledger_file:
            ledger = csv.writer(ledger_file, delimiter="\t", lineterminator="\n")
            ledger.writerow(LEDGER_COLUMNS)
            stats = _stream(src, stage, ledger, row_group_size)
            dropped = _ledger_duplicates(stage, ledger, stats)
        if len(dropped):
            _copy_without(stage, tmp_out, dropped, row_group_size)
        else:
            os.replace(stage, tmp_out)
    _log_stats(src, stats)
    return stats


def _stream(src: Path, stage: Path, ledger, row_group_size: int) -> CleanStats:
    stats = CleanStats()
    present = Counter()  # required field -> JSON rows that have it
    n_objects = 0
    first_json_error = None
    buffer = {name: [] for name in SCHEMA.names}
    with _open_lines(src) as lines, pq.ParquetWriter(stage, SCHEMA) as writer:
        for lineno, raw in enumerate(
            progress(lines, desc=f"validate {src.name}", unit=" lines", unit_scale=True, mininterval=5.0), 1
        ):
            stats.lines = lineno
            obj = None
            try:
                obj = _parse(raw, lineno)
                n_objects += 1
                present.update(k for k, keys in REQUIRED.items() if any(s in obj for s in keys))
                row = validate_row(obj)
            except Reject as r:
                if r.reason in ("invalid_json", "not_an_object") and first_json_error is None:
                    first_json_error = f"line {lineno}: {r.detail}"
                yid = obj.get("YoutubeID") if obj is not None else None
                yid = yid if isinstance(yid, str) and YOUTUBE_ID.fullmatch(yid) else ""  # a bad one is in detail
                ledger.writerow([lineno, yid, r.field, r.reason, r.detail])
                stats.rejected[(r.field, r.reason)] += 1
                continue
            for name, value in row.items():
                buffer[name].append(value)
            buffer["source_line"].append(lineno)
            stats.clean += 1
            if len(buffer["clip_id"]) >= row_group_size:
                _flush(writer, buffer)
        _flush(writer, buffer)
    _check_whole_file(src, stats, n_objects, present, first_json_error)
    return stats


def validate_row(obj: dict) -> dict:
    """One JSON object -> a clean row (without source_line); raises Reject at the first defect."""
    values = {}
    for name, keys in REQUIRED.items():
        key = next((k for k in keys if k in obj), keys[0])
        if key not in obj:
            raise Reject(key, "missing")
        values[name] = obj[key]
    yid = values["youtube_id"]
    if not isinstance(yid, str) or not YOUTUBE_ID.fullmatch(yid):
        raise Reject("YoutubeID", "bad_youtube_id", yid)
    ms = {}
    for name, key in (("start", "Start_timestamp"), ("end", "End_timestamp")):
        try:
            ms[name] = parse_timestamp(values[name])
        except ValueError:
            raise Reject(key, "bad_timestamp", values[name]) from None
    if ms["start"] >= ms["end"]:
        raise Reject("End_timestamp", "start_not_before_end", f"{values['start']} -> {values['end']}")
    caption = values["caption"]
    if not isinstance(caption, str):
        raise Reject("Caption", "not_a_string", caption)
    if not caption.strip():
        raise Reject("Caption", "empty_caption", caption)
    scores = {}
    for name, keys in SCORES.items():
        key = next((k for k in keys if k in obj), None)
        scores[name] = None if key is None else _score(key, obj[key])
    return {
        "clip_id": clip_id(yid, ms["start"], ms["end"]),
        "youtube_id": yid,
        "start_s": ms["start"] / 1000,
        "end_s": ms["end"] / 1000,
        "start": values["start"],
        "end": values["end"],
        "caption": caption.strip(),
        **scores,
    }


def _score(key: str, value: object) -> float:
    # bool is an int subclass; `true` is not a score
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise Reject(key, "bad_score", value)
    return float(value)


def _parse(raw: bytes, lineno: int) -> dict:
    if lineno == 1 and raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    if not raw.strip():
        raise Reject("line", "blank")
    try:
        obj = json.loads(raw)
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError
        raise Reject("line", "invalid_json", exc) from None
    if not isinstance(obj, dict):
        raise Reject("line", "not_an_object", type(obj).__name__)
    return obj


def _check_whole_file(src: Path, stats: CleanStats, n_objects: int, present: Counter, first_json_error) -> None:
    blank = stats.rejected[("line", "blank")]
    if stats.lines == blank:
        raise MetadataError(f"{src}: no data lines (empty file)")
    if n_objects == 0:
        raise MetadataError(f"{src}: not JSON lines: no line parses as a JSON object ({first_json_error})")
    for name, keys in REQUIRED.items():
        if present[name] == 0:
            raise MetadataError(
                f"{src}: field {keys[0]!r} is missing from every row (an InternVid metadata jsonl has "
                f"{', '.join(k[0] for k in REQUIRED.values())})"
            )
    if stats.clean == 0:
        (fld, reason), n = stats.rejected.most_common(1)[0]
        raise MetadataError(f"{src}: no valid rows; most common defect: field {fld!r} {reason} ({n} rows)")


def _ledger_duplicates(stage: Path, ledger, stats: CleanStats) -> pa.Array:
    """Ledger every repeat of a clip (same video and times) after its first line; return the repeats' lines.

    Sorts numeric keys (video code, start, end), ~60 bytes a row, instead of
    hashing the clip-id strings, which took ~230 bytes a row.
    """
    table = pq.read_table(stage, columns=["youtube_id", "start_s", "end_s", "source_line"])
    encoded = table["youtube_id"].combine_chunks().dictionary_encode()
    video = encoded.indices.to_numpy(zero_copy_only=False)
    start, end, lines = (table[c].to_numpy() for c in ("start_s", "end_s", "source_line"))
    del table
    order = np.lexsort((end, start, video))  # stable: equal keys stay in line order, the first one first
    a, b = order[:-1], order[1:]
    repeat = np.concatenate([[False], (video[a] == video[b]) & (start[a] == start[b]) & (end[a] == end[b])])
    if not repeat.any():
        return pa.array([], pa.int64())
    run_start = np.maximum.accumulate(np.where(repeat, 0, np.arange(len(order))))
    rows, firsts = order[repeat], order[run_start[repeat]]
    for row, first in sorted(zip(rows.tolist(), firsts.tolist())):
        yid = encoded.dictionary[video[row]].as_py()
        cid = clip_id(yid, round(start[row] * 1000), round(end[row] * 1000))
        ledger.writerow([lines[row], yid, "clip_id", "duplicate", f"{cid} first at line {lines[first]}"])
    stats.rejected[("clip_id", "duplicate")] += len(rows)
    stats.clean -= len(rows)
    return pa.array(np.sort(lines[rows]))


def _copy_without(stage: Path, out: Path, lines: pa.Array, row_group_size: int) -> None:
    with pq.ParquetWriter(out, SCHEMA) as writer:
        for batch in pq.ParquetFile(stage).iter_batches(batch_size=row_group_size):
            writer.write_table(pa.Table.from_batches([batch]).filter(pc.invert(pc.is_in(batch["source_line"], lines))))


def _flush(writer: pq.ParquetWriter, buffer: dict) -> None:
    if buffer["clip_id"]:
        writer.write_table(pa.table(buffer, schema=SCHEMA))
        for values in buffer.values():
            values.clear()


@contextmanager
def _open_lines(src: Path) -> Iterator[IO[bytes]]:
    """Binary lines of a plain or gzip file (told apart by content, not by name)."""
    if not src.is_file():
        raise FileNotFoundError(f"{src}: metadata file not found")
    with open(src, "rb") as f:
        gz = f.read(2) == b"\x1f\x8b"
    with gzip.open(src, "rb") if gz else open(src, "rb") as f:
        yield f


@contextmanager
def _scratch(beside: Path) -> Iterator[Path]:
    beside.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=beside.parent, prefix=f".{beside.name}.stage.", suffix=".parquet")
    os.close(fd)
    try:
        yield Path(tmp)
    finally:
        Path(tmp).unlink(missing_ok=True)


def _short(value: object, limit: int = 80) -> str:
    text = value if isinstance(value, str) else repr(value) if not isinstance(value, Exception) else str(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _log_stats(src: Path, stats: CleanStats) -> None:
    log.info("%s: %d lines, %d clean clips, %d rejected", src, stats.lines, stats.clean, stats.n_rejected)
    for (fld, reason), n in stats.rejected.most_common():
        log.info("  rejected %8d  %-16s %s", n, fld, reason)
