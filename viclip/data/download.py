"""Download and cut clips (InternVid ids and timestamps) into probed mp4 files, resumably.

`download_clips` fetches each clip's video from a source (`sources.py`),
cuts and re-encodes it (`cutting.py`), and records every attempt in
`{out}/ledger.jsonl` (a shard's run: `{out}/ledger.s{k}of{n}.jsonl`, see
`shards.py`). A rerun skips clips that are done or failed for good, retries
transient failures, and cleans up the temp files a killed run left.
Output: `{out}/videos/{clip_id}.mp4` and a manifest of the ok clips.
"""

from __future__ import annotations

import fcntl
import itertools
import logging
import re
import shutil
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import pandas as pd

from viclip.data.cutting import CUT_VERSION, CutError, cut_clip
from viclip.data.ledger import Ledger
from viclip.data.shards import ledger_path, other_ledgers, shard_rows, tag
from viclip.data.sources import (
    DEFAULT_URL_TEMPLATE,
    OK,
    PERMANENT,
    STATUSES,
    FetchError,
    LocalFileSource,
    Source,
    YtDlpSource,
    check_youtube_id,
)
from viclip.progress import progress
from viclip.runtime import as_json

log = logging.getLogger("viclip")

# InternVid clip ids are "{youtube_id}_{start_ms}_{end_ms}" and YouTube ids may start with "-";
# a leading "." is refused because hidden names in videos/ are temp files.
CLIP_ID = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9_.-]{0,200}$")
TABLE_COLUMNS = ("clip_id", "youtube_id", "start_s", "end_s")
MANIFEST_COLUMNS = (
    "clip_id",
    "path",
    "youtube_id",
    "start_s",
    "end_s",
    "duration_s",
    "n_frames",
    "fps",
    "width",
    "height",
)
SOURCE_KEYS = (
    "source",
    "local_dir",
    "url_template",
    "cookies",
    "max_height",
    "ratelimit_bytes",
    "section",
    "js_runtime",
)
JOB_KEYS = ("shards",)  # how the table is split into jobs (read by the workflow), not how a clip is made


@dataclass(frozen=True)
class DownloadOptions:
    short_side: int = 224  # output clips: short side in pixels (even)
    fps: float = 8.0  # output clips: frames per second
    workers: int = 4  # clips in flight at once (threads; ffmpeg/yt-dlp run outside the GIL)
    min_interval_s: float = 0.0  # at least this long between two fetch starts, over all workers
    attempts: int = 3  # tries per clip in one run for transient failures
    backoff_s: float = 5.0  # wait before retry k (k = 1, 2, ...) is backoff_s * 2**(k-1)
    max_total_attempts: int = 10  # over all runs: a transiently failing clip is left alone after this many
    duration_tolerance_s: float = 0.0  # accepted on top of one output frame of |clip - request|
    retry_statuses: tuple[str, ...] = ()  # permanent statuses to try again (e.g. login_required after adding cookies)
    progress: bool = True

    def __post_init__(self):
        if self.short_side <= 0 or self.short_side % 2:
            raise ValueError(f"download.short_side must be a positive even number (yuv420p), got {self.short_side}")
        if self.fps <= 0 or self.workers < 1 or self.attempts < 1 or self.max_total_attempts < 1:
            raise ValueError(f"download: fps, workers, attempts and max_total_attempts must be positive: {self}")
        if self.min_interval_s < 0 or self.backoff_s < 0 or self.duration_tolerance_s < 0:
            raise ValueError(f"download: negative interval, backoff or tolerance: {self}")
        unknown = set(self.retry_statuses) - PERMANENT
        if unknown:
            raise ValueError(
                f"download.retry_statuses: {sorted(unknown)} are not permanent statuses {sorted(PERMANENT)}"
            )


@dataclass
class DownloadResult:
    manifest: pd.DataFrame  # ok clips, MANIFEST_COLUMNS, in table order
    status_counts: dict[str, int]  # latest status of every clip in the table
    attempted: int  # clips tried in this run
    ledger: Path  # the ledger this run appended to


