"""Tests for viclip.data.internvid: validating the released InternVid jsonl into a clean clip table."""

from __future__ import annotations

import gzip
import json
from contextlib import contextmanager

import pandas as pd
import pyarrow.parquet as pq
import pytest

from viclip.data import internvid
from viclip.data.internvid import SCHEMA, MetadataError, clean_metadata, parse_timestamp


def row(
    yid="AbCdEfGhI_-",
    start="00:00:01.500",
    end="00:00:04.250",
    caption="a dog runs on grass",
    aes=4.5,
    umt=0.41,
    **extra,
):
    r = {
        "YoutubeID": yid,
        "Start_timestamp": start,
        "End_timestamp": end,
        "Caption": caption,
        "Aesthetic_Score": aes,
        "UMT_Score": umt,
        **extra,
    }
    return {k: v for k, v in r.items() if v is not ...}


def write_jsonl(path, lines, opener=open):
    with opener(path, "wt") as f:
        for line in lines:
            f.write((line if isinstance(line, str) else json.dumps(line)) + "\n")
    return path


def read_ledger(path):
    return pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)


# ---------------------------------------------------------------- one row per defect

DEFECTS = [  # (line, expected field, expected reason)
    (row(yid="short"), "YoutubeID", "bad_youtube_id"),
    (row(yid="AbCdEfGhI!x"), "YoutubeID", "bad_youtube_id"),
    (row(yid=12345678901), "YoutubeID", "bad_youtube_id"),
    (row(start="0:00:01.5"), "Start_timestamp", "bad_timestamp"),
    (row(end="00:61:00.000"), "End_timestamp", "bad_timestamp"),
    (row(end=12.5), "End_timestamp", "bad_timestamp"),
    (row(start="00:00:04.250", end="00:00:04.250"), "End_timestamp", "start_not_before_end"),
    (row(start="00:01:00.000", end="00:00:59.999"), "End_timestamp", "start_not_before_end"),
    (row(umt="0.4"), "UMT_Score", "bad_score"),
    (row(aes=None), "Aesthetic_Score", "bad_score"),
    (row(umt=True), "UMT_Score", "bad_score"),
    (
        (
            '{"YoutubeID": "AbCdEfGhI_-", "Start_timestamp": "00:00:01.000", "End_timestamp": "00:00:02.000", '
            '"Caption": "x", "UMT_Score": NaN}'
        ),
        "UMT_Score",
        "bad_score",
    ),
    ('{"YoutubeID": "AbCdEfGhI_-", "Caption": "cut off', "line", "invalid_json"),
    ('["a", "list"]', "line", "not_an_object"),
    ("", "line", "blank"),
    (row(caption="   "), "Caption", "empty_caption"),
    (row(caption=["a"]), "Caption", "not_a_string"),
    (row(caption=...), "Caption", "missing"),
]


@pytest.fixture
def defective(tmp_path):
    good = [
        row(yid="video000001", start="00:00:00.000", end="00:00:02.000"),
        row(yid="video000002", start="01:02:03.004", end="01:02:10.000", caption="  padded caption  "),
    ]
    duplicate = row(yid="video000001", start="00:00:00.000", end="00:00:02.000", caption="same clip, other caption")
    lines = [good[0], *(d[0] for d in DEFECTS), good[1], duplicate]
    src = write_jsonl(tmp_path / "meta.jsonl", lines)
    return src, tmp_path / "out" / "clips.parquet", tmp_path / "out" / "rejects.tsv"


def test_each_defect_is_ledgered_with_its_reason(defective):
    src, out, rejects = defective
    stats = clean_metadata(src, out, rejects)
    ledger = read_ledger(rejects)
    per_line = ledger[ledger.reason != "duplicate"]
    assert per_line.line.astype(int).tolist() == list(range(2, 2 + len(DEFECTS)))
    assert list(zip(per_line.field, per_line.reason)) == [(f, r) for _, f, r in DEFECTS]
    dup = ledger[ledger.reason == "duplicate"]
    assert dup.line.astype(int).tolist() == [len(DEFECTS) + 3]
    assert dup.youtube_id.tolist() == ["video000001"] and "first at line 1" in dup.detail.iloc[0]
    # a bad id is never put in the id column; the valid id of an otherwise bad row is
    assert per_line[per_line.reason == "bad_youtube_id"].youtube_id.eq("").all()
    assert per_line[per_line.reason == "bad_score"].youtube_id.iloc[0] == "AbCdEfGhI_-"
    assert stats.clean == 2 and stats.n_rejected == len(DEFECTS) + 1 and stats.lines == len(DEFECTS) + 3
    assert stats.rejected[("YoutubeID", "bad_youtube_id")] == 3
    assert stats.rejected[("clip_id", "duplicate")] == 1


