"""Prompt templates for zero-shot classification, with where each set comes from.

The class name fills `{}`; captions and prompts are cleaned by the tokenizer
(`pre_text`: lower-case, punctuation stripped), as ViCLIP does, so the
capitals and punctuation below do not reach the model.

- "viclip": the 16 ActionCLIP-style templates behind ViCLIP's Kinetics
  numbers: `kinetics_templates_action_clip` in OpenGVLab/InternVideo
  InternVideo1/Pretrain/ViCLIP/dataset/text_prompt.py (commit 3965eef),
  which dataset/caption_dataset.py imports as `kinetics_templates` for the
  `*_act_*` evaluation sets (viclip_spec.md §5.1). Same list as ActionCLIP's
  utils/Text_Prompt.py.
- "viclip28": the 28-template `kinetics_templates` of the same file, defined
  but not used by ViCLIP's Kinetics evaluation (evaluation_protocols.md §1.3).
- "clip_k700": OpenAI CLIP's Kinetics-700 prompts (openai/CLIP
  data/prompts.md): four prefixes times seven forms.
"""

from __future__ import annotations

import hashlib

VICLIP = (
    "a photo of action {}",
    "a picture of action {}",
    "Human action of {}",
    "{}, an action",
    "{} this is an action",
    "{}, a video of action",
    "Playing action of {}",
    "{}",
    "Playing a kind of action, {}",
    "Doing a kind of action, {}",
    "Look, the human is {}",
    "Can you recognize the action of {}?",
    "Video classification of {}",
    "A video of {}",
    "The man is {}",
    "The woman is {}",
)

VICLIP28 = (
    "A photo of action {}.",
    "A video of action {}.",
    "He or she is {}.",
    "A person is doing {}.",
    "Look, the human is {}.",
    "Human action of {}.",
    "Playing action of {}.",
    "Video classification of {}.",
    "Doing a kind of action, {}.",
    "Playing a kind of action, {}.",
    "Can you recognize the action of {}?",
    "{}, an action.",
    "{} this is an action.",
    "{}, a video of action.",
    "An action of {} is in the video.",
    "There is a person doing {} in the video.",
    *(
        f"A {kind} of a person {verb} {{}}."
        for kind in ("photo", "video", "example", "demonstration")
        for verb in ("doing", "performing", "practicing")
    ),
)

CLIP_K700 = tuple(
    f"a {kind} of {form}{{}}."
    for kind in ("photo", "video", "example", "demonstration")
    for form in (
        "",
        "a person ",
        "a person using ",
        "a person doing ",
        "a person during ",
        "a person performing ",
        "a person practicing ",
    )
)

SETS = {"viclip": VICLIP, "viclip28": VICLIP28, "clip_k700": CLIP_K700}
CHOICES = ("auto", "benchmark", *SETS)


def resolve_templates(choice: str, meta: dict) -> tuple[str, list[str]]:
    """(set name, templates) for a classification benchmark.

    "auto": the benchmark's own templates for the synthetic stand-ins (their
    tiny text tower knows only the captions' words), ViCLIP's for real data.
    "benchmark": meta.json's `templates`. Otherwise a named set.
    """
    if choice == "auto":
        choice = "benchmark" if meta.get("synthetic", False) else "viclip"
    if choice == "benchmark":
        if not meta.get("templates"):
            raise ValueError(
                f"benchmark {meta.get('name', '?')}: meta.json has no 'templates' for evaluate.templates=benchmark"
            )
        return f"benchmark:{meta.get('name', '?')}", list(meta["templates"])
    if choice not in SETS:
        raise ValueError(f"evaluate.templates: unknown template set {choice!r} (known: {', '.join(CHOICES)})")
    return choice, list(SETS[choice])


def list_sha256(items: list[str]) -> str:
    """Checksum of an ordered string list (class names, templates), one item per line."""
    return hashlib.sha256("\n".join(items).encode()).hexdigest()
