"""Tests for the real-benchmark readers: each on a small fixture in its real file format.

Videos are empty placeholder files (readers only check that a file exists)
except one real mp4, decoded through the manifest to show the path works.
"""

from __future__ import annotations

import csv
import json
import logging
import runpy
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from viclip.data.benchmarks.load import load_benchmark
from viclip.data.benchmarks.readers import READERS, AnnotationError, prepare, write
from viclip.data.benchmarks.readers.kinetics import class_names, normalise
from viclip.data.cache import decode_all
from viclip.data.video import write_mp4
from viclip.io import atomic_npy, atomic_parquet

K_FIELDS = ["label", "youtube_id", "time_start", "time_end", "split", "is_cc"]


def touch(root: Path, rel: str) -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch()
    return path


def write_json(path: Path, obj) -> Path:
    path.write_text(json.dumps(obj))
    return path


def kinetics_csv(path: Path, rows: list[tuple], fields=K_FIELDS) -> Path:
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(fields)
        w.writerows(rows)
    return path


def written(tmp_path: Path, manifest, meta, missing) -> Path:
    out = tmp_path / "out"
    write(manifest, meta, missing, out / "manifest.parquet", out / "meta.json", out / "missing.tsv")
    return out


# ------------------------------------------------------------------ class lists


def test_kinetics_class_lists_are_the_real_ones():
    k400, k600, k700 = (class_names(v) for v in (400, 600, 700))
    for names, n in ((k400, 400), (k600, 600), (k700, 700)):
        assert len(names) == len(set(names)) == n
        assert list(names) == sorted(names)  # the label maps' order
        assert len({normalise(c) for c in names}) == n  # loose matching can never confuse two classes
    # the lists are not nested (K600 renamed and split K400 classes)
    assert len(set(k400) & set(k600)) == 368 and "balloon blowing" in set(k400) - set(k600)
    assert len(set(k600) & set(k700)) == 596
    assert len({c.casefold() for c in k600} & {c.casefold() for c in k700}) == 597
    assert len(set(k400) & set(k700)) == 378
    from torchvision.models.video import R3D_18_Weights

    assert list(k400) == list(R3D_18_Weights.KINETICS400_V1.meta["categories"])


# ------------------------------------------------------------------ Kinetics


def test_kinetics400_finds_layouts_ledgers_missing_and_decodes(tmp_path):
    root = tmp_path / "videos"
    rows = [
        ("abseiling", "aaaaaaaaaa1", 14, 24, "val", 0),
        ("massaging person's head", "bbbbbbbbb-2", 0, 10, "val", 0),
        ("passing American football (in game)", "ccccccccc_3", 5, 15, "val", 1),
        ("skiing (not slalom or crosscountry)", "ddddddddd44", 30, 40, "val", 0),
    ]
    ann = kinetics_csv(tmp_path / "validate.csv", rows)
    real = root / "aaaaaaaaaa1_000014_000024.mp4"  # flat, CVDF style
    root.mkdir()
    write_mp4(real, np.random.default_rng(0).integers(0, 255, (6, 32, 32, 3), dtype=np.uint8))
    touch(root, "massaging person's head/bbbbbbbbb-2_000000_000010.mp4")  # mmaction2 label folders
    touch(
        root, "val/passing_American_football_(in_game)/ccccccccc_3_000005_000015.webm"
    )  # renamed folders, split folder
    manifest, meta, missing = prepare("k400", "kinetics400", {"val": str(ann)}, root)

    index = {c: i for i, c in enumerate(class_names(400))}
    assert list(manifest.clip_id) == [
        "aaaaaaaaaa1_000014_000024",
        "bbbbbbbbb-2_000000_000010",
        "ccccccccc_3_000005_000015",
    ]
    assert list(manifest.label) == [
        index["abseiling"],
        index["massaging person's head"],
        index["passing American football (in game)"],
    ]
    assert manifest.label.dtype == np.int64 and set(manifest.split) == {"val"}
    assert all(Path(p).is_absolute() and Path(p).is_file() for p in manifest.path)
    assert "start_s" not in manifest  # trimmed clips: no window
    assert meta["counts"] == {"val": {"videos_listed": 4, "videos_found": 3, "videos_missing": 1}}
    assert meta["task"] == "classification" and meta["synthetic"] is False and meta["paragraph"] is False
    assert meta["classes"] == list(class_names(400)) and meta["eval_split"] == "val"
    assert meta["source"]["val"]["path"] == str(ann) and len(meta["source"]["val"]["sha256"]) == 64

    out = written(tmp_path, manifest, meta, missing)
    ledger = pd.read_csv(out / "missing.tsv", sep="\t")
    assert ledger.to_dict("records") == [
        {
            "clip_id": "ddddddddd44_000030_000040",
            "expected_path": str(root / "ddddddddd44_000030_000040.mp4"),
            "split": "val",
        }
    ]
    assert json.loads((out / "meta.json").read_text())["counts"]["val"]["videos_missing"] == 1
    assert sorted(p.name for p in out.iterdir()) == ["manifest.parquet", "meta.json", "missing.tsv"]  # no temp files

    # the manifest feeds the decoder and the benchmark loader as the synthetic ones do
    frames, kept, failures = decode_all(out, pd.read_parquet(out / "manifest.parquet"))
    assert list(kept.clip_id) == ["aaaaaaaaaa1_000014_000024"] and frames.shape == (1, 6, 32, 32, 3)
    assert len(failures) == 2  # the two empty placeholders, ledgered, not fatal
    atomic_npy(frames, out / "frames.npy")
    atomic_parquet(kept, out / "frames.parquet")
    bench = load_benchmark(out, num_frames=4, image_size=32)
    assert bench.splits["val"].labels.tolist() == [index["abseiling"]]


