"""The download in shards: one job, ledger and resume per shard, a gather that writes the manifest.

A killed shard job resumes alone: the gathered manifest and the clip files equal one uninterrupted,
unsharded run's, and the ledgers show every clip fetched once. Changing the shard count refetches
nothing and, in the paper workflow, replans only the download, its gather and what reads the manifest.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import textwrap
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from rehearsal_setup import build
from workflow_run import planned_jobs, smk

from viclip.data.download import DownloadOptions, download_clips
from viclip.data.ledger import Ledger
from viclip.data.shards import gather, ledger_path, other_ledgers, shard_rows
from viclip.data.sources import LocalFileSource
from viclip.data.video import write_mp4

IDS = ("aaaaaaaaaaa", "bbbbbbbbbbb", "ccccccccccc")
# min_interval_s spaces the fetch starts so that a shard job takes long enough to be killed mid-way
SETTINGS = {"source": "local", "short_side": 32, "fps": 8, "workers": 2, "min_interval_s": 0.15}


def clip_table() -> pd.DataFrame:
    rows = [(f"c{i:02d}", IDS[i % 3], 0.1 * (i % 9), 0.1 * (i % 9) + 1.0) for i in range(24)]
    return pd.DataFrame(rows, columns=["clip_id", "youtube_id", "start_s", "end_s"])


@pytest.fixture(scope="module")
def youtube(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("youtube")
    rng = np.random.default_rng(0)
    for vid in IDS:  # 2 s at 10 fps of changing noise: every frame differs
        write_mp4(root / f"{vid}.mp4", rng.integers(0, 256, (20, 48, 64, 3), dtype=np.uint8), fps=10)
    return root


def records(out: Path) -> list[dict]:
    return [r for path in sorted(out.glob("ledger*.jsonl")) for r in Ledger(path).records()]


def test_shards_are_contiguous_runs_that_cover_the_table_once():
    clips = clip_table()
    for n in (1, 2, 5, 24, 30):
        parts = [shard_rows(clips, k, n) for k in range(n)]
        assert pd.concat(parts).equals(clips)  # in order, each row once
        sizes = [len(p) for p in parts]
        assert max(sizes) - min(sizes) <= 1
    assert shard_rows(clips, 1, 4).clip_id.tolist() == [f"c{i:02d}" for i in range(6, 12)]
    for bad in [(2, 2), (-1, 2), (0, 0)]:
        with pytest.raises(ValueError, match="download shard"):
            shard_rows(clips, *bad)


def test_a_shard_reads_the_ledgers_of_other_layouts_only(tmp_path):
    for name in ("ledger.jsonl", "ledger.s0of2.jsonl", "ledger.s1of2.jsonl", "ledger.s1of12.jsonl"):
        (tmp_path / name).write_text("")
    assert ledger_path(tmp_path, (1, 2)).name == "ledger.s1of2.jsonl"
    names = lambda shard: [p.name for p in other_ledgers(tmp_path, shard)]
    assert names((1, 2)) == ["ledger.jsonl", "ledger.s1of12.jsonl"]
    assert names(None) == ["ledger.s0of2.jsonl", "ledger.s1of12.jsonl", "ledger.s1of2.jsonl"]


def test_gather_refuses_a_clip_in_two_shards(tmp_path):
    a = pd.DataFrame({"clip_id": ["x", "y"]})
    a.to_parquet(tmp_path / "0.parquet")
    a.iloc[1:].to_parquet(tmp_path / "1.parquet")
    summary = {"n_clips": 2, "attempted_this_run": 0, "by_status": {"ok": 2}, "ledger": "l"}
    with pytest.raises(ValueError, match=r"clip 'y' is in more than one shard manifest: .*0.parquet.*1.parquet"):
        gather([tmp_path / "0.parquet", tmp_path / "1.parquet"], [summary, summary])


SNAKEFILE = """
configfile: "settings.yaml"
SHARDS = config["shards"]

rule gather_downloads:
    input:
        manifests=expand("data/download/{{shard}}.parquet", shard=range(SHARDS)),
        summaries=expand("data/download/{{shard}}.json", shard=range(SHARDS)),
    output: manifest="data/clips.parquet", summary="data/download.json"
    log: "logs/gather.log"
    script: "{repo}/scripts/gather_downloads.py"

rule download_clips:
    input: clips="subset.parquet"
    output: manifest="data/download/{{shard}}.parquet", summary="data/download/{{shard}}.json"
    params:
        out_dir="data",
        download=config["download"],
        shard=lambda wc: {{"shard": int(wc.shard), "shards": SHARDS}},
    log: "logs/download-{{shard}}.log"
    script: "{repo}/scripts/download_clips.py"