def options_from_config(cfg: dict[str, Any]) -> DownloadOptions:
    """DownloadOptions from a config `download:` section (source keys are read by `source_from_config`)."""
    names = {f.name for f in fields(DownloadOptions)}
    known = names | set(SOURCE_KEYS) | set(JOB_KEYS)
    unknown = set(cfg) - known
    if unknown:
        raise ValueError(f"download: unknown keys {sorted(unknown)}; known: {sorted(known)}")
    kw = {k: v for k, v in cfg.items() if k in names}
    if "retry_statuses" in kw:
        kw["retry_statuses"] = tuple(kw["retry_statuses"] or ())
    return DownloadOptions(**kw)


def source_from_config(cfg: dict[str, Any]) -> Source:
    kind = cfg.get("source", "youtube")
    if kind == "local":
        if not cfg.get("local_dir"):
            raise ValueError("download.source is 'local' but download.local_dir is not set")
        return LocalFileSource(cfg["local_dir"])
    if kind == "youtube":
        return YtDlpSource(
            url_template=cfg.get("url_template") or DEFAULT_URL_TEMPLATE,
            max_height=cfg.get("max_height", 360),
            cookies=cfg.get("cookies") or None,
            ratelimit_bytes=cfg.get("ratelimit_bytes") or None,
            section=cfg.get("section", True),
            js_runtime=cfg.get("js_runtime") or None,
        )
    raise ValueError(f"download.source must be 'youtube' or 'local', got {kind!r}")


def validate_clips(clips: pd.DataFrame, name: str = "clips table") -> pd.DataFrame:
    """Check the columns and every row; errors name the table, the row and the field."""
    missing = [c for c in TABLE_COLUMNS if c not in clips.columns]
    if missing:
        raise ValueError(f"{name}: missing columns {missing} (has {list(clips.columns)})")
    out = clips[list(TABLE_COLUMNS)].reset_index(drop=True)
    for col in ("start_s", "end_s"):
        values = pd.to_numeric(out[col], errors="coerce")
        bad = values.isna() | ~values.between(0, float("inf"), inclusive="left")
        if bad.any():
            i = int(bad.idxmax())
            raise ValueError(f"{name}: row {i}: {col}={out.at[i, col]!r} is not a finite time >= 0")
        out[col] = values.astype(float)
    for i, row in enumerate(out.itertuples(index=False)):
        if not isinstance(row.clip_id, str) or not CLIP_ID.match(row.clip_id):
            raise ValueError(f"{name}: row {i}: clip_id {row.clip_id!r} is not a safe file name ({CLIP_ID.pattern})")
        if row.end_s <= row.start_s:
            raise ValueError(f"{name}: row {i} ({row.clip_id}): end_s {row.end_s} <= start_s {row.start_s}")
    dup = out["clip_id"].duplicated()
    if dup.any():
        raise ValueError(f"{name}: clip_id {out.at[int(dup.idxmax()), 'clip_id']!r} appears more than once")
    return out


class StartLimiter:
    """At most one start per `interval_s` over all workers; `hold` pushes every start back."""

    def __init__(self, interval_s: float, stop: threading.Event):
        self.interval_s = interval_s
        self.stop = stop
        self._next = 0.0
        self._lock = threading.Lock()

    def wait(self) -> bool:
        """Sleep until this worker may start; False when the run is stopping instead."""
        with self._lock:
            now = time.monotonic()
            start = max(now, self._next)
            self._next = start + self.interval_s
        return not self.stop.wait(start - now) if start > now else not self.stop.is_set()

    def hold(self, seconds: float) -> None:
        with self._lock:
            self._next = max(self._next, time.monotonic() + seconds)


