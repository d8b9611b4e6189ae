"""What every benchmark reader shares: the listing it returns, video lookup, the manifest writer.

A reader parses a benchmark's annotation files into a `Listing`: one `Entry`
per video with the file names it may have on disk. `build` then finds those
files under the user's video root, drops and ledgers the missing ones, and
returns the standard manifest and meta (see `viclip.data.benchmarks`).
"""

from __future__ import annotations

import csv
import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from viclip.io import atomic_json, atomic_parquet, atomic_path, file_sha256
from viclip.progress import progress

log = logging.getLogger("viclip")

SPLITS = ("train", "val", "test")
DEFAULT_EXTENSIONS = (".mp4", ".webm", ".mkv", ".avi", ".mov")
# Names in annotation files carry these; strip them before a stem lookup
# (LSMDC ids contain dots, so Path.stem alone would cut into the id).
KNOWN_VIDEO_SUFFIXES = frozenset(
    {".mp4", ".webm", ".mkv", ".avi", ".mov", ".m4v", ".3gp", ".mpg", ".mpeg", ".wmv", ".flv", ".mts"}
)


class AnnotationError(ValueError):
    """An annotation file that does not parse; the message names the file and the row or field."""


@dataclass(slots=True)
class Entry:
    clip_id: str
    split: str
    candidates: tuple[str, ...]  # names the file may have under the root: relative paths or stems, best first
    label: int | None = None
    texts: list[str] | None = None
    start_s: float | None = None
    end_s: float | None = None
    sentence_times: list[list[float]] | None = None


@dataclass
class Listing:
    task: str  # "classification" | "retrieval"
    entries: list[Entry]
    sources: dict[str, Path]
    classes: list[str] | None = None
    paragraph: bool = False
    eval_split: str = "test"
    notes: dict[str, Any] = field(default_factory=dict)


# --- annotation parsing helpers ------------------------------------------------


def check_splits(
    annotations: dict, splits: list[str] | None, allowed: tuple[str, ...], reader: str, extra: tuple[str, ...] = ()
) -> list[str]:
    """The splits to read: those asked for, else every split key present in `annotations`."""
    unknown = sorted(set(annotations) - set(allowed) - set(extra))
    if unknown:  # a misspelt key would otherwise drop a split silently
        raise AnnotationError(f"{reader}: unknown annotations key(s) {unknown}; takes {list(allowed) + list(extra)}")
    present = [s for s in allowed if s in annotations]
    if splits is None:
        splits = present
    for s in splits:
        if s not in allowed:
            raise AnnotationError(f"{reader}: split '{s}' is not one of {list(allowed)}")
        if s not in annotations:
            raise AnnotationError(f"{reader}: split '{s}' asked for but annotations has no '{s}' file")
    if not splits:
        raise AnnotationError(f"{reader}: annotations name none of the splits {list(allowed)}")
    return list(splits)


def source_path(annotations: dict, key: str, reader: str) -> Path:
    if key not in annotations:
        raise AnnotationError(f"{reader}: annotations needs the key '{key}'")
    path = Path(annotations[key]).expanduser()
    if not path.is_file():
        raise AnnotationError(f"{path}: annotation file '{key}' of {reader} does not exist")
    return path


def load_json(path: Path) -> Any:
    try:
        with open(path, encoding="utf-8-sig") as f:  # -sig: files saved by some editors start with a BOM
            return json.load(f)
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise AnnotationError(f"{path}: cannot read JSON ({exc})") from exc


