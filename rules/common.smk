# Config checks, run naming and every decision the rules take: input, params
# and resource functions (get_*). Everything a rule reads from the config goes
# through `params:` so that changing a key reruns exactly the jobs that read
# it; each rule's `code` param is a digest of the library code its script runs
# (viclip/codehash.py), so a library edit reruns exactly the jobs it affects.

import dataclasses
import functools
import os
import sys
from pathlib import Path

# Jobs import the library of this checkout, whatever else is installed, so a
# clone runs its own code (scripts run from .snakemake/scripts/, not here).
# `snakemake --lint` asks for PYTHONPATH in `envvars:`, which would make the
# user set it; it is set here instead, for every job this process starts.
sys.path.insert(0, workflow.basedir)
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [workflow.basedir, os.environ.get("PYTHONPATH")]))

from viclip.captions.settings import ExecutionSettings
from viclip.codehash import code_digest
from viclip.config import resolve_kinds, validate
from viclip.eval.catalog import finetune_tasks, zeroshot_benchmarks
from viclip.eval.protocol import finetuned_settings, zeroshot_settings
from viclip.model.config import ViCLIPConfig
from viclip.model.flops import params as model_params
from viclip.report.ablations import ablations
from viclip.report.intervals import Intervals
from viclip.train.arms import arm_schedule, released_arms, released_seed, trained_arms
from viclip.train.execution import Execution
from viclip.train.recipe import task_recipe

SCHEMA = Path(workflow.basedir) / "configs" / "schema.yaml"
config.update(resolve_kinds(config, workflow.config_settings.overwrite_config, SCHEMA))
validate(config, SCHEMA, "config")

ARMS = list(config["arms"])
SEEDS = config["seeds"]
# Arms with `pretrain: false` are released weights: imported, not trained, and
# run once, under the first seed (viclip.train.arms.released_seed says why).
TRAINED_ARMS = trained_arms(config["arms"])
RELEASED_ARMS = released_arms(config["arms"])
RELEASED_SEED = released_seed(SEEDS)
RUNS = [(arm, seed) for arm in TRAINED_ARMS for seed in SEEDS] + [(arm, RELEASED_SEED) for arm in RELEASED_ARMS]
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


# Files and folders the user supplies, by the config key that names each. A
# dry run lists the missing ones in one block, so a paper-scale run learns of a
# missing CLIP file or video folder at planning time, not after days of
# download and captioning. A missing one is left out of its jobs' inputs (so
# the DAG still plans) and the job that reads it fails naming the key.
WEIGHT_SUFFIXES = (".bin", ".pt", ".pth", ".safetensors")


def external_files():
    files = {}
    if CORPUS_KIND == "internvid":
        files["corpus.metadata"] = config["corpus"]["metadata"]
        download = config["corpus"]["download"]
        if download["source"] == "local":
            files["corpus.download.local_dir"] = download.get("local_dir") or ""
    for arm in RELEASED_ARMS:
        files[f"arms.{arm}.checkpoint"] = config["arms"][arm]["checkpoint"]
    model = ViCLIPConfig.from_dict(config["model"])
    if model.init == "clip":
        if model.clip_name.endswith(".json"):
            files["model.clip_name"] = model.clip_name
        # anything else is an open_clip tag, fetched by open_clip where the hub is reachable
        if "/" in model.clip_pretrained or model.clip_pretrained.endswith(WEIGHT_SUFFIXES):
            files["model.clip_pretrained"] = model.clip_pretrained
    for bench in REAL_BENCHMARKS:
        settings = config["benchmarks"][bench]
        for key, path in sorted(settings["annotations"].items()):
            files[f"benchmarks.{bench}.annotations.{key}"] = path
        files[f"benchmarks.{bench}.video_root"] = settings["video_root"]
    return files


EXTERNAL_FILES = external_files()
MISSING_FILES = {key: path for key, path in EXTERNAL_FILES.items() if not path or not Path(path).exists()}
if MISSING_FILES:
    logger.warning(
        f"{len(MISSING_FILES)} file(s) the config names do not exist yet; the jobs that read them fail until they do:\n"
        + "\n".join(f"  {key}: {path or '(not set)'}" for key, path in MISSING_FILES.items())
    )


def user_file(key):
    """The file or folder config key `key` names, as a job input once it exists."""
    return [] if key in MISSING_FILES else [EXTERNAL_FILES[key]]


def get_clip_files(wildcards):
    """The CLIP config and weights a clip-initialised run starts from (pretraining, and WiSE-FT's init)."""
    return [f for key in ("model.clip_name", "model.clip_pretrained") if key in EXTERNAL_FILES for f in user_file(key)]