def test_kinetics_untrimmed_naming_sets_windows_and_matches_loose_labels(tmp_path):
    ann = kinetics_csv(
        tmp_path / "train.csv",
        [
            ("passing_American_football_(in_game)", "eeeeeeeeee5", 7, 17, "train"),
            ("passing American football (not in game)", "fffffffff66", 1, 11, "train"),  # K600 spells it in lower case
        ],
        fields=K_FIELDS[:5],
    )
    root = tmp_path / "v"
    touch(root, "eeeeeeeeee5.mkv")
    touch(root, "fffffffff66.mp4")
    manifest, meta, _ = prepare(
        "k600", "kinetics600", {"train": str(ann)}, root, options={"naming": "youtube_id_untrimmed"}
    )
    index = {c: i for i, c in enumerate(class_names(600))}
    assert list(manifest.label) == [
        index["passing American football (in game)"],
        index["passing american football (not in game)"],
    ]
    assert manifest[["start_s", "end_s"]].to_numpy().tolist() == [[7.0, 17.0], [1.0, 11.0]]
    assert manifest.start_s.dtype == np.float64 and meta["counts"]["train"]["videos_found"] == 2


@pytest.mark.parametrize(
    "row, fields, message",
    [
        (
            ("flying a kite badly", "aaaaaaaaaa1", 0, 10, "val"),
            K_FIELDS[:5],
            r"line 3: field 'label' 'flying a kite badly'",
        ),
        (("abseiling", "../../etc/x", 0, 10, "val"), K_FIELDS[:5], r"line 3: field 'youtube_id'"),
        (("abseiling", "aaaaaaaaaa1", "ten", 10, "val"), K_FIELDS[:5], r"line 3: field 'time_start'"),
        (("aaaaaaaaaa1", 0, 10, "test"), ["youtube_id", "time_start", "time_end", "split"], r"no 'label' column"),
    ],
)
def test_kinetics_bad_csv_names_file_and_field(tmp_path, row, fields, message):
    good = (
        ("abseiling", "bbbbbbbbbb2", 0, 10, "val")[: len(fields)]
        if len(fields) == 5
        else ("bbbbbbbbbb2", 0, 10, "test")
    )
    ann = kinetics_csv(tmp_path / "bad.csv", [good, row], fields=fields)
    touch(tmp_path / "v", "bbbbbbbbbb2_000000_000010.mp4")
    with pytest.raises(AnnotationError, match=rf"{tmp_path / 'bad.csv'}: .*{message}"):
        prepare("k400", "kinetics400", {"val": str(ann)}, tmp_path / "v")


def test_no_video_found_is_a_clear_error(tmp_path):
    ann = kinetics_csv(tmp_path / "validate.csv", [("abseiling", "aaaaaaaaaa1", 0, 10, "val")])
    (tmp_path / "v").mkdir()
    touch(tmp_path / "v", "unrelated.mp4")
    with pytest.raises(
        FileNotFoundError,
        match=r"none of the 1 val videos was found under .*expected e.g. .*aaaaaaaaaa1_000000_000010.mp4",
    ):
        prepare("k700", "kinetics700", {"val": str(ann)}, tmp_path / "v")


