# Run naming, config checks and input functions. Everything a rule reads from
# the config goes through `params:` so that changing a key reruns exactly the
# jobs that read it.

import os
import sys
from pathlib import Path

# Jobs import the library of this checkout, whatever else is installed, so a
# clone runs its own code (scripts run from .snakemake/scripts/, not here).
sys.path.insert(0, workflow.basedir)
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [workflow.basedir, os.environ.get("PYTHONPATH")]))

from viclip.config import resolve_kinds, validate
from viclip.eval.catalog import finetune_tasks, zeroshot_benchmarks
from viclip.report.ablations import ablations
from viclip.train.arms import arm_schedule

SCHEMA = Path(workflow.basedir) / "configs" / "schema.yaml"
config.update(resolve_kinds(config, workflow.config_settings.overwrite_config, SCHEMA))
validate(config, SCHEMA, "config")

ARMS = list(config["arms"])
SEEDS = config["seeds"]
CORPUS = config["corpus"]["name"]
# The corpus is either rendered here (synthetic) or InternVid: released
# metadata, a subset of it, then clips downloaded and cut from YouTube.
CORPUS_KIND = "internvid" if "metadata" in config["corpus"] else "synthetic"
BENCHMARKS = list(config["benchmarks"])
# A benchmark slot is either a synthetic stand-in (rendered here) or a user's
# local copy of the real benchmark (declared with a `reader`).
REAL_BENCHMARKS = [b for b, s in config["benchmarks"].items() if "reader" in s]
RENDERED_BENCHMARKS = [b for b in BENCHMARKS if b not in REAL_BENCHMARKS]
ZEROSHOT = list(zeroshot_benchmarks())
FINETUNE = list(finetune_tasks())


wildcard_constraints:
    arm="|".join(ARMS),
    seed=r"\d+",
    bench="|".join(BENCHMARKS),
    task="|".join(FINETUNE),
    corpus=r"[A-Za-z0-9_-]+",


# One figure per ablation: `report.ablations`, or how each arm differs from the baseline.
ABLATIONS = ablations(config["arms"], config["report"]["baseline"], config["report"].get("ablations"))

REPORT_OUTPUTS = [
    "results/tables/ablation.tex",
    "results/tables/ablation.csv",
    "results/tables/compute.csv",
    "results/tables/ablation.html",
    "results/figures/ablation_deltas.png",
    "results/figures/ablation_deltas.pdf",
    "results/figures/training_curves.png",
] + [f"results/figures/ablations/{a.name}.{ext}" for a in ABLATIONS for ext in ("png", "pdf")]


def canonical(value):
    """A copy with every mapping's keys sorted.

    Snakemake compares params by their text, and a dict's text follows key
    order: without this, the same settings written in another order (another
    --configfile, a YAML dump) would rerun every job.
    """
    if isinstance(value, dict):
        return {k: canonical(value[k]) for k in sorted(value)}
    if isinstance(value, list):
        return [canonical(v) for v in value]
    return value


def one_of(names):
    """A wildcard regex matching exactly `names` (nothing at all when empty)."""
    return "|".join(names) if names else "(?!)"


def user_file(path, key):
    """A file the user supplies, as a job input once it exists.

    Until then the job takes it as a parameter and fails with a message naming
    the config key, so the whole DAG can be planned (`-n`) before the data is
    fetched.
    """
    if Path(path).exists():
        return [path]
    logger.warning(f"{key}: {path} does not exist yet; jobs that read it will fail until it does")
    return []


def corpus_clips():
    """The clip table captioners and pretraining read (paths relative to the corpus folder)."""
    if CORPUS_KIND == "internvid":
        return f"results/data/{CORPUS}/clips.parquet"
    return f"results/data/{CORPUS}/frames.parquet"


def bench_dir(bench):
    return f"results/data/benchmarks/{bench}"


# Each arm's pretraining settings: the shared block with the arm's own schedule (viclip.train.arms),
# worked out once when the workflow loads, so a bad `match_compute` stops it here.
ARM_SCHEDULES = {arm: canonical(arm_schedule(arm, config["arms"], config["pretrain"], config["model"])) for arm in ARMS}


def arm_train_settings(wildcards):
    return ARM_SCHEDULES[wildcards.arm]


def arm_mask_ratio(wildcards):
    return config["arms"][wildcards.arm]["mask_ratio"]


def arm_captions(wildcards):
    variant = config["arms"][wildcards.arm]["captions"]
    return f"results/captions/{CORPUS}/{variant}.parquet"


def benchmark_settings(wildcards):
    return canonical(config["benchmarks"][wildcards.bench])


def benchmark_decoding(wildcards):
    """How a benchmark's frame cache is decoded.

    Rendered stand-ins keep every frame at their own size. Real benchmarks are
    decoded once for all the runs that score them: the segment-middle frames,
    resized to the model's input as ViCLIP tests, with PyAV retrying what
    decord rejects.
    """
    if wildcards.bench not in REAL_BENCHMARKS:
        return {}
    m = config["model"]
    return {"size": m.get("image_size", 224), "num_frames": m.get("num_frames", 8), "fallback": True}


def run_seed(wildcards):
    return int(wildcards.seed)


def all_records(wildcards):
    return expand("results/eval/{arm}/seed{seed}/{bench}-zeroshot.json", arm=ARMS, seed=SEEDS, bench=ZEROSHOT) + expand(
        "results/eval/{arm}/seed{seed}/{task}-finetuned.json", arm=ARMS, seed=SEEDS, task=FINETUNE
    )
