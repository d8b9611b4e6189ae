"""Official ViCLIP checkpoints: read, load into our model, export (viclip_spec.md §1.6, §7.2).

Official file layout: ``torch.load(path)["model"]`` is a flat state dict of
the module tree ``ViCLIP{temp, vision_encoder, text_encoder}``; our parameter
names are the official ones, so loading is a key-for-key copy. Our own
training checkpoints (model + config + optimizer ...) are handled by
``viclip.train.checkpoint``; this module is only for the official layout.

Reading (:func:`read_state_dict`)
    ``.safetensors`` files go through ``safetensors.torch.load_file``; every
    other suffix (``.pth``, ``.pt``, ``.bin`` ...) through
    ``torch.load(..., map_location="cpu", weights_only=True)``. Arbitrary
    pickled Python objects are never unpickled: a file that needs
    ``weights_only=False`` is refused.
    The payload may be ``{"model": sd}``, ``{"state_dict": sd}`` or a bare sd.

Key normalisation (applied by :func:`read_state_dict` and :func:`load_official`)
    1. A leading ``module.`` (DDP / DataParallel) is stripped from every key
       that has it.
    2. Wrapper prefix (HF ``-hf`` repos wrap the module tree in a
       ``PreTrainedModel``; whether its keys carry a prefix is not confirmed,
       §1.6): if *every* key starts with the same first dotted segment P,
       P is not one of our top-level names (``temp``, ``vision_encoder``,
       ``text_encoder``), and after removing ``P.`` *every* key's first
       segment is one of those names, then ``P.`` is removed from all keys.
       Otherwise keys are left as they are (and a mismatch is reported at
       load time). Steps 1-2 repeat until nothing changes (so
       ``module.model.x`` reduces to ``x``).

Loading (:func:`load_official`), strict apart from two adaptations
    * ``vision_encoder.temporal_positional_embedding`` ``[1, T_ckpt, W]`` with
      ``T_ckpt != T_model``. The official rule, read from the official source
      (OpenGVLab/InternVideo: ``InternVideo1/Pretrain/ViCLIP/models/utils.py``
      ``load_temp_embed_with_mismatch(add_zero=False)`` and
      ``interpolate_temporal_pos_embed``, called from
      ``interpolate_pos_embed_vit`` in ``Data/InternVid/viclip/viclip_vision.py``):
        - ``T_ckpt < T_model``: ``F.interpolate(table[1, W, T], T_model,
          mode="linear")`` with the default ``align_corners=False``
          (half-pixel centres: output frame i samples source position
          ``(i + 0.5) * T_ckpt / T_model - 0.5``, clamped to
          ``[0, T_ckpt - 1]``; so the first and last frames are copied
          exactly and the interior is piecewise linear);
        - ``T_ckpt > T_model``: the official code does *not* interpolate; it
          keeps the first ``T_model`` frames.
      ``temporal="official"`` (default) reproduces exactly that;
      ``temporal="interpolate"`` uses the same linear, ``align_corners=False``
      resampling in both directions.
      The spec (§1.2) only says "linearly interpolated"; the details above
      come from reading the official code, not from the spec.
      :func:`with_frames` applies the same rule to one of our models, to
      fine-tune it at the frame count it is evaluated at (12 for the paper's
      fine-tuned retrieval, §5.3).
    * ``text_encoder.positional_embedding`` with more rows than the model's
      context (77 from CLIP): the first ``context_length`` rows are kept, as
      the official loader does. Fewer rows is an error (the official loader
      would stretch them linearly; text positions are not meant to be
      stretched, so we refuse).
    Anything else (unknown keys, missing keys, other shape mismatches) is
    collected and raised as one ``ValueError`` listing all problems, sorted,
    with shapes.

Released weights (:func:`load_released`, for arms with ``pretrain: false``)
    The same reading and loading, into a model of the workflow's config, with
    errors that name the config key, and a refusal for non-finite values. The
    official training code saves its config object in the same pickle as the
    weights, so a released ``.pth`` may be refused; the error then gives the
    one-off command that extracts the tensors into a ``.safetensors`` file
    (:func:`extraction_command`), unless the pickle calls something that runs
    code. ``weights_only=False`` appears only in that command, for the user to
    run by hand on a file they trust; no code path here unpickles objects.
"""

from __future__ import annotations

import importlib.util
import re
import shlex
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from viclip.io import atomic_path, atomic_torch
from viclip.model.viclip import ViCLIP, ViCLIPConfig

