"""`snakemake --report results/report.html` after the reduced default run (conftest `default_run`).

The report must hold the ablation table, the figures of differences (all
arms and one per ablation) and the training curves, with their captions. The
HTML is parsed (html.parser), the embedded results are decoded and compared
byte for byte with the files the workflow wrote. Where headless Chromium is
installed, the page is also opened and its rendered DOM checked.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest
from workflow_run import ARMS, smk

from viclip.eval.catalog import columns

FIGURES = (
    "results/figures/ablation_deltas.png",
    "results/figures/ablations/masking.png",
    "results/figures/training_curves.png",
)
TABLES = ("results/tables/ablation.html", "results/tables/ablation.csv", "results/tables/compute.csv")


class Scripts(HTMLParser):
    """The text of every <script id=...> block; parsing the whole page also proves it parses."""

    def __init__(self):
        super().__init__()
        self.scripts: dict[str, str] = {}
        self._id: str | None = None

    def handle_starttag(self, tag, attrs):
        if tag == "script":
            self._id = dict(attrs).get("id")

    def handle_data(self, data):
        if self._id:
            self.scripts[self._id] = self.scripts.get(self._id, "") + data

    def handle_endtag(self, tag):
        if tag == "script":
            self._id = None


def js_value(script: str, name: str):
    """The JSON literal assigned by `var name = ...;` in a report script block."""
    m = re.fullmatch(rf"\s*var {name} = (.*);\s*", script, re.DOTALL)
    assert m, f"no 'var {name} = ...;' in script block"
    return json.loads(m.group(1))


def decode(data_uri: str) -> bytes:
    header, _, payload = data_uri.partition(";base64,")
    assert header.startswith("data:"), header[:80]
    return base64.b64decode(payload)


@pytest.fixture(scope="module")
def report(default_run, repo, snakemake_bin) -> tuple[Path, Path]:
    smk(snakemake_bin, repo, default_run, "--report", "results/report.html")
    return default_run, default_run / "results/report.html"


@pytest.fixture(scope="module")
def page(report) -> dict:
    _, html = report
    parser = Scripts()
    parser.feed(html.read_text(encoding="utf-8"))
    parser.close()
    return {
        "results": js_value(parser.scripts["results"], "results"),
        "categories": js_value(parser.scripts["categories"], "categories"),
        "workflow_desc": js_value(parser.scripts["workflow-desc"], "workflow_desc"),
    }


def test_report_holds_table_figures_and_curves_byte_for_byte(report, page):
    work, _ = report
    results = page["results"]
    assert set(TABLES + FIGURES) <= set(results), sorted(results)
    for path in TABLES + FIGURES:
        assert decode(results[path]["data_uri"]) == (work / path).read_bytes(), path
    for path in FIGURES:
        assert results[path]["mime_type"] == "image/png"
        assert decode(results[path]["data_uri"])[:8] == b"\x89PNG\r\n\x1a\n"
    assert results["results/tables/ablation.html"]["mime_type"] == "text/html"
    assert {
        name: sorted(files for sub in subs.values() for files in sub) for name, subs in page["categories"].items()
    } == {"Table": sorted(TABLES), "Ablations": sorted(FIGURES[:2]), "Training": [FIGURES[2]]}


def test_report_table_has_every_metric_of_both_arms(page):
    table = decode(page["results"]["results/tables/ablation.html"]["data_uri"]).decode("utf-8")
    for arm in ARMS:
        keys = re.findall(rf'<tr class="arm" data-arm="{arm}">.*?</tr>', table, re.DOTALL)
        cells = [k for row in keys for k in re.findall(r'data-key="([^"]+)"', row)]
        assert cells == [c.key for c in columns()], arm
    assert "Synthetic stand-ins" in table
    assert 'class="reference"' not in table  # the synthetic default never shows the published row
    assert "Pretraining cost" in table


def test_report_captions_and_description(page):
    results = page["results"]
    masking = results["results/figures/ablations/masking.png"]
    assert masking["labels"] == {"figure": "Video masking", "arms": "nomask"}
    assert "masking" in masking["caption"] and "nomask" in masking["caption"]
    assert "log.jsonl" in results["results/figures/training_curves.png"]["caption"]
    desc = page["workflow_desc"]
    assert "What video masking and coarse captions do to ViCLIP" in desc
    assert all(arm in desc for arm in ARMS) and "synthetic stand-ins" in desc


def chromium() -> str | None:
    return next((p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None)


class AppText(HTMLParser):
    """Text inside <div id="app">: what the report's JavaScript rendered (not the data in its scripts)."""

    def __init__(self):
        super().__init__()
        self.text: list[str] = []
        self._divs = 0  # open <div>s since #app; serialized DOM closes every div

    def handle_starttag(self, tag, attrs):
        if tag == "div" and (self._divs or dict(attrs).get("id") == "app"):
            self._divs += 1

    def handle_endtag(self, tag):
        if tag == "div" and self._divs:
            self._divs -= 1

    def handle_data(self, data):
        if self._divs and data.strip():
            self.text.append(data.strip())


def test_report_opens_in_headless_chromium(report, tmp_path):
    """The report is a JavaScript app: render it and check what a reader sees first."""
    browser = chromium()
    if browser is None:
        if os.environ.get("VICLIP_REQUIRE_CHROMIUM") == "1":
            pytest.fail("no chromium on PATH but VICLIP_REQUIRE_CHROMIUM=1")
        pytest.skip("headless Chromium not installed (Debian: apt-get install chromium)")
    _, html = report
    proc = subprocess.run(
        [
            browser,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            f"--user-data-dir={tmp_path / 'profile'}",
            "--virtual-time-budget=15000",
            "--dump-dom",
            html.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert proc.returncode == 0 and "<html" in proc.stdout, proc.stderr[-3000:]
    parser = AppText()
    parser.feed(proc.stdout)
    shown = parser.text
    assert shown, "the report app rendered nothing"
    # The menu lists the result categories; the start page is the workflow description.
    for text in ("Results", "Table", "Ablations", "Training", "What video masking and coarse captions do to ViCLIP"):
        assert text in shown, (text, shown[:40])
