"""Where full videos come from: YouTube through yt-dlp, or a local folder of them.

A source fetches the part of one video that holds a clip and says where the
clip lies in the file it returns. Failures raise `FetchError` carrying a
ledger status; transient statuses are retried (with backoff, and again in
later runs), permanent ones are not.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

log = logging.getLogger("viclip")

YOUTUBE_ID = re.compile(r"^[A-Za-z0-9_-]{11}$")
DEFAULT_URL_TEMPLATE = "https://www.youtube.com/watch?v={id}"
JS_RUNTIMES = ("deno", "node", "bun", "quickjs")

OK = "ok"
PERMANENT = frozenset(
    {"unavailable", "private", "login_required", "geo_blocked", "invalid_id", "cut_failed", "corrupt"}
)
TRANSIENT = frozenset({"rate_limited", "network", "error"})
STATUSES = (OK, *sorted(PERMANENT), *sorted(TRANSIENT))

# yt-dlp error text -> status, tried in order on the lower-cased message; the
# first match wins. The order matters: YouTube's rate-limit text ("This
# content isn't available, try again later") and its bot check ("Sign in to
# confirm you're not a bot") would otherwise read as unavailable or
# login_required, and a geo block says "not available" too. Sources of the
# texts: yt-dlp's youtube extractor (`_video.py`: playability reasons,
# `raise_geo_restricted`, `raise_login_required`) and its HTTP errors.
ERROR_PATTERNS: tuple[tuple[str, re.Pattern], ...] = tuple(
    (status, re.compile("|".join(words)))
    for status, words in (
        (
            "rate_limited",
            [r"http error 429", "too many requests", "try again later", "rate[- ]limit", "not a bot", "captcha"],
        ),
        ("geo_blocked", ["in your country", "from your location", "geo[- ]?restrict", "geo[- ]?block"]),
        ("private", ["private video", "video is private"]),
        (
            "login_required",
            [
                "members[- ]only",
                "join this channel",
                "confirm your age",
                "age[- ]restrict",
                "inappropriate for some users",
                "only available for registered users",
                "sign in",
            ],
        ),
        (
            "unavailable",
            [
                "video unavailable",
                "has been removed",
                "no longer available",
                "has been terminated",
                r"http error 4(?:04|10)",
                "does not exist",
                "not available",
                "unsupported url",
                "not a valid url",
                "premieres in",
                "live event will begin",
                "copyright",
            ],
        ),
        (
            "network",
            [
                r"http error 5\d\d",
                "http error 403",
                "timed out",
                "timeout",
                "connection (?:reset|refused|aborted)",
                "name resolution",
                "name or service not known",
                "network is unreachable",
                "remote end closed",
                "incompleteread",
                "ssl",
                "unable to download",
                "ffmpeg exited with code",
                "fragment",
            ],
        ),
    )
)


class FetchError(Exception):
    """A clip's video could not be fetched; `status` is its ledger status."""

    def __init__(self, status: str, message: str):
        if status not in STATUSES or status == OK:
            raise ValueError(f"not a failure status: {status!r}")
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class Fetched:
    """A file holding the clip at [start_s, end_s]; what a source writes into its work folder is deleted after cutting."""

    path: Path
    start_s: float
    end_s: float


class Source(Protocol):
    name: str

    def fetch(self, youtube_id: str, start_s: float, end_s: float, workdir: Path) -> Fetched:
        """Fetch the video part holding [start_s, end_s] into `workdir`, or raise FetchError."""


def check_youtube_id(youtube_id: str) -> None:
    if not isinstance(youtube_id, str) or not YOUTUBE_ID.match(youtube_id):
        raise FetchError("invalid_id", f"{youtube_id!r} is not an 11-character YouTube id")


def classify_message(message: str) -> str:
    """The status for a yt-dlp error message by ERROR_PATTERNS; 'error' (transient) when none match."""
    text = message.lower()
    for status, pattern in ERROR_PATTERNS:
        if pattern.search(text):
            return status
    return "error"


def classify_download_error(exc: BaseException) -> str:
    """Status for a yt-dlp exception: by the exception types in its chain first, then by its message."""
    from yt_dlp.networking.exceptions import HTTPError, TransportError
    from yt_dlp.utils import GeoRestrictedError

    seen: set[int] = set()
    cause: BaseException | None = exc
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        if isinstance(cause, GeoRestrictedError):
            return "geo_blocked"
        if isinstance(cause, HTTPError):
            code = cause.status
            if code == 429:
                return "rate_limited"
            if code in (404, 410):
                return "unavailable"
            if code == 403 or code >= 500:  # YouTube answers 403 to expired or throttled stream URLs
                return "network"
        elif isinstance(cause, TransportError):
            return "network"
        exc_info = getattr(cause, "exc_info", None)  # DownloadError keeps the original here
        cause = (exc_info[1] if exc_info and exc_info[1] is not cause else None) or cause.__cause__ or cause.__context__
    return classify_message(str(exc))


def short_message(text: str, limit: int = 300) -> str:
    text = " ".join(str(text).split()).removeprefix("ERROR: ")
    return text if len(text) <= limit else text[: limit - 3] + "..."


class LocalFileSource:
    """A folder of already-downloaded full videos named {youtube_id}.mp4|.mkv|.webm."""

    name = "local"
    EXTENSIONS = (".mp4", ".mkv", ".webm")

    def __init__(self, root: str | Path):
        self.root = Path(root)
        if not self.root.is_dir():
            raise FileNotFoundError(f"local video folder {self.root} does not exist")

    def fetch(self, youtube_id: str, start_s: float, end_s: float, workdir: Path) -> Fetched:
        check_youtube_id(youtube_id)  # the id names a file: validating it also keeps paths inside root
        for ext in self.EXTENSIONS:
            path = self.root / f"{youtube_id}{ext}"
            if path.is_file():
                return Fetched(path, start_s, end_s)
        raise FetchError("unavailable", f"no {youtube_id}{{{','.join(self.EXTENSIONS)}}} in {self.root}")


