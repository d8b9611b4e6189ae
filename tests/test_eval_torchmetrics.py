"""Our R@K, median/mean rank and top-k accuracy against an independent computation with torchmetrics.

torchmetrics breaks ties by `topk` order, ours pessimistically, so the two are
compared where the answer is well defined:
- on tie-free matrices, directly;
- on matrices with ties, after lowering every correct entry by less than the
  smallest score gap: that makes torchmetrics' ranking the pessimistic one
  (every wrong candidate that tied a correct one is now strictly ahead).
The version trap of evaluation_protocols.md §2.5: since 1.7.4, recall and
reciprocal rank treat a correct candidate scoring <= 0 as never retrieved, so
cosine scores are shifted to be positive (a monotone transform) first, and a
test shows the trap is real on this version.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torchmetrics
from torchmetrics.functional.classification import multiclass_accuracy
from torchmetrics.functional.retrieval import retrieval_hit_rate, retrieval_recall, retrieval_reciprocal_rank

from viclip.eval.metrics import gt_ranks, retrieval_metrics, topk_accuracy

KS = (1, 5, 10)
SHIFT = 3.0  # cosines are >= -1 (and the ties below >= -2): +3 makes every score positive


def _captions_per_video(n_videos: int, seed: int) -> list[int]:
    """MSVD-like: a variable number of captions per video, shuffled so a video's captions are not adjacent."""
    rng = np.random.default_rng(seed)
    owner = np.repeat(np.arange(n_videos), rng.integers(1, 6, n_videos))
    return rng.permutation(owner).tolist()


def _random_cosines(n_texts: int, n_videos: int, seed: int, ties: bool) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    if ties:  # a coarse grid in [-1, 1]: many exact ties, negative scores included
        return torch.randint(-4, 5, (n_texts, n_videos), generator=g).float() / 4
    distinct = torch.randperm(n_texts * n_videos, generator=g).double() / (n_texts * n_videos)
    return distinct.mul(2).sub(1).view(n_texts, n_videos).float()


def _torchmetrics_retrieval(scores_qc: torch.Tensor, positives: list[list[int]], prefix: str) -> dict[str, float]:
    """Hit rate at K per query, and the 1-based rank of the first correct candidate from reciprocal rank."""
    shifted = scores_qc.double() + SHIFT
    hits = {k: [] for k in KS}
    first_rank = []
    for q, pos in enumerate(positives):
        target = torch.zeros(scores_qc.shape[1], dtype=torch.bool)
        target[pos] = True
        for k in KS:
            hits[k].append(float(retrieval_hit_rate(shifted[q], target, top_k=k)))
        first_rank.append(1.0 / float(retrieval_reciprocal_rank(shifted[q], target)))
    out = {f"{prefix}_r{k}": float(np.mean(hits[k])) for k in KS}
    out[f"{prefix}_medr"] = float(np.median(first_rank))
    out[f"{prefix}_meanr"] = float(np.mean(first_rank))
    return out


def _reference(sim_tv: torch.Tensor, owner: list[int]) -> dict[str, float]:
    texts_of = [[t for t, v in enumerate(owner) if v == video] for video in range(sim_tv.shape[1])]
    return {
        **_torchmetrics_retrieval(sim_tv, [[v] for v in owner], "t2v"),
        **_torchmetrics_retrieval(sim_tv.t(), texts_of, "v2t"),
    }


def _lower_correct_entries(sim_tv: torch.Tensor, owner: list[int]) -> torch.Tensor:
    """Lower each correct (text, video) score by a quarter of the smallest gap: ties resolve against it."""
    values = torch.unique(sim_tv)
    eps = float((values[1:] - values[:-1]).min()) / 4
    out = sim_tv.clone()
    out[torch.arange(len(owner)), torch.tensor(owner)] -= eps
    return out


