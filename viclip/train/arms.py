"""Each arm's pretraining schedule: the shared `pretrain` block with the arm's own changes.

An arm may set its own `epochs` / `tune_epochs`, or `match_compute: <arm>`:
then its first-stage epochs are chosen so that its pretraining FLOPs per clip
equal the named arm's. That is the masking ablation's same-compute reference
(design.md §1): an unmasked arm trained for the FLOPs the masked baseline
spends, instead of for its epochs. FLOPs, not wall-clock seconds, so the
schedule follows from the config alone and a rerun trains the same steps.
The result is rounded to 1/1000 epoch (a fractional epoch is a pass over a
random part of the data, as the tuning stage's 0.5), and the warmup is scaled
by the same factor, so that it is the same share of the shorter schedule
(the paper's 0.5 warmup epochs would otherwise be most of a 0.83-epoch run).
The cost block of the table reports the FLOPs the runs actually spent.

An arm with `pretrain: false` is not trained here: it names released weights
(`checkpoint:`, an official ViCLIP file) that are imported and then
evaluated like a trained arm's checkpoint. It has no schedule, no seeds of its
own (one run, under the config's first seed: see `released_seed`) and is a
reference row of the table, never part of an ablation.
"""

from __future__ import annotations

from collections.abc import Mapping

from viclip.model.config import ViCLIPConfig
from viclip.model.flops import count

OWN_SCHEDULE = ("epochs", "tune_epochs")


def is_released(settings: Mapping) -> bool:
    """True for an arm of released weights (`pretrain: false`), which no job of this workflow trains."""
    return settings.get("pretrain", True) is False


def trained_arms(arms: Mapping[str, Mapping]) -> list[str]:
    return [a for a, s in arms.items() if not is_released(s)]


def released_arms(arms: Mapping[str, Mapping]) -> list[str]:
    return [a for a, s in arms.items() if is_released(s)]


def released_seed(seeds: list[int]) -> int:
    """The one seed a released arm runs under: the config's first.

    A released checkpoint is one model, as the paper's reference numbers are
    one model's: evaluating it once per seed would repeat its zero-shot
    scores and give its rows a spread that is fine-tuning noise alone, not
    comparable to the trained arms' (pretraining and fine-tuning). The seed
    still seeds its fine-tuning (heads, data order), as it does a trained run's.
    """
    return int(seeds[0])


def _per_pair(model: Mapping, mask_ratio: float) -> float:
    return count(ViCLIPConfig.from_dict(dict(model)), mask_ratio)["flops_train_step_per_pair"]


def matched_epochs(
    model: Mapping, reference: Mapping, reference_mask: float, tune_epochs: float, mask_ratio: float
) -> float:
    """First-stage epochs at `mask_ratio` (tuning `tune_epochs`, unmasked) whose FLOPs per clip equal the
    reference schedule's (`epochs` at `reference_mask`, then its own `tune_epochs` unmasked)."""
    unmasked = _per_pair(model, 0.0)
    target = reference["epochs"] * _per_pair(model, reference_mask) + reference["tune_epochs"] * unmasked
    return round((target - tune_epochs * unmasked) / _per_pair(model, mask_ratio), 3)


def arm_schedule(name: str, arms: Mapping[str, Mapping], pretrain: Mapping, model: Mapping) -> dict:
    """The pretraining settings of arm `name` (without `execution`, which never changes what is computed).

    Raises ValueError naming the config key for a `match_compute` that names an unknown arm, another
    matched arm, or comes with `epochs`, or that leaves no FLOPs for the first stage.
    """
    arm = arms[name]
    if is_released(arm):
        raise ValueError(f"arms.{name}: a released-weights arm (pretrain: false) has no pretraining schedule")
    shared = {k: v for k, v in pretrain.items() if k != "execution"}
    out = {**shared, **{k: arm[k] for k in OWN_SCHEDULE if k in arm}}
    ref_name = arm.get("match_compute")
    if ref_name is None:
        return out
    where = f"arms.{name}.match_compute"
    if ref_name not in arms or ref_name == name:
        raise ValueError(f"{where}: {ref_name!r} is not another arm (arms: {', '.join(arms)})")
    if is_released(arms[ref_name]):
        raise ValueError(f"{where}: {ref_name!r} is a released-weights arm (pretrain: false): it has no schedule")
    if "match_compute" in arms[ref_name]:
        raise ValueError(f"{where}: {ref_name!r} matches another arm's compute itself; name an arm with a schedule")
    if "epochs" in arm:
        raise ValueError(f"{where}: an arm sets either its own epochs or match_compute, not both")
    reference = {**shared, **{k: arms[ref_name][k] for k in OWN_SCHEDULE if k in arms[ref_name]}}
    epochs = matched_epochs(model, reference, arms[ref_name]["mask_ratio"], out["tune_epochs"], arm["mask_ratio"])
    if epochs <= 0:
        raise ValueError(
            f"{where}: {ref_name!r} spends fewer FLOPs than this arm's tuning stage alone "
            f"(first-stage epochs would be {epochs})"
        )
    out["epochs"] = epochs
    # the warmup shrinks with the run, so it stays the same share of the schedule as in the reference
    scale = epochs / reference["epochs"]
    if out.get("warmup_epochs") is not None:
        out["warmup_epochs"] = round(reference["warmup_epochs"] * scale, 4)
    else:
        out["warmup_steps"] = max(int(round(reference["warmup_steps"] * scale)), 1 if reference["warmup_steps"] else 0)
    return out