class _YtDlpLog:
    """Route yt-dlp's chatter to our debug log; failures are reported by status instead."""

    def debug(self, msg: str) -> None:
        log.debug("yt-dlp: %s", msg)

    info = debug
    warning = debug
    error = debug


class YtDlpSource:
    """YouTube (or any yt-dlp site) by id: only the clip's section where possible.

    `section=True` asks yt-dlp for [start, end] only (download_ranges; ffmpeg
    fetches just that range, re-encoding at the cuts so the section starts
    exactly at `start`); `section=False` downloads the whole video. The
    format is the best one no taller than `max_height` (the smallest one when
    none is). `ratelimit_bytes` caps yt-dlp's own HTTP downloader; section
    downloads go through ffmpeg, which it does not throttle, so the start rate
    limit of the runner is the main brake. YouTube needs a JavaScript runtime
    for yt-dlp (`js_runtime`: "deno", yt-dlp's default, or "node", "bun",
    "quickjs", each optionally "name:/path/to/binary") and yt-dlp's EJS
    scripts (the `yt-dlp-ejs` package).
    """

    name = "youtube"

    def __init__(
        self,
        url_template: str = DEFAULT_URL_TEMPLATE,
        max_height: int = 360,
        cookies: str | Path | None = None,
        ratelimit_bytes: int | None = None,
        section: bool = True,
        socket_timeout_s: float = 30.0,
        js_runtime: str | None = None,
    ):
        if (
            url_template.count("{id}") != 1
            or "{" in url_template.replace("{id}", "")
            or "}" in url_template.replace("{id}", "")
        ):
            raise ValueError(f"url_template {url_template!r} must contain '{{id}}' once and no other braces")
        if cookies is not None and not Path(cookies).is_file():
            raise FileNotFoundError(f"cookies file {cookies} does not exist")
        if int(max_height) <= 0:
            raise ValueError(f"max_height must be positive, got {max_height}")
        if js_runtime and js_runtime.partition(":")[0] not in JS_RUNTIMES:
            raise ValueError(f"js_runtime {js_runtime!r}: the runtime must be one of {JS_RUNTIMES}")
        self.url_template = url_template
        self.max_height = int(max_height)
        self.cookies = None if cookies is None else str(cookies)
        self.ratelimit_bytes = ratelimit_bytes
        self.section = bool(section)
        self.socket_timeout_s = float(socket_timeout_s)
        self.js_runtime = js_runtime or None

    def url(self, youtube_id: str) -> str:
        check_youtube_id(youtube_id)
        return self.url_template.replace("{id}", youtube_id)

    def options(self, workdir: Path, start_s: float, end_s: float) -> dict:
        """yt-dlp parameters for one clip (the Python API's names, not CLI flags)."""
        from yt_dlp.utils import download_range_func

        from viclip.data.cutting import ffmpeg_exe

        h = self.max_height
        opts = {
            "format": f"bv*[height<=?{h}]/b[height<=?{h}]/wv*/w",
            "outtmpl": {"default": str(workdir / "source.%(ext)s")},
            "noplaylist": True,
            "overwrites": True,
            "quiet": True,
            "no_warnings": True,
            "noprogress": True,
            "logger": _YtDlpLog(),
            "socket_timeout": self.socket_timeout_s,
            "ffmpeg_location": ffmpeg_exe(),
        }
        if self.section:
            opts["download_ranges"] = download_range_func(None, [(float(start_s), float(end_s))])
            opts["force_keyframes_at_cuts"] = True
        if self.cookies:
            opts["cookiefile"] = self.cookies
        if self.ratelimit_bytes:
            opts["ratelimit"] = int(self.ratelimit_bytes)
        if self.js_runtime:
            name, _, path = self.js_runtime.partition(":")
            opts["js_runtimes"] = {name: {"path": path} if path else {}}
        return opts

    def fetch(self, youtube_id: str, start_s: float, end_s: float, workdir: Path) -> Fetched:
        from yt_dlp import YoutubeDL
        from yt_dlp.postprocessor.ffmpeg import FFmpegPostProcessor
        from yt_dlp.utils import YoutubeDLError

        url = self.url(youtube_id)
        opts = self.options(workdir, start_s, end_s)
        # yt-dlp decides whether a section download is possible by asking
        # FFmpegFD.available(), which ignores the `ffmpeg_location` parameter
        # and reads this context variable (its CLI sets it); a context
        # variable is per thread, so every worker sets it for itself.
        FFmpegPostProcessor._ffmpeg_location.set(opts["ffmpeg_location"])
        try:
            with YoutubeDL(opts) as ydl:
                info = ydl.extract_info(url, download=True)
        except YoutubeDLError as exc:
            raise FetchError(classify_download_error(exc), short_message(str(exc))) from exc
        files = [d.get("filepath") for d in (info or {}).get("requested_downloads") or []]
        files = [Path(f) for f in files if f and Path(f).is_file()]
        if not files:
            raise FetchError("error", f"yt-dlp reported success for {url} but wrote no file in {workdir}")
        if self.section:
            return Fetched(files[0], 0.0, float(end_s) - float(start_s))
        return Fetched(files[0], float(start_s), float(end_s))
