"""Real captioning models through `transformers`: image captioners and a summarizing language model.

- `HFImageCaptioner`: any image-to-text model `AutoModelForImageTextToText`
  loads (BLIP-2, BLIP, GIT, VisionEncoderDecoder, ...). InternVid's coarse
  captioner is BLIP-2; its frame captioner, Tag2Text, has no transformers
  port, so the frame captioner is any such model too (a light BLIP by default).
- `HFSummarizer`: an instruction-tuned seq2seq (T5/Flan-T5) or causal LM
  (Vicuna-style) turning a clip's frame captions into one sentence from a
  prompt template; the same model can also write a fused caption from the
  coarse caption plus the frame captions.

Generation is greedy or beam search, never sampling. A local folder loads
with `local_files_only`; hub ids honour HF_HUB_OFFLINE. Models load on first
use, so a job whose captions all come from the cache loads nothing.
"""

from __future__ import annotations

import hashlib
import logging
import re
from pathlib import Path

import numpy as np

from viclip.captions.base import Clip
from viclip.captions.settings import ModelSettings

log = logging.getLogger("viclip")

_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")


def load_args(s: ModelSettings, where: str) -> dict:
    """from_pretrained arguments: a local folder offline, or a hub id (and revision)."""
    path = Path(s.model).expanduser()
    if path.is_dir():
        return {"pretrained_model_name_or_path": str(path.resolve()), "local_files_only": True}
    if s.model.startswith(("/", ".", "~")) or not _HUB_ID.match(s.model):
        raise FileNotFoundError(f"{where}.model: {s.model!r} is neither a folder nor a hub id")
    return {"pretrained_model_name_or_path": s.model, "revision": s.revision}


