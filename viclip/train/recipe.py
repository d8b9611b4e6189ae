"""One fine-tuning task's recipe: the shared `finetune` block with the task's own overrides, resolved.

`finetune.tasks.<task>` overrides any of TASK_KEYS for that task alone (the
paper's Tab. 10 gives each retrieval set its own lr, epochs, text length and
drop path). What a key left out takes:

- frames and text_length: what the task is evaluated at
  (`viclip.eval.protocol.finetuned_input`: the model's, or the paper's per
  dataset), uncapped: a text length beyond the model's position table is
  trained and evaluated at that length after the table is extended
  (`viclip.model.checkpoints.with_text_length`);
- drop_path: the model's; betas: (0.9, 0.98), the pretraining optimiser's
  (the embedded default keeps it; the paper configs set Tab. 10's (0.9, 0.999));
- flip and augment: pretraining's (`pretrain.flip`, `pretrain.augment`);
  crop_scale: (0.5, 1.0), RandomResizedCrop's area range in pretraining;
- warmup: `warmup_epochs` (of the task's own epochs), which replaces
  `warmup_steps` when set, as in pretraining; a task that sets either
  replaces both shared ones.

The resolved recipe has every key, so resolving it again gives it back: the
workflow resolves each task when it plans (its job's params carry exactly that
task's recipe, so editing one task reruns only its jobs) and the job uses it
as it is.
"""

from __future__ import annotations

from viclip.eval.protocol import PLAIN_FINETUNED, finetuned_input

TASK_KEYS = (
    "lr",
    "epochs",
    "warmup_epochs",
    "warmup_steps",
    "batch_size",
    "weight_decay",
    "drop_path",
    "betas",
    "frames",
    "text_length",
    "flip",
    "crop_scale",
)
REQUIRED = ("epochs", "batch_size", "lr", "weight_decay")
WARMUP = ("warmup_epochs", "warmup_steps")
# `finetune` keys that say how jobs are split and run, or hold other tasks' settings: never one task's recipe
NOT_RECIPE = {"jobs", "execution", "evaluate", "tasks"}
DEFAULT_BETAS = (0.9, 0.98)
DEFAULT_CROP_SCALE = (0.5, 1.0)


def task_recipe(task: str, finetune: dict, num_frames: int, context_length: int, drop_path: float, train: dict) -> dict:
    """The resolved recipe of `task` (plain data, sorted keys): shared keys, the task's overrides, defaults.

    `finetune` is the config's `finetune` block, with `evaluate` (the resolved
    `finetuned_settings`) when the protocol's input sizes apply; the model's
    frames, context length and drop path fill what neither sets; `train` holds
    pretraining's `augment` and `flip`. Errors name the config key.
    """
    own = dict((finetune.get("tasks") or {}).get(task) or {})
    unknown = sorted(set(own) - set(TASK_KEYS))
    if unknown:
        raise ValueError(f"finetune.tasks.{task}: unknown key(s) {unknown} (known: {', '.join(TASK_KEYS)})")
    shared = {k: v for k, v in finetune.items() if k not in NOT_RECIPE}
    if any(k in own for k in WARMUP):  # the task's warmup replaces the shared one, in whichever unit
        shared = {k: v for k, v in shared.items() if k not in WARMUP}
    r = {**shared, **own}
    missing = [k for k in REQUIRED if k not in r]
    if missing:
        raise ValueError(f"finetune.{missing[0]} (or finetune.tasks.{task}.{missing[0]}): required")
    if r.get("warmup_epochs") is not None:  # as in pretraining: warmup_epochs, when set, replaces warmup_steps
        r.pop("warmup_steps", None)
    elif r.get("warmup_steps") is not None:
        r.pop("warmup_epochs", None)
    else:
        raise ValueError(f"finetune.warmup_epochs or finetune.warmup_steps (or under finetune.tasks.{task}): required")
    size = finetuned_input(task, finetune.get("evaluate") or PLAIN_FINETUNED, num_frames, context_length)
    r.setdefault("frames", size["frames"])
    r.setdefault("text_length", size["text_length_requested"])
    r.setdefault("drop_path", drop_path)
    r["betas"] = [float(b) for b in r.get("betas", DEFAULT_BETAS)]
    r["crop_scale"] = [float(s) for s in r.get("crop_scale", DEFAULT_CROP_SCALE)]
    r.setdefault("augment", bool(train.get("augment", False)))
    r.setdefault("flip", bool(train.get("flip", False)))
    r.setdefault("precision", "fp32")
    r.setdefault("micro_batch", 0)
    r.setdefault("grad_clip", 0.0)
    _check(task, r)
    return {k: r[k] for k in sorted(r)}


def _check(task: str, r: dict) -> None:
    where = f"finetune.tasks.{task}"
    if len(r["betas"]) != 2 or not all(0 <= b < 1 for b in r["betas"]):
        raise ValueError(f"{where}.betas (or finetune.betas): two numbers in [0, 1), got {r['betas']}")
    lo, hi = r["crop_scale"] if len(r["crop_scale"]) == 2 else (0, -1)
    if not 0 < lo <= hi <= 1:
        raise ValueError(
            f"{where}.crop_scale: [min, max] area fractions with 0 < min <= max <= 1, got {r['crop_scale']}"
        )
    for key in ("frames", "text_length", "epochs", "batch_size"):
        if int(r[key]) != r[key] or r[key] < 1:
            raise ValueError(f"{where}.{key}: a positive integer, got {r[key]!r}")


def warmup_steps(recipe: dict, steps_per_epoch: int) -> int:
    """Warmup in optimizer steps: `warmup_steps` as given, or `warmup_epochs` of this task's epochs."""
    if recipe.get("warmup_epochs") is not None:
        return int(round(recipe["warmup_epochs"] * steps_per_epoch))
    return int(recipe["warmup_steps"])
