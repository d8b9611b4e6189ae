"""Settings of the real-model (`hf`) captioning backend, from the `captions` config block.

A model block (`captions.hf.coarse|frames|summarizer`) says *what* is
computed: the model, its prompt and its generation settings; these are rule
params and cache keys. `captions.execution` says *how* jobs run (device,
batch sizes, chunking, cache folder): changing it reruns nothing and reuses
every cached caption.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_SUMMARY_PROMPT = (
    "Captions of frames sampled in order from one video: {frames}. "
    "Write one sentence describing what happens in the video."
)
DEFAULT_FUSION_PROMPT = (
    "A video shows {coarse}. Captions of its frames in order: {frames}. "
    "Write one sentence describing the video: what it shows and what happens."
)
DTYPES = ("auto", "float32", "float16", "bfloat16")


@dataclass(frozen=True)
class ModelSettings:
    """One transformers model: a hub id or a local folder, its prompt, and greedy or beam generation.

    Sampling is not offered: captions must come out the same on every run.
    """

    model: str
    revision: str | None = None
    prompt: str = ""
    dtype: str = "auto"  # auto: float16 on CUDA, float32 on CPU
    max_new_tokens: int = 30
    min_new_tokens: int = 0
    num_beams: int = 1
    repetition_penalty: float = 1.0
    no_repeat_ngram_size: int = 0
    # summarizer only
    fusion_prompt: str = DEFAULT_FUSION_PROMPT
    chat: str = "auto"  # auto: wrap the prompt in the tokenizer's chat template when it has one

    @classmethod
    def from_config(cls, block: dict, where: str) -> ModelSettings:
        if not isinstance(block, dict) or "model" not in block:
            raise ValueError(f"{where}: needs at least a `model` (hub id or local folder)")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(block) - known)
        if unknown:
            raise ValueError(f"{where}: unknown key(s) {', '.join(unknown)} (known: {', '.join(sorted(known))})")
        s = cls(**block)
        if s.dtype not in DTYPES:
            raise ValueError(f"{where}.dtype: {s.dtype!r} is not one of {', '.join(DTYPES)}")
        if s.chat not in ("auto", "true", "false", True, False):
            raise ValueError(f"{where}.chat: {s.chat!r} is not auto, true or false")
        if s.max_new_tokens < 1 or s.num_beams < 1:
            raise ValueError(f"{where}: max_new_tokens and num_beams must be at least 1")
        return s

    def generation(self) -> dict:
        return {
            "max_new_tokens": self.max_new_tokens,
            "min_new_tokens": self.min_new_tokens,
            "num_beams": self.num_beams,
            "repetition_penalty": self.repetition_penalty,
            "no_repeat_ngram_size": self.no_repeat_ngram_size,
            "do_sample": False,
        }

    def is_local(self) -> bool:
        return Path(self.model).expanduser().is_dir()


def summarizer_settings(block: dict, where: str) -> ModelSettings:
    s = ModelSettings.from_config({"prompt": DEFAULT_SUMMARY_PROMPT, **block}, where)
    if "{frames}" not in s.prompt:
        raise ValueError(f"{where}.prompt: needs a {{frames}} placeholder for the frame captions")
    for name in ("{coarse}", "{frames}"):
        if name not in s.fusion_prompt:
            raise ValueError(f"{where}.fusion_prompt: needs a {name} placeholder")
    return s


@dataclass(frozen=True)
class ExecutionSettings:
    """How caption jobs run (`captions.execution`); never what they compute."""

    device: str = "auto"  # auto: CUDA when present (VICLIP_DEVICE overrides), else CPU
    batch_size: dict = field(default_factory=lambda: {"coarse": 16, "frames": 64, "summarizer": 16})
    chunk_clips: int = 32  # clips per resumable step: a killed job redoes at most one chunk
    decode_workers: int = 2  # threads decoding the next chunk while the models caption this one
    share_frames: bool = False  # one job per shard decodes each clip once for both image captioners
    cache_dir: str = "resources/caption_cache"
    gpus: int = 0
    cpus: int = 1
    mem_mb: int = 8000
    runtime_min: int = 240

    @classmethod
    def from_config(cls, block: dict | None) -> ExecutionSettings:
        block = dict(block or {})
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(block) - known)
        if unknown:
            raise ValueError(f"captions.execution: unknown key(s) {', '.join(unknown)}")
        batch = {**cls().batch_size, **block.pop("batch_size", {})}
        s = cls(batch_size=batch, **block)
        if s.chunk_clips < 1 or min(batch.values()) < 1:
            raise ValueError("captions.execution: chunk_clips and every batch_size must be at least 1")
        return s

    def torch_device(self):
        import torch

        from viclip.runtime import device

        return device() if self.device == "auto" else torch.device(self.device)
