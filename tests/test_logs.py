"""Job logs a person can read: plain progress lines, no carriage returns, JSON metrics."""

from __future__ import annotations

import io
import json
import logging
import re
from collections import Counter

import pytest
from tqdm import tqdm

from viclip.progress import PlainProgress, progress
from viclip.runtime import LineLog, _RecordHandler, as_json


class Clock:
    """A clock the test moves by hand."""

    def __init__(self):
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def messages(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "viclip.progress"]


def test_plain_progress_logs_one_line_per_interval(caplog):
    clock = Clock()
    with caplog.at_level(logging.INFO, logger="viclip"):
        with progress(total=100, desc="pretrain", mininterval=5.0, file=io.StringIO(), clock=clock) as bar:
            assert isinstance(bar, PlainProgress)
            for _ in range(40):  # 40 steps of 0.5 s: one line every 10 steps
                clock.t += 0.5
                bar.update(1)
                bar.set_postfix(loss=f"{2.5:.3f}", clips_s=f"{32.0:.0f}", refresh=False)
    lines = messages(caplog)
    assert len(lines) == 4  # at 10, 20, 30 and 40 steps; none at close, which has nothing new
    assert all("\r" not in ln and "\n" not in ln for ln in lines)
    assert lines[0] == "pretrain: 10/100 (10%) 2 it/s elapsed 00:05 ETA 00:45 | loss=2.500 clips_s=32"
    assert lines[2].startswith("pretrain: 30/100 (30%) 2 it/s elapsed 00:15 ETA 00:35")
    assert lines[-1].startswith("pretrain: 40/100 (40%) 2 it/s elapsed 00:20 ETA 00:30 | loss=")


def test_plain_progress_over_an_iterable_with_real_time(caplog):
    with caplog.at_level(logging.INFO, logger="viclip"):
        items = list(progress(range(5), desc="render", mininterval=0.0, file=io.StringIO()))
    assert items == list(range(5))
    lines = messages(caplog)
    assert 1 <= len(lines) <= 6 and lines[-1].startswith("render: 5/5 (100%)")
    assert all(
        re.fullmatch(r"render: \d/5 \(\d+%\)( \S+ (it/s|s/it))? elapsed \d\d:\d\d( ETA \d\d:\d\d)?", ln) for ln in lines
    )


def test_plain_progress_without_a_total_and_with_unit_scale(caplog):
    clock = Clock()
    with caplog.at_level(logging.INFO, logger="viclip"):
        bar = progress(iter(range(3072)), desc="validate x", unit=" lines", unit_scale=True, mininterval=1, clock=clock)
        for _ in bar:
            clock.t += 2**-10
    assert messages(caplog) == [
        "validate x: 1.02k lines 1.02k lines/s elapsed 00:01",
        "validate x: 2.05k lines 1.02k lines/s elapsed 00:02",
        "validate x: 3.07k lines 1.02k lines/s elapsed 00:03",  # and none at close: nothing new
    ]


def test_plain_progress_slow_steps_initial_and_dict_postfix(caplog):
    clock = Clock()
    with caplog.at_level(logging.INFO, logger="viclip"):
        bar = progress(total=10, initial=6, desc="caption", unit="clip", mininterval=2.0, clock=clock)
        clock.t += 4.0
        bar.update(1)
        bar.set_postfix({"ok": 1, "failed": 0.25}, refresh=False)
        bar.close()
        bar.close()
    assert messages(caplog) == [
        "caption: 7/10 (70%) 4.00 s/clip elapsed 00:04 ETA 00:12",
        "caption: 7/10 (70%) 4.00 s/clip elapsed 00:04 ETA 00:12 | ok=1 failed=0.25",
    ]


def test_plain_progress_writes_to_the_stream_when_logging_is_not_set_up(monkeypatch):
    root = logging.getLogger()
    monkeypatch.setattr(root, "handlers", [])
    out = io.StringIO()
    for _ in progress(range(3), desc="hash videos", file=out, mininterval=60):
        pass
    assert out.getvalue().startswith("hash videos: 3/3 (100%) ") and out.getvalue().count("\n") == 1


def test_tqdm_on_a_terminal_and_when_disabled():
    assert isinstance(progress(total=3, file=Tty()), tqdm)
    bar = progress(total=3, disable=True, file=io.StringIO())
    assert isinstance(bar, tqdm) and bar.disable


def test_the_job_log_never_holds_a_carriage_return():
    out = io.StringIO()
    stream = LineLog(out)
    handler = _RecordHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    record = logging.LogRecord("viclip", logging.INFO, __file__, 1, "loss %s", (as_json({"b": 1, "a": 0.5}),), None)
    bar = tqdm(total=3, file=stream, mininterval=0, desc="third-party")  # tqdm that does not go through progress()
    bar.update(1)
    handler.emit(record)  # a record after a half-drawn bar starts a line of its own
    bar.update(2)
    bar.close()
    stream.write("a\r\nb\r\r")
    handler.emit(record)
    text = out.getvalue()
    assert "\r" not in text and "\n\n" not in text
    assert 'INFO loss {"a": 0.5, "b": 1}' in text.splitlines()
    assert text.count('INFO loss {"a": 0.5, "b": 1}\n') == 2
    assert all(ln.startswith(("third-party", "INFO", "a", "b")) for ln in text.splitlines())


def test_as_json_sorts_keys_and_takes_numpy_scalars_and_counters():
    import numpy as np

    assert as_json({"z": np.float32(0.5), "a": Counter(ok=2)}) == '{"a": {"ok": 2}, "z": 0.5}'
    assert json.loads(as_json({"p": {"x"}})) == {"p": ["x"]}


@pytest.mark.slow
def test_default_run_logs_have_no_carriage_returns(default_run):
    logs = sorted(p for p in (default_run / "logs").rglob("*") if p.is_file())
    assert logs
    with_cr = [str(p.relative_to(default_run)) for p in logs if b"\r" in p.read_bytes()]
    assert not with_cr, with_cr
    pretrain = sorted((default_run / "logs" / "pretrain").glob("*.log"))
    assert pretrain
    for log in pretrain:
        hits = [ln for ln in log.read_text().splitlines() if "loss" in ln]
        assert hits, f"{log}: no line mentions the loss"
        assert max(map(len, hits)) < 300, max(hits, key=len)