def get_download_source(wildcards):
    """The folder of full videos a `local` download cuts from (none for YouTube)."""
    return user_file("corpus.download.local_dir") if "corpus.download.local_dir" in EXTERNAL_FILES else []


# An InternVid download runs as `download.shards` jobs (viclip/data/shards.py). The shard count is not
# in the download settings param: it reaches the shard jobs as their `shard` param, so changing it reruns
# the shard jobs, their gather and what reads the manifest, and nothing upstream.
DOWNLOAD = config["corpus"].get("download", {}) if CORPUS_KIND == "internvid" else {}
DOWNLOAD_SHARDS = DOWNLOAD.get("shards", 1)


def get_download_settings():
    return canonical({k: v for k, v in DOWNLOAD.items() if k != "shards"})


def get_download_resources():
    """A shard job's memory and time limit, and a CPU per worker (a profile's default of 1 would starve the cuts)."""
    return {**get_resources("download_clips"), "cpus_per_task": DOWNLOAD.get("workers", 8)}


def get_download_shard(wildcards):
    return {"shard": int(wildcards.shard), "shards": DOWNLOAD_SHARDS}


def get_download_shard_files(ext):
    """Every download shard's manifest (`parquet`) or summary (`json`), in shard order."""
    return lambda wildcards: [f"results/data/{wildcards.corpus}/download/{k}.{ext}" for k in range(DOWNLOAD_SHARDS)]


def get_benchmark_files(wildcards):
    """A real benchmark's annotation files and video folder."""
    prefix = f"benchmarks.{wildcards.bench}."
    return [f for key in EXTERNAL_FILES if key.startswith(prefix) for f in user_file(key)]


def get_code(script):
    """The `code` param for jobs of `script`: a digest of the library code it runs (viclip/codehash.py).

    Worked out when a job first needs it, once per script, not when the workflow
    loads: a cluster job step, which loads the workflow to run one job, then
    reads only its own script's modules.
    """
    digest = functools.cache(lambda: code_digest(workflow.basedir, Path(workflow.basedir) / "scripts" / script))
    return lambda wildcards: digest()


# Job sizes: the typed settings are the one source of defaults. Training jobs
# read `pretrain.execution` / `finetune.execution`, caption model jobs
# `captions.execution`; the rest are small fixed jobs. All are kept out of
# params: they change how a job runs, never what it computes.
PRETRAIN_EXECUTION = Execution.from_config(config["pretrain"].get("execution"), "pretrain.execution")
FINETUNE_EXECUTION = Execution.from_config(config["finetune"].get("execution"), "finetune.execution")
CAPTION_EXECUTION = ExecutionSettings.from_config(config["captions"].get("execution"))
SMALL_JOBS = {  # (mem_mb, runtime in minutes)
    "internvid_metadata": (4000, 60),
    "select_subset": (4000, 30),
    "download_clips": (8000, 24 * 60),  # per shard: size download.shards so a shard fits (docs/DATA.md)
    "gather_downloads": (8000, 30),
    "render_corpus": (2000, 60),
    "render_benchmark": (2000, 30),
    "decode_corpus": (4000, 60),
    "prepare_benchmark": (4000, 30),
    "decode_benchmark": (2000, 30),
    "caption_text": (2000, 30),
    "gather_captions": (4000, 30),
    "caption_stats": (2000, 10),
    "caption_sheet": (2000, 10),
    "evaluate_zeroshot": (3000, 30),
    "report": (1000, 10),
}


