"""Progress that reads well in a log file: a tqdm bar on a terminal, plain lines anywhere else.

Snakemake jobs send stderr to the job's log file (viclip.runtime.setup_job),
where a tqdm bar is a run of carriage-return redraws on one endless line.
`progress` takes the arguments of tqdm that the workflow uses and returns a
tqdm bar when stderr is a terminal; otherwise a `PlainProgress`, which logs
one line per `mininterval` seconds through the `viclip.progress` logger, and
a last one when it closes:

    pretrain mask=0.5: 120/500 (24%) 3.41 it/s elapsed 00:35 ETA 01:51 | loss=2.345 clips_s=55
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from tqdm import tqdm

log = logging.getLogger("viclip.progress")


def progress(
    iterable: Iterable | None = None,
    desc: str | None = None,
    total: float | None = None,
    *,
    initial: float = 0,
    unit: str = "it",
    unit_scale: bool = False,
    mininterval: float = 0.1,
    disable: bool = False,
    file=None,
    clock: Callable[[], float] = time.monotonic,
    **tqdm_kwargs,
):
    """tqdm(iterable, desc=..., total=..., ...) on a terminal (or when disabled); a PlainProgress otherwise."""
    stream = sys.stderr if file is None else file
    common = dict(desc=desc, total=total, initial=initial, unit=unit, unit_scale=unit_scale, mininterval=mininterval)
    if disable or _isatty(stream):
        return tqdm(iterable, disable=disable, file=file, **common, **tqdm_kwargs)
    return PlainProgress(iterable, stream=stream, clock=clock, **common)


def _isatty(stream) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):  # no such method, or a closed stream
        return False


class PlainProgress:
    """The part of tqdm's interface the workflow uses (iteration, update, set_postfix, close, `with`),
    reported as one log line per `mininterval` seconds and one at the end, with no carriage returns."""

    def __init__(
        self,
        iterable: Iterable | None = None,
        desc: str | None = None,
        total: float | None = None,
        *,
        initial: float = 0,
        unit: str = "it",
        unit_scale: bool = False,
        mininterval: float = 0.1,
        stream=None,
        clock: Callable[[], float] = time.monotonic,
    ):
        if total is None and iterable is not None:
            try:
                total = len(iterable)  # type: ignore[arg-type]
            except (TypeError, AttributeError):
                total = None
        self.iterable, self.desc, self.total = iterable, desc or "", total
        self.n, self.unit, self.unit_scale = initial, unit.strip() or "it", unit_scale
        self.mininterval, self.stream, self.clock = mininterval, stream, clock
        self.postfix: dict[str, str] = {}
        self.closed = False
        self.reported: tuple | None = None  # (count, postfix) of the last line
        self.start_t = self.last_t = clock()
        self.initial = self.last_n = initial

    def __iter__(self) -> Iterator:
        try:
            for item in self.iterable:
                yield item
                self.update(1)
        finally:
            self.close()

    def __len__(self) -> int:
        return int(self.total or 0)

    def __enter__(self) -> PlainProgress:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def update(self, n: float = 1) -> None:
        self.n += n
        if self.clock() - self.last_t >= self.mininterval:
            self._report()

    def set_postfix(self, ordered_dict: Mapping[str, Any] | None = None, refresh: bool = True, **kwargs) -> None:
        fields = {**(ordered_dict or {}), **kwargs}
        self.postfix = {str(k): _short(v) for k, v in fields.items()}

    def close(self) -> None:
        """Log the last line (unless the last interval's line already says it all)."""
        if not self.closed:
            self.closed = True
            if self.reported is None or self.reported != (self.n, self.postfix):
                self._report(final=True)

    def line(self, now: float | None = None, final: bool = False) -> str:
        """The progress as one line of text: the rate is over the interval since the last line
        (over the whole run in the `final` line), and the ETA assumes that rate."""
        now = self.clock() if now is None else now
        t0, n0 = (self.start_t, self.initial) if final else (self.last_t, self.last_n)
        dt, dn = now - t0, self.n - n0
        if self.total:
            parts = [f"{self._count(self.n)}/{self._count(self.total)} ({100 * self.n / self.total:.0f}%)"]
        else:
            parts = [f"{self._count(self.n)} {self.unit}"]
        if dt > 0 and dn > 0:
            parts.append(self._rate(dn / dt))
        parts.append(f"elapsed {tqdm.format_interval(now - self.start_t)}")
        if self.total and dt > 0 and dn > 0 and self.n < self.total:
            parts.append(f"ETA {tqdm.format_interval((self.total - self.n) * dt / dn)}")
        text = " ".join(parts)
        if self.desc:
            text = f"{self.desc}: {text}"
        if self.postfix:
            text += " | " + " ".join(f"{k}={v}" for k, v in self.postfix.items())
        return text

    def _report(self, final: bool = False) -> None:
        now = self.clock()
        text = self.line(now, final)
        self.last_t, self.last_n, self.reported = now, self.n, (self.n, dict(self.postfix))
        if log.hasHandlers():
            log.info("%s", text)
        elif self.stream is not None:  # logging is not set up: the line goes to the stream itself
            self.stream.write(text + "\n")
            self.stream.flush()

    def _count(self, x: float) -> str:
        if self.unit_scale:
            return tqdm.format_sizeof(x, divisor=1000).strip()
        return str(int(x)) if float(x).is_integer() else f"{x:.3g}"

    def _rate(self, rate: float) -> str:
        if self.unit_scale:
            return f"{tqdm.format_sizeof(rate, divisor=1000).strip()} {self.unit}/s"
        if rate < 1:
            return f"{1 / rate:.2f} s/{self.unit}"
        return f"{rate:.0f} {self.unit}/s" if rate >= 100 else f"{rate:.3g} {self.unit}/s"


def _short(v: Any) -> str:
    """A postfix value as tqdm shows it: numbers to 3 significant digits, anything else as text."""
    if isinstance(v, float):
        return f"{v:.3g}"
    return str(v).strip()