class _Run:
    """One download run over an output folder (holds its lock, ledger and limiter)."""

    def __init__(self, out: Path, source: Source, opts: DownloadOptions, ledger: Ledger, tag: str = "all"):
        self.out, self.source, self.opts, self.ledger = out, source, opts, ledger
        # videos/ is shared by the shards; each run has its own work folder
        self.videos, self.work = out / "videos", out / ".work" / tag
        self.stop = threading.Event()  # set on Ctrl-C or an error: workers finish the clip in hand, start no other
        self.limiter = StartLimiter(opts.min_interval_s, self.stop)

    def spec(self, row) -> dict:
        """What a clip's output depends on: a change makes an earlier result stale."""
        return {
            "youtube_id": row.youtube_id,
            "start_s": float(row.start_s),
            "end_s": float(row.end_s),
            "short_side": int(self.opts.short_side),
            "fps": float(self.opts.fps),
            "cut": CUT_VERSION,
        }

    def is_done(self, row, rec: dict | None) -> bool:
        if rec is None or rec.get("spec") != self.spec(row):
            return False
        status = rec["status"]
        if status == OK:
            return (self.out / rec["path"]).is_file()
        if status in PERMANENT:
            return status not in self.opts.retry_statuses
        return rec["attempt"] >= self.opts.max_total_attempts

    def attempt_once(self, row) -> tuple[str, str, dict] | None:
        """One fetch + cut: (status, message, ledger fields), or None when the run stopped first."""
        work = self.work / f"{row.clip_id}.{uuid.uuid4().hex[:8]}"
        try:
            check_youtube_id(row.youtube_id)
            if not self.limiter.wait():
                return None
            work.mkdir(parents=True)
            fetched = self.source.fetch(row.youtube_id, row.start_s, row.end_s, work)
            rel = f"videos/{row.clip_id}.mp4"
            probe = cut_clip(
                fetched.path,
                self.out / rel,
                fetched.start_s,
                fetched.end_s,
                self.opts.short_side,
                self.opts.fps,
                self.opts.duration_tolerance_s,
            )
            return OK, "", {"path": rel, **probe.asdict()}
        except FetchError as exc:
            return exc.status, exc.message, {}
        except CutError as exc:
            return ("corrupt" if exc.source_corrupt else "cut_failed"), str(exc), {}
        finally:
            shutil.rmtree(work, ignore_errors=True)

    def process(self, row, previous_attempt: int) -> str:
        """Try one clip, retrying transient failures with exponential backoff; return its final status."""
        tries = max(1, min(self.opts.attempts, self.opts.max_total_attempts - previous_attempt))
        status = "stopped"
        for k in range(tries):
            result = self.attempt_once(row)
            if result is None:
                return status
            status, message, extra = result
            self.ledger.append(
                {
                    "clip_id": row.clip_id,
                    "status": status,
                    "attempt": previous_attempt + k + 1,
                    "message": message,
                    "source": self.source.name,
                    "spec": self.spec(row),
                    **extra,
                }
            )
            if status == OK:
                log.debug("%s ok (attempt %d)", row.clip_id, previous_attempt + k + 1)
                return status
            if status in PERMANENT or k == tries - 1:
                log.info("%s %s: %s", row.clip_id, status, message)
                return status
            delay = self.opts.backoff_s * 2**k
            if status == "rate_limited":
                self.limiter.hold(delay)  # the whole run backs off, not just this worker
            log.info(
                "%s %s (attempt %d), retrying in %.1f s: %s",
                row.clip_id,
                status,
                previous_attempt + k + 1,
                delay,
                message,
            )
            if self.stop.wait(delay):
                break
        return status


def _lock(out: Path, name: str):
    """One run per ledger: `.lock` for an unsharded run, `.lock.s{k}of{n}` for a shard's (shards run side by side)."""
    out.mkdir(parents=True, exist_ok=True)
    path = out / name
    handle = open(path, "w")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise RuntimeError(f"{path}: another download run is using {out}") from None
    return handle


def _temp_clip_owner(name: str) -> str:
    """The clip id of a hidden temp clip `.{clip_id}.mp4.{random}.mp4` (viclip.io.atomic_path's names)."""
    return name[1:].removesuffix(".mp4").rsplit(".", 1)[0].removesuffix(".mp4")


def _clean_leftovers(run: _Run, clip_ids: set[str]) -> None:
    """Remove what a killed run left: its work folders, and the hidden temp clips of its own clips in videos/
    (other shards may be writing theirs)."""
    stale = [p for p in run.videos.glob(".*") if _temp_clip_owner(p.name) in clip_ids] if run.videos.is_dir() else []
    for path in stale:
        path.unlink()
    if run.work.exists():
        stale.extend(run.work.iterdir())
        shutil.rmtree(run.work)
    if stale:
        log.info("removed %d temp files/folders left by an interrupted run", len(stale))
    run.videos.mkdir(parents=True, exist_ok=True)


