"""The two fine-tuning tasks the training engine (`loop.fit`) runs.

Classification: the module DDP wraps is the classifier (video tower + linear
head), which is also what gets saved; cross-entropy on the labels, plain
accumulation. The text tower and the temperature are frozen, so DDP sees no
parameter that its forward leaves unused.

Retrieval: the pretraining contrastive module and its global InfoNCE, with
the text tower trained too. Each clip's caption is drawn with a generator
keyed by its position in the epoch (`sampling.sample_rngs`), like its
augmentation, so a resumed run draws the same captions.

Both tasks log the frame count (and retrieval the text length) of the
batches they feed: what training really ran at, for the protocol check.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from viclip.data.benchmarks.load import Split
from viclip.model.viclip import ViCLIP
from viclip.train.distributed import Dist
from viclip.train.losses import global_infonce
from viclip.train.pretrain import ContrastiveModule
from viclip.train.sampling import (
    epoch_order,
    micro_batches,
    micro_positions,
    sample_rngs,
)


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


class Micro(NamedTuple):
    inputs: tuple
    targets: torch.Tensor | None = None


class SplitClips:
    """Item `position` of an epoch of a train split: (video, label or caption ids, no mask, clip index)."""

    def __init__(self, split: Split, tokenizer, order: np.ndarray, seed: int, phase: int, epoch: int):
        self.split, self.tokenizer, self.order = split, tokenizer, order
        self.seed, self.phase, self.epoch = seed, phase, epoch

    def __len__(self) -> int:
        return len(self.order)

    def __getitem__(self, position: int):
        aug, pick = sample_rngs(self.seed, self.phase, self.epoch, int(position))
        video, used = self.split.sampler.load(np.array([self.order[position]]), True, aug)
        clip = int(used[0])
        if self.split.labels is not None:
            target = torch.tensor(int(self.split.labels[clip]))
        else:
            texts = self.split.texts[clip]
            target = self.tokenizer([texts[int(pick.integers(len(texts)))]])[0]
        return video[0], target, torch.zeros(0, dtype=torch.long), clip


class _SplitTask:
    """Batches of one train split, position-keyed as in pretraining (`sampling.py`)."""

    def __init__(self, split: Split, tokenizer, batch_size: int, seed: int):
        self.split, self.tokenizer, self.batch_size, self.seed = split, tokenizer, batch_size, seed
        self.fed: dict = {}  # input sizes of the last batch fed to the model

    def _batches(
        self, phase: int, epoch: int, first_step: int, steps: int, micro: int, dist: Dist, workers: int
    ) -> Iterator[tuple]:
        order = epoch_order(len(self.split.sampler), self.seed, phase, epoch)
        dataset = SplitClips(self.split, self.tokenizer, order, self.seed, phase, epoch)
        positions = [
            mb
            for s in range(first_step, steps)
            for mb in micro_positions(s, self.batch_size, dist.world, dist.rank, micro)
        ]
        for video, target, _, _ in micro_batches(dataset, positions, workers):
            yield video.to(dist.device, non_blocking=True), target.to(dist.device, non_blocking=True)


class ClassificationTask(_SplitTask):
    global_loss = False

    def __init__(self, classifier: Classifier, split: Split, batch_size: int, seed: int, steps: tuple[int, ...]):
        super().__init__(split, None, batch_size, seed)
        classifier.model.text_encoder.requires_grad_(False)  # outside the classifier's forward
        classifier.model.temp.requires_grad_(False)
        self.model = self.module = classifier
        self.steps = steps

    def batches(self, phase: int, epoch: int, first_step: int, micro: int, dist: Dist, workers: int):
        for video, labels in self._batches(phase, epoch, first_step, self.steps[epoch], micro, dist, workers):
            self.fed = {"frames": video.shape[1]}
            yield Micro((video,), labels)

    def loss(self, outputs, targets, dist: Dist) -> torch.Tensor:
        return F.cross_entropy(outputs.float(), targets)

    def log_values(self) -> dict:
        return dict(self.fed)


class RetrievalTask(_SplitTask):
    global_loss = True

    def __init__(self, model: ViCLIP, tokenizer, split: Split, batch_size: int, seed: int, steps: tuple[int, ...]):
        super().__init__(split, tokenizer, batch_size, seed)
        model.text_encoder.requires_grad_(True)  # fine-tuning updates both towers
        self.model, self.module = model, ContrastiveModule(model)
        self.steps = steps

    def batches(self, phase: int, epoch: int, first_step: int, micro: int, dist: Dist, workers: int):
        for video, ids in self._batches(phase, epoch, first_step, self.steps[epoch], micro, dist, workers):
            self.fed = {"frames": video.shape[1], "text_length": ids.shape[1]}
            yield Micro((video, ids))

    def loss(self, outputs, targets, dist: Dist) -> torch.Tensor:
        video, text, temp = outputs
        return global_infonce(video, text, temp, dist)

    def log_values(self) -> dict:
        return {"temp": float(self.model.temp.detach()), **self.fed}
