"""Which arms each ablation compares with the baseline: one figure per ablation.

Given explicitly in ``report.ablations``, or derived from how each arm's
settings differ from the baseline's: masking (mask ratio, with or without its
own schedule, e.g. a same-compute arm), captions (caption source only), or an
ablation of its own for an arm that changes something else. Released-weights
arms (`pretrain: false`) are reference rows: no ablation includes them, and
the baseline cannot be one.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from viclip.train.arms import is_released

NAME = re.compile(r"^[A-Za-z0-9_-]+$")
SCHEDULE = {"epochs", "tune_epochs", "match_compute"}
DERIVED = {  # name -> title of the derived ablations
    "masking": "Video masking",
    "captions": "Caption scales",
}


@dataclass(frozen=True)
class Ablation:
    name: str  # file stem of its figure
    title: str
    arms: tuple[str, ...]  # compared with the baseline, in config order


def ablations(arms: Mapping[str, dict], baseline: str, explicit: Mapping[str, dict] | None = None) -> list[Ablation]:
    """The ablations of a config, explicit if given, else derived.

    Raises ValueError naming the config key (``report.ablations.<name>...``)
    for an unknown arm, the baseline listed as an ablated arm, or a bad name.
    """
    if baseline not in arms:
        raise ValueError(f"report.baseline: {baseline!r} is not an arm (arms: {', '.join(arms)})")
    if is_released(arms[baseline]):
        raise ValueError(
            f"report.baseline: {baseline!r} is a released-weights arm (pretrain: false); the baseline is a trained arm"
        )
    if explicit is None:
        return derive(arms, baseline)
    out = []
    for name, spec in explicit.items():
        where = f"report.ablations.{name}"
        if not NAME.match(name):
            raise ValueError(f"{where}: name must match {NAME.pattern} (it names a file)")
        listed = list(spec.get("arms", []))
        if not listed:
            raise ValueError(f"{where}.arms: needs at least one arm")
        for arm in listed:
            if arm not in arms:
                raise ValueError(f"{where}.arms: {arm!r} is not an arm (arms: {', '.join(arms)})")
            if arm == baseline:
                raise ValueError(f"{where}.arms: {arm!r} is the baseline; list the arms compared with it")
            if is_released(arms[arm]):
                raise ValueError(
                    f"{where}.arms: {arm!r} is a released-weights arm (pretrain: false): a reference row, "
                    "not part of an ablation"
                )
        order = [a for a in arms if a in listed]  # config order, as in the table
        out.append(Ablation(name, str(spec.get("title", name)), tuple(order)))
    return out


def derive(arms: Mapping[str, dict], baseline: str) -> list[Ablation]:
    """Group non-baseline arms by what they change relative to the baseline."""
    base = arms[baseline]
    groups: dict[str, list[str]] = {}
    for arm, settings in arms.items():
        if arm == baseline or is_released(settings):
            continue
        changed = {k for k in set(base) | set(settings) if k != "label" and base.get(k) != settings.get(k)}
        if "mask_ratio" in changed and changed <= {"mask_ratio"} | SCHEDULE:
            name = "masking"
        elif changed == {"captions"}:
            name = "captions"
        else:  # changes something else (or nothing): a comparison of its own
            name = arm if arm not in DERIVED else f"{arm}-arm"
        groups.setdefault(name, []).append(arm)
    return [
        Ablation(name, DERIVED[name] if name in DERIVED else str(arms[members[0]].get("label", name)), tuple(members))
        for name, members in groups.items()
    ]
