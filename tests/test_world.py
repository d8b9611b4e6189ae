"""Tests for the synthetic world: viclip.data.world, render and language."""

from __future__ import annotations

import itertools
from collections import Counter

import numpy as np
import pytest

from viclip.data import language
from viclip.data.render import background, render_clip
from viclip.data.synthetic import pair_pool, sample_specs
from viclip.data.world import (
    COLOURS,
    EVENTS,
    GROWTH,
    SHAPES,
    TRAVEL,
    ClipSpec,
    allowed_events,
    frame_states,
    heldout_pairs,
    sample_spec,
)

ALL_PAIRS = set(itertools.product(COLOURS, SHAPES))
MOVE_AXIS = {"move left": "x", "move right": "x", "move up": "y", "move down": "y"}
BLACK = 20  # value of the "black" background


def world(seed: int = 7, fraction: float = 0.25) -> dict:
    return {"seed": seed, "heldout_fraction": fraction, "frame_size": 32, "fps": 8, "pixel_noise": 4.0}


# ---------------------------------------------------------------- held-out pairs


@pytest.mark.parametrize("fraction", [0.1, 0.25, 0.5])
@pytest.mark.parametrize("seed", [0, 7, 123])
def test_heldout_pairs_leave_every_colour_and_shape_in_pretraining(fraction, seed):
    w = world(seed, fraction)
    held = set(pair_pool(w, heldout=True))
    pre = set(pair_pool(w, heldout=False))
    assert held == heldout_pairs(fraction, seed)
    assert held and pre
    assert held.isdisjoint(pre)
    assert held | pre == ALL_PAIRS
    assert {c for c, _ in pre} == set(COLOURS)
    assert {s for _, s in pre} == set(SHAPES)
    assert len(held) == round(fraction * len(ALL_PAIRS))


def test_heldout_pairs_depend_on_seed_and_are_stable():
    assert heldout_pairs(0.25, 7) == heldout_pairs(0.25, 7)
    assert len({frozenset(heldout_pairs(0.25, s)) for s in range(6)}) > 1


def test_heldout_zero_fraction_holds_nothing():
    assert heldout_pairs(0.0, 3) == set()
    assert set(pair_pool(world(3, 0.0), heldout=False)) == ALL_PAIRS


# ---------------------------------------------------------------- sample_spec


def _draw(seed: int, n: int, n_events: int, pairs=None) -> list[ClipSpec]:
    pairs = pairs or sorted(ALL_PAIRS)
    return sample_specs(n, seed, "c", pairs, n_events, 8)


def test_sample_spec_is_deterministic_for_a_seed():
    a = _draw(5, 40, 2)
    b = _draw(5, 40, 2)
    c = _draw(6, 40, 2)
    assert [s.to_json() for s in a] == [s.to_json() for s in b]
    assert [s.to_json() for s in a] != [s.to_json() for s in c]


def test_sample_spec_draws_only_given_pairs():
    pairs = sorted(heldout_pairs(0.25, 7))
    for spec in _draw(1, 100, 1, pairs):
        assert (spec.colour, spec.shape) in pairs


def test_spec_json_round_trip():
    spec = _draw(2, 1, 3)[0]
    assert ClipSpec.from_json(spec.to_json()) == spec


@pytest.mark.parametrize("n_events", [1, 2, 3])
def test_multi_event_clips_are_well_formed(n_events):
    specs = _draw(11, 300, n_events)
    seen = Counter()
    for spec in specs:
        ev = spec.events
        assert len(ev) == n_events
        assert len(set(ev)) == n_events, ev
        assert "appear" not in ev[1:], ev
        axes = [MOVE_AXIS[e] for e in ev if e in MOVE_AXIS]
        assert len(axes) == len(set(axes)), ev
        assert all(e in allowed_events(spec.shape) for e in ev)
        assert not (spec.shape == "circle" and "rotate" in ev)
        if "change colour" in ev:
            assert spec.new_colour in COLOURS and spec.new_colour != spec.colour
        else:
            assert spec.new_colour is None
        assert spec.n_frames == 8 * n_events
        seen.update(ev)
    # the draw really exercises the pool (not stuck on a few events)
    assert set(seen) == set(EVENTS)
    if n_events > 1:
        assert seen["appear"] > 0


