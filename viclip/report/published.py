"""The InternVid paper's published ViCLIP numbers: the reference row of paper-scale tables.

Sources (tags as in the project's ViCLIP spec, section 6):

- [P] InternVid: A Large-scale Video-Text Dataset for Multimodal Understanding
  and Generation, arXiv 2307.06942 v2 (4 Jan 2024), https://arxiv.org/abs/2307.06942.
  Table numbers follow v2 (the ICLR camera-ready numbers its tables differently).
- [R-Data] OpenGVLab/InternVideo, ``Data/InternVid/README.md`` at commit
  3965eef16e2dadd0ea6c8d0cc29c8a3039df52e3 (its Table 1 adds the ViCLIP-B rows).

Values are percentages as printed, for the model trained on InternVid-10M-FLT
(the paper's headline data). A metric the sources do not report is absent and
renders as a blank cell: nothing here is estimated or derived.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from viclip.eval.catalog import columns

ZS_CLS = "Zero-shot classification"
ZS_RET = "Zero-shot retrieval R@1"
FT_CLS = "Fine-tuned classification"
FT_RET = "Fine-tuned retrieval R@1"

PAPER = "InternVid paper (arXiv 2307.06942v2)"
README = "InternVid README (OpenGVLab/InternVideo, Data/InternVid/README.md @ 3965eef)"


@dataclass(frozen=True)
class Published:
    """One published model: its catalog-keyed values and where each block comes from."""

    model: str  # the config's model.name this row stands beside
    display: str  # e.g. "ViCLIP-L/14"
    data: str  # pretraining data of the published model
    values: Mapping[str, float]  # catalog column key -> percent
    sources: Mapping[str, str]  # catalog group -> short source, e.g. "paper Tab. 3"
    notes: tuple[str, ...] = field(default=())  # protocol differences a reader must know

    def label(self, group: str) -> str:
        """Row label for one table block, naming its source table."""
        return f"{self.display} published ({self.sources[group]})"

    def groups(self) -> list[str]:
        """Catalog groups with at least one published value, in catalog order."""
        present = {key for key in self.values}
        return list(dict.fromkeys(c.group for c in columns() if c.key in present))


def _keyed(group: str, benchmark_values: dict[str, tuple[float, float]]) -> dict[str, float]:
    """Two metrics per benchmark, in the group's catalog order -> {column key: value}."""
    out = {}
    for bench, pair in benchmark_values.items():
        cols = [c for c in columns() if c.group == group and c.benchmark == bench]
        if len(cols) != 2:
            raise ValueError(f"catalog group {group!r} has {len(cols)} columns for {bench!r}, expected 2")
        out.update({c.key: float(v) for c, v in zip(cols, pair)})
    return out


# ViCLIP-L/14, InternVid-10M-FLT: [P Tab. 3] zero-shot K400/600/700 (top-1, AVG);
# [P Tab. 5] zero-shot R@1 (T2V, V2T); [P Tab. 4] fine-tuned K400/SSv2 (top-1,
# top-5); [P Tab. 6] fine-tuned R@1 (T2V, V2T).
VICLIP_L14 = Published(
    model="viclip-l14",
    display="ViCLIP-L/14",
    data="InternVid-10M-FLT",
    values=MappingProxyType(
        {
            **_keyed(ZS_CLS, {"k400": (64.80, 75.70), "k600": (62.20, 73.53), "k700": (54.30, 66.38)}),
            **_keyed(
                ZS_RET,
                {
                    "msrvtt": (42.4, 41.3),
                    "lsmdc": (20.1, 16.9),
                    "didemo": (18.4, 27.9),
                    "msvd": (49.1, 75.1),
                    "anet": (15.1, 24.0),
                },
            ),
            **_keyed(FT_CLS, {"k400": (86.8, 97.5), "ssv2": (71.2, 93.2)}),
            **_keyed(
                FT_RET,
                {
                    "msrvtt": (52.5, 51.8),
                    "lsmdc": (33.0, 32.5),
                    "didemo": (49.4, 50.2),
                    "msvd": (77.2, 79.0),
                    "anet": (49.8, 48.1),
                },
            ),
        }
    ),
    sources=MappingProxyType(
        {ZS_CLS: "paper Tab. 3", ZS_RET: "paper Tab. 5", FT_CLS: "paper Tab. 4", FT_RET: "paper Tab. 6"}
    ),
    notes=("the paper's fine-tuned retrieval uses 12 frames and re-ranks with a matching head (VTC + VTM)",),
)

# ViCLIP-B/16, InternVid-10M-FLT: [R-Data README Tab. 1] zero-shot K400/600/700,
# the same numbers as the "InternVid (ours)" row of [P Tab. 11], which also
# gives zero-shot and fine-tuned MSR-VTT R@1. The sources report no other B/16 metric.
VICLIP_B16 = Published(
    model="viclip-b16",
    display="ViCLIP-B/16",
    data="InternVid-10M-FLT",
    values=MappingProxyType(
        {
            **_keyed(ZS_CLS, {"k400": (58.52, 71.11), "k600": (55.37, 68.27), "k700": (47.09, 59.98)}),
            **_keyed(ZS_RET, {"msrvtt": (38.6, 38.5)}),
            **_keyed(FT_RET, {"msrvtt": (49.0, 49.2)}),
        }
    ),
    sources=MappingProxyType(
        {ZS_CLS: "README Tab. 1, paper Tab. 11", ZS_RET: "paper Tab. 11", FT_RET: "paper Tab. 11"}
    ),
    notes=("the paper's fine-tuned retrieval uses 12 frames and re-ranks with a matching head (VTC + VTM)",),
)

PUBLISHED: Mapping[str, Published] = MappingProxyType({p.model: p for p in (VICLIP_L14, VICLIP_B16)})


def reference_for(model_name: str, synthetic: bool) -> Published | None:
    """The published row to show beside our runs, or None.

    None on synthetic stand-ins (the paper's numbers would mean nothing next
    to them) and for models the paper did not publish (e.g. the tiny default).
    """
    if synthetic:
        return None
    return PUBLISHED.get(model_name)


def citation(ref: Published) -> str:
    """One sentence naming the model, its data and the full sources."""
    used = {s for s in ref.sources.values()}
    docs = [PAPER] + ([README] if any("README" in s for s in used) else [])
    return (
        f"{ref.display} trained on {ref.data} as published in the {' and the '.join(docs)}, "
        "the source table named in each row"
    )