def test_clean_rows_and_schema(defective):
    src, out, rejects = defective
    clean_metadata(src, out, rejects)
    table = pq.read_table(out)
    assert table.schema.equals(SCHEMA, check_metadata=False)
    df = table.to_pandas()
    assert df.clip_id.tolist() == ["video000001_0_2000", "video000002_3723004_3730000"]
    assert df.start_s.tolist() == [0.0, 3723.004] and df.end_s.tolist() == [2.0, 3730.0]
    assert df.start.tolist() == ["00:00:00.000", "01:02:03.004"]
    assert df.caption.tolist() == ["a dog runs on grass", "padded caption"]  # the first of the duplicates
    assert df.aesthetic_score.tolist() == [4.5, 4.5] and df.umt_score.tolist() == [0.41, 0.41]
    assert df.source_line.tolist() == [1, len(DEFECTS) + 2]


def test_duplicates_across_row_groups_keep_the_first(tmp_path):
    clip = {"yid": "dupVideo_01", "start": "00:00:10.000", "end": "00:00:12.000"}
    lines = [row(yid=f"vid{i:08d}", caption=f"c{i}") for i in range(40)]
    for at, caption in ((3, "first"), (17, "second"), (35, "third")):
        lines.insert(at, row(**clip, caption=caption))
    # same video, other times: a different clip
    lines.append(row(yid="dupVideo_01", start="00:00:10.000", end="00:00:12.001"))
    src = write_jsonl(tmp_path / "m.jsonl", lines)
    stats = clean_metadata(src, tmp_path / "c.parquet", tmp_path / "r.tsv", row_group_size=7)
    ledger = read_ledger(tmp_path / "r.tsv")
    assert ledger.line.tolist() == ["18", "36"] and set(ledger.reason) == {"duplicate"}
    assert ledger.detail.tolist() == ["dupVideo_01_10000_12000 first at line 4"] * 2
    df = pd.read_parquet(tmp_path / "c.parquet")
    assert stats.clean == len(df) == 42 and df.clip_id.is_unique
    assert df.set_index("clip_id").caption["dupVideo_01_10000_12000"] == "first"
    assert df.source_line.is_monotonic_increasing and pq.ParquetFile(tmp_path / "c.parquet").metadata.num_rows == 42


def test_scores_are_optional_and_umt_sim_is_read(tmp_path):
    src = write_jsonl(
        tmp_path / "full.jsonl",
        [
            row(aes=..., umt=...),  # a release without scores
            {**row(yid="otherVideo1", aes=..., umt=...), "UMT-SIM": 0.33, "Language": "en"},  # InternVid-Full naming
        ],
    )
    clean_metadata(src, tmp_path / "c.parquet", tmp_path / "r.tsv")
    df = pd.read_parquet(tmp_path / "c.parquet")
    assert df.aesthetic_score.isna().all()
    assert df.umt_score.isna().tolist() == [True, False] and df.umt_score.iloc[1] == 0.33
    assert len(read_ledger(tmp_path / "r.tsv")) == 0


def test_parse_timestamp():
    assert parse_timestamp("00:07:33.689") == 453_689
    assert parse_timestamp("123:00:00.000") == 123 * 3_600_000
    for bad in ("00:07:33", "00:07:33.68", "7:33.689", "00:60:00.000", "00:00:60.000", " 00:00:01.000", None):
        with pytest.raises(ValueError):
            parse_timestamp(bad)


# ---------------------------------------------------------------- files as a whole


def test_gzip_is_streamed_and_matches_plain(tmp_path):
    lines = [
        row(yid=f"vid{i:08d}", start=f"00:00:{i % 50:02d}.000", end=f"00:00:{i % 50 + 3:02d}.500") for i in range(250)
    ] + ["not json"]
    plain = write_jsonl(tmp_path / "m.jsonl", lines)
    packed = write_jsonl(tmp_path / "m.jsonl.gz", lines, opener=gzip.open)
    a = clean_metadata(plain, tmp_path / "a.parquet", tmp_path / "a.tsv", row_group_size=64)
    b = clean_metadata(packed, tmp_path / "b.parquet", tmp_path / "b.tsv", row_group_size=64)
    assert a == b and a.clean == 250
    assert pq.ParquetFile(tmp_path / "b.parquet").metadata.num_row_groups == 4  # written in row groups
    assert pd.read_parquet(tmp_path / "a.parquet").equals(pd.read_parquet(tmp_path / "b.parquet"))
    assert (tmp_path / "a.tsv").read_text() == (tmp_path / "b.tsv").read_text()


