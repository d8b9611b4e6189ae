"""The synthetic captioning backend.

Its image captioner "looks" at a frame by reading the renderer's ground truth
for that frame (shape, colour, texture, size, position, tilt, background)
and writes what an image captioner would: appearance and place, never motion,
which a single frame cannot show. Its summariser is a rule-based stand-in
for the LLM: it reads only the per-frame caption *texts*, infers what
changed between frames, and, like real LLM summaries, tends to keep the
subject and the events while dropping appearance detail.

Noise levels (config keys) replace attributes with wrong ones (captioner
mistakes) or swap an event (summariser hallucination). Every random draw is
seeded by (config seed, clip id), so captions do not depend on corpus order.
"""

from __future__ import annotations

import re

import numpy as np

from viclip.captions.base import Clip
from viclip.data.language import article, gerund, noun_phrase, present, texture_word
from viclip.data.synthetic import sub_seed
from viclip.data.world import BACKGROUNDS, COLOURS, EVENTS, SHAPES, ClipSpec, ObjectState, frame_states

SIZE_WORDS = ("small", "medium", "large")


def size_word(radius: float) -> str:
    return "small" if radius < 0.17 else "medium" if radius < 0.22 else "large"


def position_word(x: float, y: float) -> str:
    h = "left" if x < 0.4 else "right" if x > 0.6 else ""
    v = "top" if y < 0.4 else "bottom" if y > 0.6 else ""
    return noun_phrase(v, h) or "center"


def tilt_word(angle: float) -> str:
    a = angle % 90.0
    return "tilted" if 10.0 < a < 80.0 else "upright"


class SyntheticImageCaptioner:
    """style "coarse": a BLIP-2-like sentence; style "frame": a terse tagger-like line."""

    needs_pixels = False  # it reads the renderer's ground truth, not the decoded frames

    def __init__(self, style: str, noise: float, seed: int, detail: float = 1.0):
        if style not in ("coarse", "frame"):
            raise ValueError(f"unknown captioner style {style!r}")
        self.style, self.noise, self.seed, self.detail = style, noise, seed, detail

    def fingerprint(self) -> dict:
        out = {"backend": "synthetic", "style": self.style, "noise": self.noise, "seed": self.seed}
        return {**out, "detail": self.detail} if self.style == "coarse" else out

    def caption_many(self, clips: list[Clip], frame_indices: list[np.ndarray], frames=None) -> list[list[str]]:
        return [self.caption(c, i) for c, i in zip(clips, frame_indices)]

    def caption(self, clip: Clip, frame_indices: np.ndarray) -> list[str]:
        if clip.spec is None:
            raise ValueError(f"{clip.path}: the synthetic captioner needs the clip's spec (not a synthetic clip?)")
        spec = ClipSpec.from_json(clip.spec)
        states = frame_states(spec)
        rng = np.random.default_rng(sub_seed(self.seed, f"{self.style}/{clip.clip_id}"))
        return [self._describe(states[i], spec.background, rng) for i in frame_indices]

    def _wrong(self, value: str, options, rng: np.random.Generator) -> str:
        if rng.random() < self.noise:
            others = [o for o in options if o != value]
            return others[rng.integers(len(others))]
        return value

    def _describe(self, s: ObjectState, bg: str, rng: np.random.Generator) -> str:
        bg = self._wrong(bg, BACKGROUNDS, rng)
        if not s.visible:
            return f"an empty {bg} background"
        colour = self._wrong(s.colour, list(COLOURS), rng)
        shape = self._wrong(s.shape, SHAPES, rng)
        size = self._wrong(size_word(s.radius), SIZE_WORDS, rng)
        if self.style == "frame":
            return (
                f"{size} {colour} {s.texture} {shape}, {tilt_word(s.angle)}, "
                f"at the {position_word(s.x, s.y)}, {bg} background"
            )
        # Colour and shape always; each other attribute only with chance `detail`, as a
        # BLIP-2 sentence names what stands out. A caption naming all five picks its clip
        # out of a batch by appearance alone, and then nothing teaches the event.
        # (detail 1 draws nothing, so its captions are the ones written before the setting existed)
        size, texture, named_bg = (
            w if self.detail >= 1 or rng.random() < self.detail else "" for w in (size, texture_word(s.texture), bg)
        )
        thing = noun_phrase(size, colour, texture, shape)
        if not named_bg:
            return article(thing)
        forms = (
            f"{article(thing)} on a {bg} background",
            f"{article(thing)} in front of a {bg} background",
            f"a {bg} background with {article(thing)}",
        )
        return forms[rng.integers(len(forms))]


_FRAME_RE = re.compile(
    r"^(?P<size>\w+) (?P<colour>\w+) (?P<texture>\w+) (?P<shape>\w+), (?P<tilt>\w+), at the (?P<pos>[\w ]+), (?P<bg>\w+) background$"
)