def _latest(out: Path, shard: tuple[int, int] | None, clip_ids: set[str]) -> dict[str, dict]:
    """The latest record of each clip over this run's ledger and those of other shard layouts.

    A clip's attempts are numbered across runs, so the highest number is the latest; this run's own
    ledger wins a tie.
    """
    merged: dict[str, dict] = {}
    for path in [*other_ledgers(out, shard), ledger_path(out, shard)]:
        for clip, rec in Ledger(path).latest(clip_ids).items():
            if clip not in merged or rec.get("attempt", 0) >= merged[clip].get("attempt", 0):
                merged[clip] = rec
    return merged


def download_clips(
    clips: pd.DataFrame,
    out_dir: str | Path,
    source: Source,
    opts: DownloadOptions,
    name: str = "clips table",
    shard: tuple[int, int] | None = None,
) -> DownloadResult:
    """Fetch, cut and probe every clip of `clips` (of shard `(k, n)` of it, when given) not already settled
    in the ledgers of `out_dir`."""
    clips = validate_clips(clips, name)
    if shard is not None:
        clips = shard_rows(clips, *shard).reset_index(drop=True)
    out = Path(out_dir)
    lock = _lock(out, ".lock" if shard is None else f".lock.{tag(shard)}")
    try:
        ledger = Ledger(ledger_path(out, shard))
        run = _Run(out, source, opts, ledger, tag(shard))
        clip_ids = set(clips["clip_id"])
        _clean_leftovers(run, clip_ids)
        latest = _latest(out, shard, clip_ids)
        todo = [
            (row, latest[row.clip_id]["attempt"] if row.clip_id in latest else 0)
            for row in clips.itertuples(index=False)
            if not run.is_done(row, latest.get(row.clip_id))
        ]
        settled = Counter(latest[c]["status"] for c in clips["clip_id"] if c in latest)
        log.info(
            "%d clips (%s): %d to do with %s source, %d workers; ledger %s; the ledgers have %s",
            len(clips),
            "unsharded" if shard is None else f"shard {shard[0]} of {shard[1]}",
            len(todo),
            source.name,
            opts.workers,
            ledger.path,
            as_json(dict(settled)) if settled else "nothing yet",
        )
        counts: Counter = Counter()
        with (
            ledger,
            ThreadPoolExecutor(max_workers=opts.workers, thread_name_prefix="clip") as pool,
            progress(total=len(todo), desc="download", unit="clip", disable=not opts.progress, mininterval=1.0) as bar,
        ):
            queue, pending = iter(todo), set()
            try:
                while True:
                    # A bounded window of submitted clips keeps memory flat on million-clip tables.
                    for row, prev in itertools.islice(queue, 2 * opts.workers - len(pending)):
                        pending.add(pool.submit(run.process, row, prev))
                    if not pending:
                        break
                    done, pending = wait(pending, return_when=FIRST_COMPLETED)
                    for fut in done:
                        counts[fut.result()] += 1
                    bar.update(len(done))
                    bar.set_postfix({s: counts[s] for s in STATUSES if counts[s]}, refresh=False)
            except BaseException:
                run.stop.set()
                pool.shutdown(wait=False, cancel_futures=True)
                raise
        latest = _latest(out, shard, clip_ids)
        manifest = _manifest(clips, latest, run)
        final = Counter(latest[c]["status"] for c in clips["clip_id"] if c in latest)
        log.info("done: this run %s; all clips %s; %d in the manifest", as_json(counts), as_json(final), len(manifest))
        for folder in (run.work, run.work.parent):  # empty once every clip's work folder is gone
            try:
                folder.rmdir()
            except OSError:  # not empty: another shard's run is working there
                pass
        return DownloadResult(manifest, {s: final[s] for s in STATUSES if final[s]}, len(todo), ledger.path)
    finally:
        lock.close()


def _manifest(clips: pd.DataFrame, latest: dict, run: _Run) -> pd.DataFrame:
    rows = []
    for row in clips.itertuples(index=False):
        rec = latest.get(row.clip_id)
        if rec and rec["status"] == OK and rec.get("spec") == run.spec(row) and (run.out / rec["path"]).is_file():
            rows.append(
                {**row._asdict(), **{k: rec[k] for k in ("path", "duration_s", "n_frames", "fps", "width", "height")}}
            )
    manifest = pd.DataFrame(rows, columns=list(MANIFEST_COLUMNS))
    return manifest.astype(
        {
            "n_frames": "int64",
            "width": "int64",
            "height": "int64",
            "fps": "float64",
            "duration_s": "float64",
            "start_s": "float64",
            "end_s": "float64",
        }
    )
