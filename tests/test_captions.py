"""Tests for viclip.captions: coarse, per-frame and summary captions, fusion and the synthetic backend."""

from __future__ import annotations

import itertools
import re

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from viclip.captions import backends
from viclip.captions.base import Clip
from viclip.captions.cache import CaptionCache, digest
from viclip.captions.coarse import coarse_captions, coarse_table, coarse_task
from viclip.captions.frames import frame_captions, frames_table, frames_task
from viclip.captions.fused import fuse, fused_captions
from viclip.captions.io import (
    VARIANT_COLUMNS,
    VARIANT_SCHEMAS,
    check_variant,
    gather_variant,
    read_clips,
    write_variant,
)
from viclip.captions.settings import ExecutionSettings
from viclip.captions.shards import Runner, caption_images, shard_of, shard_tag
from viclip.captions.stats import length_stats, variant_stats
from viclip.captions.summary import summary_captions
from viclip.captions.synthetic import (
    SIZE_WORDS,
    SyntheticImageCaptioner,
    SyntheticSummarizer,
    parse_frame_caption,
    position_word,
    size_word,
    tilt_word,
)
from viclip.data.language import gerund, present
from viclip.data.synthetic import sample_specs
from viclip.data.world import BACKGROUNDS, COLOURS, SHAPES, SIZES, TEXTURES, ClipSpec, allowed_events, frame_states

MOTION_WORDS = {
    "move",
    "moves",
    "moving",
    "grow",
    "grows",
    "growing",
    "bigger",
    "shrink",
    "shrinks",
    "shrinking",
    "rotate",
    "rotates",
    "rotating",
    "turn",
    "turns",
    "turning",
    "change",
    "changes",
    "changing",
    "appear",
    "appears",
    "appearing",
    "then",
    "left",
    "right",
    "up",
    "down",
    "tilted",
    "stays",
    "still",
}
N_CAPTIONED = 8  # captions.frames_per_clip in config.yaml


def _clip(spec: ClipSpec) -> Clip:
    return Clip(spec.clip_id, f"/nowhere/{spec.clip_id}.mp4", spec.n_frames, spec.to_json())


def _single_event_specs(frames_per_event: int = 16) -> list[ClipSpec]:
    """Every (shape, size, event) with colour/texture/background cycling, plus a random sample."""
    specs = []
    cycle = itertools.cycle(itertools.product(COLOURS, TEXTURES, BACKGROUNDS))
    for shape, size in itertools.product(SHAPES, SIZES):
        for event in allowed_events(shape):
            colour, texture, bg = next(cycle)
            new = [c for c in COLOURS if c != colour][len(specs) % 5] if event == "change colour" else None
            specs.append(
                ClipSpec(
                    f"{shape}-{size}-{event}",
                    shape,
                    colour,
                    texture,
                    size,
                    bg,
                    (event,),
                    frames_per_event,
                    new,
                    seed=len(specs),
                )
            )
    specs += sample_specs(60, 4, "rand", sorted(itertools.product(COLOURS, SHAPES)), 1, frames_per_event)
    return specs


SINGLE = _single_event_specs()
MULTI = sample_specs(40, 9, "multi", sorted(itertools.product(COLOURS, SHAPES)), 3, 12)


def _summaries(specs, noise_frames=0.0, noise_summary=0.0, keep_colour=0.5, seed=13) -> pd.DataFrame:
    clips = [_clip(s) for s in specs]
    frames = frame_captions(clips, SyntheticImageCaptioner("frame", noise_frames, seed), N_CAPTIONED)
    return summary_captions(frames, SyntheticSummarizer(noise_summary, keep_colour, seed))


def _words(text: str) -> set[str]:
    return set(re.findall(r"[a-z]+", text.lower()))


# ---------------------------------------------------------------- coarse captions


@pytest.mark.parametrize("noise", [0.0, 0.3])
def test_coarse_captions_never_mention_motion(noise):
    specs = SINGLE + MULTI
    df = coarse_captions([_clip(s) for s in specs], SyntheticImageCaptioner("coarse", noise, 1))
    assert list(df["clip_id"]) == [s.clip_id for s in specs]
    for text in df["caption"]:
        assert not (_words(text) & MOTION_WORDS), text


