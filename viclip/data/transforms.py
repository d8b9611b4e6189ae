"""ViCLIP's frame transforms, applied alike to all frames of a clip (viclip_spec.md §1.7).

Training: RandomResizedCrop (scale 0.5-1, aspect 3/4-4/3, bicubic) to S x S,
optional horizontal flip. Test: the full frame resized to S x S (aspect not
kept, no crop), or, for multi-view testing, the short side scaled to S and
one or three S x S crops along the long side. Then /255 and ImageNet mean/std.

Frames are uint8 tensors [T, 3, H, W]. Resizing works on uint8 the way
torchvision before 0.17 (the official code's era) resized uint8 tensors:
bicubic without antialias, clamped and rounded back to uint8, so a cache
resized once at decode time gives the same model input as resizing on the
fly. Crops are taken before resizing, so only the crop is interpolated.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 1, 3, 1, 1)
STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 1, 3, 1, 1)

SCALE = (0.5, 1.0)
RATIO = (3 / 4, 4 / 3)
EVAL_RESIZE = ("squash", "center_crop")

Box = tuple[int, int, int, int]  # x0, y0, x1, y1 (exclusive)


def resize(x: torch.Tensor, size: int | tuple[int, int]) -> torch.Tensor:
    """uint8 [..., 3, h, w] -> uint8 [..., 3, *size] (an int is a square); a no-op when already that size."""
    size = (size, size) if isinstance(size, int) else tuple(size)
    if tuple(x.shape[-2:]) == size:
        return x
    lead = x.shape[:-3]
    # Decoded frames arrive channels-last ([H, W, 3] arrays); a contiguous copy halves the
    # interpolation time (measured) and gives the same values.
    y = F.interpolate(x.reshape(-1, *x.shape[-3:]).contiguous().float(), size=size, mode="bicubic", align_corners=False)
    return y.clamp_(0, 255).round_().to(torch.uint8).reshape(*lead, x.shape[-3], *size)


def normalize(x: torch.Tensor) -> torch.Tensor:
    """uint8 [B, T, 3, S, S] -> float, /255 then ImageNet mean/std."""
    return x.float().div_(255.0).sub_(MEAN).div_(STD)  # in place: the same values as (x/255 - MEAN)/STD, one buffer


def rrc_box(h: int, w: int, rng: np.random.Generator, scale=SCALE, ratio=RATIO) -> Box:
    """A RandomResizedCrop box, drawn as torchvision draws it (10 tries, then a centre crop)."""
    for _ in range(10):
        area = h * w * rng.uniform(scale[0], scale[1])
        r = np.exp(rng.uniform(np.log(ratio[0]), np.log(ratio[1])))
        cw, ch = int(round(np.sqrt(area * r))), int(round(np.sqrt(area / r)))
        if 0 < cw <= w and 0 < ch <= h:
            y0, x0 = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
            return x0, y0, x0 + cw, y0 + ch
    in_ratio = w / h
    if in_ratio < min(ratio):
        cw, ch = w, int(round(w / min(ratio)))
    elif in_ratio > max(ratio):
        cw, ch = int(round(h * max(ratio))), h
    else:
        cw, ch = w, h
    x0, y0 = (w - cw) // 2, (h - ch) // 2
    return x0, y0, x0 + cw, y0 + ch


def short_side_crops(x: torch.Tensor, size: int, crops: int) -> list[torch.Tensor]:
    """Short side scaled to `size`, then `crops` S x S squares evenly spaced along the long side.

    One crop is the centre; three are start, centre, end (UMT/VideoMAE
    `test_num_crop`). The geometry matches viclip.eval.multiview's crops of
    cached frames, so a video gives the same views from a file or a cache.
    """
    if crops < 1:
        raise ValueError(f"spatial crops must be at least 1, got {crops}")
    h, w = x.shape[-2:]
    scale = size / min(h, w)
    nh, nw = max(size, round(h * scale)), max(size, round(w * scale))
    x = resize(x, (nh, nw))
    steps = [0.5] if crops == 1 else [i / (crops - 1) for i in range(crops)]
    out = []
    for f in steps:
        y0, x0 = round(f * (nh - size)), round(f * (nw - size))
        out.append(x[..., y0 : y0 + size, x0 : x0 + size])
    return out


def crop(x: torch.Tensor, box: Box) -> torch.Tensor:
    x0, y0, x1, y1 = box
    return x[..., y0:y1, x0:x1]


def train_clip(
    x: torch.Tensor,
    size: int,
    rng: np.random.Generator,
    augment: bool = True,
    flip: bool = False,
    scale=SCALE,
    ratio=RATIO,
) -> torch.Tensor:
    """uint8 [T, 3, H, W] -> [T, 3, S, S]: one crop box (and flip) for every frame of the clip."""
    if augment:
        x = crop(x, rrc_box(x.shape[-2], x.shape[-1], rng, scale, ratio))
    x = resize(x, size)
    if flip and rng.random() < 0.5:
        x = x.flip(-1)
    return x


def eval_clip(x: torch.Tensor, size: int, mode: str = "squash") -> torch.Tensor:
    """uint8 [T, 3, H, W] -> [T, 3, S, S]: ViCLIP's full-frame resize, or short side + centre crop."""
    if mode == "squash":
        return resize(x, size)
    if mode == "center_crop":
        return short_side_crops(x, size, 1)[0]
    raise ValueError(f"unknown eval resize {mode!r}; expected one of {EVAL_RESIZE}")


def view_crops(x: torch.Tensor, size: int, crops: int, mode: str = "squash") -> torch.Tensor:
    """uint8 [T, 3, H, W] -> [C, T, 3, S, S]; one crop is the eval transform itself."""
    if crops == 1:
        return eval_clip(x, size, mode)[None]
    return torch.stack(short_side_crops(x, size, crops))