def model_identity(s: ModelSettings) -> dict:
    """What names the weights: a hub id and revision, or a local folder's file names, sizes and times."""
    path = Path(s.model).expanduser()
    if not path.is_dir():
        return {"model": s.model, "revision": s.revision}
    h = hashlib.sha256()
    for f in sorted(p for p in path.rglob("*") if p.is_file()):
        st = f.stat()
        h.update(f"{f.relative_to(path)}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return {"model": str(path.resolve()), "files": h.hexdigest()[:16]}


def torch_dtype(name: str, device):
    import torch

    if name == "auto":
        return torch.float16 if device.type == "cuda" else torch.float32
    return getattr(torch, name)


def clean(text: str) -> str:
    """One line, single spaces: captions are stored and trained on as one sentence."""
    return " ".join(text.split())


def _new_tokens(out, input_ids):
    """Generated tokens only: decoder-only models echo the prompt before what they write.

    BLIP echoes it without the [SEP] its tokenizer appended, hence n - 1 too.
    """
    if input_ids is None:
        return out
    input_ids = input_ids.to(out.device)
    for n in (input_ids.shape[1], input_ids.shape[1] - 1):
        if 0 < n <= out.shape[1] and bool((out[:, :n] == input_ids[:, :n]).all()):
            return out[:, n:]
    return out


class _ImageTextProcessor:
    """An image processor and a tokenizer used as one processor (VisionEncoderDecoder folders ship no processor)."""

    def __init__(self, image_processor, tokenizer):
        self.image_processor, self.tokenizer = image_processor, tokenizer

    def __call__(self, images, text=None, return_tensors="pt"):
        out = dict(self.image_processor(images, return_tensors=return_tensors))
        if text is not None:
            out.update(self.tokenizer(text, return_tensors=return_tensors))
        return out

    def batch_decode(self, tokens, **kwargs):
        return self.tokenizer.batch_decode(tokens, **kwargs)


def load_processor(args: dict):
    import transformers

    proc = transformers.AutoProcessor.from_pretrained(**args)
    if hasattr(proc, "image_processor"):
        return proc
    return _ImageTextProcessor(
        transformers.AutoImageProcessor.from_pretrained(**args), transformers.AutoTokenizer.from_pretrained(**args)
    )


class HFImageCaptioner:
    """An image-to-text model captioning frames in batches of `batch_size` images."""

    needs_pixels = True

    def __init__(self, settings: ModelSettings, batch_size: int, device, where: str = "captions.hf"):
        self.s, self.batch_size, self.device, self.where = settings, batch_size, device, where
        self.dtype = torch_dtype(settings.dtype, device)
        self._model = self._processor = None

    def fingerprint(self) -> dict:
        # device and batch size are left out: they change how fast, not what
        return {
            "backend": "hf",
            **model_identity(self.s),
            "prompt": self.s.prompt,
            "dtype": str(self.dtype),
            "generation": self.s.generation(),
        }

    def load(self) -> None:
        if self._model is not None:
            return
        import transformers

        args = load_args(self.s, self.where)
        auto = getattr(transformers, "AutoModelForImageTextToText", None) or transformers.AutoModelForVision2Seq
        try:
            self._processor = load_processor(args)
            self._model = auto.from_pretrained(**args, dtype=self.dtype).to(self.device).eval()
        except OSError as exc:  # not downloaded (offline), no such hub id, or missing files in a folder
            raise OSError(f"{self.where}.model: cannot load {self.s.model!r}: {exc}") from exc
        log.info("%s: %s (%s) on %s, %s", self.where, type(self._model).__name__, self.s.model, self.device, self.dtype)

    def caption_images(self, images: list[np.ndarray]) -> list[str]:
        """One caption per uint8 [H, W, 3] image."""
        import torch

        self.load()
        out: list[str] = []
        for i in range(0, len(images), self.batch_size):
            batch = list(images[i : i + self.batch_size])
            kwargs = {"images": batch, "return_tensors": "pt"}
            if self.s.prompt:
                kwargs["text"] = [self.s.prompt] * len(batch)
            inputs = self._processor(**kwargs)
            inputs = {
                k: (v.to(self.device, self.dtype) if k == "pixel_values" else v.to(self.device))
                for k, v in inputs.items()
                if hasattr(v, "to")
            }
            with torch.inference_mode():
                tokens = self._model.generate(**inputs, **self.s.generation())
            tokens = _new_tokens(tokens, inputs.get("input_ids"))
            out += [
                self._strip_prompt(clean(t)) for t in self._processor.batch_decode(tokens, skip_special_tokens=True)
            ]
        return out

    def _strip_prompt(self, text: str) -> str:
        # a model that starts its decoder with its own start token echoes the prompt after it
        prompt = clean(self.s.prompt)
        return text[len(prompt) :].strip() if prompt and text.startswith(prompt) else text

    def caption_many(
        self, clips: list[Clip], frame_indices: list[np.ndarray], frames: list[np.ndarray] | None
    ) -> list[list[str]]:
        if frames is None:
            raise ValueError(f"{self.where}: an image captioner needs decoded frames")
        flat = [f for clip_frames in frames for f in clip_frames]
        texts = iter(self.caption_images(flat))
        return [[next(texts) for _ in range(len(f))] for f in frames]


def _fill(template: str, **parts: str) -> str:
    # str.replace, not str.format: captions may contain braces
    for name, value in parts.items():
        template = template.replace("{" + name + "}", value)
    return template


def join_frames(captions: list[str]) -> str:
    return "; ".join(c.rstrip(". ") for c in captions)


class HFSummarizer:
    """A seq2seq or causal language model writing one caption per prompt, in batches."""

    def __init__(self, settings: ModelSettings, batch_size: int, device, where: str = "captions.hf.summarizer"):
        self.s, self.batch_size, self.device, self.where = settings, batch_size, device, where
        self.dtype = torch_dtype(settings.dtype, device)
        self._model = self._tokenizer = None
        self._seq2seq = None

    def fingerprint(self, task: str = "summary") -> dict:
        prompt = self.s.prompt if task == "summary" else self.s.fusion_prompt
        return {
            "backend": "hf",
            **model_identity(self.s),
            "prompt": prompt,
            "chat": str(self.s.chat),
            "dtype": str(self.dtype),
            "generation": self.s.generation(),
        }

    def load(self) -> None:
        if self._model is not None:
            return
        import transformers

        args = load_args(self.s, self.where)
        try:
            config = transformers.AutoConfig.from_pretrained(**args)
            self._seq2seq = bool(getattr(config, "is_encoder_decoder", False))
            auto = transformers.AutoModelForSeq2SeqLM if self._seq2seq else transformers.AutoModelForCausalLM
            self._tokenizer = transformers.AutoTokenizer.from_pretrained(**args)
            self._model = auto.from_pretrained(**args, dtype=self.dtype).to(self.device).eval()
        except OSError as exc:
            raise OSError(f"{self.where}.model: cannot load {self.s.model!r}: {exc}") from exc
        if not self._seq2seq:
            self._tokenizer.padding_side = "left"  # a causal LM continues the last token of each row
        if self._tokenizer.pad_token is None:
            self._tokenizer.pad_token = self._tokenizer.eos_token
        log.info("%s: %s (%s) on %s, %s", self.where, type(self._model).__name__, self.s.model, self.device, self.dtype)

    def _use_chat(self) -> bool:
        chat = str(self.s.chat).lower()
        if chat == "auto":
            return bool(getattr(self._tokenizer, "chat_template", None))
        return chat == "true"

    def render(self, prompt: str) -> str:
        """The text the model reads: the prompt, in the chat template when one is used."""
        self.load()
        if self._use_chat():
            return self._tokenizer.apply_chat_template(
                [{"role": "user", "content": prompt}], tokenize=False, add_generation_prompt=True
            )
        return prompt

    def generate(self, prompts: list[str]) -> list[str]:
        import torch

        self.load()
        out: list[str] = []
        for i in range(0, len(prompts), self.batch_size):
            texts = [self.render(p) for p in prompts[i : i + self.batch_size]]
            # a chat template already holds the special tokens the model expects
            inputs = self._tokenizer(
                texts, return_tensors="pt", padding=True, add_special_tokens=not self._use_chat()
            ).to(self.device)
            with torch.inference_mode():
                tokens = self._model.generate(
                    **inputs, **self.s.generation(), pad_token_id=self._tokenizer.pad_token_id
                )
            if not self._seq2seq:
                tokens = tokens[:, inputs["input_ids"].shape[1] :]
            out += [clean(t) for t in self._tokenizer.batch_decode(tokens, skip_special_tokens=True)]
        return out

    def summary_prompt(self, frame_captions: list[str]) -> str:
        return _fill(self.s.prompt, frames=join_frames(frame_captions))

    def fusion_prompt(self, coarse: str, frame_captions: list[str]) -> str:
        return _fill(self.s.fusion_prompt, coarse=coarse.rstrip(". "), frames=join_frames(frame_captions))

    def summarize_many(self, clip_ids: list[str], frame_captions: list[list[str]]) -> list[str]:
        return self.generate([self.summary_prompt(list(f)) for f in frame_captions])

    def fuse_many(self, clip_ids: list[str], coarse: list[str], frame_captions: list[list[str]]) -> list[str]:
        return self.generate([self.fusion_prompt(c, list(f)) for c, f in zip(coarse, frame_captions)])
