"""What the paper dress rehearsal may change: scale, never behaviour.

configs/rehearsal.yaml is applied after a paper config. Each key it sets must
match one of SCALE_KEYS (a dotted path; `*` matches one key), so a rehearsal
cannot quietly dodge a code path the paper config takes.
"""

from __future__ import annotations

from fnmatch import fnmatchcase

SCALE_KEYS = (
    "seeds",  # how many runs per arm
    "corpus.subset.size",  # clips drawn from the metadata
    "corpus.download.source",  # youtube -> local: the same cut, from a folder of full videos
    "corpus.download.local_dir",
    "corpus.download.workers",
    "corpus.download.shards",  # jobs the download is split into
    "captions.shards",
    "captions.hf.*.model",  # local folders for hub ids: tiny models of the same classes
    "captions.execution.*",  # how caption jobs run
    "model.image_size",
    "model.vision_width",
    "model.vision_layers",
    "model.vision_heads",
    "model.embed_dim",
    "model.text_width",
    "model.text_layers",
    "model.text_heads",
    "model.clip_name",  # a tiny open_clip config JSON ...
    "model.clip_pretrained",  # ... and its weights, in the released format
    "arms.*.checkpoint",  # released ViCLIP weights: an input file, as model.clip_pretrained is
    "pretrain.epochs",
    "pretrain.batch_size",
    "pretrain.tune_batch_size",
    "pretrain.micro_batch",
    "pretrain.execution.*",
    "finetune.epochs",
    "finetune.batch_size",
    "finetune.micro_batch",
    "finetune.warmup_steps",  # steps, not epochs: it shrinks with the batch count
    "finetune.tasks.*.epochs",  # a task's own epochs (the paper's per-dataset recipes)
    "finetune.tasks.*.batch_size",
    "finetune.execution.*",
)


def leaf_keys(tree: dict, prefix: str = "") -> list[str]:
    """Dotted paths of every non-mapping value in `tree`."""
    keys = []
    for key, value in tree.items():
        path = f"{prefix}{key}"
        keys += leaf_keys(value, path + ".") if isinstance(value, dict) and value else [path]
    return keys


def behavioural_keys(overlay: dict) -> list[str]:
    """Keys of `overlay` outside the scale allow-list."""
    return [key for key in leaf_keys(overlay) if not any(fnmatchcase(key, p) for p in SCALE_KEYS)]
