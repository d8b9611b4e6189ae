"""The model's settings and the published presets, without torch.

The workflow reads these when it loads (FLOP counts for the same-compute arm,
the cost table), so they must not pull in torch: DAG inspection stays fast.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields


def kept_count(n_tokens: int, ratio: float) -> int:
    """Tokens kept: the official code drops int(ratio * L)."""
    return n_tokens - int(ratio * n_tokens)


@dataclass(frozen=True)
class ViCLIPConfig:
    image_size: int = 224
    patch_size: int = 16
    num_frames: int = 8
    vision_width: int = 768
    vision_layers: int = 12
    vision_heads: int = 12
    embed_dim: int = 512
    drop_path: float = 0.1
    vocab_size: int = 49408
    context_length: int = 32
    text_width: int = 512
    text_layers: int = 12
    text_heads: int = 8
    tokenizer: str = "clip_bpe"
    temp_init: float = 0.01
    temp_min: float = 0.01
    freeze_text: bool = True
    grad_checkpointing: bool = False
    init: str = "random"  # "clip": copy the towers of an open_clip CLIP model first
    clip_name: str = ""  # open_clip model name ("ViT-B-16-quickgelu") or a model config JSON in its format
    clip_pretrained: str = ""  # a local weights file, or an open_clip tag where the hub is reachable
    kernels: str = "auto"  # auto: Triton on CUDA, torch elsewhere (viclip.kernels.dispatch)

    @staticmethod
    def from_dict(d: dict) -> ViCLIPConfig:
        known = {f.name for f in fields(ViCLIPConfig)}
        unknown = set(d) - known - {"name"}
        if unknown:
            raise ValueError(f"model: unknown keys {sorted(unknown)}")
        base = PRESETS.get(d.get("name", ""), {})
        return ViCLIPConfig(**{**base, **{k: v for k, v in d.items() if k in known}})

    def to_dict(self) -> dict:
        return asdict(self)


PRESETS = {
    # OpenAI CLIP weights use QuickGELU, as ViCLIP does: hence the -quickgelu names.
    "viclip-b16": dict(
        patch_size=16,
        vision_width=768,
        vision_layers=12,
        vision_heads=12,
        embed_dim=512,
        text_width=512,
        text_layers=12,
        text_heads=8,
        init="clip",
        clip_name="ViT-B-16-quickgelu",
    ),
    "viclip-l14": dict(
        patch_size=14,
        vision_width=1024,
        vision_layers=24,
        vision_heads=16,
        embed_dim=768,
        text_width=768,
        text_layers=12,
        text_heads=12,
        init="clip",
        clip_name="ViT-L-14-quickgelu",
        grad_checkpointing=True,
    ),
}
