"""Rasterise clips of the synthetic world into RGB frames (numpy, no GPU)."""

from __future__ import annotations

import math

import numpy as np

from viclip.data.world import COLOURS, ClipSpec, ObjectState, frame_states


def background(kind: str, size: int) -> np.ndarray:
    """[size, size, 3] float32 background in 0..255."""
    yy, xx = np.mgrid[0:size, 0:size]
    if kind == "black":
        img = np.full((size, size), 20.0)
    elif kind == "grey":
        img = np.full((size, size), 128.0)
    elif kind == "checkered":
        tile = max(size // 8, 1)
        img = np.where(((yy // tile) + (xx // tile)) % 2 == 0, 70.0, 110.0)
    elif kind == "gradient":
        img = 30.0 + 150.0 * xx / max(size - 1, 1)
    else:
        raise ValueError(f"unknown background {kind!r}")
    return np.repeat(img[..., None], 3, axis=2).astype(np.float32)


def shape_mask(state: ObjectState, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Boolean mask of the object and object-local u coordinates (for stripes)."""
    # Pixel centres in frame-fraction units, relative to the object centre.
    coords = (np.arange(size, dtype=np.float32) + 0.5) / size
    yy, xx = np.meshgrid(coords - state.y, coords - state.x, indexing="ij")
    a = math.radians(state.angle)
    u = xx * math.cos(a) + yy * math.sin(a)
    v = -xx * math.sin(a) + yy * math.cos(a)
    r = state.radius
    if state.shape == "circle":
        m = u**2 + v**2 <= r**2
    elif state.shape == "square":
        m = np.maximum(np.abs(u), np.abs(v)) <= 0.8 * r
    elif state.shape == "diamond":
        m = np.abs(u) + np.abs(v) <= r
    elif state.shape == "triangle":
        # Apex up (v grows downwards in image coordinates).
        m = (v <= 0.6 * r) & (v >= 2.0 * np.abs(u) - r)
    elif state.shape == "cross":
        t = r / 3
        m = ((np.abs(u) <= t) & (np.abs(v) <= r)) | ((np.abs(v) <= t) & (np.abs(u) <= r))
    else:
        raise ValueError(f"unknown shape {state.shape!r}")
    return m, u / r


def render_frame(state: ObjectState, bg: np.ndarray) -> np.ndarray:
    img = bg.copy()
    if not state.visible:
        return img
    size = bg.shape[0]
    mask, u = shape_mask(state, size)
    colour = np.asarray(COLOURS[state.colour], dtype=np.float32)
    if state.texture == "striped":
        # Stripes fixed to the object so that they turn when it rotates.
        dark = (np.floor((u + 1.0) * 3.0) % 2) == 1
        fill = np.where(dark[..., None], colour * 0.35, colour)
    else:
        fill = np.broadcast_to(colour, img.shape)
    img[mask] = fill[mask]
    return img


def render_clip(spec: ClipSpec, size: int, noise_std: float = 4.0) -> np.ndarray:
    """[T, size, size, 3] uint8 frames of one clip; pixel noise seeded by the clip."""
    rng = np.random.default_rng(spec.seed)
    bg = background(spec.background, size)
    frames = np.stack([render_frame(s, bg) for s in frame_states(spec)])
    frames += rng.normal(0.0, noise_std, size=frames.shape).astype(np.float32)
    return np.clip(np.rint(frames), 0, 255).astype(np.uint8)
