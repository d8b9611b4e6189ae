"""The synthetic video world: what a clip contains and how it changes over time.

A clip holds one object (shape, colour, texture, size) on a background and a
sequence of events (moves, grows, rotates, ...), one per segment of the clip.
`ClipSpec` is the whole ground truth; `frame_states` turns it into the
object's state in every frame, which the renderer draws and the synthetic
captioner describes.
"""

from __future__ import annotations

import itertools
import json
import math
import zlib
from dataclasses import asdict, dataclass, field

import numpy as np

SHAPES = ("circle", "square", "triangle", "diamond", "cross")
COLOURS = {
    "red": (220, 40, 40),
    "green": (40, 190, 60),
    "blue": (50, 80, 230),
    "yellow": (235, 220, 50),
    "purple": (160, 60, 200),
    "orange": (245, 140, 30),
}
TEXTURES = ("plain", "striped")
SIZES = ("small", "large")
BACKGROUNDS = ("black", "grey", "checkered", "gradient")
EVENTS = (
    "move left",
    "move right",
    "move up",
    "move down",
    "grow",
    "shrink",
    "rotate",
    "change colour",
    "appear",
)
# A rotating circle looks the same in every frame: the event would be invisible.
_INVISIBLE = {("circle", "rotate")}

# Geometry as fractions of the frame side, so every resolution shows the same clip.
RADIUS = {"small": 0.15, "large": 0.24}
GROWTH = 1.6  # grow/shrink scale the radius by this factor over one segment
TRAVEL = 0.34  # a move covers this fraction of the frame per segment


@dataclass(frozen=True)
class ClipSpec:
    """Everything about one clip; the renderer and captioner read only this."""

    clip_id: str
    shape: str
    colour: str
    texture: str
    size: str
    background: str
    events: tuple[str, ...]
    frames_per_event: int
    new_colour: str | None = None  # target of a "change colour" event
    seed: int = 0  # per-clip pixel noise

    @property
    def n_frames(self) -> int:
        return self.frames_per_event * len(self.events)

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @staticmethod
    def from_json(text: str) -> ClipSpec:
        d = json.loads(text)
        d["events"] = tuple(d["events"])
        return ClipSpec(**d)


@dataclass
class ObjectState:
    """The object in one frame (positions and radius as fractions of the side)."""

    x: float
    y: float
    radius: float
    angle: float  # degrees
    colour: str
    visible: bool
    shape: str = ""
    texture: str = ""
    extra: dict = field(default_factory=dict)


def heldout_pairs(fraction: float, seed: int) -> set[tuple[str, str]]:
    """(colour, shape) pairs that pretraining never shows and benchmarks use.

    Chosen by a seeded shuffle so zero-shot benchmarks test new combinations of
    attributes the model has seen separately. Every colour and every shape keeps
    at least one pair in pretraining.
    """
    pairs = sorted(itertools.product(COLOURS, SHAPES))
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(pairs))
    n = int(round(fraction * len(pairs)))
    held: set[tuple[str, str]] = set()
    for i in order:
        if len(held) >= n:
            break
        c, s = pairs[i]
        keeps_colour = any((c, t) not in held and t != s for t in SHAPES)
        keeps_shape = any((k, s) not in held and k != c for k in COLOURS)
        if keeps_colour and keeps_shape:
            held.add((c, s))
    return held


def allowed_events(shape: str) -> tuple[str, ...]:
    return tuple(e for e in EVENTS if (shape, e) not in _INVISIBLE)


def sample_spec(
    rng: np.random.Generator,
    clip_id: str,
    n_events: int,
    frames_per_event: int,
    pairs: list[tuple[str, str]],
    events: tuple[str, ...] | None = None,
) -> ClipSpec:
    """Draw one clip: a (colour, shape) pair from `pairs`, other attributes uniform.

    Events of one clip are distinct, and "appear" can only open a clip (an
    object cannot appear once it is already there).
    """
    colour, shape = pairs[rng.integers(len(pairs))]
    texture = TEXTURES[rng.integers(len(TEXTURES))]
    size = SIZES[rng.integers(len(SIZES))]
    background = BACKGROUNDS[rng.integers(len(BACKGROUNDS))]
    if events is None:
        pool = list(allowed_events(shape))
        chosen: list[str] = []
        for k in range(n_events):
            options = [e for e in pool if e not in chosen and (k == 0 or e != "appear")]
            # Two moves on one axis could leave the frame; keep one per axis.
            axes = {_axis(e) for e in chosen} - {None}
            options = [e for e in options if _axis(e) not in axes]
            chosen.append(options[rng.integers(len(options))])
        events = tuple(chosen)
    new_colour = None
    if "change colour" in events:
        others = [c for c in COLOURS if c != colour]
        new_colour = others[rng.integers(len(others))]
    return ClipSpec(
        clip_id=clip_id,
        shape=shape,
        colour=colour,
        texture=texture,
        size=size,
        background=background,
        events=tuple(events),
        frames_per_event=frames_per_event,
        new_colour=new_colour,
        seed=int(zlib.crc32(clip_id.encode())),
    )


def _axis(event: str) -> str | None:
    if event in ("move left", "move right"):
        return "x"
    if event in ("move up", "move down"):
        return "y"
    if event in ("grow", "shrink"):
        return "size"  # growing then shrinking (or the reverse) could leave the frame
    return None


def frame_states(spec: ClipSpec) -> list[ObjectState]:
    """The object's state in each frame of the clip.

    Each event runs over its own segment of `frames_per_event` frames, starting
    from where the previous one ended. The start position is set so the whole
    path stays inside the frame.
    """
    dx = sum({"move left": -TRAVEL, "move right": TRAVEL}.get(e, 0.0) for e in spec.events)
    dy = sum({"move up": -TRAVEL, "move down": TRAVEL}.get(e, 0.0) for e in spec.events)
    r0 = RADIUS[spec.size]
    if "shrink" in spec.events:
        # "small"/"large" describe the object as it is seen mid-event, so a
        # shrinking object starts bigger and ends near its nominal size.
        r0 = r0 * math.sqrt(GROWTH)
    elif "grow" in spec.events:
        r0 = r0 / math.sqrt(GROWTH)
    state = ObjectState(
        x=0.5 - dx / 2,
        y=0.5 - dy / 2,
        radius=r0,
        angle=0.0,
        colour=spec.colour,
        visible="appear" not in spec.events,
        shape=spec.shape,
        texture=spec.texture,
    )
    states: list[ObjectState] = []
    f = spec.frames_per_event
    for event in spec.events:
        start = ObjectState(**{**asdict(state), "extra": {}})
        for i in range(f):
            p = i / (f - 1) if f > 1 else 1.0
            s = ObjectState(**{**asdict(start), "extra": {}})
            if event == "move left":
                s.x = start.x - TRAVEL * p
            elif event == "move right":
                s.x = start.x + TRAVEL * p
            elif event == "move up":
                s.y = start.y - TRAVEL * p
            elif event == "move down":
                s.y = start.y + TRAVEL * p
            elif event == "grow":
                s.radius = start.radius * GROWTH**p
            elif event == "shrink":
                s.radius = start.radius / GROWTH**p
            elif event == "rotate":
                s.angle = start.angle + 90.0 * p
            elif event == "change colour":
                # Switch late so the segment's middle frame still shows the
                # clip's nominal colour (the coarse caption reads that frame).
                s.colour = spec.new_colour if i >= (3 * f) // 4 else start.colour
            elif event == "appear":
                s.visible = i >= f // 3
            states.append(s)
        state = states[-1]
    return states
