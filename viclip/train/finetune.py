"""Full fine-tuning of a pretrained model on one benchmark's train split.

Classification adds a linear head on the video embedding and trains with
cross-entropy; retrieval continues contrastive training on the benchmark's
own captions (one random caption of a video per step). Nothing is selected
on the test split: the last epoch's weights are evaluated.
"""

from __future__ import annotations

import json

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from viclip.data.benchmarks.load import Benchmark
from viclip.eval.classification import prompts
from viclip.eval.embed import embed_texts
from viclip.eval.finetuned import evaluate_finetuned
from viclip.model.viclip import ViCLIP
from viclip.train.optim import adamw, cosine_lr, set_lr


class Classifier(nn.Module):
    """The video tower with a linear head initialised from the zero-shot classifier.

    Starting the head at the class-prompt embeddings (scaled by the learned
    temperature) means fine-tuning starts from the zero-shot solution instead
    of a random head, which a few hundred clips could not train.
    """

    def __init__(self, model: ViCLIP, class_emb: torch.Tensor):
        super().__init__()
        self.model = model
        self.head = nn.Linear(class_emb.shape[1], class_emb.shape[0])
        with torch.no_grad():
            self.head.weight.copy_(class_emb / model.temperature())
            self.head.bias.zero_()

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        return self.head(self.model.encode_video(video))


def finetune(model: ViCLIP, tokenizer, bench: Benchmark, cfg: dict, seed: int, log) -> tuple[nn.Module, dict, dict]:
    """Train on bench.splits["train"]; return (trained module, test metrics, details)."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    train = bench.splits["train"]
    dev = next(model.parameters()).device
    classification = bench.task == "classification"
    if classification:
        prompt_emb = embed_texts(model, tokenizer, prompts(bench.meta["classes"], bench.meta["templates"]))
        class_emb = F.normalize(prompt_emb.view(len(bench.meta["classes"]), len(bench.meta["templates"]), -1).mean(1), dim=-1)
        module: nn.Module = Classifier(model, class_emb)
    else:
        module = model
    if not classification:
        model.text_encoder.requires_grad_(True)  # fine-tuning updates both towers
    optimizer = adamw(module, cfg["lr"], cfg["weight_decay"])
    bs = min(cfg["batch_size"], len(train.sampler))
    steps_per_epoch = len(train.sampler) // bs
    total = steps_per_epoch * cfg["epochs"]
    bar = tqdm(total=total, desc=f"finetune {bench.name}", mininterval=5.0)
    for epoch in range(cfg["epochs"]):
        module.train()
        order = rng.permutation(len(train.sampler))
        losses = []
        for b in range(steps_per_epoch):
            set_lr(optimizer, cosine_lr(epoch * steps_per_epoch + b, total, cfg["lr"], cfg["warmup_steps"], 0.01))
            idx = order[b * bs : (b + 1) * bs]
            video = train.sampler.batch(idx, train=True, rng=rng).to(dev)
            if classification:
                loss = F.cross_entropy(module(video), torch.from_numpy(train.labels[idx]).long().to(dev))
            else:
                texts = [train.texts[i][rng.integers(len(train.texts[i]))] for i in idx]
                loss = model.loss(model.encode_video(video), model.encode_text(tokenizer(texts).to(dev)))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
            bar.update(1)
        log.write(json.dumps({"task": bench.name, "epoch": epoch, "loss": float(np.mean(losses))}) + "\n")
    bar.close()
    # cfg["evaluate"]: viclip.eval.protocol.finetuned_settings (views, query mode, input sizes); absent, one
    # view, paragraph queries and the model's own input sizes.
    metrics, details = evaluate_finetuned(module if classification else None, model, tokenizer, bench,
                                          cfg.get("evaluate"))
    if classification:
        details["head"] = "linear"
    details.update({"train_clips": len(train.sampler), "epochs": cfg["epochs"]})
    return module, metrics, details
