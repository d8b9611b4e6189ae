"""Downloading and cutting clips: sources, error classes, cutting, the ledger, resuming (no network).

"Full YouTube videos" are 3 s, 10 fps, 64x48 mp4s rendered here; frame t is a
uniform grey of level 20 + 7t, so a cut clip's frames tell which source
times they came from. yt-dlp runs for real against a local HTTP server.
"""

from __future__ import annotations

import fcntl
import functools
import http.server
import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import ClassVar

import numpy as np
import pandas as pd
import pytest

from viclip.data.cutting import CutError, cut_clip, ffmpeg_exe
from viclip.data.download import (
    MANIFEST_COLUMNS,
    DownloadOptions,
    download_clips,
    options_from_config,
    source_from_config,
    validate_clips,
)
from viclip.data.ledger import Ledger
from viclip.data.sources import (
    OK,
    PERMANENT,
    STATUSES,
    TRANSIENT,
    FetchError,
    LocalFileSource,
    YtDlpSource,
    classify_download_error,
    classify_message,
)
from viclip.data.video import read_frames, write_mp4

FPS_SRC, N_SRC = 10, 30
GOOD = ("aaaaaaaaaaa", "bbbbbbbbbbb", "ccccccccccc")
OPTS = {"short_side": 32, "fps": 8, "workers": 2, "backoff_s": 0.01, "progress": False}


def grey(t: int, offset: int = 0) -> int:
    return 20 + 7 * t + offset