def get_resources(step):
    """The resources of a `step`'s jobs: a training step, `captions` (model jobs) or a SMALL_JOBS entry."""
    if step == "pretrain":
        return PRETRAIN_EXECUTION.resources()
    if step == "finetune":
        return FINETUNE_EXECUTION.resources()
    if step == "captions":
        ex = CAPTION_EXECUTION
        return {
            "mem_mb": ex.mem_mb,
            "runtime": ex.runtime_min,
            "gpu": ex.gpus if CAPTION_HF else 0,
            "cpus_per_task": ex.cpus,
        }
    if step == "import_released":  # the file, the model it fills and the copy saved, in fp32 (L/14: 1.7 GB each)
        tensors = model_params(ViCLIPConfig.from_dict(config["model"]))["params_total"]
        return {"mem_mb": 1000 + 12 * tensors // 2**20, "runtime": 30}
    mem_mb, runtime = SMALL_JOBS[step]
    return {"mem_mb": mem_mb, "runtime": runtime}


# --- data -------------------------------------------------------------------


def get_corpus_clips(wildcards=None):
    """The clip table captioners and pretraining read (paths relative to the corpus folder)."""
    if CORPUS_KIND == "internvid":
        return f"results/data/{CORPUS}/clips.parquet"
    return f"results/data/{CORPUS}/frames.parquet"


def bench_dir(bench):
    return f"results/data/benchmarks/{bench}"


def get_out_dir(wildcards):
    """The folder of a corpus or benchmark, where a job writes what is not an output (videos, ledgers)."""
    if "bench" in wildcards.keys():
        return bench_dir(wildcards.bench)
    return f"results/data/{wildcards.corpus}"


def get_bench_name(wildcards):
    return wildcards.bench


def get_benchmark_settings(wildcards):
    return canonical(config["benchmarks"][wildcards.bench])


def get_benchmark_decoding(wildcards):
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


def get_decode_threads(wildcards):
    return 4 if wildcards.bench in REAL_BENCHMARKS else 1


# --- captions -----------------------------------------------------------------

CAPTIONS = config["captions"]
CAPTION_SHARDS = list(range(CAPTIONS.get("shards", 1)))
CAPTION_FUSION = CAPTIONS.get("fusion", "concat")
CAPTION_HF = CAPTIONS["backend"] == "hf"
SHARE_FRAMES = CAPTION_HF and CAPTION_EXECUTION.share_frames
CAPTION_VARIANTS = ["coarse", "frames", "summary", "fused"]
CAPTION_OUTPUTS = (
    expand("results/captions/{corpus}/{variant}.parquet", corpus=CORPUS, variant=CAPTION_VARIANTS)
    + [f"results/captions/{CORPUS}/stats.json", f"results/captions/{CORPUS}/stats.tsv"]
    + expand("results/captions/{corpus}/shards/{shard}/sheet.png", corpus=CORPUS, shard=CAPTION_SHARDS)
)


def get_caption_params(part):
    """The captions keys one variant's output depends on: other keys' changes leave it alone."""
    c = CAPTIONS
    if part == "fused":
        out = {"fusion": CAPTION_FUSION}
        if CAPTION_FUSION == "summary_prompted":
            out["summarizer"] = c["hf"]["summarizer"]
        return canonical(out)
    out = {"backend": c["backend"]}
    if part == "frames":
        out["frames_per_clip"] = c["frames_per_clip"]
    if CAPTION_HF:
        role = "summarizer" if part == "summary" else part
        block = dict(c["hf"][role])
        if part == "summary":
            block.pop("fusion_prompt", None)  # read by fuse only
        return canonical({**out, "hf": {role: block}})
    out["seed"] = c["seed"]
    if part == "summary":
        return canonical(
            {**out, "summary_keeps_colour": c["summary_keeps_colour"], "noise": {"summary": c["noise"]["summary"]}}
        )
    if part == "coarse":
        out["coarse_detail"] = c["coarse_detail"]
    return canonical({**out, "noise": {part: c["noise"][part]}})


def get_captioners(*parts):
    """The image captioners' settings of a job that writes `parts` (coarse, frames or both)."""
    return {part: get_caption_params(part) for part in parts}


def get_caption_shard(wildcards):
    return {"shard": int(wildcards.shard), "shards": len(CAPTION_SHARDS)}


def get_fuse_inputs(wildcards):
    """concat fuses the coarse caption with the summary; summary_prompted has the LLM read the frame captions."""
    shard = f"results/captions/{wildcards.corpus}/shards/{wildcards.shard}"
    second = "frames" if CAPTION_FUSION == "summary_prompted" else "summary"
    return {"coarse": f"{shard}/coarse.parquet", second: f"{shard}/{second}.parquet"}


def get_fuse_resources(wildcards=None):
    """Prompted fusion runs the summarizer (a model job); concatenation is a small one."""
    return get_resources("captions" if CAPTION_FUSION == "summary_prompted" else "caption_text")


def get_caption_shards(wildcards):
    return expand(
        "results/captions/{corpus}/shards/{shard}/{variant}.parquet",
        corpus=wildcards.corpus,
        shard=CAPTION_SHARDS,
        variant=wildcards.variant,
    )


# --- pretraining ----------------------------------------------------------------

# Each arm's pretraining settings: the shared block with the arm's own schedule (viclip.train.arms),
# worked out once when the workflow loads, so a bad `match_compute` stops it here.
ARM_SCHEDULES = {
    arm: canonical(arm_schedule(arm, config["arms"], config["pretrain"], config["model"])) for arm in TRAINED_ARMS
}


def get_pretrain_corpus(wildcards):
    """The synthetic corpus trains from its decoded frame cache; a real one decodes its clip files on the fly."""
    if CORPUS_KIND == "synthetic":
        return {"frames": f"results/data/{CORPUS}/frames.npy", "index": f"results/data/{CORPUS}/frames.parquet"}
    return {"manifest": f"results/data/{CORPUS}/clips.parquet"}


def get_arm_schedule(wildcards):
    return ARM_SCHEDULES[wildcards.arm]


def get_arm_mask_ratio(wildcards):
    return config["arms"][wildcards.arm]["mask_ratio"]


def get_arm_captions(wildcards):
    variant = config["arms"][wildcards.arm]["captions"]
    return f"results/captions/{CORPUS}/{variant}.parquet"


def get_seed(wildcards):
    return int(wildcards.seed)


def get_released_file(wildcards):
    """The released weights a `pretrain: false` arm names (left out while missing: the job then names the key)."""
    return user_file(f"arms.{wildcards.arm}.checkpoint")


def get_released_key(wildcards):
    return f"arms.{wildcards.arm}.checkpoint"


def get_released_path(wildcards):
    """The released weights' path as a param: the import reads it from here, so a missing file fails naming
    its key, and pointing the arm at another file reruns its jobs."""
    return EXTERNAL_FILES[get_released_key(wildcards)]


# --- evaluation and fine-tuning -------------------------------------------------

# per_task: one job per run and task (a cluster fine-tunes a run's tasks in
# parallel, and a change to one benchmark reruns only its jobs); per_run: one
# job per run for all tasks, which on a CPU saves a torch start-up (~3 s) per
# task, most of a tiny fine-tune.
FINETUNE_PER_TASK = config["finetune"]["jobs"] == "per_task"
FINETUNE_EVALUATE = finetuned_settings(config["evaluate"])
# Each task's resolved recipe (viclip.train.recipe): the shared keys with finetune.tasks.<task> over them,
# worked out once when the workflow loads, so a bad per-task setting stops it here.
FINETUNE_MODEL = ViCLIPConfig.from_dict(config["model"])
FINETUNE_RECIPES = {
    task: canonical(
        task_recipe(
            task,
            {**config["finetune"], "evaluate": FINETUNE_EVALUATE},
            FINETUNE_MODEL.num_frames,
            FINETUNE_MODEL.context_length,
            FINETUNE_MODEL.drop_path,
            {k: config["pretrain"][k] for k in ("augment", "flip")},
        )
    )
    for task in FINETUNE
}
ZEROSHOT_SETTINGS = canonical(zeroshot_settings(config["evaluate"]))


def get_finetune_settings(wildcards):
    """The recipes and evaluation settings of a job's tasks, and nothing of other tasks.

    A per-task job's params carry only its own task's recipe and views, so
    editing one task's settings reruns only that task's jobs.
    """
    tasks = [wildcards.task] if "task" in wildcards.keys() else FINETUNE
    views = {t: v for t, v in FINETUNE_EVALUATE["views"].items() if t in tasks}
    return canonical(
        {"recipes": {t: FINETUNE_RECIPES[t] for t in tasks}, "evaluate": {**FINETUNE_EVALUATE, "views": views}}
    )


def get_finetune_plan(wildcards):
    tasks = [wildcards.task] if "task" in wildcards.keys() else FINETUNE
    return {"tasks": tasks, "bench_dirs": [bench_dir(t) for t in tasks]}


def get_finetune_train(wildcards=None):
    return canonical({k: config["pretrain"][k] for k in ("augment", "flip")})


# --- report -------------------------------------------------------------------


def get_records(wildcards):
    """Every run's records: each trained arm's seeds, each released arm's one run."""
    return [f"results/eval/{arm}/seed{seed}/{bench}-zeroshot.json" for arm, seed in RUNS for bench in ZEROSHOT] + [
        f"results/eval/{arm}/seed{seed}/{task}-finetuned.json" for arm, seed in RUNS for task in FINETUNE
    ]


def get_train_logs(wildcards=None):
    """The training logs the cost block and the curves read: trained arms only (released ones trained elsewhere)."""
    return expand("results/runs/{arm}/seed{seed}/log.jsonl", arm=TRAINED_ARMS, seed=SEEDS)


def get_report_params(wildcards=None):
    return {
        "arms": ARMS,
        "released": RELEASED_ARMS,
        "baseline": config["report"]["baseline"],
        "labels": {arm: settings["label"] for arm, settings in config["arms"].items()},
        "model": canonical(config["model"]),
        "train": ARM_SCHEDULES,
        "mask": {arm: config["arms"][arm]["mask_ratio"] for arm in TRAINED_ARMS},
        "ablations": [{"name": a.name, "title": a.title, "arms": list(a.arms)} for a in ABLATIONS],
        # report.intervals and report.bootstrap, defaults filled in: editing them reruns the report alone
        "intervals": dataclasses.asdict(Intervals.from_config(config["report"])),
    }
