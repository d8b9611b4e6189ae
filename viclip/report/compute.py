"""The compute axis of the masking ablation: what each arm's pretraining cost.

Analytic FLOPs (viclip.model.flops) for the pairs each stage actually
processed, next to the measured training seconds from the runs' logs, so the
table shows what masking saves and what it costs in accuracy side by side.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from viclip.model.flops import count
from viclip.model.viclip import ViCLIPConfig
from viclip.train.pretrain import epoch_steps, stages

UNITS = ((1e18, "EFLOPs"), (1e15, "PFLOPs"), (1e12, "TFLOPs"), (1e9, "GFLOPs"), (1.0, "FLOPs"))


def pretraining_flops(model: dict, train: dict, mask_ratio: float, n_clips: int) -> float:
    """FLOPs of all training steps of one run (every stage, every epoch)."""
    cfg = ViCLIPConfig.from_dict(model)
    total = 0.0
    for stage in stages(train, mask_ratio):
        pairs = sum(epoch_steps(n_clips, stage.epochs, stage.batch_size)) * stage.batch_size
        total += pairs * count(cfg, stage.mask_ratio)["flops_train_step_per_pair"]
    return total


def measured_seconds(log_path: str | Path) -> float:
    """Training seconds a run logged (its last log line's running total)."""
    lines = Path(log_path).read_text().splitlines()
    if not lines:
        raise ValueError(f"{log_path}: empty training log")
    try:
        return float(json.loads(lines[-1])["seconds"])
    except (json.JSONDecodeError, KeyError) as exc:
        raise ValueError(f"{log_path}: last line has no 'seconds' field") from exc


def compute_table(
    arms: list[str],
    baseline: str,
    model: dict,
    train: dict[str, dict],
    mask: dict[str, float],
    n_clips: int,
    logs: dict[str, list[str]],
) -> pd.DataFrame:
    """One row per arm: analytic PFLOPs, measured seconds (mean, std over seeds), both relative to the baseline."""
    rows = []
    for arm in arms:
        secs = np.array([measured_seconds(p) for p in logs[arm]])
        rows.append(
            {
                "arm": arm,
                "mask_ratio": mask[arm],
                "flops": pretraining_flops(model, train[arm], mask[arm], n_clips),
                "seconds_mean": secs.mean(),
                "seconds_std": secs.std(ddof=1) if len(secs) > 1 else float("nan"),
                "n_seeds": len(secs),
            }
        )
    df = pd.DataFrame(rows)
    base = df.set_index("arm").loc[baseline]
    df["flops_vs_baseline"] = df["flops"] / base["flops"]
    df["seconds_vs_baseline"] = df["seconds_mean"] / base["seconds_mean"]
    return df


def render_compute(df: pd.DataFrame, labels: dict[str, str]) -> str:
    """A booktabs block for the table float: cost per arm."""
    from viclip.report.table import latex_escape

    scale, unit = next((s, u) for s, u in UNITS if df["flops"].max() >= s)
    out = [
        "\\resizebox{\\ifdim\\width>\\textwidth\\textwidth\\else\\width\\fi}{!}{%",
        "\\begin{tabular}{lccccc}",
        "\\toprule",
        f"\\textit{{Pretraining cost}} & mask ratio & {unit} & $\\times$ baseline & seconds & $\\times$ baseline \\\\",
        "\\midrule",
    ]
    for r in df.itertuples():
        std = "" if np.isnan(r.seconds_std) else f"$\\pm${r.seconds_std:.1f}"
        out.append(
            f"{latex_escape(labels.get(r.arm, r.arm))} & {r.mask_ratio:g} & {r.flops / scale:.3g} & "
            f"{r.flops_vs_baseline:.2f} & {r.seconds_mean:.1f}{std} & {r.seconds_vs_baseline:.2f} \\\\"
        )
    out += ["\\bottomrule", "\\end{tabular}%", "}"]
    return "\n".join(out)
