"""Tests for viclip.eval.metrics and classification on hand-built score matrices."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from viclip.eval.classification import class_scores, prompts, zero_shot_accuracy
from viclip.eval.metrics import gt_ranks, per_class_accuracy, recall_metrics, retrieval_metrics, topk_accuracy

S = torch.tensor(
    [
        [0.9, 0.1, 0.2, 0.3],  # gt 0: nothing ahead -> rank 0
        [0.5, 0.4, 0.4, 0.1],  # gt 1: 0.5 ahead, 0.4 tied -> rank 2 (pessimistic)
        [0.1, 0.2, 0.3, 0.3],  # gt 3: 0.3 tied -> rank 1
    ]
)


def test_gt_ranks_hand_computed():
    assert gt_ranks(S, [[0], [1], [3]]).tolist() == [0, 2, 1]
    assert gt_ranks(S, [[3], [0], [0]]).tolist() == [1, 0, 3]


def test_ties_are_pessimistic_and_constant_scores_score_zero():
    for c in (2, 3, 10):
        ranks = gt_ranks(torch.full((5, c), 0.25), [[i % c] for i in range(5)])
        assert ranks.tolist() == [c - 1] * 5
        m = recall_metrics(ranks, "t2v")
        assert m["t2v_r1"] == 0.0
        assert m["t2v_medr"] == c and m["t2v_meanr"] == c
    one = gt_ranks(torch.full((3, 1), 0.25), [[0]] * 3)
    assert one.tolist() == [0, 0, 0]
    assert recall_metrics(one, "x")["x_r1"] == 1.0


def test_all_negative_scores():
    neg = S - 5.0
    assert gt_ranks(neg, [[0], [1], [3]]).tolist() == [0, 2, 1]
    assert gt_ranks(-S, [[0], [1], [3]]).tolist() == [3, 2, 3]


def test_multi_ground_truth_takes_the_minimum_rank():
    row = torch.tensor([[0.1, 0.9, 0.5, 0.7, 0.3]])
    assert gt_ranks(row, [[0]]).item() == 4
    assert gt_ranks(row, [[0, 2]]).item() == 2
    assert gt_ranks(row, [[2, 0, 3]]).item() == 1


def test_correct_candidates_never_count_against_each_other():
    # two captions of the video tie at the top: the video's best caption is first
    row = torch.tensor([[0.9, 0.9, 0.2]])
    assert gt_ranks(row, [[0, 1]]).item() == 0
    # a wrong caption in the tie is counted as ahead (pessimistic), the other correct one is not
    row = torch.tensor([[0.9, 0.9, 0.9, 0.2]])
    assert gt_ranks(row, [[0, 1]]).item() == 1
    assert gt_ranks(row, [[0]]).item() == 2


def test_chunked_ranks_equal_one_block():
    g = torch.Generator().manual_seed(1)
    sim = torch.randint(0, 5, (37, 11), generator=g).float()  # many ties
    pos = [[int(q % 11)] + ([int((q * 7) % 11)] if q % 3 == 0 else []) for q in range(37)]
    assert torch.equal(gt_ranks(sim, pos, chunk=4), gt_ranks(sim, pos, chunk=10_000))


def test_gt_ranks_input_checks():
    with pytest.raises(ValueError):
        gt_ranks(S, [[0], [1]])
    with pytest.raises(ValueError, match="query 1"):
        gt_ranks(S, [[0], [], [1]])
    with pytest.raises(ValueError, match="outside"):
        gt_ranks(S, [[0], [4], [1]])
    with pytest.raises(ValueError, match="NaN"):
        gt_ranks(torch.tensor([[0.1, float("nan")]]), [[0]])


def test_per_class_accuracy_hand_computed():
    logits = torch.tensor(
        [
            [3.0, 2, 1],  # label 0: rank 0
            [1.0, 2, 3],  # label 0: rank 2
            [1.0, 3, 2],  # label 1: rank 0
        ]
    )
    per = per_class_accuracy(logits, torch.tensor([0, 0, 1]), ["a", "b", "c"])
    assert per == {"a": {"n": 2, "top1": 0.5, "top5": 1.0}, "b": {"n": 1, "top1": 1.0, "top5": 1.0}}


def test_recall_metrics_are_one_based():
    ranks = torch.tensor([0, 2, 1, 7, 12])
    m = recall_metrics(ranks, "t2v")
    assert m["t2v_r1"] == pytest.approx(1 / 5)
    assert m["t2v_r5"] == pytest.approx(3 / 5)
    assert m["t2v_r10"] == pytest.approx(4 / 5)
    assert m["t2v_medr"] == 3.0  # median 0-based rank 2, +1
    assert m["t2v_meanr"] == pytest.approx(22 / 5 + 1)
    assert set(m) == {"t2v_r1", "t2v_r5", "t2v_r10", "t2v_medr", "t2v_meanr"}


def test_median_rank_of_an_even_number_of_queries():
    m = recall_metrics(torch.tensor([0, 3]), "t2v")
    assert m["t2v_medr"] in (2.0, 2.5)


def test_retrieval_metrics_square():
    sim = S[:, :3]  # 3 texts x 3 videos, text i describes video i
    m = retrieval_metrics(sim, [0, 1, 2])
    # T2V ranks [0, 2, 0]; V2T (columns) ranks [0, 0, 1]
    assert m["t2v_r1"] == pytest.approx(2 / 3) and m["t2v_r5"] == 1.0
    assert m["t2v_medr"] == 1.0 and m["t2v_meanr"] == pytest.approx(2 / 3 + 1)
    assert m["v2t_r1"] == pytest.approx(2 / 3)
    assert m["v2t_medr"] == 1.0 and m["v2t_meanr"] == pytest.approx(1 / 3 + 1)


def test_retrieval_metrics_hand_computed_with_several_captions_per_video():
    # 4 texts x 2 videos; texts 0, 1 describe video 0, texts 2, 3 video 1
    sim = torch.tensor(
        [
            [0.2, 0.8],  # text 0 -> video 0: rank 1
            [0.9, 0.1],  # text 1 -> video 0: rank 0
            [0.3, 0.3],  # text 2 -> video 1: tie -> rank 1
            [0.0, 0.6],  # text 3 -> video 1: rank 0
        ]
    )
    m = retrieval_metrics(sim, [0, 0, 1, 1])
    assert m["t2v_r1"] == pytest.approx(0.5)
    assert m["t2v_meanr"] == pytest.approx(1.5)
    # video 0 over texts [0.2, 0.9, 0.3, 0.0]: text 1 is first -> rank 0
    # video 1 over texts [0.8, 0.1, 0.3, 0.6]: text 3 ranks 1, text 2 ranks 2 -> min 1
    assert m["v2t_r1"] == pytest.approx(0.5)
    assert m["v2t_meanr"] == pytest.approx(1.5)
    assert m["v2t_r5"] == 1.0


def test_retrieval_metrics_perfect_and_constant():
    eye = torch.eye(4)
    m = retrieval_metrics(eye, [0, 1, 2, 3])
    assert m["t2v_r1"] == m["v2t_r1"] == 1.0 and m["t2v_medr"] == m["v2t_medr"] == 1.0
    const = retrieval_metrics(torch.zeros(4, 4), [0, 1, 2, 3])
    assert const["t2v_r1"] == const["v2t_r1"] == 0.0
    assert const["t2v_meanr"] == const["v2t_meanr"] == 4.0
    # bf16 input is ranked in fp32 without error
    assert retrieval_metrics(eye.bfloat16(), [0, 1, 2, 3])["t2v_r1"] == 1.0


def test_topk_accuracy_and_avg():
    logits = torch.tensor(
        [
            [5.0, 1, 2, 3, 4, 0],  # label 0: rank 0
            [5.0, 1, 2, 3, 4, 0],  # label 4: rank 1
            [5.0, 1, 2, 3, 4, 0],  # label 1: rank 4
            [5.0, 1, 2, 3, 4, 0],  # label 5: rank 5
            [1.0, 1, 1, 1, 1, 1],  # label 2: constant -> rank 5
        ]
    )
    labels = torch.tensor([0, 4, 1, 5, 2])
    acc = topk_accuracy(logits, labels)
    assert acc["top1"] == pytest.approx(1 / 5)
    assert acc["top5"] == pytest.approx(3 / 5)
    assert acc["avg"] == pytest.approx(2 / 5)
    only1 = topk_accuracy(logits, labels, ks=(1,))
    assert set(only1) == {"top1"}


# ---------------------------------------------------------------- classification


def _unit(*v):
    t = torch.tensor(v, dtype=torch.float32)
    return t / t.norm()


def test_class_scores_ensembles_hand_computed():
    v = torch.stack([_unit(1, 0, 0), _unit(0, 1, 0)])
    r = math.sqrt(0.75)
    prompt = torch.stack(
        [
            torch.stack([_unit(0.6, 0.8, 0), _unit(0.6, 0.8, 0)]),  # class A: identical prompts, mean norm 1
            torch.stack([_unit(0.5, 0, r), _unit(0.5, 0, -r)]),  # class B: mean (0.5, 0, 0), norm 0.5
        ]
    )
    clip = class_scores(v, prompt, "clip")
    vic = class_scores(v, prompt, "viclip")
    assert clip.shape == vic.shape == (2, 2)
    assert torch.allclose(clip, torch.tensor([[0.6, 1.0], [0.8, 0.0]]), atol=1e-6)
    assert torch.allclose(vic, torch.tensor([[0.6, 0.5], [0.8, 0.0]]), atol=1e-6)
    # the rules disagree on video 0's class because class B's mean prompt is shorter
    assert clip[0].argmax() == 1 and vic[0].argmax() == 0


def test_class_scores_match_loops_on_random_embeddings():
    g = torch.Generator().manual_seed(0)
    v = F.normalize(torch.randn(5, 8, generator=g), dim=-1)
    p = F.normalize(torch.randn(3, 4, 8, generator=g), dim=-1)
    clip = class_scores(v, p, "clip")
    vic = class_scores(v, p, "viclip")
    for i in range(5):
        for c in range(3):
            mean = p[c].mean(0)
            assert clip[i, c].item() == pytest.approx(float(v[i] @ (mean / mean.norm())), abs=1e-5)
            assert vic[i, c].item() == pytest.approx(float(sum(v[i] @ p[c, k] for k in range(4)) / 4), abs=1e-5)
    assert not torch.allclose(clip, vic)
    # with one prompt per class the two rules coincide
    assert torch.allclose(class_scores(v, p[:, :1], "clip"), class_scores(v, p[:, :1], "viclip"), atol=1e-6)


def test_unknown_ensemble_raises():
    with pytest.raises(ValueError, match="dsl"):
        class_scores(torch.eye(2), torch.eye(2).unsqueeze(1), "dsl")


def test_prompts_are_class_major():
    assert prompts(["a", "b"], ["x {}", "{} y"]) == ["x a", "a y", "x b", "b y"]


def test_zero_shot_accuracy():
    v = torch.eye(3)
    p = torch.eye(3).unsqueeze(1).repeat(1, 2, 1)
    acc = zero_shot_accuracy(v, p, torch.tensor([0, 1, 0]), "clip")
    assert acc["top1"] == pytest.approx(2 / 3) and acc["top5"] == 1.0