"""


def workflow(work: Path, repo: Path, youtube: Path, shards: int) -> None:
    work.mkdir(exist_ok=True)
    clip_table().to_parquet(work / "subset.parquet")
    (work / "Snakefile").write_text(textwrap.dedent(SNAKEFILE.format(repo=repo)))
    settings = {"shards": shards, "download": {**SETTINGS, "local_dir": str(youtube)}}
    (work / "settings.yaml").write_text(yaml.safe_dump(settings))


def run(snakemake_bin, work: Path, repo: Path, *args: str) -> None:
    proc = subprocess.run(
        [snakemake_bin, *args, "--cores", "2"],
        cwd=work,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONPATH": str(repo)},
    )
    logs = (
        "".join(p.read_text()[-2000:] for p in sorted((work / "logs").glob("*.log")))
        if (work / "logs").exists()
        else ""
    )
    assert proc.returncode == 0, proc.stderr[-3000:] + logs


def test_a_killed_shard_job_resumes_alone_and_loses_nothing(youtube, tmp_path, repo, snakemake_bin):
    # the reference: one uninterrupted, unsharded run
    opts = DownloadOptions(**{k: v for k, v in SETTINGS.items() if k != "source"}, progress=False)
    ref = download_clips(clip_table(), tmp_path / "ref", LocalFileSource(youtube), opts).manifest

    work = tmp_path / "work"
    workflow(work, repo, youtube, shards=2)
    run(snakemake_bin, work, repo, "data/download/0.parquet")
    # shard 1 as a job of its own, killed (its whole process group, as Slurm does) after some clips
    job = subprocess.Popen(
        [snakemake_bin, "data/download/1.parquet", "--cores", "1"],
        cwd=work,
        env={**os.environ, "PYTHONPATH": str(repo)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    ledger = work / "data" / "ledger.s1of2.jsonl"
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline and job.poll() is None:
            if ledger.exists() and sum(r["status"] == "ok" for r in Ledger(ledger).records()) >= 4:
                break
            time.sleep(0.02)
        assert job.poll() is None, "the shard job ended before it could be killed"
    finally:
        os.killpg(job.pid, signal.SIGKILL)
        job.wait()
    before = {r["clip_id"]: r for r in Ledger(ledger).records()}
    assert 4 <= len(before) < 12, "the kill should land mid-shard"
    mtimes = {c: (work / "data" / r["path"]).stat().st_mtime_ns for c, r in before.items()}
    assert not (work / "data/download/1.parquet").exists()

    run(snakemake_bin, work, repo, "--unlock")
    run(snakemake_bin, work, repo)  # shard 0 is done; shard 1 resumes; the gather writes the manifest
    manifest = pd.read_parquet(work / "data/clips.parquet")
    pd.testing.assert_frame_equal(manifest, ref)
    for path in manifest.path:
        assert (work / "data" / path).read_bytes() == (tmp_path / "ref" / path).read_bytes(), path
    # every clip fetched once: one ledger line each, in its own shard's ledger
    recs = records(work / "data")
    assert sorted(r["clip_id"] for r in recs) == sorted(ref.clip_id) and {r["attempt"] for r in recs} == {1}
    assert {r["clip_id"] for r in Ledger(ledger).records()} == set(clip_table().clip_id[12:])
    for c, mtime in mtimes.items():  # clips cut before the kill were left as they were
        assert (work / "data" / before[c]["path"]).stat().st_mtime_ns == mtime
    summary = json.loads((work / "data/download.json").read_text())
    assert summary["by_status"] == {"ok": 24} and summary["shards"] == 2
    assert summary["attempted_last_run"] == 12 + (12 - len(before))  # shard 0's one run, shard 1's resumed one
    assert not (work / "data" / ".work").exists() and not list((work / "data/videos").glob(".*"))

    # three shards now: the jobs find every clip cut in the two-shard ledgers and fetch none
    workflow(work, repo, youtube, shards=3)
    run(snakemake_bin, work, repo)
    pd.testing.assert_frame_equal(pd.read_parquet(work / "data/clips.parquet"), ref)
    assert len(records(work / "data")) == 24
    summary = json.loads((work / "data/download.json").read_text())
    assert summary["shards"] == 3 and summary["attempted_last_run"] == 0


PAPER, OVERLAY = "configs/paper-small.yaml", "configs/rehearsal.yaml"


def test_changing_download_shards_replans_only_the_download_its_gather_and_what_reads_the_manifest(
    tmp_path, repo, snakemake_bin
):
    """The paper workflow under the rehearsal overlay, run up to the manifest, then planned again."""
    work = tmp_path / "work"
    work.mkdir()
    shutil.copy(repo / "config.yaml", work / "config.yaml")
    build(work)
    configs = ["--configfile", str(repo / PAPER), str(repo / OVERLAY)]
    corpus = yaml.safe_load((repo / PAPER).read_text())["corpus"]["name"]
    manifest = f"results/data/{corpus}/clips.parquet"
    smk(snakemake_bin, repo, work, manifest, "--cores", "2", *configs)

    def plan(*extra: str) -> tuple[dict[str, str], str]:
        """{job: rule} of a dry run, and its text (with each job's reason)."""
        out = smk(snakemake_bin, repo, work, "-n", *configs, *extra).stdout
        return {f"{rule}[{wc}]": rule for rule, wc in planned_jobs(out)}, out

    same, _ = plan()
    upstream = {"internvid_metadata", "select_subset", "download_clips", "gather_downloads"}
    assert not set(same.values()) & upstream
    three = tmp_path / "three.yaml"
    three.write_text(yaml.safe_dump({"corpus": {"download": {"shards": 3}}}))
    changed, text = plan(str(three))
    added = {job: rule for job, rule in changed.items() if job not in same}
    assert sorted(added.values()) == ["download_clips"] * 3 + ["gather_downloads"], added
    assert "internvid_metadata" not in changed.values() and "select_subset" not in changed.values()
    # the jobs that read the manifest are planned because the gather rewrites it
    assert f"Input files updated by another job: {manifest}" in text
    assert "Params have changed since last execution" in text
