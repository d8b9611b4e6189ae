"""Dual-softmax (DSL) re-ranking, as ViCLIP's evaluation computes it.

ViCLIP (InternVideo1/Pretrain/ViCLIP tasks/retrieval_utils.py,
`evaluation_video_clip`) multiplies each query-by-candidate score matrix by
its own softmax taken over the *query* axis, at temperature 1 on raw cosine
similarities: a candidate's score for a query is scaled by how strongly that
candidate prefers this query over every other one (CAMoE's DSL; see
evaluation_protocols.md §3). It uses every test query at once, so it is
transductive: its metrics are recorded under `dsl_` keys and never replace
the plain ones.
"""

from __future__ import annotations

import torch

TEMPERATURE = 1.0
INPUT = "cosine"


def dual_softmax(scores_qc: torch.Tensor, temperature: float = TEMPERATURE) -> torch.Tensor:
    """scores_qc: [queries, candidates] cosine similarities -> re-ranked scores, fp32."""
    if temperature <= 0:
        raise ValueError(f"DSL temperature must be positive, got {temperature}")
    s = scores_qc.float()
    return s * torch.softmax(s / temperature, dim=0)


def describe(temperature: float = TEMPERATURE) -> dict:
    return {
        "temperature": temperature,
        "input": INPUT,
        "softmax_axis": "queries",
        "transductive": "uses every test query at once",
    }