def test_torchmetrics_version_and_its_trap():
    assert torchmetrics.__version__ == "1.9.0"
    preds, target = torch.tensor([-0.5, -0.2, -0.9]), torch.tensor([False, True, False])
    # the correct candidate ranks first, but scores <= 0 count as "not retrieved" for recall and MRR...
    assert float(retrieval_recall(preds, target, top_k=1)) == 0.0
    assert float(retrieval_reciprocal_rank(preds, target)) == 0.0
    # ...not for hit rate, and not after a monotone shift to positive scores
    assert float(retrieval_hit_rate(preds, target, top_k=1)) == 1.0
    assert float(retrieval_reciprocal_rank(preds + SHIFT, target)) == 1.0
    # ours ranks the raw scores
    assert gt_ranks(preds[None], [[1]]).item() == 0


@pytest.mark.parametrize("seed", [0, 1])
def test_retrieval_equals_torchmetrics_on_tie_free_matrices_with_several_captions(seed):
    owner = _captions_per_video(30, seed)
    sim = _random_cosines(len(owner), 30, seed, ties=False)
    assert len(torch.unique(sim)) == sim.numel()
    ours, ref = retrieval_metrics(sim, owner), _reference(sim, owner)
    assert ours.keys() == ref.keys()
    for key in ours:
        assert ours[key] == pytest.approx(ref[key], abs=1e-6), key
    assert (sim < 0).any()  # negative cosines are in play: the trap would have bitten here


@pytest.mark.parametrize("seed", [3])
def test_pessimistic_ties_equal_torchmetrics_once_ties_go_against_the_ground_truth(seed):
    owner = _captions_per_video(30, seed)
    sim = _random_cosines(len(owner), 30, seed, ties=True)
    ours = retrieval_metrics(sim, owner)
    ref = _reference(_lower_correct_entries(sim, owner), owner)
    for key in ours:
        assert ours[key] == pytest.approx(ref[key], abs=1e-6), key
    # the ties matter: counting them in the ground truth's favour gives a different answer
    favoured = sim.clone()
    favoured[torch.arange(len(owner)), torch.tensor(owner)] += 1e-3
    assert retrieval_metrics(favoured, owner)["t2v_r1"] > ours["t2v_r1"]


@pytest.mark.parametrize("seed", [5, 6])
def test_topk_accuracy_equals_torchmetrics(seed):
    g = torch.Generator().manual_seed(seed)
    n_classes = 12
    logits = torch.randn(200, n_classes, generator=g)
    labels = torch.randint(0, n_classes, (200,), generator=g)
    ours = topk_accuracy(logits, labels)
    for k in (1, 5):  # average="micro": the share of videos (torchmetrics defaults to a per-class mean)
        ref = float(multiclass_accuracy(logits, labels, num_classes=n_classes, top_k=k, average="micro"))
        assert ours[f"top{k}"] == pytest.approx(ref, abs=1e-6)
    assert ours["avg"] == pytest.approx((ours["top1"] + ours["top5"]) / 2)
    # ties: lowering the label's logit by less than any gap makes torchmetrics pessimistic too
    coarse = torch.randint(0, 4, (200, n_classes), generator=g).float()
    lowered = coarse.clone()
    lowered[torch.arange(200), labels] -= 0.25
    tied = topk_accuracy(coarse, labels)
    for k in (1, 5):
        ref = float(multiclass_accuracy(lowered, labels, num_classes=n_classes, top_k=k, average="micro"))
        assert tied[f"top{k}"] == pytest.approx(ref, abs=1e-6)


def test_our_tie_rule_by_hand():
    # text 0 -> video 0 ties with video 1 and 2; text 1 -> video 1 ties with nothing
    sim = torch.tensor([[0.5, 0.5, 0.5], [0.1, 0.4, 0.2], [0.3, 0.3, 0.9]])
    m = retrieval_metrics(sim, [0, 1, 2])
    # T2V ranks: text 0 loses both ties -> 2; text 1 -> 0; text 2 -> 0
    assert m["t2v_r1"] == pytest.approx(2 / 3) and m["t2v_meanr"] == pytest.approx(2 / 3 + 1)
    # V2T: video 0 over texts [0.5, 0.1, 0.3] -> 0; video 1 over [0.5, 0.4, 0.3] -> 1; video 2 over [0.5, 0.2, 0.9] -> 0
    assert m["v2t_r1"] == pytest.approx(2 / 3) and m["v2t_medr"] == 1.0 and m["v2t_meanr"] == pytest.approx(1 / 3 + 1)