def test_coarse_caption_describes_the_middle_frame():
    for spec in SINGLE:
        (text,) = coarse_captions([_clip(spec)], SyntheticImageCaptioner("coarse", 0.0, 1))["caption"]
        mid = frame_states(spec)[spec.n_frames // 2]
        assert spec.shape in text and spec.background in text
        if mid.visible:
            assert mid.colour == spec.colour  # the nominal colour, even for a colour change
            assert spec.colour in text
            assert ("striped" in text) == (spec.texture == "striped")
            assert size_word(mid.radius) in text


@pytest.mark.parametrize("detail", [0.0, 0.5])
def test_coarse_detail_names_size_texture_and_background_that_often(detail):
    specs = [s for s in SINGLE + MULTI if frame_states(s)[s.n_frames // 2].visible]
    full = SyntheticImageCaptioner("coarse", 0.0, 1)
    sparse = SyntheticImageCaptioner("coarse", 0.0, 1, detail)
    named = []
    for spec in specs:
        (text,) = coarse_captions([_clip(spec)], sparse)["caption"]
        assert frame_states(spec)[spec.n_frames // 2].colour in text and spec.shape in text  # always
        words = _words(text)
        named += [bool(words & set(SIZE_WORDS)), spec.background in words]
        if spec.texture == "striped":  # plain is never named
            named.append("striped" in words)
        assert not (words & MOTION_WORDS)
    share = np.mean(named)
    assert share == 0.0 if detail == 0.0 else 0.2 < share < 0.8
    # detail 1 draws nothing more: the captions are exactly those the captioner wrote before the setting
    assert SyntheticImageCaptioner("coarse", 0.0, 1, 1.0).caption(_clip(specs[0]), np.array([4])) == full.caption(
        _clip(specs[0]), np.array([4])
    )
    assert sparse.fingerprint()["detail"] == detail


def test_coarse_caption_of_an_empty_frame():
    spec = ClipSpec("e", "circle", "red", "plain", "small", "grey", ("appear",), 16)
    text = SyntheticImageCaptioner("coarse", 0.0, 1).caption(_clip(spec), np.array([0]))[0]
    assert text == "an empty grey background"


# ---------------------------------------------------------------- frame captions


def test_frame_captions_parse_back_to_the_ground_truth():
    clips = [_clip(s) for s in SINGLE + MULTI]
    df = frame_captions(clips, SyntheticImageCaptioner("frame", 0.0, 1), N_CAPTIONED)
    n_parsed = 0
    for spec, idx, caps in zip(SINGLE + MULTI, df["frame_indices"], df["captions"]):
        assert len(idx) == len(caps) == N_CAPTIONED
        states = frame_states(spec)
        for i, text in zip(idx, caps):
            s = states[i]
            p = parse_frame_caption(text)
            if not s.visible:
                assert p is None and text == f"an empty {spec.background} background"
                continue
            assert p is not None, text
            assert p == {
                "size": size_word(s.radius),
                "colour": s.colour,
                "texture": s.texture,
                "shape": s.shape,
                "tilt": tilt_word(s.angle),
                "pos": position_word(s.x, s.y),
                "bg": spec.background,
            }
            n_parsed += 1
    assert n_parsed > 500


def test_parse_frame_caption_rejects_other_text():
    assert parse_frame_caption("a red circle on a black background") is None
    assert parse_frame_caption("") is None
    p = parse_frame_caption("large blue plain cross, tilted, at the top left, checkered background")
    assert p["pos"] == "top left" and p["tilt"] == "tilted" and p["bg"] == "checkered"


def test_unknown_style_and_missing_spec():
    with pytest.raises(ValueError):
        SyntheticImageCaptioner("dense", 0.0, 0)
    with pytest.raises(ValueError, match="/videos/x.mp4"):
        SyntheticImageCaptioner("frame", 0.0, 0).caption(Clip("x", "/videos/x.mp4", 8), np.array([0]))


# ---------------------------------------------------------------- summaries


def _event_phrases(event: str, spec: ClipSpec) -> set[str]:
    if event == "change colour":
        return {f"turns {spec.new_colour}"}
    return {present(event), f"is {gerund(event)}"}


def test_zero_noise_summary_states_every_single_event():
    df = _summaries(SINGLE, keep_colour=0.5)
    seen_forms = set()
    for spec, text in zip(SINGLE, df["caption"]):
        (event,) = spec.events
        subjects = (f"the {spec.shape} ", f"the {spec.colour} {spec.shape} ")
        assert text.startswith(subjects), text
        phrase = text.removeprefix(subjects[1] if text.startswith(subjects[1]) else subjects[0])
        assert phrase in _event_phrases(event, spec), (spec.events, text)
        seen_forms.add(phrase.startswith("is "))
    assert seen_forms == {True, False}  # both the present and the progressive form occur


def test_zero_noise_summary_of_multi_event_clips_lists_events_in_order():
    specs = sample_specs(40, 2, "two", sorted(itertools.product(COLOURS, SHAPES)), 2, 16)
    specs = [s for s in specs if not ("grow" in s.events and "shrink" in s.events)]
    df = _summaries(specs)
    for spec, text in zip(specs, df["caption"]):
        parts = text.split(", then ")
        assert len(parts) == 2, text
        for e, part in zip(spec.events, parts):
            assert any(part.endswith(p) for p in _event_phrases(e, spec)), (spec.events, text)


def test_summary_keeps_colour_zero_never_names_the_subject_colour():
    for spec, text in zip(SINGLE + MULTI, _summaries(SINGLE + MULTI, keep_colour=0.0)["caption"]):
        assert spec.colour not in _words(text), text
        assert text.startswith(f"the {spec.shape} ")


def test_summary_keeps_colour_one_always_names_it():
    for spec, text in zip(SINGLE, _summaries(SINGLE, keep_colour=1.0)["caption"]):
        assert text.startswith(f"the {spec.colour} {spec.shape} "), text
    for spec, text in zip(MULTI, _summaries(MULTI, keep_colour=1.0)["caption"]):
        assert text.split()[1] in COLOURS and text.split()[2] == spec.shape, text


def test_summary_subject_has_the_colour_before_the_change():
    specs = [
        s
        for s in sample_specs(120, 9, "cc", sorted(itertools.product(COLOURS, SHAPES)), 2, 16)
        if s.events[0] == "change colour"
    ]
    assert specs
    for spec, text in zip(specs, _summaries(specs, keep_colour=1.0)["caption"]):
        assert text.startswith(f"the {spec.colour} {spec.shape} turns {spec.new_colour}"), (spec.events, text)


def test_summary_keeps_colour_fraction_is_in_between():
    texts = _summaries(SINGLE, keep_colour=0.5)["caption"]
    named = np.mean([t.startswith(f"the {s.colour} ") for s, t in zip(SINGLE, texts)])
    assert 0.25 < named < 0.75


def test_summarizer_special_cases():
    summ = SyntheticSummarizer(0.0, 1.0, 0)
    assert summ.summarize("x", ["an empty black background"] * 4) == "an empty scene where nothing happens"
    still = ["small red plain circle, upright, at the center, black background"] * 4
    assert summ.summarize("x", still) == "the red circle stays still"
    # a one-frame glitch in the middle is smoothed away, not reported as two colour changes
    glitch = list(still)
    glitch[1] = glitch[1].replace("red", "blue")
    assert summ.summarize("x", glitch) == "the red circle stays still"


# ---------------------------------------------------------------- noise and determinism


def test_noise_changes_some_captions_and_is_seeded():
    specs = SINGLE[:60]
    clean = _summaries(specs, 0.0, 0.0, seed=5)["caption"].tolist()
    noisy = _summaries(specs, 0.1, 0.3, seed=5)["caption"].tolist()
    again = _summaries(specs, 0.1, 0.3, seed=5)["caption"].tolist()
    other = _summaries(specs, 0.1, 0.3, seed=6)["caption"].tolist()
    assert noisy == again
    assert noisy != other
    changed = sum(a != b for a, b in zip(clean, noisy))
    assert 0 < changed < len(specs)

    clips = [_clip(s) for s in specs]
    c0 = coarse_captions(clips, SyntheticImageCaptioner("coarse", 0.0, 5))["caption"].tolist()
    c1 = coarse_captions(clips, SyntheticImageCaptioner("coarse", 0.3, 5))["caption"].tolist()
    c2 = coarse_captions(clips, SyntheticImageCaptioner("coarse", 0.3, 5))["caption"].tolist()
    assert c1 == c2
    assert 0 < sum(a != b for a, b in zip(c0, c1)) < len(clips)


def test_captions_of_a_clip_do_not_depend_on_the_other_clips():
    specs = SINGLE[:30]
    clips = [_clip(s) for s in specs]
    sub = clips[5:12][::-1]

    def run(cs):
        co = coarse_captions(cs, SyntheticImageCaptioner("coarse", 0.3, 2))
        fr = frame_captions(cs, SyntheticImageCaptioner("frame", 0.2, 2), N_CAPTIONED)
        su = summary_captions(fr, SyntheticSummarizer(0.5, 0.5, 2))
        return {
            cid: (a, tuple(b), c) for cid, a, b, c in zip(co["clip_id"], co["caption"], fr["captions"], su["caption"])
        }

    full, part = run(clips), run(sub)
    assert part == {c.clip_id: full[c.clip_id] for c in sub}


def test_backends_build_from_config():
    cfg = {
        "backend": "synthetic",
        "seed": 3,
        "coarse_detail": 0.5,
        "summary_keeps_colour": 1.0,
        "noise": {"coarse": 0.0, "frames": 0.0, "summary": 0.0},
    }
    assert backends.image_captioner(cfg, "coarse").detail == 0.5
    assert backends.image_captioner(cfg, "frame").style == "frame"
    assert backends.summarizer(cfg).keep_colour == 1.0
    with pytest.raises(ValueError, match="blip2"):
        backends.summarizer({**cfg, "backend": "blip2"})
    with pytest.raises(ValueError, match="captions.hf.summarizer: missing"):
        backends.summarizer({**cfg, "backend": "hf"})


# ---------------------------------------------------------------- fusion


def test_fuse_keeps_both_parts():
    coarse = pd.DataFrame({"clip_id": ["a", "b"], "caption": ["a red circle on a black background.", "a blue square"]})
    summary = pd.DataFrame({"clip_id": ["b", "a"], "caption": ["the square rotates", "the circle grows bigger"]})
    out = fuse(coarse, summary).set_index("clip_id")["caption"]
    assert out["a"] == "a red circle on a black background. the circle grows bigger"
    assert out["b"] == "a blue square. the square rotates"


def test_fuse_on_real_captions():
    specs = SINGLE[:20]
    clips = [_clip(s) for s in specs]
    co = coarse_captions(clips, SyntheticImageCaptioner("coarse", 0.0, 1))
    su = _summaries(specs)
    fu = fuse(co, su)
    assert list(fu["clip_id"]) == [s.clip_id for s in specs]
    for c, s, f in zip(co["caption"], su["caption"], fu["caption"]):
        assert f.startswith(c) and f.endswith(s)


@pytest.mark.parametrize("ids", [["a", "b", "c"], ["a"], ["a", "x"]])
def test_fuse_raises_on_mismatched_clip_sets(ids):
    coarse = pd.DataFrame({"clip_id": ["a", "b"], "caption": ["c1", "c2"]})
    summary = pd.DataFrame({"clip_id": ids, "caption": [f"s{i}" for i in range(len(ids))]})
    with pytest.raises(ValueError):
        fuse(coarse, summary)


def test_fuse_raises_on_duplicate_clip_ids():
    coarse = pd.DataFrame({"clip_id": ["a", "a"], "caption": ["c1", "c2"]})
    summary = pd.DataFrame({"clip_id": ["a"], "caption": ["s"]})
    with pytest.raises(ValueError):
        fuse(coarse, summary)


def test_fusion_rules_by_name():
    coarse = pd.DataFrame({"clip_id": ["a"], "caption": ["a red circle."]})
    summary = pd.DataFrame({"clip_id": ["a"], "caption": ["the circle grows"]})
    assert fused_captions("concat", coarse, summary)["caption"].tolist() == ["a red circle. the circle grows"]
    with pytest.raises(ValueError, match="unknown rule 'longest'"):
        fused_captions("longest", coarse, summary)
    frames = pd.DataFrame({"clip_id": ["a"], "frame_indices": [[1]], "captions": [["x"]]})
    with pytest.raises(ValueError, match="needs a language model"):
        fused_captions("summary_prompted", coarse, frames=frames, summarizer=SyntheticSummarizer(0.0, 1.0, 0))


# ---------------------------------------------------------------- shards, the driver and the cache


@pytest.mark.parametrize("n_shards", [1, 2, 3, 7, 10])
def test_shards_cover_the_corpus_once_in_order(n_shards):
    items = list(range(23))
    parts = [shard_of(items, n_shards, k) for k in range(n_shards)]
    assert [x for part in parts for x in part] == items
    assert max(map(len, parts)) - min(map(len, parts)) <= 1
    with pytest.raises(ValueError):
        shard_of(items, n_shards, n_shards)
    assert shard_tag(2, 5) == "s2of5" and shard_tag(0, 1, "synthetic") == "synthetic.s0of1"


def test_an_empty_shard_writes_empty_tables(tmp_path):
    fr = SyntheticImageCaptioner("frame", 0.0, 1)
    out = caption_images([], [coarse_task(SyntheticImageCaptioner("coarse", 0.0, 1)), frames_task(fr, 4)], Runner())
    tables = {"coarse": coarse_table([], out["coarse"]), "frames": frames_table([], out["frames"])}
    tables["summary"] = summary_captions(tables["frames"], SyntheticSummarizer(0.0, 1.0, 1))
    tables["fused"] = fuse(tables["coarse"], tables["summary"])
    for name, df in tables.items():
        assert tuple(df.columns) == VARIANT_COLUMNS[name] and len(df) == 0
        write_variant(df, name, tmp_path / f"{name}.parquet")
        assert pq.read_schema(tmp_path / f"{name}.parquet").remove_metadata().equals(VARIANT_SCHEMAS[name])


@pytest.mark.parametrize("chunk", [1, 5, 1000])
def test_driver_gives_the_captions_of_a_per_clip_loop(chunk):
    """Both image tasks in one pass, in chunks, write what captioning each clip on its own writes."""
    specs = SINGLE[:17]
    clips = [_clip(s) for s in specs]
    co, fr = SyntheticImageCaptioner("coarse", 0.2, 4), SyntheticImageCaptioner("frame", 0.2, 4)
    out = caption_images(clips, [coarse_task(co), frames_task(fr, N_CAPTIONED)], Runner(chunk=chunk))
    assert coarse_table(clips, out["coarse"])["caption"].tolist() == [
        co.caption(c, np.array([c.n_frames // 2]))[0] for c in clips
    ]
    table = frames_table(clips, out["frames"])
    for c, idx, caps in zip(clips, table["frame_indices"], table["captions"]):
        assert caps == fr.caption(c, np.array(idx))
    assert coarse_table(clips, out["coarse"]).equals(coarse_captions(clips, co))
    assert table.equals(frame_captions(clips, fr, N_CAPTIONED))


def test_cache_round_trip_compaction_and_bad_files(tmp_path):
    cache = CaptionCache(tmp_path, "summary", {"model": "m", "prompt": "p"}, "s0of2")
    cache.add({"k1": "one", "k2": "two"})
    cache.add({"k3": "three"})
    CaptionCache(tmp_path, "summary", {"model": "m", "prompt": "p"}, "s1of2").add({"k4": "four"})
    assert cache.lookup(["k1", "k3", "k4", "nope"]) == {"k1": "one", "k3": "three", "k4": "four"}
    cache.compact()
    files = sorted(f.name.split("-")[0] for f in cache.dir.glob("*.parquet"))
    assert files == ["s0of2", "s1of2"]  # this tag's two chunks merged; the other shard's file untouched
    (cache.dir / "s9of9-broken.parquet").write_bytes(b"not parquet")
    assert cache.lookup(["k2", "k4"]) == {"k2": "two", "k4": "four"}
    other = CaptionCache(tmp_path, "summary", {"model": "m", "prompt": "q"}, "s0of2")
    assert other.dir != cache.dir and other.lookup(["k1"]) == {}
    assert digest(["a", 1]) == digest(["a", 1]) != digest(["a", 2])


# ---------------------------------------------------------------- files and statistics


def test_variant_checks_name_the_file(tmp_path):
    good = pd.DataFrame({"clip_id": ["a", "b"], "caption": ["x", "y"]})
    assert check_variant(good, "coarse", "c.parquet") is good
    with pytest.raises(ValueError, match="c.parquet.*columns"):
        check_variant(good.rename(columns={"caption": "text"}), "coarse", "c.parquet")
    with pytest.raises(ValueError, match="c.parquet: clip 'a' has two"):
        check_variant(pd.concat([good, good.iloc[:1]]), "coarse", "c.parquet")
    with pytest.raises(ValueError, match="clip 'b' has no summary"):
        check_variant(pd.DataFrame({"clip_id": ["a", "b"], "caption": ["x", None]}), "summary", "s.parquet")
    a, b = tmp_path / "0.parquet", tmp_path / "1.parquet"
    good.to_parquet(a)
    pd.DataFrame({"clip_id": ["c"], "caption": ["z"]}).to_parquet(b)
    out = gather_variant([a, b], "coarse", tmp_path / "all.parquet", tmp_path / "gather.log")
    assert out["clip_id"].tolist() == ["a", "b", "c"] and (tmp_path / "all.parquet").exists()
    with pytest.raises(ValueError, match="clip 'a' has two"):
        gather_variant([a, a], "coarse", tmp_path / "dup.parquet")
    assert not (tmp_path / "dup.parquet").exists()


def test_read_clips_with_windows_and_bad_indexes(tmp_path):
    pd.DataFrame(
        {
            "clip_id": ["a", "b"],
            "path": ["v/a.mp4", "v/b.mp4"],
            "n_frames": [16, 24],
            "start_s": [None, 1.0],
            "end_s": [float("nan"), 4.0],
        }
    ).to_parquet(tmp_path / "i.parquet")
    a, b = read_clips(tmp_path / "i.parquet", windows=True)
    assert a.path == str(tmp_path / "v/a.mp4") and a.start_s is None and a.end_s is None
    assert (b.start_s, b.end_s, b.n_frames) == (1.0, 4.0, 24)
    # a download manifest's times are in the source video; its files are the clips
    assert read_clips(tmp_path / "i.parquet")[1].start_s is None
    pd.DataFrame({"clip_id": ["a", "a"], "path": ["x", "y"], "n_frames": [1, 1]}).to_parquet(tmp_path / "d.parquet")
    with pytest.raises(ValueError, match="d.parquet: clip_id 'a' appears twice"):
        read_clips(tmp_path / "d.parquet")
    pd.DataFrame({"clip_id": ["a"], "path": ["x"]}).to_parquet(tmp_path / "m.parquet")
    with pytest.raises(ValueError, match="m.parquet: missing column 'n_frames'"):
        read_clips(tmp_path / "m.parquet")


def test_length_statistics():
    s = length_stats(["one two", "a b c d e f g h i j k", "", "one two"])
    assert s["n"] == 4 and s["words_mean"] == 15 / 4 and s["words_max"] == 11 and s["empty"] == 1
    assert (s["share_under_10"], s["share_10_to_20"], s["share_over_20"]) == (0.75, 0.25, 0.0)
    assert s["distinct_share"] == 0.75
    frames = pd.DataFrame(
        {"clip_id": ["a", "b"], "frame_indices": [[0, 1], [0, 1]], "captions": [["x", "x"], ["x", "y z"]]}
    )
    v = variant_stats({"frames": frames, "coarse": pd.DataFrame({"clip_id": ["a"], "caption": ["a cat"]})})
    assert v["frames"]["n"] == 4 and v["frames"]["clips"] == 2
    assert v["frames"]["distinct_per_clip_mean"] == 1.5 and v["frames"]["share_clips_all_same"] == 0.5
    assert v["coarse"]["words_mean"] == 2


def test_execution_settings_defaults_and_merge():
    ex = ExecutionSettings.from_config({"batch_size": {"frames": 8}, "chunk_clips": 4})
    assert ex.batch_size == {"coarse": 16, "frames": 8, "summarizer": 16} and ex.chunk_clips == 4
    assert ExecutionSettings.from_config(None) == ExecutionSettings()
    with pytest.raises(ValueError, match="at least 1"):
        ExecutionSettings.from_config({"chunk_clips": 0})


def test_config_schema_checks_the_captions_block(repo):
    import copy

    import yaml

    from viclip.config import ConfigError, validate

    schema = repo / "configs" / "schema.yaml"
    cfg = yaml.safe_load((repo / "config.yaml").read_text())
    validate(copy.deepcopy(cfg), schema)

    def error(edit) -> str:
        c = copy.deepcopy(cfg)
        edit(c["captions"])
        with pytest.raises(ConfigError) as info:
            validate(c, schema)
        return str(info.value)

    assert "captions.backend: 'hf' was expected" in error(lambda c: c.update(fusion="summary_prompted"))
    assert "'hf' is a required property" in error(lambda c: (c.update(backend="hf"), c.pop("hf")))
    assert "captions.hf.summarizer.prompt" in error(lambda c: c["hf"]["summarizer"].update(prompt="summarize"))
    assert "unknown key captions.hf.coarse.temperature" in error(lambda c: c["hf"]["coarse"].update(temperature=0.7))
    assert "captions.execution.batch_size.frames" in error(lambda c: c["execution"]["batch_size"].update(frames=0))
    assert "'seed' is a required property" in error(lambda c: c.pop("seed"))  # the synthetic backend's block
    c = copy.deepcopy(cfg)
    c["captions"].update(backend="hf", fusion="summary_prompted")
    for key in ("seed", "noise", "coarse_detail", "summary_keeps_colour"):
        c["captions"].pop(key)
    validate(c, schema)  # the hf backend needs no synthetic keys
