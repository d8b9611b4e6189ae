"""Tokenizers: CLIP BPE for the published models, a hashed word vocabulary for tiny ones.

Both clean text the way ViCLIP does (`pre_text`), pad with 0 to the context
length, cut long texts keeping EOT last, and give EOT the largest id so the
text tower can pool at `argmax(ids)` as CLIP does.
"""

from __future__ import annotations

import importlib.util
import re
import sys
import zlib
from pathlib import Path

import torch

_STRIP = re.compile(r"[,.'!?\"()*#:;~]")
_SPACES = re.compile(r"\s{2,}")


def pre_text(text: str, max_words: int | None = None) -> str:
    """The official training pipeline's caption cleaning, step for step.

    Source: `pre_text` in OpenGVLab/unmasked_teacher multi_modality/dataset/utils.py
    (commit 1cd57ce), which ViCLIP's training code (InternVideo1/Pretrain/ViCLIP,
    dataset/utils.py) carries over (viclip_spec.md §1.3): lower-case, drop
    , . ' ! ? " ( ) * # : ; ~, turn '-' and '/' into spaces, `<person>` (the
    placeholder of captions that anonymise people) into `person`, collapse runs
    of two or more whitespace characters, strip. A lone tab or newline stays, as
    there: both tokenizers split on any whitespace, so ids do not depend on it.
    `max_words` cuts to that many words, as the official `max_l` does.
    """
    text = _STRIP.sub("", text.lower())
    text = text.replace("-", " ").replace("/", " ").replace("<person>", "person")
    text = _SPACES.sub(" ", text).rstrip("\n").strip(" ")
    if max_words:
        words = text.split(" ")
        if len(words) > max_words:
            text = " ".join(words[:max_words])
    return text


class WordHashTokenizer:
    """Each cleaned word maps to crc32(word) into [1, vocab_size - 2).

    No vocabulary file and no hub: any text tokenizes, so zero-shot prompts
    with words the captions never used still get (untrained) ids. With a
    vocabulary of a few thousand and a few hundred distinct words, collisions
    are rare; `collisions()` reports them.
    """

    def __init__(self, vocab_size: int, context_length: int):
        if vocab_size < 16:
            raise ValueError("vocab_size must be at least 16")
        self.vocab_size, self.context_length = vocab_size, context_length
        self.sot, self.eot = vocab_size - 2, vocab_size - 1

    def word_id(self, word: str) -> int:
        return 1 + zlib.crc32(word.encode()) % (self.vocab_size - 3)

    def __call__(self, texts: list[str]) -> torch.Tensor:
        out = torch.zeros(len(texts), self.context_length, dtype=torch.long)
        for i, text in enumerate(texts):
            ids = [self.sot] + [self.word_id(w) for w in pre_text(text).split()] + [self.eot]
            if len(ids) > self.context_length:
                ids = ids[: self.context_length]
                ids[-1] = self.eot
            out[i, : len(ids)] = torch.tensor(ids)
        return out

    def collisions(self, words: set[str]) -> dict[int, list[str]]:
        by_id: dict[int, list[str]] = {}
        for w in sorted(words):
            by_id.setdefault(self.word_id(w), []).append(w)
        return {k: v for k, v in by_id.items() if len(v) > 1}


def _open_clip_tokenizer():
    """open_clip's tokenizer module, without importing the open_clip package.

    The package's __init__ builds its whole model zoo (CoCa, timm, transformers):
    about 3 s per job start, paid by every training and evaluation job at paper
    scale for a module that needs only ftfy, regex and the BPE vocabulary beside
    it. Where open_clip is already imported, its own module is used.
    """
    if "open_clip.tokenizer" in sys.modules:
        return sys.modules["open_clip.tokenizer"]
    name = "viclip._open_clip_tokenizer"
    if name not in sys.modules:
        package = importlib.util.find_spec("open_clip")  # finds the folder; runs nothing
        if package is None or not package.submodule_search_locations:
            raise ModuleNotFoundError("model.tokenizer clip_bpe needs open_clip_torch (pip install open_clip_torch)")
        path = Path(package.submodule_search_locations[0]) / "tokenizer.py"
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


class ClipBpeTokenizer:
    """open_clip's CLIP BPE (SOT 49406, EOT 49407), after ViCLIP's cleaning."""

    def __init__(self, context_length: int):
        self.context_length = context_length
        self._tok = _open_clip_tokenizer().SimpleTokenizer(context_length=context_length)

    def __call__(self, texts: list[str]) -> torch.Tensor:
        return self._tok([pre_text(t) for t in texts], context_length=self.context_length).long()


def build_tokenizer(kind: str, vocab_size: int, context_length: int):
    if kind == "word_hash":
        return WordHashTokenizer(vocab_size, context_length)
    if kind == "clip_bpe":
        return ClipBpeTokenizer(context_length)
    raise ValueError(f"model.tokenizer: unknown tokenizer {kind!r} (known: word_hash, clip_bpe)")


def tokenizer_for(cfg) -> WordHashTokenizer | ClipBpeTokenizer:
    """The tokenizer a model config names."""
    return build_tokenizer(cfg.tokenizer, cfg.vocab_size, cfg.context_length)