def test_gzip_is_read_lazily(tmp_path, monkeypatch):
    """Rows are validated as the file is read: at the first row, only the first line has been consumed."""
    lines = [row(yid=f"vid{i:08d}") for i in range(2000)]
    src = write_jsonl(tmp_path / "m.jsonl.gz", lines, opener=gzip.open)
    handles, positions = [], []
    real_open, real_validate = internvid._open_lines, internvid.validate_row

    @contextmanager
    def recording_open(path):
        with real_open(path) as f:
            handles.append(f)
            yield f

    def recording_validate(obj):
        positions.append(handles[0].tell())  # uncompressed bytes handed out so far
        return real_validate(obj)

    monkeypatch.setattr(internvid, "_open_lines", recording_open)
    monkeypatch.setattr(internvid, "validate_row", recording_validate)
    clean_metadata(src, tmp_path / "c.parquet", tmp_path / "r.tsv")
    assert isinstance(handles[0], gzip.GzipFile)
    assert positions[0] == len(json.dumps(lines[0])) + 1
    assert positions[-1] == sum(len(json.dumps(r)) + 1 for r in lines)


def test_error_mid_file_leaves_no_output(tmp_path, monkeypatch):
    src = write_jsonl(tmp_path / "m.jsonl", [row(yid=f"vid{i:08d}") for i in range(300)])
    out, rejects = tmp_path / "out" / "clips.parquet", tmp_path / "out" / "rejects.tsv"
    real = internvid.validate_row

    def failing(obj):
        if obj["YoutubeID"] == "vid00000200":
            raise OSError("disk went away")
        return real(obj)

    monkeypatch.setattr(internvid, "validate_row", failing)
    with pytest.raises(OSError):
        clean_metadata(src, out, rejects, row_group_size=50)  # four row groups were already written
    assert list((tmp_path / "out").iterdir()) == []


def test_existing_outputs_survive_a_failed_rerun(tmp_path):
    out, rejects = tmp_path / "clips.parquet", tmp_path / "rejects.tsv"
    clean_metadata(write_jsonl(tmp_path / "good.jsonl", [row()]), out, rejects)
    before = out.read_bytes()
    with pytest.raises(MetadataError):
        clean_metadata(write_jsonl(tmp_path / "bad.jsonl", ["a,b,c", "1,2,3"]), out, rejects)
    assert out.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.jsonl", "clips.parquet", "good.jsonl", "rejects.tsv"]


@pytest.mark.parametrize(
    "lines, message",
    [
        (["YoutubeID,Start_timestamp", "abc,00:00:01.000"], "not JSON lines"),
        (
            [{"video": "x.mp4", "Start_timestamp": "00:00:01.000", "End_timestamp": "00:00:02.000", "Caption": "c"}]
            * 3,
            "'YoutubeID' is missing from every row",
        ),
        ([row(caption=...)] * 2 + ["{bad"], "'Caption' is missing from every row"),
        ([row(yid="bad")] * 2, "no valid rows; most common defect: field 'YoutubeID' bad_youtube_id (2 rows)"),
        (["", ""], "no data lines"),
    ],
)
def test_unusable_file_is_a_clear_error(tmp_path, lines, message):
    src = write_jsonl(tmp_path / "meta.jsonl", lines)
    with pytest.raises(MetadataError, match="meta.jsonl") as err:
        clean_metadata(src, tmp_path / "c.parquet", tmp_path / "r.tsv")
    assert message in str(err.value)
    assert not (tmp_path / "c.parquet").exists() and not (tmp_path / "r.tsv").exists()


def test_missing_file_names_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.jsonl"):
        clean_metadata(tmp_path / "nope.jsonl", tmp_path / "c.parquet", tmp_path / "r.tsv")


def test_ledger_quotes_tabs_and_newlines(tmp_path):
    src = write_jsonl(tmp_path / "m.jsonl", [row(), row(start="00:00:0\t1.000"), row(end="00:00:0\n2.000")])
    clean_metadata(src, tmp_path / "c.parquet", tmp_path / "r.tsv")
    ledger = read_ledger(tmp_path / "r.tsv")
    assert ledger.line.tolist() == ["2", "3"] and set(ledger.reason) == {"bad_timestamp"}
    assert "\t" in ledger.detail.iloc[0]