def test_bad_split_option_and_reader_are_named(tmp_path):
    ann = kinetics_csv(tmp_path / "validate.csv", [("abseiling", "aaaaaaaaaa1", 0, 10, "val")])
    touch(tmp_path / "v", "aaaaaaaaaa1_000000_000010.mp4")
    with pytest.raises(AnnotationError, match="split 'test' asked for but annotations has no 'test' file"):
        prepare("k400", "kinetics400", {"val": str(ann)}, tmp_path / "v", splits=["test"])
    with pytest.raises(AnnotationError, match=r"unknown annotations key\(s\) \['validate'\]"):
        prepare("k400", "kinetics400", {"validate": str(ann)}, tmp_path / "v")
    with pytest.raises(ValueError, match="does not take options"):
        prepare("k400", "kinetics400", {"val": str(ann)}, tmp_path / "v", options={"first_30s": True})
    with pytest.raises(ValueError, match="unknown reader 'kinetics800'"):
        prepare("k400", "kinetics800", {"val": str(ann)}, tmp_path / "v")
    with pytest.raises(AnnotationError, match="annotation file 'val' of kinetics400 does not exist"):
        prepare("k400", "kinetics400", {"val": str(tmp_path / "nope.csv")}, tmp_path / "v")


# ------------------------------------------------------------------ SSv2


def ssv2_files(tmp_path: Path, val_template: str = "Putting [something] on a surface"):
    labels = write_json(
        tmp_path / "something-something-v2-labels.json",
        {
            "Approaching something with your camera": "0",
            "Putting something on a surface": "1",
            "Something falling like a feather or paper": "2",
        },
    )
    train = write_json(
        tmp_path / "something-something-v2-train.json",
        [
            {
                "id": "78687",
                "label": "falling leaf",
                "template": "[Something] falling like a feather or paper",
                "placeholders": ["leaf"],
            },
            {
                "id": "42326",
                "label": "approaching cup with your camera",
                "template": "Approaching [something] with your camera",
                "placeholders": ["cup"],
            },
        ],
    )
    val = write_json(
        tmp_path / "something-something-v2-validation.json",
        [
            {"id": "74225", "label": "putting pen on a surface", "template": val_template, "placeholders": ["pen"]},
            {
                "id": "1682",
                "label": "approaching box with your camera",
                "template": "Approaching [something] with your camera",
                "placeholders": ["box"],
            },
        ],
    )
    return {"labels": str(labels), "train": str(train), "val": str(val)}


def test_ssv2_labels_from_templates(tmp_path):
    root = tmp_path / "20bn-something-something-v2"
    for vid in ("78687", "42326", "74225"):
        touch(root, f"{vid}.webm")
    manifest, meta, missing = prepare("ssv2", "ssv2", ssv2_files(tmp_path), root)
    assert meta["classes"] == [
        "Approaching something with your camera",
        "Putting something on a surface",
        "Something falling like a feather or paper",
    ]
    assert dict(zip(manifest.clip_id, manifest.label)) == {"78687": 2, "42326": 0, "74225": 1}
    assert dict(zip(manifest.clip_id, manifest.split)) == {"78687": "train", "42326": "train", "74225": "val"}
    assert meta["counts"]["val"] == {"videos_listed": 2, "videos_found": 1, "videos_missing": 1}
    assert missing.clip_id.tolist() == ["1682"] and missing.expected_path[0].endswith(
        "20bn-something-something-v2/1682.mp4"
    )


def test_ssv2_unknown_template_names_file_entry_and_field(tmp_path):
    ann = ssv2_files(tmp_path, val_template="Juggling [something] badly")
    with pytest.raises(
        AnnotationError,
        match=r"validation.json: entry 0: field 'template' 'Juggling \[something\] badly' names no class",
    ):
        prepare("ssv2", "ssv2", ann, tmp_path)


# ------------------------------------------------------------------ MSR-VTT