def test_sample_spec_explicit_events_are_kept():
    rng = np.random.default_rng(0)
    spec = sample_spec(rng, "x", 2, 6, [("red", "square")], events=("grow", "move up"))
    assert spec.events == ("grow", "move up")
    assert (spec.colour, spec.shape) == ("red", "square")


# ---------------------------------------------------------------- frame_states


def _legal_combos(shape: str, max_events: int = 3):
    for n in range(1, max_events + 1):
        for combo in itertools.permutations(allowed_events(shape), n):
            if "appear" in combo[1:]:
                continue
            axes = [MOVE_AXIS[e] for e in combo if e in MOVE_AXIS]
            if len(axes) != len(set(axes)):
                continue
            yield combo


def _inside(states) -> bool:
    return all(
        0.0 <= s.x - s.radius and s.x + s.radius <= 1.0 and 0.0 <= s.y - s.radius and s.y + s.radius <= 1.0
        for s in states
    )


def _spec(
    shape="square",
    colour="red",
    texture="plain",
    size="large",
    bg="black",
    events=("grow",),
    f=8,
    new_colour=None,
    clip_id="t",
) -> ClipSpec:
    if "change colour" in events and new_colour is None:
        new_colour = "blue" if colour != "blue" else "green"
    return ClipSpec(clip_id, shape, colour, texture, size, bg, tuple(events), f, new_colour)


def test_frame_states_stay_inside_for_all_combinations_without_grow_and_shrink():
    checked = 0
    for shape in SHAPES:
        for size in ("small", "large"):
            for combo in _legal_combos(shape):
                if "grow" in combo and "shrink" in combo:
                    continue  # sample_spec never draws both; see the next test
                states = frame_states(_spec(shape=shape, size=size, events=combo, f=5))
                assert len(states) == 5 * len(combo)
                assert _inside(states), (shape, size, combo)
                checked += 1
    assert checked > 500


def test_frame_states_stay_inside_for_every_clip_sample_spec_draws():
    specs = [s for n in (2, 3) for s in _draw(21 + n, 300, n)]
    bad = [s.events for s in specs if not _inside(frame_states(s))]
    assert not bad, f"{len(bad)} clips leave the frame, e.g. {bad[:3]}"


def test_frame_states_segments_continue_from_previous_event():
    states = frame_states(_spec(events=("move right", "grow"), f=6))
    assert len(states) == 12
    # the move ends where the grow starts, and the grow keeps the position
    assert states[5].x == pytest.approx(states[6].x)
    assert states[0].x == pytest.approx(0.5 - TRAVEL / 2)
    assert states[5].x == pytest.approx(0.5 + TRAVEL / 2)
    assert states[11].radius == pytest.approx(states[6].radius * GROWTH)
    assert all(s.x == pytest.approx(states[5].x) for s in states[6:])


# ---------------------------------------------------------------- rendering


def _render(spec: ClipSpec, size: int = 64) -> np.ndarray:
    return render_clip(spec, size, noise_std=0.0)


def _object_mask(frame: np.ndarray) -> np.ndarray:
    return (frame != BLACK).any(axis=-1)


def _centroid(frame: np.ndarray) -> tuple[float, float]:
    yy, xx = np.nonzero(_object_mask(frame))
    assert len(xx) > 0, "no object pixels"
    return float(xx.mean()), float(yy.mean())


def test_background_values():
    assert (background("black", 8) == BLACK).all()
    grad = background("gradient", 8)
    assert (np.diff(grad[0, :, 0]) > 0).all()
    with pytest.raises(ValueError):
        background("sky", 8)


@pytest.mark.parametrize(
    "event,axis,sign", [("move left", 0, -1), ("move right", 0, 1), ("move up", 1, -1), ("move down", 1, 1)]
)
@pytest.mark.parametrize("shape", ["circle", "triangle"])
def test_moves_move_the_rendered_centroid(event, axis, sign, shape):
    size = 64
    frames = _render(_spec(shape=shape, size="small", events=(event,), f=8), size)
    c = np.array([_centroid(f)[axis] for f in frames])
    steps = np.diff(c) * sign
    assert (steps > 0).all(), c
    assert (c[-1] - c[0]) * sign == pytest.approx(TRAVEL * size, abs=1.5)
    other = np.array([_centroid(f)[1 - axis] for f in frames])
    assert np.ptp(other) < 1.0


