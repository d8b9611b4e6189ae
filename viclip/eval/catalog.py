"""The metrics the ablation table reports, grouped as in the ablation plan.

Each column names the evaluation record it comes from
(``results/eval/{arm}/seed{seed}/{benchmark}-{protocol}.json``) and the key in
that record's ``metrics``. Values in records are fractions in [0, 1]; the
report renders percentages.
"""

from __future__ import annotations

from dataclasses import dataclass

CLASSIFICATION_ZS = ("k400", "k600", "k700")
CLASSIFICATION_FT = ("k400", "ssv2")
RETRIEVAL = ("msrvtt", "lsmdc", "didemo", "msvd", "anet")
BENCHMARKS = ("k400", "k600", "k700", "ssv2", "msrvtt", "lsmdc", "didemo", "msvd", "anet")

DISPLAY = {
    "k400": "K400",
    "k600": "K600",
    "k700": "K700",
    "ssv2": "SSv2",
    "msrvtt": "MSR-VTT",
    "lsmdc": "LSMDC",
    "didemo": "DiDeMo",
    "msvd": "MSVD",
    "anet": "ANet",
}


@dataclass(frozen=True)
class Column:
    group: str  # table block, e.g. "Zero-shot classification"
    benchmark: str  # slot name, e.g. "k400"
    protocol: str  # "zeroshot" or "finetuned"
    metric: str  # key in the record's metrics, e.g. "top1", "t2v_r1"
    label: str  # short column header, e.g. "top-1"

    @property
    def key(self) -> str:
        return f"{self.benchmark}/{self.protocol}/{self.metric}"


def columns() -> list[Column]:
    """All reported metric columns, in table order (30 numbers for the plan's 26 items)."""
    cols: list[Column] = []
    for b in CLASSIFICATION_ZS:
        cols.append(Column("Zero-shot classification", b, "zeroshot", "top1", "top-1"))
        cols.append(Column("Zero-shot classification", b, "zeroshot", "avg", "AVG"))
    for b in RETRIEVAL:
        cols.append(Column("Zero-shot retrieval R@1", b, "zeroshot", "t2v_r1", "T2V"))
        cols.append(Column("Zero-shot retrieval R@1", b, "zeroshot", "v2t_r1", "V2T"))
    for b in CLASSIFICATION_FT:
        cols.append(Column("Fine-tuned classification", b, "finetuned", "top1", "top-1"))
        cols.append(Column("Fine-tuned classification", b, "finetuned", "top5", "top-5"))
    for b in RETRIEVAL:
        cols.append(Column("Fine-tuned retrieval R@1", b, "finetuned", "t2v_r1", "T2V"))
        cols.append(Column("Fine-tuned retrieval R@1", b, "finetuned", "v2t_r1", "V2T"))
    return cols


def zeroshot_benchmarks() -> tuple[str, ...]:
    return CLASSIFICATION_ZS + RETRIEVAL


def finetune_tasks() -> tuple[str, ...]:
    return CLASSIFICATION_FT + RETRIEVAL