def test_msrvtt_clip4clip_and_umt_forms_agree(tmp_path):
    c4c, umt, root = tmp_path / "c4c", tmp_path / "umt", tmp_path / "MSRVTT" / "videos" / "all"
    c4c.mkdir(), umt.mkdir()
    for v in ("video0", "video1", "video7020"):
        touch(root, f"{v}.mp4")
    with open(c4c / "MSRVTT_JSFUSION_test.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["key", "vid_key", "video_id", "sentence"])
        w.writerow(
            ["ret0", "msr7020", "video7020", "a girl wearing red top and black trouser is putting a sweater on a dog"]
        )
        w.writerow(["ret1", "msr7021", "video7021", "young people sit around the edges of a room clapping"])
    (c4c / "MSRVTT_train.9k.csv").write_text("video_id\nvideo0\nvideo1\n")
    write_json(
        c4c / "MSRVTT_data.json",
        {
            "videos": [],
            "sentences": [
                {"caption": "a car is shown", "video_id": "video0", "sen_id": 0},
                {"caption": "a cartoon of a dog", "video_id": "video1", "sen_id": 1},
                {"caption": "a red car drives", "video_id": "video0", "sen_id": 2},
                {"caption": "someone cooks", "video_id": "video9", "sen_id": 3},
            ],
        },
    )
    write_json(
        umt / "msrvtt_test1k.json",
        [
            {
                "video": "video7020.mp4",
                "caption": "a girl wearing red top and black trouser is putting a sweater on a dog",
            },
            {"video": "video7021.mp4", "caption": "young people sit around the edges of a room clapping"},
        ],
    )
    write_json(
        umt / "msrvtt_ret_train9k.json",
        [
            {"video": "video0.mp4", "caption": ["a car is shown", "a red car drives"]},
            {"video": "video1.mp4", "caption": "a cartoon of a dog"},
        ],
    )
    a, meta_a, miss_a = prepare(
        "msrvtt",
        "msrvtt",
        {
            "train": str(c4c / "MSRVTT_train.9k.csv"),
            "test": str(c4c / "MSRVTT_JSFUSION_test.csv"),
            "data_json": str(c4c / "MSRVTT_data.json"),
        },
        tmp_path / "MSRVTT",
    )
    b, meta_b, miss_b = prepare(
        "msrvtt",
        "msrvtt",
        {"train": str(umt / "msrvtt_ret_train9k.json"), "test": str(umt / "msrvtt_test1k.json")},
        tmp_path / "MSRVTT",
    )
    for m in (a, b):
        assert m.clip_id.tolist() == ["video0", "video1", "video7020"]
        assert [list(t) for t in m.texts] == [
            ["a car is shown", "a red car drives"],
            ["a cartoon of a dog"],
            ["a girl wearing red top and black trouser is putting a sweater on a dog"],
        ]
    assert a.path.tolist() == b.path.tolist() and meta_a["counts"] == meta_b["counts"]
    assert meta_a["counts"]["test"] == {"videos_listed": 2, "videos_found": 1, "videos_missing": 1}
    assert miss_a.clip_id.tolist() == miss_b.clip_id.tolist() == ["video7021"]
    assert (
        meta_a["task"] == "retrieval"
        and "classes" not in meta_a
        and set(meta_a["source"]) == {"train", "test", "data_json"}
    )


# ------------------------------------------------------------------ LSMDC


def test_lsmdc_tsv_merges_repeated_clips_and_finds_movie_folders(tmp_path):
    ann = tmp_path / "LSMDC16_annos_training.csv"
    ann.write_text(
        "1001_Flight_00.00.56.000-00.01.02.004\t00.00.56.000\t00.01.02.004\t00.00.56.000\t00.01.02.004\tSOMEONE sits in the cockpit.\n"
        "1001_Flight_00.01.05.000-00.01.09.500\t00.01.05.000\t00.01.09.500\t00.01.05.000\t00.01.09.500\tHe looks out.\n"
        "1001_Flight_00.00.56.000-00.01.02.004\t00.00.56.000\t00.01.02.004\t00.00.56.000\t00.01.02.004\tThe plane shakes.\n"
    )
    root = tmp_path / "LSMDC_Videos"
    touch(root, "1001_Flight/1001_Flight_00.00.56.000-00.01.02.004.avi")
    manifest, _, missing = prepare("lsmdc", "lsmdc", {"train": str(ann)}, root)
    assert manifest.clip_id.tolist() == ["1001_Flight_00.00.56.000-00.01.02.004"]
    assert list(manifest.texts[0]) == ["SOMEONE sits in the cockpit.", "The plane shakes."]
    assert missing.expected_path.tolist() == [str(root / "1001_Flight_00.01.05.000-00.01.09.500.mp4")]

    bad = tmp_path / "LSMDC16_challenge_1000_publictect.csv"
    bad.write_text("1001_Flight_00.00.56.000-00.01.02.004\t00.00.56.000\t00.01.02.004\tSOMEONE sits.\n")
    with pytest.raises(AnnotationError, match=r"publictect.csv: line 1: expected 6 tab-separated fields .* got 4"):
        prepare("lsmdc", "lsmdc", {"test": str(bad)}, root)


# ------------------------------------------------------------------ DiDeMo


def test_didemo_sentences_in_temporal_order_with_times(tmp_path):
    ann = write_json(
        tmp_path / "test_data.json",
        [
            {
                "annotation_id": 1,
                "description": "the dog runs back",
                "times": [[3, 4], [3, 3], [3, 4], [4, 4]],
                "video": "10015567@N08_3655084291_d8b58466fa.mov",
                "num_segments": 6,
            },
            {
                "annotation_id": 2,
                "description": "a dog runs toward the camera",
                "times": [[0, 1], [0, 1], [0, 0], [0, 1]],
                "video": "10015567@N08_3655084291_d8b58466fa.mov",
                "num_segments": 6,
            },
            {
                "annotation_id": 3,
                "description": "a man waves",
                "times": [[2, 2]],
                "video": "99999999@N00_1_abc.mp4",
                "num_segments": 6,
            },
        ],
    )
    root = tmp_path / "didemo"
    touch(root, "10015567@N08_3655084291_d8b58466fa.mp4")  # converted to mp4; the json names the .mov
    manifest, meta, missing = prepare("didemo", "didemo", {"test": str(ann)}, root, options={"first_30s": True})
    assert meta["paragraph"] is True and meta["first_30s"] is True
    row = manifest.iloc[0]
    assert row.clip_id == "10015567@N08_3655084291_d8b58466fa"
    assert list(row.texts) == ["a dog runs toward the camera", "the dog runs back"]
    assert [list(t) for t in row.sentence_times] == [[0.0, 8.75], [16.25, 23.75]]
    assert (row.start_s, row.end_s) == (0.0, 30.0)
    assert missing.clip_id.tolist() == ["99999999@N00_1_abc"]
    back = pd.read_parquet(written(tmp_path, manifest, meta, missing) / "manifest.parquet").iloc[0]
    assert [list(t) for t in back.sentence_times] == [[0.0, 8.75], [16.25, 23.75]] and list(back.texts) == list(
        row.texts
    )

    umt = write_json(
        tmp_path / "didemo_ret_test.json",
        [
            {
                "video": "10015567@N08_3655084291_d8b58466fa.mp4",
                "caption": ["a dog runs toward the camera", "the dog runs back"],
            }
        ],
    )
    m2, _, _ = prepare("didemo", "didemo", {"test": str(umt)}, root)
    assert list(m2.texts[0]) == list(row.texts) and m2.path[0] == row.path and "start_s" not in m2

    bad = write_json(tmp_path / "val_data.json", [{"description": "x", "times": [[4, 2]], "video": "a.mp4"}])
    with pytest.raises(AnnotationError, match=r"val_data.json: entry 0: field 'times'"):
        prepare("didemo", "didemo", {"val": str(bad)}, root)


# ------------------------------------------------------------------ MSVD


def test_msvd_txt_csv_and_umt_forms(tmp_path):
    root = tmp_path / "YouTubeClips"
    touch(root, "-4wsuPCjDBc_5_15.avi")
    touch(root, "bQJQGoJF7_k_162_169.avi")
    (tmp_path / "test_list.txt").write_text("-4wsuPCjDBc_5_15\nbQJQGoJF7_k_162_169\nzzzzzzzzzzz_1_2\n")
    (tmp_path / "AllVideoDescriptions.txt").write_text(
        "# Microsoft Research Video Description Corpus\n\n"
        "-4wsuPCjDBc_5_15 a squirrel is eating a peanut\n-4wsuPCjDBc_5_15 a chipmunk eats\n"
        "bQJQGoJF7_k_162_169 a man plays a guitar\nzzzzzzzzzzz_1_2 a cat sleeps\n"
    )
    with open(tmp_path / "video_corpus.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["VideoID", "Start", "End", "WorkerID", "Source", "AnnotationTime", "Language", "Description"])
        w.writerow(["-4wsuPCjDBc", 5, 15, 1, "clean", 20, "English", "a squirrel is eating a peanut"])
        w.writerow(["-4wsuPCjDBc", 5, 15, 2, "clean", 20, "German", "ein Eichhörnchen frisst"])
        w.writerow(["-4wsuPCjDBc", 5, 15, 3, "unverified", 20, "English", "a chipmunk eats"])
        w.writerow(["bQJQGoJF7_k", 162, 169, 4, "clean", 20, "English", "a man plays a guitar"])
        w.writerow(["zzzzzzzzzzz", 1, 2, 4, "clean", 20, "English", "a cat sleeps"])
    write_json(
        tmp_path / "msvd_ret_test.json",
        [
            {"video": "-4wsuPCjDBc_5_15.avi", "caption": ["a squirrel is eating a peanut", "a chipmunk eats"]},
            {"video": "bQJQGoJF7_k_162_169.avi", "caption": ["a man plays a guitar"]},
            {"video": "zzzzzzzzzzz_1_2.avi", "caption": ["a cat sleeps"]},
        ],
    )
    lists = {"test": str(tmp_path / "test_list.txt")}
    results = [
        prepare("msvd", "msvd", {**lists, "captions": str(tmp_path / name)}, root)
        for name in ("AllVideoDescriptions.txt", "video_corpus.csv")
    ]
    results.append(prepare("msvd", "msvd", {"test": str(tmp_path / "msvd_ret_test.json")}, root))
    for manifest, meta, _missing in results:
        assert manifest.clip_id.tolist() == ["-4wsuPCjDBc_5_15", "bQJQGoJF7_k_162_169"]
        assert [list(t) for t in manifest.texts] == [
            ["a squirrel is eating a peanut", "a chipmunk eats"],
            ["a man plays a guitar"],
        ]
        assert meta["paragraph"] is False and meta["counts"]["test"]["videos_missing"] == 1

    (tmp_path / "raw-captions.pkl").write_bytes(b"\x80\x04K\x01.")
    with pytest.raises(AnnotationError, match="pickle files are not read"):
        prepare("msvd", "msvd", {**lists, "captions": str(tmp_path / "raw-captions.pkl")}, root)
    (tmp_path / "val_list.txt").write_text("notinthecaptions_1_2\n")
    with pytest.raises(AnnotationError, match=r"val_list.txt: line 1: video 'notinthecaptions_1_2' has no caption"):
        prepare(
            "msvd",
            "msvd",
            {"val": str(tmp_path / "val_list.txt"), "captions": str(tmp_path / "AllVideoDescriptions.txt")},
            root,
        )


# ------------------------------------------------------------------ ActivityNet Captions


def test_anet_sorts_sentences_and_finds_ids_with_or_without_prefix(tmp_path):
    ann = write_json(
        tmp_path / "val_1.json",
        {
            "v_uqiMw7tQ1Cc": {
                "duration": 55.15,
                "timestamps": [[24.25, 38.08], [0.0, 24.25], [38.08, 55.15]],
                "sentences": ["He jumps.", " A man runs down a track.", "He lands in sand."],
            },
            "v_bXdq2zI1Ms0": {"duration": 73.1, "timestamps": [[0, 10.5]], "sentences": ["Three men are standing."]},
            "v_missing0000": {"duration": 10.0, "timestamps": [[0, 5]], "sentences": ["Nothing here."]},
        },
    )
    root = tmp_path / "anet"
    touch(root, "v_uqiMw7tQ1Cc.mp4")
    touch(root, "bXdq2zI1Ms0.mkv")  # CLIP4Clip names files without the v_ prefix
    manifest, meta, missing = prepare("anet", "anet", {"val": str(ann)}, root)
    assert meta["paragraph"] is True and meta["eval_split"] == "val"
    assert manifest.clip_id.tolist() == ["v_uqiMw7tQ1Cc", "v_bXdq2zI1Ms0"]
    assert list(manifest.texts[0]) == ["A man runs down a track.", "He jumps.", "He lands in sand."]
    assert [list(t) for t in manifest.sentence_times[0]] == [[0.0, 24.25], [24.25, 38.08], [38.08, 55.15]]
    assert missing.clip_id.tolist() == ["v_missing0000"]

    umt = write_json(
        tmp_path / "anet_ret_val_1.json", [{"video": "v_bXdq2zI1Ms0.mp4", "caption": ["Three men are standing."]}]
    )
    m2, _, _ = prepare("anet", "anet", {"val": str(umt)}, root)
    assert m2.path.tolist() == [str(root / "bXdq2zI1Ms0.mkv")]

    bad = write_json(tmp_path / "train.json", {"v_x": {"duration": 3, "timestamps": [[0, 1]], "sentences": ["a", "b"]}})
    with pytest.raises(AnnotationError, match=r"train.json: video 'v_x': 1 timestamps but 2 sentences"):
        prepare("anet", "anet", {"train": str(bad)}, root)


def test_umt_json_without_caption_field_is_named(tmp_path):
    bad = write_json(
        tmp_path / "msrvtt_test1k.json",
        [{"video": "video1.mp4", "caption": "x"}, {"video": "video2.mp4", "captions": "y"}],
    )
    touch(tmp_path / "v", "video1.mp4")
    with pytest.raises(AnnotationError, match=r"msrvtt_test1k.json: entry 1: missing field 'caption'"):
        prepare("msrvtt", "msrvtt", {"test": str(bad)}, tmp_path / "v")


def test_annotation_path_cannot_escape_the_video_root(tmp_path):
    touch(tmp_path, "outside/video1.mp4")
    ann = write_json(
        tmp_path / "t.json",
        [{"video": "../outside/video1.mp4", "caption": "x"}, {"video": "video2.mp4", "caption": "y"}],
    )
    touch(tmp_path / "root", "video2.mp4")
    manifest, _, missing = prepare("msrvtt", "msrvtt", {"test": str(ann)}, tmp_path / "root")
    assert manifest.clip_id.tolist() == ["video2"] and missing.clip_id.tolist() == ["../outside/video1"]


# ------------------------------------------------------------------ the Snakemake script


def test_prepare_benchmark_script(tmp_path, repo, monkeypatch):
    ann = kinetics_csv(
        tmp_path / "validate.csv", [("abseiling", "aaaaaaaaaa1", 0, 10, "val"), ("zumba", "bbbbbbbbbb2", 0, 10, "val")]
    )
    touch(tmp_path / "v", "abseiling/aaaaaaaaaa1_000000_000010.mp4")
    out = tmp_path / "results" / "k400"
    snakemake = SimpleNamespace(
        params=SimpleNamespace(
            name="k400",
            settings={
                "reader": "kinetics400",
                "annotations": {"val": str(ann)},
                "video_root": str(tmp_path / "v"),
                "splits": ["val"],
                "extensions": [".mp4"],
                "templates": ["a video of {}."],
            },
        ),
        output=SimpleNamespace(
            manifest=str(out / "manifest.parquet"), meta=str(out / "meta.json"), missing=str(out / "missing.tsv")
        ),
        log=[str(tmp_path / "logs" / "prepare.log")],
        threads=1,
    )
    # setup_job redirects this process's output and logging to the job log; give them back afterwards
    monkeypatch.setattr(sys, "stdout", sys.stdout)
    monkeypatch.setattr(sys, "stderr", sys.stderr)
    root_logger = logging.getLogger()
    monkeypatch.setattr(root_logger, "handlers", list(root_logger.handlers))
    runpy.run_path(str(repo / "scripts" / "prepare_benchmark.py"), init_globals={"snakemake": snakemake})
    meta = json.loads((out / "meta.json").read_text())
    assert meta["templates"] == ["a video of {}."] and meta["counts"]["val"]["videos_missing"] == 1
    assert pd.read_parquet(out / "manifest.parquet").clip_id.tolist() == ["aaaaaaaaaa1_000000_000010"]
    assert pd.read_csv(out / "missing.tsv", sep="\t").clip_id.tolist() == ["bbbbbbbbbb2_000000_000010"]
    assert "1 videos in the manifest, 1 missing" in (tmp_path / "logs" / "prepare.log").read_text()


def test_registry_names_every_benchmark():
    assert sorted(READERS) == sorted(
        ["kinetics400", "kinetics600", "kinetics700", "ssv2", "msrvtt", "lsmdc", "didemo", "msvd", "anet"]
    )