@pytest.fixture(scope="module")
def videos(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("youtube")
    for k, vid in enumerate(GOOD):
        frames = np.stack([np.full((48, 64, 3), grey(t, k), np.uint8) for t in range(N_SRC)])
        write_mp4(root / f"{vid}.mp4", frames, fps=FPS_SRC)
    good = (root / f"{GOOD[0]}.mp4").read_bytes()
    (root / "corruptvid1.mp4").write_bytes(np.random.default_rng(0).integers(0, 256, 6000, np.uint8).tobytes())
    (root / "truncated01.mp4").write_bytes(good[: len(good) // 3])
    return root


def table(rows) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["clip_id", "youtube_id", "start_s", "end_s"])


def levels(path: Path) -> np.ndarray:
    return read_frames(path).reshape(-1, 32 * 42 * 3).mean(axis=1)


def lines(out: Path) -> list[dict]:
    return list(Ledger(out / "ledger.jsonl").records())


def hidden(out: Path) -> list[Path]:
    return [p for p in (out / "videos").iterdir() if p.name.startswith(".")] + list((out / ".work").glob("*"))


# --- whole path with a local source -------------------------------------------------------------


def test_local_source_cuts_probes_and_classifies(videos, tmp_path):
    clips = table(
        [
            ("a1", GOOD[0], 1.0, 2.5),
            ("b1", GOOD[1], 0.0, 1.2),
            ("c1", GOOD[2], 2.0, 2.9),
            ("missing", "zzzzzzzzzzz", 0.0, 1.0),
            ("badid", "not-an-id", 0.0, 1.0),
            ("corrupt", "corruptvid1", 0.0, 1.0),
            ("trunc", "truncated01", 0.5, 2.5),
            ("past_end", GOOD[0], 2.0, 5.0),
        ]
    )
    res = download_clips(clips, tmp_path, LocalFileSource(videos), DownloadOptions(**OPTS))
    status = {r["clip_id"]: r["status"] for r in lines(tmp_path)}
    assert status == {
        "a1": OK,
        "b1": OK,
        "c1": OK,
        "missing": "unavailable",
        "badid": "invalid_id",
        "corrupt": "corrupt",
        "trunc": "corrupt",
        "past_end": "cut_failed",
    }
    assert res.status_counts == {"ok": 3, "corrupt": 2, "cut_failed": 1, "invalid_id": 1, "unavailable": 1}
    m = res.manifest
    assert list(m.columns) == list(MANIFEST_COLUMNS) and list(m.clip_id) == ["a1", "b1", "c1"]
    assert (m.width == 42).all() and (m.height == 32).all() and (m.fps == 8).all()
    for row in m.itertuples():
        expected = (row.end_s - row.start_s) * 8
        assert abs(row.n_frames - expected) <= 1, row
        frames = read_frames(tmp_path / row.path)
        assert frames.shape == (row.n_frames, 32, 42, 3)
    # Output frame k shows the source frame on screen at start + k/8 (the last one that began by then).
    lv = levels(tmp_path / "videos/a1.mp4")
    on_screen = np.floor((1.0 + np.arange(len(lv)) / 8) * FPS_SRC + 1e-9)
    assert np.abs(lv - grey(on_screen)).max() < 3, (lv, grey(on_screen))
    assert abs(levels(tmp_path / "videos/c1.mp4")[0] - grey(20, 2)) < 4
    assert not (tmp_path / "videos/past_end.mp4").exists() and hidden(tmp_path) == []
    msg = {r["clip_id"]: r["message"] for r in lines(tmp_path)}
    assert "source video does not decode" in msg["corrupt"] and "duration" in msg["past_end"]


def test_rerun_skips_settled_clips_and_redoes_stale_ones(videos, tmp_path):
    clips = table([("a1", GOOD[0], 0.0, 1.0), ("missing", "zzzzzzzzzzz", 0.0, 1.0)])
    download_clips(clips, tmp_path, LocalFileSource(videos), DownloadOptions(**OPTS))
    mtime = (tmp_path / "videos/a1.mp4").stat().st_mtime_ns
    again = download_clips(clips, tmp_path, LocalFileSource(videos), DownloadOptions(**OPTS))
    assert again.attempted == 0 and len(lines(tmp_path)) == 2
    assert (tmp_path / "videos/a1.mp4").stat().st_mtime_ns == mtime
    # A changed frame rate makes the ok clip stale; a permanent failure is retried only when asked.
    res = download_clips(
        clips, tmp_path, LocalFileSource(videos), DownloadOptions(**{**OPTS, "fps": 4}, retry_statuses=("unavailable",))
    )
    assert res.attempted == 2 and res.manifest.fps.tolist() == [4.0]
    assert [(r["clip_id"], r["attempt"]) for r in lines(tmp_path)][2:] in (
        [("a1", 2), ("missing", 2)],
        [("missing", 2), ("a1", 2)],
    )
    # A deleted clip file is made again.
    (tmp_path / "videos/a1.mp4").unlink()
    res = download_clips(clips, tmp_path, LocalFileSource(videos), DownloadOptions(**{**OPTS, "fps": 4}))
    assert res.attempted == 1 and (tmp_path / "videos/a1.mp4").is_file()


def test_clips_of_an_older_cut_are_cut_again(videos, tmp_path):
    """Records written before the cut's fix (no `cut` version in their spec) are stale, not done."""
    clips = table([("a1", GOOD[0], 0.25, 1.0)])
    download_clips(clips, tmp_path, LocalFileSource(videos), DownloadOptions(**OPTS))
    path = tmp_path / "ledger.jsonl"
    rec = json.loads(path.read_text())
    del rec["spec"]["cut"]
    path.write_text(json.dumps(rec) + "\n")
    res = download_clips(clips, tmp_path, LocalFileSource(videos), DownloadOptions(**OPTS))
    assert res.attempted == 1 and [r["attempt"] for r in lines(tmp_path)] == [1, 2]


def test_cut_is_reproducible_and_names_files(videos, tmp_path):
    src = videos / f"{GOOD[0]}.mp4"
    p1 = cut_clip(src, tmp_path / "x.mp4", 0.3, 1.9, 32, 8)
    p2 = cut_clip(src, tmp_path / "y.mp4", 0.3, 1.9, 32, 8)
    assert p1 == p2 and (tmp_path / "x.mp4").read_bytes() == (tmp_path / "y.mp4").read_bytes()
    with pytest.raises(CutError) as err:
        cut_clip(videos / "corruptvid1.mp4", tmp_path / "z.mp4", 0.0, 1.0, 32, 8)
    assert err.value.source_corrupt and "corruptvid1.mp4" in str(err.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.mp4", "y.mp4"]


# --- retries, backoff and interruption ----------------------------------------------------------


class FlakySource(LocalFileSource):
    """A local folder that answers `status` to the first `fails[id]` fetches of each id."""

    def __init__(self, root, fails: dict[str, int], status: str = "rate_limited"):
        super().__init__(root)
        self.fails, self.status, self.calls = dict(fails), status, {}
        self.starts: list[float] = []

    def fetch(self, youtube_id, start_s, end_s, workdir):
        self.starts.append(time.monotonic())
        n = self.calls[youtube_id] = self.calls.get(youtube_id, 0) + 1
        if n <= self.fails.get(youtube_id, 0):
            raise FetchError(self.status, f"HTTP Error 429: Too Many Requests (call {n})")
        return super().fetch(youtube_id, start_s, end_s, workdir)


def test_transient_failures_retry_with_backoff_in_run_and_across_runs(videos, tmp_path):
    src = FlakySource(videos, {GOOD[0]: 2, GOOD[1]: 3, GOOD[2]: 99})
    clips = table([("a", GOOD[0], 0, 1), ("b", GOOD[1], 0, 1), ("c", GOOD[2], 0, 1)])
    opts = DownloadOptions(**{**OPTS, "workers": 1, "backoff_s": 0.1}, attempts=3, max_total_attempts=4)
    t0 = time.monotonic()
    res = download_clips(clips.iloc[:1], tmp_path, src, opts)
    assert time.monotonic() - t0 >= 0.1 + 0.2  # waits 0.1 s, then 0.2 s
    assert np.diff(src.starts).min() >= 0.09 and np.diff(src.starts)[1] >= 0.19
    assert [(r["status"], r["attempt"]) for r in lines(tmp_path)] == [
        ("rate_limited", 1),
        ("rate_limited", 2),
        ("ok", 3),
    ]
    assert res.status_counts == {"ok": 1}

    res = download_clips(clips, tmp_path, src, opts)
    by = lambda c: [(r["status"], r["attempt"]) for r in lines(tmp_path) if r["clip_id"] == c]
    assert by("b") == by("c") == [("rate_limited", 1), ("rate_limited", 2), ("rate_limited", 3)]
    res = download_clips(clips, tmp_path, src, opts)  # a later run: one more try each, up to max_total_attempts
    assert res.attempted == 2 and by("b")[-1] == ("ok", 4) and by("c")[-1] == ("rate_limited", 4)
    res = download_clips(clips, tmp_path, src, opts)  # then it is left alone
    assert res.attempted == 0 and res.status_counts == {"ok": 2, "rate_limited": 1}
    assert len(by("a")) == 3  # settled clips are never tried again


class SlowLocalSource(LocalFileSource):
    """Copies each video into the work folder as a .part file first, slowly, as yt-dlp would."""

    def fetch(self, youtube_id, start_s, end_s, workdir):
        found = super().fetch(youtube_id, start_s, end_s, workdir)
        part = workdir / "source.mp4.part"
        part.write_bytes(found.path.read_bytes())
        time.sleep(0.3)
        return type(found)(part.rename(workdir / "source.mp4"), start_s, end_s)


RUN_IN_CHILD = textwrap.dedent("""
    import sys
    import pandas as pd
    sys.path.insert(0, {tests!r})
    from test_download import SlowLocalSource
    from viclip.data.download import DownloadOptions, download_clips
    download_clips(pd.read_parquet({table!r}), {out!r}, SlowLocalSource({videos!r}),
                   DownloadOptions(short_side=32, fps=8, workers=2, progress=False))
""")


def test_killed_run_resumes_without_redoing_finished_clips(videos, tmp_path):
    out = tmp_path / "out"
    clips = table([(f"k{i}", GOOD[i % 3], 0.1 * i, 0.1 * i + 1.0) for i in range(10)])
    clips.to_parquet(tmp_path / "clips.parquet")
    code = RUN_IN_CHILD.format(
        tests=str(Path(__file__).parent), table=str(tmp_path / "clips.parquet"), out=str(out), videos=str(videos)
    )
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline and child.poll() is None:
            done = [r for r in lines(out) if r["status"] == OK] if (out / "ledger.jsonl").exists() else []
            if len(done) >= 3 and any((out / ".work").glob("*/*/source.mp4*")):  # kill with a clip in flight
                break
            time.sleep(0.02)
        assert child.poll() is None, child.stdout.read().decode()[-2000:]
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    first = {r["clip_id"]: r for r in lines(out)}
    assert 3 <= len(first) < 10, "the kill should land mid-run"
    assert any((out / ".work").iterdir()), "the killed run should have left its work folder behind"
    mtimes = {c: (out / r["path"]).stat().st_mtime_ns for c, r in first.items()}

    res = download_clips(clips, out, LocalFileSource(videos), DownloadOptions(**OPTS))
    records = lines(out)
    assert res.status_counts == {"ok": 10} and len(res.manifest) == 10
    assert res.attempted == 10 - len(first)
    for c in first:  # finished before the kill: one ledger line, file untouched
        assert [r["attempt"] for r in records if r["clip_id"] == c] == [1]
        assert (out / first[c]["path"]).stat().st_mtime_ns == mtimes[c]
    assert len(records) == 10 and hidden(out) == []


def test_leftovers_of_a_killed_run_are_removed_and_runs_are_exclusive(videos, tmp_path):
    (tmp_path / "videos").mkdir()
    (tmp_path / "videos" / ".a1.mp4.x7k2.mp4").write_bytes(b"half")
    (tmp_path / ".work" / "all" / "a1.1234abcd").mkdir(parents=True)
    (tmp_path / ".work" / "all" / "a1.1234abcd" / "source.mp4.part").write_bytes(b"half")
    # another run's (a shard working beside this one): its temp clip and work folder are left alone
    (tmp_path / "videos" / ".b7.x.mp4.k2j4.mp4").write_bytes(b"half")
    (tmp_path / ".work" / "s1of2" / "b7.x.5678abcd").mkdir(parents=True)
    download_clips(table([("a1", GOOD[0], 0, 1)]), tmp_path, LocalFileSource(videos), DownloadOptions(**OPTS))
    assert (tmp_path / "videos/a1.mp4").is_file()
    assert sorted(p.name for p in hidden(tmp_path)) == [".b7.x.mp4.k2j4.mp4", "s1of2"]
    with open(tmp_path / ".lock", "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        with pytest.raises(RuntimeError, match="another download run"):
            download_clips(table([("a1", GOOD[0], 0, 1)]), tmp_path, LocalFileSource(videos), DownloadOptions(**OPTS))


# --- the ledger ----------------------------------------------------------------------------------


def test_ledger_latest_tolerates_a_torn_last_line(tmp_path):
    path = tmp_path / "ledger.jsonl"
    with Ledger(path) as led:
        led.append({"clip_id": "a", "status": "network", "attempt": 1})
        led.append({"clip_id": "b", "status": "ok", "attempt": 1})
        led.append({"clip_id": "a", "status": "ok", "attempt": 2})
    with open(path, "ab") as f:
        f.write(b'{"clip_id": "c", "stat')  # a run killed mid-write
    latest = Ledger(path).latest()
    assert {k: (v["status"], v["n_attempts"]) for k, v in latest.items()} == {"a": ("ok", 2), "b": ("ok", 1)}
    with Ledger(path) as led:  # reopening cuts the torn tail so the next line is whole
        led.append({"clip_id": "c", "status": "ok", "attempt": 1})
    assert [json.loads(x)["clip_id"] for x in path.read_text().splitlines()] == ["a", "b", "a", "c"]
    path.write_bytes(b'{"clip_id": "d"')  # killed during its first line
    with Ledger(path) as led:
        led.append({"clip_id": "e", "status": "ok", "attempt": 1})
    assert list(Ledger(path).latest()) == ["e"]
    path.write_text('{"clip_id": "a"}\nnot json\n{"clip_id": "b"}\n')
    with pytest.raises(ValueError, match=r"ledger.jsonl: line 2"):
        Ledger(path).latest()


# --- yt-dlp for real, against a local HTTP server -------------------------------------------------


class RangeHandler(http.server.BaseHTTPRequestHandler):
    """Serves files with byte ranges (ffmpeg seeks in mp4s); some ids answer with HTTP errors."""

    ERRORS: ClassVar[dict[str, int]] = {"ratelimit01": 429, "servererr01": 503}

    def __init__(self, *args, root: Path, **kwargs):
        self.root = root
        super().__init__(*args, **kwargs)

    def log_message(self, *args):
        pass

    def do_HEAD(self):
        self._serve(body=False)

    def do_GET(self):
        self._serve(body=True)

    def _serve(self, body: bool):
        name = Path(self.path.split("?")[0]).name
        if Path(name).stem in self.ERRORS:
            return self.send_error(self.ERRORS[Path(name).stem])
        path = self.root / name
        if not path.is_file():
            return self.send_error(404)
        data = path.read_bytes()
        m = re.match(r"bytes=(\d+)-(\d*)", self.headers.get("Range", ""))
        if m:
            a = int(m.group(1))
            b = int(m.group(2)) if m.group(2) else len(data) - 1
            chunk = data[a : b + 1]
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {a}-{a + len(chunk) - 1}/{len(data)}")
        else:
            chunk = data
            self.send_response(200)
        self.send_header("Content-Type", "video/mp4")
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Length", str(len(chunk)))
        self.end_headers()
        if body:
            self.wfile.write(chunk)


@pytest.fixture(scope="module")
def server(videos):
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(RangeHandler, root=videos))
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{srv.server_address[1]}/{{id}}.mp4"
    srv.shutdown()


def test_ytdlp_source_downloads_sections_through_the_whole_path(server, tmp_path):
    clips = table(
        [
            ("s1", GOOD[1], 1.0, 2.2),
            ("s2", GOOD[2], 0.4, 1.6),
            ("gone", "zzzzzzzzzzz", 0, 1),
            ("slow", "ratelimit01", 0, 1),
        ]
    )
    opts = DownloadOptions(**OPTS, attempts=2)
    res = download_clips(clips, tmp_path, YtDlpSource(url_template=server, max_height=360), opts)
    assert res.status_counts == {"ok": 2, "unavailable": 1, "rate_limited": 1}
    assert [(r["clip_id"], r["attempt"]) for r in lines(tmp_path) if r["clip_id"] == "slow"] == [
        ("slow", 1),
        ("slow", 2),
    ]
    # the section starts at the clip's start: frame 0 is the source frame at start_s
    assert abs(levels(tmp_path / "videos/s1.mp4")[0] - grey(10, 1)) < 4
    assert abs(levels(tmp_path / "videos/s2.mp4")[0] - grey(4, 2)) < 4
    assert list(res.manifest.clip_id) == ["s1", "s2"] and hidden(tmp_path) == []
    again = download_clips(clips, tmp_path, YtDlpSource(url_template=server), opts)
    assert again.attempted == 1  # only the rate-limited clip is tried again


def test_ytdlp_whole_video_download(server, videos, tmp_path):
    fetched = YtDlpSource(url_template=server, section=False).fetch(GOOD[0], 1.0, 2.0, tmp_path)
    assert (fetched.start_s, fetched.end_s) == (1.0, 2.0) and fetched.path.parent == tmp_path
    assert fetched.path.read_bytes() == (videos / f"{GOOD[0]}.mp4").read_bytes()
    probe = cut_clip(fetched.path, tmp_path / "c.mp4", fetched.start_s, fetched.end_s, 32, 8)
    assert probe.n_frames == 8 and abs(levels(tmp_path / "c.mp4")[0] - grey(10)) < 4


@pytest.mark.parametrize(
    "youtube_id, status",
    [
        ("zzzzzzzzzzz", "unavailable"),  # HTTP 404
        ("ratelimit01", "rate_limited"),  # HTTP 429
        ("servererr01", "network"),  # HTTP 503
    ],
)
def test_real_ytdlp_errors_are_classified(server, tmp_path, youtube_id, status):
    with pytest.raises(FetchError) as err:
        YtDlpSource(url_template=server).fetch(youtube_id, 0, 1, tmp_path)
    assert err.value.status == status, err.value.message


def test_unreachable_host_is_a_network_error(tmp_path):
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(FetchError) as err:
        YtDlpSource(url_template=f"http://127.0.0.1:{port}/{{id}}.mp4").fetch(GOOD[0], 0, 1, tmp_path)
    assert err.value.status == "network" and "refused" in err.value.message.lower()


# --- error classification by message ------------------------------------------------------------

YT = "ERROR: [youtube] dQw4w9WgXcQ: "


@pytest.mark.parametrize(
    "message, status",
    [
        # texts of yt-dlp's youtube extractor (playability reasons) and HTTP layer
        (
            YT + "Private video. Sign in if you've been granted access to this video. Use --cookies-from-browser or "
            "--cookies for the authentication.",
            "private",
        ),
        (YT + "Video unavailable. This video has been removed by the uploader", "unavailable"),
        (
            YT + "Video unavailable. This video is no longer available because the YouTube account associated with "
            "this video has been terminated.",
            "unavailable",
        ),
        (
            YT + "Video unavailable. This content isn't available, try again later. The current session has been "
            "rate-limited by YouTube for up to an hour.",
            "rate_limited",
        ),
        (
            YT + "Sign in to confirm you\u2019re not a bot. Use --cookies-from-browser or --cookies for the "
            "authentication.",
            "rate_limited",
        ),
        (YT + "The uploader has not made this video available in your country", "geo_blocked"),
        (YT + "Sign in to confirm your age. This video may be inappropriate for some users.", "login_required"),
        (
            YT + "Join this channel to get access to members-only content like this video, and other exclusive perks.",
            "login_required",
        ),
        ("ERROR: unable to download video data: HTTP Error 403: Forbidden", "network"),
        (
            YT + "Unable to download API page: <urlopen error [Errno -3] Temporary failure in name resolution>",
            "network",
        ),
        ("ERROR: [download] Got error: The read operation timed out", "network"),
        (YT + "Requested format is not available. Use --list-formats for a list of available formats", "unavailable"),
        ("ERROR: something no pattern knows", "error"),
    ],
)
def test_messages_map_to_statuses(message, status):
    assert classify_message(message) == status


def test_status_sets_partition_and_exception_types_win():
    from yt_dlp.utils import DownloadError, GeoRestrictedError

    assert set(STATUSES) == {OK} | PERMANENT | TRANSIENT and not PERMANENT & TRANSIENT
    geo = GeoRestrictedError("blocked for this viewer")  # no geo words: the type decides
    assert (
        classify_download_error(DownloadError("ERROR: blocked for this viewer", (GeoRestrictedError, geo, None)))
        == "geo_blocked"
    )


# --- validation and configuration ----------------------------------------------------------------


@pytest.mark.parametrize(
    "rows, match",
    [
        ([("../evil", GOOD[0], 0, 1)], r"row 0: clip_id '../evil'"),
        ([(".hidden", GOOD[0], 0, 1)], r"row 0: clip_id '.hidden'"),
        ([("a", GOOD[0], 0, 1), ("b", GOOD[0], 2, 2)], r"row 1 \(b\): end_s 2.0 <= start_s 2.0"),
        ([("a", GOOD[0], 0, 1), ("a", GOOD[0], 1, 2)], r"clip_id 'a' appears more than once"),
        ([("a", GOOD[0], "x", 1)], r"row 0: start_s='x'"),
    ],
)
def test_bad_tables_name_the_row(rows, match):
    with pytest.raises(ValueError, match=match):
        validate_clips(table(rows), "my.parquet")
    assert len(validate_clips(table([("-bcdefghijk_0_1000", "-bcdefghijk", 0, 1)]))) == 1
    with pytest.raises(ValueError, match=r"my.parquet: missing columns \['end_s'\]"):
        validate_clips(table(rows).drop(columns="end_s"), "my.parquet")


def test_config_builds_sources_and_options(videos, tmp_path):
    cfg = {
        "source": "local",
        "local_dir": str(videos),
        "workers": 3,
        "short_side": 64,
        "fps": 4,
        "retry_statuses": ["login_required"],
    }
    assert options_from_config(cfg).retry_statuses == ("login_required",)
    assert isinstance(source_from_config(cfg), LocalFileSource)
    yt = source_from_config({"source": "youtube", "max_height": 240})
    assert yt.url(GOOD[0]) == f"https://www.youtube.com/watch?v={GOOD[0]}"
    assert yt.options(tmp_path, 1, 2)["format"] == "bv*[height<=?240]/b[height<=?240]/wv*/w"
    node = source_from_config({"source": "youtube", "js_runtime": "node:/opt/node/bin/node"})
    assert node.options(tmp_path, 1, 2)["js_runtimes"] == {"node": {"path": "/opt/node/bin/node"}}
    with pytest.raises(ValueError, match="js_runtime"):
        YtDlpSource(js_runtime="python")
    for bad, match in [
        ({"workerz": 2}, "unknown keys"),
        ({"short_side": 33}, "even"),
        ({"retry_statuses": ["network"]}, "not permanent"),
    ]:
        with pytest.raises(ValueError, match=match):
            options_from_config(bad)
    with pytest.raises(ValueError, match="no other braces"):
        YtDlpSource(url_template="https://x/{id}/{id.__class__}")
    with pytest.raises(FileNotFoundError, match="cookies"):
        YtDlpSource(cookies=tmp_path / "nope.txt")
    with pytest.raises(FetchError) as err:
        yt.url("abc; rm -rf")
    assert err.value.status == "invalid_id"
    assert os.path.isfile(ffmpeg_exe())


def test_snakemake_script(videos, tmp_path, repo, snakemake_bin):
    table([("a1", GOOD[0], 0.5, 1.5), ("gone", "zzzzzzzzzzz", 0, 1)]).to_parquet(tmp_path / "clips.parquet")
    params = {
        "source": "local",
        "local_dir": str(videos),
        "short_side": 32,
        "fps": 8,
        "workers": 2,
        "attempts": 2,
        "backoff_s": 0.01,
    }
    (tmp_path / "Snakefile").write_text(
        textwrap.dedent(f"""
        rule download_clips:
            input: clips="clips.parquet"
            output: manifest="data/clips.parquet", summary="data/download.json"
            params: out_dir="data", download={params!r}, shard={{"shard": 0, "shards": 1}}
            log: "logs/download.log"
            script: "{repo / "scripts" / "download_clips.py"}"
    """)
    )
    proc = subprocess.run(
        [snakemake_bin, "--cores", "1", "--quiet"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "PYTHONPATH": str(repo)},
    )
    assert proc.returncode == 0, proc.stderr[-3000:] + (tmp_path / "logs/download.log").read_text()[-3000:]
    summary = json.loads((tmp_path / "data/download.json").read_text())
    assert summary["by_status"] == {"ok": 1, "unavailable": 1} and summary["n_ok"] == 1
    assert summary["ledger"] == "data/ledger.s0of1.jsonl" and (summary["shard"], summary["shards"]) == (0, 1)
    assert pd.read_parquet(tmp_path / "data/clips.parquet").path.tolist() == ["videos/a1.mp4"]