def parse_frame_caption(text: str) -> dict | None:
    """The attributes a frame caption states; None for an empty frame or unknown text."""
    m = _FRAME_RE.match(text)
    return m.groupdict() if m else None


def infer_events(parsed: list[dict | None]) -> tuple[list[str], dict]:
    """Events in order of first appearance, from consecutive frame descriptions."""
    events: list[str] = []
    info: dict = {}

    def add(e: str) -> None:
        if e not in events:
            events.append(e)

    seen = [p for p in parsed if p is not None]
    if parsed and parsed[0] is None and seen:
        add("appear")
    for a, b in zip(seen, seen[1:]):
        ha, va = _axes(a["pos"])
        hb, vb = _axes(b["pos"])
        if hb < ha:
            add("move left")
        elif hb > ha:
            add("move right")
        if vb < va:
            add("move up")
        elif vb > va:
            add("move down")
        sa, sb = (
            SIZE_WORDS.index(a["size"]) if a["size"] in SIZE_WORDS else 1,
            SIZE_WORDS.index(b["size"]) if b["size"] in SIZE_WORDS else 1,
        )
        if sb > sa:
            add("grow")
        elif sb < sa:
            add("shrink")
        if a["tilt"] != b["tilt"]:
            add("rotate")
        if a["colour"] != b["colour"]:
            add("change colour")
            info["new_colour"] = b["colour"]
    return events, info


def _axes(pos: str) -> tuple[int, int]:
    h = -1 if "left" in pos else 1 if "right" in pos else 0
    v = -1 if "top" in pos else 1 if "bottom" in pos else 0
    return h, v


class SyntheticSummarizer:
    """Rule-based LLM stand-in: per-frame captions in, one sentence about the events out.

    A captioner mistake in one frame looks like a change to it, exactly as it
    would to an LLM, so frame noise turns into event noise here. Events seen in
    only one frame pair are still reported.
    """

    def __init__(self, noise: float, keep_colour: float, seed: int):
        self.noise, self.keep_colour, self.seed = noise, keep_colour, seed

    def fingerprint(self, task: str = "summary") -> dict:
        return {
            "backend": "synthetic",
            "task": task,
            "noise": self.noise,
            "keep_colour": self.keep_colour,
            "seed": self.seed,
        }

    def summarize_many(self, clip_ids: list[str], frame_captions: list[list[str]]) -> list[str]:
        return [self.summarize(c, f) for c, f in zip(clip_ids, frame_captions)]

    def fuse_many(self, clip_ids, coarse, frame_captions) -> list[str]:
        # A rule-based stand-in has no honest way to "read" a free sentence and
        # frame lines together; prompted fusion is a language model's job.
        raise ValueError("fusion 'summary_prompted' needs a language model summarizer (captions.backend: hf)")

    def summarize(self, clip_id: str, frame_captions: list[str]) -> str:
        rng = np.random.default_rng(sub_seed(self.seed, f"summary/{clip_id}"))
        parsed = [parse_frame_caption(c) for c in frame_captions]
        seen = [p for p in parsed if p is not None]
        if not seen:
            return "an empty scene where nothing happens"
        smooth = _smooth(parsed)
        # The shape by majority over frames, as an LLM reading all captions
        # would; the colour as first seen, so a colour change reads "the red
        # square turns blue".
        shape = _majority([p["shape"] for p in seen])
        colour = next(p["colour"] for p in smooth if p is not None)
        events, info = infer_events(smooth)
        if events and rng.random() < self.noise:
            events[rng.integers(len(events))] = EVENTS[rng.integers(len(EVENTS))]
        subject = noun_phrase(colour if rng.random() < self.keep_colour else "", shape)
        if not events:
            return f"the {subject} stays still"
        phrases = []
        for e in events:
            if e == "change colour" and "new_colour" in info:
                phrases.append(f"turns {info['new_colour']}")
            elif rng.random() < 0.5:  # LLMs vary their phrasing
                phrases.append(f"is {gerund(e)}")
            else:
                phrases.append(present(e))
        return f"the {subject} " + ", then ".join(phrases)


def _smooth(parsed: list[dict | None]) -> list[dict | None]:
    """Majority over each frame and its neighbours, attribute by attribute.

    A reader of all captions ignores a one-frame glitch (a frame called
    "blue" between two "red" ones) instead of reporting two colour changes.
    """
    out: list[dict | None] = []
    for i, p in enumerate(parsed):
        if p is None:
            out.append(None)
            continue
        window = [q for q in parsed[max(i - 1, 0) : i + 2] if q is not None]
        out.append({k: (_majority([q[k] for q in window]) if len(window) == 3 else v) for k, v in p.items()})
    return out


def _majority(values: list[str]) -> str:
    uniq, counts = np.unique(values, return_counts=True)
    return str(uniq[np.argmax(counts)])
