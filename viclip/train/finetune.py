"""Full fine-tuning of a pretrained model on benchmark train splits, on the pretraining engine.

Classification adds a linear head on the video embedding and trains with
cross-entropy; retrieval continues contrastive training on the benchmark's
own captions (`finetune_tasks.py`). Each task is one engine phase (`loop.fit`):
AdamW, warmup and cosine schedule, gradient accumulation, one or many
processes, resume points in `{task}/resume/` (every `checkpoint_every` steps,
at epoch ends and on SIGTERM/SIGUSR1), the jsonl log. Nothing is selected on
the test split: the last epoch's weights are evaluated.

Each task has its own recipe (`viclip.train.recipe.task_recipe`: the shared
`finetune` keys with `finetune.tasks.<task>` over them): lr, epochs, warmup,
batch, drop path, AdamW betas, flip and crop scale, and the frame count and
text length it trains and is evaluated at (12 frames and up to 150 tokens for
retrieval under the paper's protocol). The pretrained model is rebuilt to fit
first: its temporal table resized by the rule the official loader applies to
checkpoints, its text position table extended by zero rows as the official
text loader does (`with_text_length`), its drop path set; it is saved with
those in its config. The resolved recipe is recorded under
settings["training"].

`python -m viclip.train.finetune JOB.json` is one fine-tuning process (torchrun
starts one per rank); `run_job` fine-tunes, evaluates and writes every task of
a job. A job's resume points stay until all its tasks are written, so a job
stopped in its third task redoes only the evaluation of the first two.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import sys
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from viclip.data.benchmarks.load import Benchmark, load_benchmark
from viclip.eval.classification import prompts
from viclip.eval.embed import embed_texts, tokenizer_with_length
from viclip.eval.finetuned import evaluate_finetuned
from viclip.eval.protocol import PLAIN_FINETUNED
from viclip.eval.records import make_record
from viclip.eval.templates import resolve_templates
from viclip.io import atomic_json, atomic_torch
from viclip.model.checkpoints import with_frames, with_text_length
from viclip.model.flops import count, vision_tokens
from viclip.model.viclip import ViCLIP, ViCLIPConfig
from viclip.runtime import as_json, device
from viclip.train import launch
from viclip.train.checkpoint import load_model
from viclip.train.distributed import Dist
from viclip.train.execution import Execution
from viclip.train.finetune_tasks import ClassificationTask, Classifier, RetrievalTask
from viclip.train.loop import Options, Phase, fit
from viclip.train.recipe import task_recipe, warmup_steps
from viclip.train.state import ResumeStore

__all__ = ["Classifier", "FinetuneJob", "finetune", "run", "run_job"]

log = logging.getLogger("viclip")

MIN_LR_RATIO = 0.01


def execution_settings(execution: Execution | dict | None) -> dict:
    if not isinstance(execution, Execution):
        execution = Execution.from_config(execution, "finetune.execution")
    return dataclasses.asdict(execution)


def weights_digest(model: nn.Module) -> str:
    h = hashlib.sha1()
    for name, t in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(t.detach().cpu().reshape(-1).contiguous().view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def job_recipe(task: str, block: dict, model_cfg: ViCLIPConfig, train: dict) -> dict:
    """`task`'s resolved recipe: as the workflow planned it (block["recipes"]), or resolved here from a raw block."""
    if "recipes" in block:
        return block["recipes"][task]
    return task_recipe(task, block, model_cfg.num_frames, model_cfg.context_length, model_cfg.drop_path, train)


def at_frames(task: str, model: ViCLIP, frames: int) -> ViCLIP:
    """`model` with a temporal table for `frames` frames, resized as the official loader resizes a checkpoint's."""
    model, adapted = with_frames(model, frames)
    if adapted:
        log.info(
            "%s: temporal table resized from %d to %d frames (%s, the official loader's rule)",
            task,
            adapted["from"][1],
            adapted["to"][1],
            adapted["rule"],
        )
    return model


def fitted(task: str, model: ViCLIP, recipe: dict) -> ViCLIP:
    """`model` rebuilt for the recipe: its frames, text positions (extended, never cut) and drop path."""
    model = at_frames(task, model, recipe["frames"])
    model, adapted = with_text_length(model, recipe["text_length"])
    if adapted:
        log.info(
            "%s: text positions extended from %d to %d (%s)",
            task,
            adapted["from"][0],
            adapted["to"][0],
            adapted["rule"],
        )
    if model.cfg.drop_path != recipe["drop_path"]:  # drop path has no weights: same state, other rates
        rebuilt = ViCLIP(dataclasses.replace(model.cfg, drop_path=recipe["drop_path"]))
        rebuilt.load_state_dict(model.state_dict(), strict=True)
        model = rebuilt
    return model