TOP_LEVEL = ("temp", "vision_encoder", "text_encoder")
TEMPORAL_KEY = "vision_encoder.temporal_positional_embedding"
TEXT_POS_KEY = "text_encoder.positional_embedding"
DDP_PREFIX = "module."
TEMPORAL_MODES = ("official", "interpolate")


# ------------------------------------------------------------------ reading


def read_state_dict(path: str | Path, key: str | None = None) -> dict[str, torch.Tensor]:
    """Read an official-layout checkpoint (``.pth``/``.pt`` or ``.safetensors``) into a flat CPU state dict.

    Keys are normalised (``module.`` and a whole-file wrapper prefix removed;
    see the module docstring). Errors name the file, and `key`, the config
    key that named it, when given.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{_where(path, key)}: checkpoint file not found")
    if path.suffix == ".safetensors":
        obj = _read_safetensors(path)
    else:
        obj = load_torch(path, key)
    return normalise_keys(_unwrap(obj, str(path)), str(path))


class UnreadableCheckpoint(ValueError):
    """A file torch cannot read as a checkpoint: damaged, or refused because its pickle needs Python objects.

    `pickled` names the refused object (``module.name``), or is None for a damaged file.
    """

    def __init__(self, message: str, pickled: str | None = None):
        super().__init__(message)
        self.pickled = pickled


def load_torch(path: str | Path, key: str | None = None) -> Any:
    """``torch.load(path, map_location="cpu", weights_only=True)``, with errors fit for a user.

    Every file ViCLIP reads with ``torch.load`` goes through here. A file
    whose pickle needs arbitrary Python objects (``posix.system``, a class)
    is refused before any of it runs; a damaged one is reported as such.
    Both raise :class:`UnreadableCheckpoint` naming the file and `key` (the
    config key that named it, when there is one), and never pass on torch's
    own text, which suggests turning the safety check off. ``OSError``
    (a missing file, a failing disk) passes through unchanged.
    """
    path = Path(path)
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except OSError:
        raise
    except Exception as exc:  # pickle/zip/EOF errors all mean "not loadable as tensors"
        raise refused(path, key, exc) from None  # no chained traceback: it would print torch's advice


def refused(path: str | Path, key: str | None, exc: BaseException) -> UnreadableCheckpoint:
    """The error for a file that ``torch.load(weights_only=True)`` could not read (also for open_clip's loads)."""
    where = _where(Path(path), key)
    text = str(exc)
    found = re.search(r"unsupported GLOBAL ([\w.]+)|Unsupported global: GLOBAL ([\w.]+)", text)
    if found:
        name = found.group(1) or found.group(2)
        return UnreadableCheckpoint(
            f"{where}: refused: the file holds a pickled Python object ({name}) that loading would create or "
            f"call, so it could run code; ViCLIP reads only tensors and plain data from checkpoints. Use a file "
            f"that holds only tensors, e.g. torch.save({{'model': model.state_dict()}}, path) or a .safetensors "
            f"file, from a source you trust",
            pickled=name,
        )
    return UnreadableCheckpoint(
        f"{where}: not a readable PyTorch checkpoint ({_first_line(exc)}): truncated, damaged, "
        f"or not written by torch.save"
    )


def _where(path: Path, key: str | None) -> str:
    return f"{key}: {path}" if key else str(path)


def _first_line(exc: BaseException) -> str:
    """The informative line of an error, without torch's advice about ``weights_only``."""
    noise = ("weights_only", "Weights only", "WeightsUnpickler", "Check the documentation", "Please file an issue")
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    detail = next((ln for ln in lines if not any(n in ln for n in noise)), "")
    detail = detail.split(". ", 1)[0].rstrip(".")[:200]  # its first sentence
    return f"{type(exc).__name__}: {detail}" if detail else type(exc).__name__


def _read_safetensors(path: Path) -> Any:
    if importlib.util.find_spec("safetensors") is None:
        raise ImportError(
            f"{path}: reading .safetensors files needs the 'safetensors' package (pip install safetensors)"
        )
    from safetensors.torch import load_file

    try:
        return load_file(str(path), device="cpu")
    except Exception as exc:
        raise ValueError(f"{path}: not a readable safetensors file ({type(exc).__name__}: {exc})") from exc


def _unwrap(obj: Any, source: str) -> dict[str, torch.Tensor]:
    """{"model": sd} / {"state_dict": sd} / sd -> sd, checked to be a dict of tensors."""
    if not isinstance(obj, Mapping):
        raise ValueError(f"{source}: expected a dict of tensors, got {type(obj).__name__}")  # noqa: TRY004 (bad file content)
    for wrapper in ("model", "state_dict"):
        if isinstance(obj.get(wrapper), Mapping):
            obj = obj[wrapper]
            break
    bad = sorted(str(k) for k, v in obj.items() if not (isinstance(k, str) and isinstance(v, torch.Tensor)))
    if bad:
        more = f" (+{len(bad) - 5} more)" if len(bad) > 5 else ""
        raise ValueError(f"{source}: not a dict of tensors; offending entries: {bad[:5]}{more}")
    if not obj:
        raise ValueError(f"{source}: the state dict is empty")
    return dict(obj)


def normalise_keys(sd: Mapping[str, torch.Tensor], source: str = "state dict") -> dict[str, torch.Tensor]:
    """Strip ``module.`` from every key and a whole-file wrapper prefix (module docstring has the rule)."""
    sd = dict(sd)
    while True:
        before = list(sd)
        sd = _rekey(sd, {k: k.removeprefix(DDP_PREFIX) for k in sd}, source)
        prefix = _wrapper_prefix(list(sd))
        if prefix:
            sd = _rekey(sd, {k: k[len(prefix) + 1 :] for k in sd}, source)
        if list(sd) == before:
            return sd


def _wrapper_prefix(keys: list[str]) -> str | None:
    heads = {k.split(".", 1)[0] for k in keys}
    if len(heads) != 1 or not all("." in k for k in keys):
        return None
    (head,) = heads
    if head in TOP_LEVEL:
        return None
    if all(k[len(head) + 1 :].split(".", 1)[0] in TOP_LEVEL for k in keys):
        return head
    return None


def _rekey(sd: dict[str, torch.Tensor], mapping: dict[str, str], source: str) -> dict[str, torch.Tensor]:
    out: dict[str, torch.Tensor] = {}
    for old, value in sd.items():
        new = mapping[old]
        if new in out:
            raise ValueError(f"{source}: key '{new}' appears twice after prefix stripping")
        out[new] = value
    return out


# ------------------------------------------------------------------ loading


def resize_temporal(table: torch.Tensor, frames: int, mode: str = "official") -> torch.Tensor:
    """Resize a [1, T, W] temporal table to [1, frames, W] (rule in the module docstring)."""
    if mode not in TEMPORAL_MODES:
        raise ValueError(f"temporal mode must be one of {TEMPORAL_MODES}, got {mode!r}")
    t = table.shape[1]
    if t == frames:
        return table
    if t > frames and mode == "official":
        return table[:, :frames].clone()
    x = table.float().permute(0, 2, 1)  # [1, W, T]
    x = F.interpolate(x, size=frames, mode="linear", align_corners=False)
    return x.permute(0, 2, 1).to(table.dtype).contiguous()


def load_official(
    model: ViCLIP, state: Mapping[str, torch.Tensor] | str | Path, *, temporal: str = "official", source: str = ""
) -> dict:
    """Load an official-layout state dict (or a path to one) into `model`, strictly.

    Returns a report: ``{"source", "tensors", "adapted": {key: {"from", "to", "rule"}}}``.
    Raises one ValueError listing every unknown key, missing key and shape
    mismatch left after the two documented adaptations.
    """
    if temporal not in TEMPORAL_MODES:
        raise ValueError(f"temporal mode must be one of {TEMPORAL_MODES}, got {temporal!r}")
    if isinstance(state, (str, Path)):
        source = str(state)
        sd = read_state_dict(state)
    else:
        source = source or "state dict"
        sd = normalise_keys(_unwrap(state, source), source)

    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    adapted: dict[str, dict] = {}

    table = sd.get(TEMPORAL_KEY)
    want = expected.get(TEMPORAL_KEY)
    if (
        table is not None
        and want is not None
        and table.ndim == 3
        and len(want) == 3
        and table.shape[0] == want[0]
        and table.shape[2] == want[2]
        and table.shape[1] != want[1]
    ):
        rule = "truncate" if (temporal == "official" and table.shape[1] > want[1]) else "linear (align_corners=False)"
        sd[TEMPORAL_KEY] = resize_temporal(table, want[1], temporal)
        adapted[TEMPORAL_KEY] = {"from": list(table.shape), "to": list(want), "rule": rule}

    pos = sd.get(TEXT_POS_KEY)
    want = expected.get(TEXT_POS_KEY)
    if (
        pos is not None
        and want is not None
        and pos.ndim == 2
        and len(want) == 2
        and pos.shape[1] == want[1]
        and pos.shape[0] > want[0]
    ):
        sd[TEXT_POS_KEY] = pos[: want[0]].clone()
        adapted[TEXT_POS_KEY] = {"from": list(pos.shape), "to": list(want), "rule": "keep first rows"}

    problems = []
    for k in sorted(set(sd) - set(expected)):
        problems.append(f"  unexpected: {k} {list(sd[k].shape)}")
    for k in sorted(set(expected) - set(sd)):
        problems.append(f"  missing: {k} {list(expected[k])}")
    for k in sorted(set(sd) & set(expected)):
        if tuple(sd[k].shape) != expected[k]:
            problems.append(f"  shape mismatch: {k} checkpoint {list(sd[k].shape)} vs model {list(expected[k])}")
    if problems:
        raise ValueError(f"{source}: does not match the model ({len(problems)} problem(s)):\n" + "\n".join(problems))

    model.load_state_dict(sd, strict=True)
    return {"source": source, "tensors": len(sd), "adapted": adapted}


def with_frames(model: ViCLIP, frames: int, temporal: str = "official") -> tuple[ViCLIP, dict | None]:
    """`model` rebuilt for `frames` frames, its temporal table resized as a checkpoint's is on load.

    Returns (model, what was adapted: {"from", "to", "rule"}), or (the same
    model, None) when it already has `frames` frames. The rebuilt model's
    config says `frames`, so a checkpoint saved from it reloads as it is.
    """
    if frames == model.cfg.num_frames:
        return model, None
    rebuilt = ViCLIP(replace(model.cfg, num_frames=frames))
    report = load_official(rebuilt, model.state_dict(), temporal=temporal)
    return rebuilt.to(next(model.parameters()).device), report["adapted"][TEMPORAL_KEY]


def with_text_length(model: ViCLIP, length: int) -> tuple[ViCLIP, dict | None]:
    """`model` rebuilt with `length` text positions when it has fewer, new rows zero; else unchanged.

    Fine-tuning at a text length beyond the table (Tab. 10: up to 150 tokens
    against ViCLIP's 32) needs rows for the extra positions. The rule is the
    official text loader's for a context longer than the checkpoint's table:
    ``F.pad(positional_embedding, (0, 0, 0, extra), value=0)``, i.e. the
    existing rows are kept and the new ones start at zero, to be learned in
    fine-tuning (OpenGVLab/InternVideo ``Data/InternVid/viclip/viclip_text.py``,
    ``clip_text_l14``). UMT's fine-tuning needs no rule: its BERT text encoder
    has 512 positions. A shorter `length` keeps the table (the tokenizer cuts
    the texts instead). Returns (model, {"from", "to", "rule"}) or (model, None).
    """
    have = model.cfg.context_length
    if length <= have:
        return model, None
    rebuilt = ViCLIP(replace(model.cfg, context_length=length))
    sd = model.state_dict()
    pos = sd[TEXT_POS_KEY]
    sd[TEXT_POS_KEY] = F.pad(pos, (0, 0, 0, length - have), value=0.0)
    rebuilt.load_state_dict(sd, strict=True)
    adapted = {"from": list(pos.shape), "to": [length, pos.shape[1]], "rule": "zero rows appended (official loader)"}
    return rebuilt.to(next(model.parameters()).device), adapted


# ------------------------------------------------------------------ released weights

# Modules whose objects a pickle calls to run code, never to rebuild data: a
# file that needs one is not a checkpoint to extract, whatever it claims to be.
CODE_MODULES = frozenset(
    {"os", "posix", "nt", "subprocess", "builtins", "__builtin__", "sys", "shutil", "importlib", "runpy", "pty"}
    | {"socket", "ctypes", "pickle", "marshal", "code", "codeop", "webbrowser", "types", "functools", "operator"}
)
# The one-off extraction of a released file whose pickle holds a config object
# (the official training code saves its EasyDict config beside the weights).
EXTRACT = (
    "import sys, torch; from safetensors.torch import save_file; "
    "o = torch.load(sys.argv[1], map_location='cpu', weights_only=False); "
    "sd = o.get('model', o.get('state_dict', o)); "
    "save_file({k: v.contiguous() for k, v in sd.items() if isinstance(v, torch.Tensor)}, sys.argv[2])"
)


def extraction_command(path: str | Path) -> str:
    """The shell command that rewrites released weights `path` as a tensors-only ``.safetensors`` beside it."""
    path = Path(path)
    return f"python -c {shlex.quote(EXTRACT)} {shlex.quote(str(path))} {shlex.quote(str(path.with_suffix('.safetensors')))}"


def load_released(
    path: str | Path, model: Mapping | ViCLIPConfig, key: str | None = None, *, temporal: str = "official"
) -> tuple[ViCLIP, dict]:
    """Released ViCLIP weights (``.pth``/``.pt`` or ``.safetensors``) in a model of config `model`.

    The file is read tensors-only and loaded strictly (:func:`load_official`:
    the same two adaptations, nothing else). Every error names the file and
    `key`, the config key that named it. A ``.pth`` refused because its
    pickle holds a Python object (the official training code pickles its
    config object beside the weights) gets the one-off command that extracts
    the tensors, to run by hand on a file from the official source; nothing
    here ever unpickles one. Returns (model, load_official's report).
    """
    path = Path(path)
    where = _where(path, key)
    try:
        sd = read_state_dict(path, key)
    except UnreadableCheckpoint as exc:
        raise UnreadableCheckpoint(_with_extraction(str(exc), exc.pickled, path, key), exc.pickled) from None
    except ValueError as exc:  # not a dict of tensors, an unreadable safetensors file: the text names the file
        raise ValueError(f"{key}: {exc}" if key else str(exc)) from None
    bad = sorted(k for k, v in sd.items() if v.is_floating_point() and not bool(torch.isfinite(v).all()))
    if bad:
        raise ValueError(
            f"{where}: non-finite values (nan or inf) in {', '.join(bad[:5])}" + (" ..." if len(bad) > 5 else "")
        )
    cfg = model if isinstance(model, ViCLIPConfig) else ViCLIPConfig.from_dict(dict(model))
    out = ViCLIP(cfg)
    try:
        report = load_official(out, sd, temporal=temporal, source=where)
    except ValueError as exc:
        raise ValueError(
            f"{exc}\nA released arm is loaded into the config's model (model.*: vision {cfg.vision_width} wide x "
            f"{cfg.vision_layers} layers, patch {cfg.patch_size}, text {cfg.text_width} x {cfg.text_layers}): "
            "the checkpoint must be of that architecture"
        ) from None
    return out, report


def _with_extraction(message: str, pickled: str | None, path: Path, key: str | None) -> str:
    if pickled is None:  # damaged, not refused: nothing to extract
        return message
    module = pickled.split(".", 1)[0]
    if module in CODE_MODULES:
        return f"{message}. {pickled} runs code: this is not a checkpoint to extract; get the file from its official source"
    target = f"set {key} to" if key else "use"
    return (
        f"{message}. If it is the released file as its official source ships it, extract its tensors once, by hand "
        f"(this unpickles the file, so run it only on that file; Python must be able to import {module}):\n"
        f"  {extraction_command(path)}\n"
        f"then {target} {path.with_suffix('.safetensors')}"
    )


# ------------------------------------------------------------------ export


def export_official(model: ViCLIP) -> dict[str, dict[str, torch.Tensor]]:
    """``{"model": state_dict}`` in the official layout (detached CPU copies)."""
    sd = {k: v.detach().to("cpu", copy=True).contiguous() for k, v in model.state_dict().items()}
    stray = sorted(k for k in sd if k.split(".", 1)[0] not in TOP_LEVEL or k.endswith("attn_mask"))
    if stray:
        raise ValueError(f"model state dict has keys outside the official layout: {stray}")
    return {"model": sd}


def save_official(model: ViCLIP, path: str | Path) -> None:
    """Write the official layout atomically: ``torch.save({"model": sd})``, or a flat safetensors file."""
    path = Path(path)
    payload = export_official(model)
    if path.suffix == ".safetensors":
        if importlib.util.find_spec("safetensors") is None:
            raise ImportError(
                f"{path}: writing .safetensors files needs the 'safetensors' package (pip install safetensors)"
            )
        from safetensors.torch import save_file

        with atomic_path(path) as tmp:
            save_file(payload["model"], str(tmp), metadata={"format": "pt"})
    else:
        atomic_torch(payload, path)