def read_csv_rows(path: Path, required: tuple[str, ...], delimiter: str = ",") -> list[tuple[int, dict]]:
    """Rows of a headed csv as (line number, dict); errors name the missing column."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f, delimiter=delimiter)
            header = [h.strip() for h in (reader.fieldnames or [])]
            reader.fieldnames = header
            missing = [c for c in required if c not in header]
            if missing:
                raise AnnotationError(f"{path}: missing column(s) {missing}; header is {header}")
            return [(reader.line_num, row) for row in reader]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise AnnotationError(f"{path}: cannot read CSV ({exc})") from exc


def read_json_records(path: Path, required: tuple[str, ...], what: str) -> list[tuple[str, dict]]:
    """Entries of a JSON list of objects as ("entry i", dict); errors name the entry and the missing field.

    `what` describes the expected entries for the error when the file is not a list.
    """
    data = load_json(path)
    if not isinstance(data, list):
        raise AnnotationError(f"{path}: expected a JSON list of {what} entries")
    records = []
    for i, item in enumerate(data):
        where = f"entry {i}"
        if not isinstance(item, dict):
            raise AnnotationError(f"{path}: {where}: expected an object, got {type(item).__name__}")
        for key in required:
            if key not in item:
                raise AnnotationError(f"{path}: {where}: missing field '{key}'")
        records.append((where, item))
    return records


def text_field(value: Any, path: Path, where: str, name: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise AnnotationError(f"{path}: {where}: field '{name}' must be a non-empty string, got {value!r}")
    return value.strip()


def texts_field(value: Any, path: Path, where: str, name: str) -> list[str]:
    """A caption field that is one string or a list of strings."""
    items = value if isinstance(value, list) else [value]
    if not items:
        raise AnnotationError(f"{path}: {where}: field '{name}' is an empty list")
    return [text_field(v, path, where, name) for v in items]


def strip_video_suffix(name: str) -> str:
    root, ext = os.path.splitext(name)
    return root if ext.lower() in KNOWN_VIDEO_SUFFIXES else name


def read_umt_json(path: Path, split: str, reader: str) -> list[tuple[str, list[str]]]:
    """UMT/VINDLU retrieval annotations: a list of {"video": file, "caption": str | [str]}.

    Entries for the same video are merged in file order. Returns (video, texts).
    """
    merged: dict[str, list[str]] = {}
    for where, item in read_json_records(path, ("video", "caption"), f"{reader} {split} {{video, caption}}"):
        video = text_field(item["video"], path, where, "video")
        merged.setdefault(video, []).extend(texts_field(item["caption"], path, where, "caption"))
    return list(merged.items())


def is_umt_json(path: Path) -> bool:
    """Whether `path` holds the UMT/VINDLU {video, caption} list (checked on its first entry)."""
    if path.suffix.lower() != ".json":
        return False
    data = load_json(path)
    return (
        isinstance(data, list)
        and bool(data)
        and isinstance(data[0], dict)
        and "caption" in data[0]
        and "video" in data[0]
    )


def umt_entries(path: Path, split: str, reader: str, extra_stems=lambda stem: ()) -> list[Entry]:
    entries = []
    for video, texts in read_umt_json(path, split, reader):
        clip_id = strip_video_suffix(video)
        stem = strip_video_suffix(os.path.basename(video))
        entries.append(Entry(clip_id, split, (video, stem, *extra_stems(stem)), texts=texts))
    return entries


# --- finding the videos --------------------------------------------------------


class VideoIndex:
    """Every video file under a root, by stem: one walk instead of a stat per candidate name.

    The walk makes folder layouts irrelevant ({label}/{id}.mp4, label folders
    with underscores, per-movie folders of LSMDC, split folders).
    """

    def __init__(self, root: str | Path, extensions: tuple[str, ...] = DEFAULT_EXTENSIONS):
        self.root = Path(root).expanduser().absolute()
        if not self.root.is_dir():
            raise FileNotFoundError(f"{self.root}: video_root is not a directory")
        self.extensions = tuple(e.lower() if e.startswith(".") else f".{e.lower()}" for e in extensions)
        rank = {e: i for i, e in enumerate(self.extensions)}
        found: dict[str, list[tuple[int, str]]] = {}
        seen_dirs = set()
        walk = os.walk(self.root, followlinks=True)
        for dirpath, dirnames, filenames in progress(walk, desc=f"index {self.root.name}", unit="dir", mininterval=2.0):
            real = os.path.realpath(dirpath)
            if real in seen_dirs:  # a symlink loop
                dirnames[:] = []
                continue
            seen_dirs.add(real)
            dirnames[:] = [d for d in dirnames if not d.startswith(".")]
            for name in filenames:
                stem, ext = os.path.splitext(name)
                ext = ext.lower()
                if ext in rank and not name.startswith("."):
                    found.setdefault(stem, []).append((rank[ext], os.path.join(dirpath, name)))
        self.by_stem = {stem: [p for _, p in sorted(paths)] for stem, paths in found.items()}
        self.n_files = sum(len(p) for p in self.by_stem.values())
        self.n_ambiguous = sum(len(p) > 1 for p in self.by_stem.values())

    def find(self, candidates: tuple[str, ...]) -> str | None:
        for name in candidates:
            if os.path.splitext(name)[1].lower() in KNOWN_VIDEO_SUFFIXES or "/" in name:
                exact = os.path.normpath(self.root / name)
                # an annotation may name a relative path, never one outside the root
                if exact.startswith(f"{self.root}{os.sep}") and os.path.isfile(exact):
                    return exact
            paths = self.by_stem.get(strip_video_suffix(os.path.basename(name)))
            if paths:
                return paths[0]
        return None

    def expected(self, candidates: tuple[str, ...]) -> str:
        name = candidates[0]
        if os.path.splitext(name)[1].lower() not in KNOWN_VIDEO_SUFFIXES:
            name += self.extensions[0]
        return str(self.root / name)


# --- manifest --------------------------------------------------------------------


def build(name: str, reader: str, listing: Listing, index: VideoIndex) -> tuple[pd.DataFrame, dict, pd.DataFrame]:
    """Manifest (found videos only), meta and the missing-video ledger of one benchmark."""
    rows, missing = [], []
    counts = {s: {"videos_listed": 0, "videos_found": 0, "videos_missing": 0} for s in SPLITS}
    for e in progress(listing.entries, desc=f"{name}: find videos", mininterval=2.0):
        c = counts[e.split]
        c["videos_listed"] += 1
        path = index.find(e.candidates)
        if path is None:
            c["videos_missing"] += 1
            missing.append({"clip_id": e.clip_id, "expected_path": index.expected(e.candidates), "split": e.split})
            continue
        c["videos_found"] += 1
        row = {"clip_id": e.clip_id, "path": path, "split": e.split}
        if listing.task == "classification":
            row["label"] = e.label
        else:
            row["texts"] = e.texts
        if e.start_s is not None:
            row["start_s"], row["end_s"] = e.start_s, e.end_s
        if e.sentence_times is not None:
            row["sentence_times"] = e.sentence_times
        rows.append(row)
    counts = {s: c for s, c in counts.items() if c["videos_listed"]}
    for split, c in counts.items():
        log.info(
            "%s/%s: %d listed, %d found, %d missing",
            name,
            split,
            c["videos_listed"],
            c["videos_found"],
            c["videos_missing"],
        )
        if c["videos_found"] == 0:
            example = next(m["expected_path"] for m in missing if m["split"] == split)
            raise FileNotFoundError(
                f"{name}: none of the {c['videos_listed']} {split} videos was found under {index.root} "
                f"(extensions {list(index.extensions)}; {index.n_files} video files there); expected e.g. {example}"
            )
    manifest = pd.DataFrame(rows)
    if listing.task == "classification":
        manifest["label"] = manifest["label"].astype("int64")
    for col in ("start_s", "end_s"):
        if col in manifest:
            manifest[col] = manifest[col].astype("float64")
    meta = {
        "name": name,
        "reader": reader,
        "task": listing.task,
        "synthetic": False,
        "paragraph": listing.paragraph,
        "eval_split": listing.eval_split,
        "video_root": str(index.root),
        "extensions": list(index.extensions),
        "source": {k: {"path": str(Path(p).absolute()), "sha256": file_sha256(p)} for k, p in listing.sources.items()},
        "counts": counts,
        **listing.notes,
    }
    if listing.classes is not None:
        meta["classes"] = list(listing.classes)
    if index.n_ambiguous:
        log.warning(
            "%s: %d file stems occur more than once under %s; took the first by extension order, then path",
            name,
            index.n_ambiguous,
            index.root,
        )
    return manifest, meta, pd.DataFrame(missing, columns=["clip_id", "expected_path", "split"])


def write(manifest: pd.DataFrame, meta: dict, missing: pd.DataFrame, manifest_path, meta_path, missing_path) -> None:
    with atomic_path(missing_path) as tmp:
        missing.to_csv(tmp, sep="\t", index=False)
    atomic_parquet(manifest, manifest_path)
    atomic_json(meta, meta_path)