def finetune(
    model: ViCLIP,
    tokenizer,
    bench: Benchmark,
    recipe: dict,
    evaluate: dict | None,
    seed: int,
    out_dir: str | Path,
    log_path: str | Path,
    execution: dict | None = None,
    dist: Dist | None = None,
    keep_resume: bool = False,
) -> tuple[nn.Module, dict, dict]:
    """Train on bench.splits["train"] by `recipe` (`task_recipe`); return (trained module, test metrics, details).

    `evaluate` is `viclip.eval.protocol.finetuned_settings(...)` (None: one
    view, paragraph queries). The module is the classifier for
    classification, the model for retrieval; metrics and details are empty
    on ranks other than the main one. Raises `state.Preempted` after saving a
    resume point when signalled.
    """
    run = execution_settings(execution)
    dist = dist or Dist(device=device())
    train = recipe
    split = bench.splits.get("train")
    if split is None:
        raise ValueError(
            f"benchmark {bench.name}: no decoded train split to fine-tune on (splits: {sorted(bench.splits)})"
        )
    frames = recipe["frames"]
    if not model.cfg.num_frames == split.sampler.num_frames == frames:
        # caught here, not after training: evaluation refuses more frames than the temporal table has
        raise ValueError(
            f"{bench.name}: evaluated at {frames} frames, but the model has {model.cfg.num_frames} and the train "
            f"split gives {split.sampler.num_frames}; resize the model first (run_job, fitted)"
        )
    if tokenizer.context_length != recipe["text_length"]:
        raise ValueError(
            f"{bench.name}: the recipe's text length is {recipe['text_length']}, the tokenizer cuts at "
            f"{tokenizer.context_length}; extend the model first (run_job, fitted)"
        )
    n = len(split.sampler)
    bs = min(train["batch_size"], n)
    steps = (n // bs,) * train["epochs"]
    classification = bench.task == "classification"
    digest = weights_digest(model)  # before the head: the pretrained weights this run starts from
    model.to(dist.device)
    mc = model.cfg
    if classification:
        # the head starts from the class prompts zero-shot scoring uses: real benchmarks have no templates of their own
        settings = evaluate or PLAIN_FINETUNED
        _, templates = resolve_templates(settings.get("templates", "auto"), bench.meta)
        prompt_emb = embed_texts(model, tokenizer, prompts(bench.meta["classes"], templates))
        class_emb = prompt_emb.view(len(bench.meta["classes"]), len(templates), -1).mean(1)
        if settings.get("ensemble", "clip") == "clip":  # viclip: the mean of cosines is a head of mean embeddings
            class_emb = F.normalize(class_emb, dim=-1)
        task = ClassificationTask(Classifier(model, class_emb), split, bs, seed, steps)
        flops = count(mc, 0.0)
        tokens, per_clip = (
            vision_tokens(mc, 0.0)["tokens_vision"],
            flops["flops_forward_vision"] + flops["flops_backward_vision"],
        )
    else:
        task = RetrievalTask(model, tokenizer, split, bs, seed, steps)
        tokens = vision_tokens(mc, 0.0)["tokens_vision"] + mc.context_length
        per_clip = count(mc, 0.0)["flops_train_step_per_pair"]
    phase = Phase(
        "finetune",
        steps,
        train["lr"],
        warmup_steps(train, steps[0]),
        MIN_LR_RATIO,
        bs,
        tokens_per_clip=tokens,
        flops_per_clip=per_clip,
        info={"task": bench.name},
    )
    # the same run: settings, starting weights, data; not the process count (a requeued job may get other GPUs)
    fingerprint = json.dumps(
        [
            mc.to_dict(),
            {k: v for k, v in train.items() if k != "micro_batch"},
            seed,
            bench.name,
            n,
            digest,
            tokenizer.context_length,
        ],
        sort_keys=True,
    )
    out_dir = Path(out_dir)
    store = ResumeStore(out_dir / "resume", fingerprint, keep=run["keep"])
    opts = Options.from_settings(train, run)
    result = fit(
        task,
        [phase],
        opts,
        dist,
        store,
        log_path,
        seed,
        run_name=f"{out_dir.parent.parent.name}/{out_dir.parent.name}/{bench.name}",
    )
    if not keep_resume and dist.main:
        store.clear()
    module = task.model
    if not dist.main:
        return module, {}, {}
    # evaluated at the sizes it trained at: the recipe's frames and text length
    size = {"frames": frames, "text_length": recipe["text_length"]}
    metrics, details = evaluate_finetuned(module if classification else None, model, tokenizer, bench, evaluate, size)
    details["settings"]["training"] = {
        **recipe,
        "warmup_steps_used": phase.warmup,
        "fed": dict(task.fed),  # what the last batch really was, for the protocol check
    }
    if classification:
        details["head"] = "linear"
    details.update({"train_clips": n, "epochs": train["epochs"], "steps": result["steps"]})
    return module, metrics, details


def prepared(
    task: str, block: dict, pretrained: str | Path, bench_dir: str | Path, train: dict
) -> tuple[ViCLIP, object, Benchmark, dict]:
    """What one task fine-tunes: (the pretrained model fitted to its recipe, the tokenizer at its text length,
    its benchmark loaded at its frames and augmentation, the recipe). Every task starts from the pretrained
    weights."""
    model, _ = load_model(pretrained)
    recipe = job_recipe(task, block, model.cfg, train)
    model = fitted(task, model, recipe)
    tokenizer = tokenizer_with_length(model.cfg, recipe["text_length"])
    bench = load_benchmark(
        bench_dir,
        recipe["frames"],
        model.cfg.image_size,
        recipe["augment"],
        recipe["flip"],
        crop_scale=tuple(recipe["crop_scale"]),
    )
    return model, tokenizer, bench, recipe


def run_job(spec: dict, dist: Dist) -> list[dict]:
    """Fine-tune, evaluate and write every task of a job spec (what scripts/finetune.py puts in it)."""
    block, execution, summaries = spec["finetune"], spec.get("execution"), []
    for task, bench_dir, ckpt_path, log_path, record_path in zip(
        spec["tasks"], spec["bench_dirs"], spec["checkpoints"], spec["train_logs"], spec["records"]
    ):
        model, tokenizer, bench, recipe = prepared(task, block, spec["pretrained"], bench_dir, spec["train"])
        log.info(
            "fine-tuning %s on %d clips (rank %d/%d, %s)",
            task,
            len(bench.splits.get("train", bench.test).sampler),
            dist.rank,
            dist.world,
            dist.device,
        )
        module, metrics, details = finetune(
            model,
            tokenizer,
            bench,
            recipe,
            block.get("evaluate"),
            spec["seed"],
            Path(ckpt_path).parent,
            log_path,
            execution,
            dist,
            keep_resume=True,
        )
        if dist.main:
            atomic_torch({"model": module.cpu().state_dict(), "config": model.cfg.to_dict(), "task": task}, ckpt_path)
            atomic_json(
                make_record(spec["arm"], int(spec["seed"]), bench, "finetuned", metrics, details, checkpoint=ckpt_path),
                record_path,
            )
            log.info("%s fine-tuned: %s", task, as_json({k: round(v, 4) for k, v in metrics.items()}))
        summaries.append({"task": task, "steps": details.get("steps"), **metrics})
    if dist.main:  # every task is written: nothing left to resume
        for ckpt_path in spec["checkpoints"]:
            ResumeStore(Path(ckpt_path).parent / "resume", "").clear()
    dist.barrier()
    return summaries


def launch_command(job: str | Path, per_node: int, nodes: int = 1, stop_timeout_s: int = 120) -> list[str]:
    """torchrun (srun + torchrun across nodes) starting one `python -m viclip.train.finetune JOB` per rank."""
    if nodes > 1:
        return launch.slurm_command(job, per_node, nodes, stop_timeout_s, run_job.__module__)
    return launch.torchrun_command(job, per_node, run_job.__module__, stop_timeout_s=stop_timeout_s)


@dataclasses.dataclass(frozen=True)
class FinetuneJob:
    """One fine-tuning job, as rule finetune hands it over: a pretrained run, its tasks, outputs, execution."""

    arm: str
    seed: int
    tasks: list[str]
    bench_dirs: list[str]
    pretrained: str  # the pretrained run's checkpoint.pt
    finetune: dict  # {"recipes": {task: task_recipe}, "evaluate": finetuned_settings}, or a raw `finetune` block
    train: dict  # augment and flip, shared with pretraining
    checkpoints: list[str]  # per task, like the three lists below
    train_logs: list[str]
    records: list[str]
    execution: Execution = Execution()
    threads: int = 1  # CPU threads per training process


def run(job: FinetuneJob) -> None:
    """Fine-tune and score every task of a job: in this process, or one process per GPU under torchrun."""
    for path in job.checkpoints:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    launch.run_here_or_torchrun(dataclasses.asdict(job), job.execution, run_job, Path(job.checkpoints[0]).parent)


if __name__ == "__main__":
    sys.exit(launch.worker_main(sys.argv[1:], run_job))
