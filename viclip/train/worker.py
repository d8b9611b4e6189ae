"""One pretraining process: `python -m viclip.train.worker JOB.json` (torchrun starts one per rank).

JOB.json names the corpus (a frame cache: `frames` + `index`; or a download
`manifest` of clip files), the `captions`, the model, `pretrain` settings,
mask ratio, seed and outputs (`launch.job_spec` writes it). The process joins
the group torchrun describes, trains, and exits 0, or `PREEMPTED_EXIT` after
a signal made it save a resume point.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

from viclip.model.viclip import ViCLIPConfig
from viclip.train import launch
from viclip.train.corpus import load_corpus, load_video_corpus
from viclip.train.distributed import Dist
from viclip.train.pretrain import pretrain

log = logging.getLogger("viclip")


def run_job(spec: dict, dist: Dist) -> dict:
    model_cfg = ViCLIPConfig.from_dict(spec["model"])
    train = spec["train"]
    if spec.get("manifest"):  # a real corpus: clip files decoded on the fly
        source, captions = load_video_corpus(
            spec["manifest"],
            spec["captions"],
            model_cfg,
            train["augment"],
            train["flip"],
            Path(spec["out_dir"]) / "decode_failures.tsv",
            spec["seed"],
        )
    else:  # the synthetic corpus: its decoded frame cache
        source, captions = load_corpus(
            spec["frames"], spec["index"], spec["captions"], model_cfg, train["augment"], train["flip"]
        )
    log.info(
        "rank %d/%d on %s: %d clips, mask ratio %s", dist.rank, dist.world, dist.device, len(source), spec["mask_ratio"]
    )
    return pretrain(
        model_cfg,
        train,
        spec["mask_ratio"],
        source,
        captions,
        spec["seed"],
        spec["out_dir"],
        spec["log_path"],
        spec.get("execution"),
        dist,
    )


def main(argv: list[str] | None = None) -> int:
    return launch.worker_main(sys.argv[1:] if argv is None else argv, run_job, "viclip.train.worker")


if __name__ == "__main__":
    sys.exit(main())
