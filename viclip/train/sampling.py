"""Which clips a rank trains on at a step, and every random draw for them.

All randomness of the data is counter-based: the epoch order is a function
of (seed, phase, epoch), and a clip's augmentation and token mask are
functions of (seed, phase, epoch, position in that order). Each rank takes
its contiguous slice of every global batch. So the global batch of a step,
and everything drawn for it, is the same for any number of ranks and any
accumulation, and a resumed run needs only its position to redraw exactly
what an uninterrupted run would have drawn.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch

from viclip.model.config import kept_count


def epoch_order(n_clips: int, seed: int, phase: int, epoch: int) -> np.ndarray:
    return np.random.default_rng([seed, phase, epoch]).permutation(n_clips)


def sample_rngs(seed: int, phase: int, epoch: int, position: int) -> tuple[np.random.Generator, np.random.Generator]:
    """Independent generators for one sample's augmentation and its token mask."""
    aug, mask = np.random.SeedSequence([seed, phase, epoch, position]).spawn(2)
    return np.random.default_rng(aug), np.random.default_rng(mask)


def accumulation(global_batch: int, world: int, micro_batch: int) -> tuple[int, int]:
    """(micro-batch per rank, micro-batches per step) for a global batch.

    micro_batch 0, or one at least the rank's share, means no accumulation (so
    one micro_batch serves both the big masked batch and the smaller tuning batch).
    """
    if global_batch % world:
        raise ValueError(f"batch_size {global_batch} is not divisible by the {world} training processes")
    per_rank = global_batch // world
    micro = min(micro_batch or per_rank, per_rank)
    if per_rank % micro:
        raise ValueError(
            f"micro_batch {micro} does not divide the {per_rank} clips per process "
            f"(batch_size {global_batch} over {world} processes)"
        )
    return micro, per_rank // micro


def micro_positions(step: int, global_batch: int, world: int, rank: int, micro: int) -> list[np.ndarray]:
    """Positions in the epoch order of this rank's micro-batches at `step`."""
    start = step * global_batch + rank * (global_batch // world)
    per_rank = np.arange(start, start + global_batch // world)
    return [per_rank[i : i + micro] for i in range(0, len(per_rank), micro)]


class EpochClips:
    """Item `position` of an epoch: (video [T,3,S,S], caption ids, kept-token indices, clip used).

    `source` is any clip source with `load(idx, train, rng) -> (x, used_idx)`;
    a file-backed source may substitute a clip that fails to decode, so the
    caption is looked up by the clip it used. Clips are loaded one at a time,
    each with its own generators, which is what makes a clip's draws
    independent of the batch it lands in.
    """

    def __init__(
        self, source, captions, order: np.ndarray, seed: int, phase: int, epoch: int, mask_ratio: float, n_patches: int
    ):
        self.source, self.captions, self.order = source, captions, order
        self.seed, self.phase, self.epoch = seed, phase, epoch
        self.mask_ratio, self.n_patches = mask_ratio, n_patches

    def __len__(self) -> int:
        return len(self.order)

    def __getitem__(self, position: int):
        aug, mask = sample_rngs(self.seed, self.phase, self.epoch, int(position))
        video, used = self.source.load(np.array([self.order[position]]), True, aug)
        clip = int(used[0])
        if self.mask_ratio > 0:
            keep = np.sort(mask.choice(self.n_patches, kept_count(self.n_patches, self.mask_ratio), replace=False))
        else:
            keep = np.zeros(0, dtype=np.int64)
        return video[0], torch.as_tensor(self.captions[clip]), torch.from_numpy(keep.astype(np.int64)), clip


def collate(items):
    video, ids, keep, used = zip(*items)
    keep = torch.stack(keep)
    return torch.stack(video), torch.stack(ids), keep if keep.shape[1] else None, torch.tensor(used)


def micro_batches(dataset: EpochClips, batches: Sequence[np.ndarray], workers: int, ahead: int = 2) -> Iterator[tuple]:
    """Collated micro-batches in the given order.

    With workers > 0, a pool of threads loads clips, and the next `ahead`
    micro-batches load while this one trains. Threads rather than processes:
    decoders release the GIL, and a file-backed source keeps one shared set
    of clips that failed (viclip.data.loader).
    """
    if workers == 0:
        for positions in batches:
            yield collate([dataset[int(p)] for p in positions])
        return
    pool = ThreadPoolExecutor(workers, thread_name_prefix="clips")
    try:
        todo, pending = iter(batches), deque()
        for positions in todo:
            pending.append([pool.submit(dataset.__getitem__, int(p)) for p in positions])
            if len(pending) > ahead:
                yield collate([f.result() for f in pending.popleft()])
        while pending:
            yield collate([f.result() for f in pending.popleft()])
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