def test_grow_and_shrink_change_the_pixel_count():
    grow = [_object_mask(f).sum() for f in _render(_spec(shape="circle", events=("grow",), f=8))]
    shrink = [_object_mask(f).sum() for f in _render(_spec(shape="circle", events=("shrink",), f=8))]
    assert (np.diff(grow) > 0).all(), grow
    assert (np.diff(shrink) < 0).all(), shrink
    assert grow[-1] / grow[0] == pytest.approx(GROWTH**2, rel=0.1)
    assert shrink[0] / shrink[-1] == pytest.approx(GROWTH**2, rel=0.1)


def _dominant(frame: np.ndarray) -> tuple[int, ...]:
    px = frame[_object_mask(frame)]
    values, counts = np.unique(px, axis=0, return_counts=True)
    return tuple(int(v) for v in values[np.argmax(counts)])


@pytest.mark.parametrize("f", [8, 12, 16])
def test_change_colour_switches_late_but_not_at_the_middle(f):
    spec = _spec(colour="red", events=("change colour",), new_colour="green", f=f)
    frames = _render(spec)
    assert _dominant(frames[0]) == COLOURS["red"]
    assert _dominant(frames[spec.n_frames // 2]) == COLOURS["red"]
    assert _dominant(frames[-1]) == COLOURS["green"]
    # a single switch, in the last quarter
    switched = [_dominant(fr) == COLOURS["green"] for fr in frames]
    first = switched.index(True)
    assert all(switched[first:]) and not any(switched[:first])
    assert first >= (3 * f) // 4


def test_appear_starts_with_an_empty_frame():
    frames = _render(_spec(events=("appear", "move left"), f=9))
    assert not _object_mask(frames[0]).any()
    assert _object_mask(frames[8]).any()
    visible = [bool(_object_mask(fr).any()) for fr in frames]
    assert visible == sorted(visible)  # never disappears again


def test_rotate_changes_a_square_but_not_its_area():
    frames = _render(_spec(shape="square", events=("rotate",), f=9))
    areas = [_object_mask(f).sum() for f in frames]
    assert not np.array_equal(_object_mask(frames[0]), _object_mask(frames[4]))
    assert max(areas) / min(areas) < 1.1
    # 90 degrees later a square covers the same pixels again
    assert (_object_mask(frames[0]) != _object_mask(frames[-1])).mean() < 0.01


def test_render_clip_is_deterministic_and_noise_is_per_clip():
    spec = _spec(texture="striped", bg="checkered", events=("move left", "rotate"), f=4, clip_id="a")
    a = render_clip(spec, 32, noise_std=4.0)
    b = render_clip(spec, 32, noise_std=4.0)
    assert a.dtype == np.uint8 and a.shape == (8, 32, 32, 3)
    assert np.array_equal(a, b)
    other = _spec(texture="striped", bg="checkered", events=("move left", "rotate"), f=4, clip_id="b")
    other = ClipSpec(**{**other.__dict__, "seed": 12345})
    c = render_clip(other, 32, noise_std=4.0)
    assert not np.array_equal(a, c)
    clean = render_clip(spec, 32, noise_std=0.0)
    assert 1.0 < np.abs(a.astype(float) - clean).mean() < 6.0


def test_striped_texture_has_two_tones():
    frame = _render(_spec(texture="striped", colour="yellow", events=("grow",), f=2))[-1]
    tones = {tuple(p) for p in frame[_object_mask(frame)]}
    assert len(tones) == 2


# ---------------------------------------------------------------- language


def test_language_phrases():
    spec = _spec(events=("change colour",), new_colour="purple")
    assert language.present("change colour", spec) == "turns purple"
    assert language.present("change colour") == "changes colour"
    assert language.present("move left") == "moves to the left"
    assert language.gerund("move left") == "moving left"
    assert all(language.gerund(e) and language.present(e) for e in EVENTS)
    assert language.noun_phrase("red", "", "circle") == "red circle"
    assert language.texture_word("plain") == ""
    assert language.texture_word("striped") == "striped"
    assert language.article("orange square") == "an orange square"
    assert language.article("red square") == "a red square"
