"""Words and phrases for the synthetic world, shared by captioners and benchmarks."""

from __future__ import annotations

from viclip.data.world import ClipSpec

_GERUND = {
    "move left": "moving left",
    "move right": "moving right",
    "move up": "moving up",
    "move down": "moving down",
    "grow": "growing",
    "shrink": "shrinking",
    "rotate": "rotating",
    "change colour": "changing colour",
    "appear": "appearing",
}
_PRESENT = {
    "move left": "moves to the left",
    "move right": "moves to the right",
    "move up": "moves up",
    "move down": "moves down",
    "grow": "grows bigger",
    "shrink": "shrinks",
    "rotate": "rotates",
    "change colour": "changes colour",
    "appear": "appears",
}


def gerund(event: str) -> str:
    return _GERUND[event]


def present(event: str, spec: ClipSpec | None = None) -> str:
    """Third-person present tense; a colour change names its new colour when known."""
    if event == "change colour" and spec is not None and spec.new_colour:
        return f"turns {spec.new_colour}"
    return _PRESENT[event]


def texture_word(texture: str) -> str:
    return "" if texture == "plain" else texture


def noun_phrase(*words: str) -> str:
    """Join non-empty words, e.g. ("red", "", "circle") -> "red circle"."""
    return " ".join(w for w in words if w)


def article(phrase: str) -> str:
    return ("an " if phrase[:1] in "aeiou" else "a ") + phrase
