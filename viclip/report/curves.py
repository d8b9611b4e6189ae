"""Training curves from the runs' ``log.jsonl``: loss and learning rate per epoch.

One colour per arm; every seed is a thin line and, with several seeds, the
mean over seeds is drawn thick on top. Epochs count through the stages in
order (masked or unmasked stage, then tuning), and the first tuning epoch of
each arm is marked, since its learning rate and masking change there.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from viclip.io import atomic_path
from viclip.report.figure import arm_colours

LOG_FIELDS = ("stage", "epoch", "loss", "lr")


def read_log(path: str | os.PathLike) -> pd.DataFrame:
    """One row per logged epoch, with ``x`` = 1-based epoch count through all stages.

    A line repeated for the same (stage, epoch) is an epoch redone after a
    resume; the last one counts. ValueError names the file and line of a bad line.
    """
    path = Path(path)
    rows: dict[tuple[str, int], dict] = {}
    for n, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as err:
            raise ValueError(f"{path}:{n}: not valid JSON ({err})") from err
        if not isinstance(rec, dict):
            raise ValueError(f"{path}:{n}: expected a JSON object")
        if rec.get("kind", "epoch") != "epoch":  # step lines (every log_every steps) are not epochs
            continue
        for key in LOG_FIELDS:
            if key not in rec:
                raise ValueError(f"{path}:{n}: missing field '{key}'")
        try:
            row = {
                "stage": str(rec["stage"]),
                "epoch": int(rec["epoch"]),
                "loss": float(rec["loss"]),
                "lr": float(rec["lr"]),
            }
        except (TypeError, ValueError) as err:
            raise ValueError(f"{path}:{n}: bad value ({err})") from err
        rows.pop((row["stage"], row["epoch"]), None)  # re-insert: keeps stage order by last write
        rows[(row["stage"], row["epoch"])] = row
    if not rows:
        raise ValueError(f"{path}: empty training log")
    df = pd.DataFrame(list(rows.values()))
    stage_order = list(dict.fromkeys(df["stage"]))
    df["stage_index"] = df["stage"].map({s: i for i, s in enumerate(stage_order)})
    df = df.sort_values(["stage_index", "epoch"], kind="stable").reset_index(drop=True)
    df["x"] = np.arange(1, len(df) + 1)
    return df.drop(columns="stage_index")


def plot_curves(
    logs: Mapping[str, Sequence[str | os.PathLike]],
    arm_labels: Mapping[str, str],
    path_png: str | os.PathLike,
    synthetic: bool,
) -> None:
    """Write ``curves_figure`` as PNG, atomically."""
    fig = curves_figure(logs, arm_labels, synthetic)
    with atomic_path(path_png) as tmp:
        fig.savefig(tmp, format="png", dpi=130)


def curves_figure(
    logs: Mapping[str, Sequence[str | os.PathLike]],
    arm_labels: Mapping[str, str],
    synthetic: bool,
) -> Figure:
    """Loss (left) and learning rate (right, log scale) per epoch; ``logs``: arm -> log files (one per seed)."""
    fig = Figure(figsize=(12, 4.6), layout="constrained")
    FigureCanvasAgg(fig)
    ax_loss, ax_lr = fig.subplots(1, 2)
    colours = arm_colours(logs)  # the delta figures' colours: an arm looks the same in every figure
    for arm, paths in logs.items():
        if not paths:
            raise ValueError(f"no training logs for arm '{arm}'")
        colour = colours[arm]
        runs = [read_log(p) for p in paths]
        several = len(runs) > 1
        for ax, field in ((ax_loss, "loss"), (ax_lr, "lr")):
            for i, run in enumerate(runs):
                label = None if several or i else arm_labels.get(arm, arm)
                ax.plot(
                    run["x"],
                    run[field],
                    color=colour,
                    linewidth=0.8 if several else 1.6,
                    alpha=0.45 if several else 1.0,
                    label=label,
                )
            if several:
                mean = _mean_over_seeds(runs, field)
                ax.plot(
                    mean.index,
                    mean.values,
                    color=colour,
                    linewidth=2.0,
                    label=f"{arm_labels.get(arm, arm)} (mean of {len(runs)} seeds)",
                )
            tune = runs[0].loc[runs[0]["stage"] == "tune", "x"]
            if len(tune):
                ax.axvline(float(tune.iloc[0]) - 0.5, color=colour, linewidth=0.8, linestyle=":")

    ax_loss.set_ylabel("contrastive loss (epoch mean)")
    ax_lr.set_ylabel("learning rate (end of epoch)")
    ax_lr.set_yscale("log")
    for ax in (ax_loss, ax_lr):
        ax.set_xlabel("epoch (first stage, then tuning; dotted: tuning starts)")
        ax.grid(linewidth=0.4, alpha=0.5)
        ax.xaxis.get_major_locator().set_params(integer=True)
    ax_loss.legend(fontsize=8.5)
    title = "Pretraining curves per arm (thin: one seed)"
    if synthetic:
        title += " — synthetic world"
    fig.suptitle(title, fontsize=11)
    return fig


def _mean_over_seeds(runs: list[pd.DataFrame], field: str) -> pd.Series:
    """Mean at each epoch count that every seed reached (seeds of one arm share a schedule)."""
    common = set(runs[0]["x"])
    for run in runs[1:]:
        common &= set(run["x"])
    xs = sorted(common)
    values = np.mean([run.set_index("x").loc[xs, field].to_numpy() for run in runs], axis=0)
    return pd.Series(values, index=xs, dtype=float) if xs else pd.Series(dtype=float)
