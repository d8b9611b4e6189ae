"""Per-task fine-tuning recipes (`finetune.tasks.<task>`), and text longer than the position table.

The recipe resolution is tested alone; then the real job (`run_job`) fine-tunes
a retrieval task at 150 tokens on test_finetune's benchmark files, with
captions whose only informative word lies beyond the tiny model's 8 positions,
so cutting the text instead of extending the table would score at chance.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from test_finetune import COLOURS, TINY, inputs, job, lines, write_bench  # noqa: F401  (inputs: a fixture)
from workflow_run import planned_jobs, reduced_config, smk

from viclip.eval.catalog import RETRIEVAL
from viclip.eval.protocol import finetuned_settings
from viclip.model.checkpoints import TEXT_POS_KEY, with_text_length
from viclip.model.factory import initial_model
from viclip.model.tokenizer import build_tokenizer
from viclip.train.distributed import Dist
from viclip.train.finetune import run_job
from viclip.train.recipe import task_recipe, warmup_steps

SHARED = {"jobs": "per_task", "epochs": 3, "batch_size": 8, "lr": 1e-3, "weight_decay": 0.05, "warmup_steps": 2}
TRAIN = {"augment": True, "flip": True}
LONG = 150


def resolve(task: str, block: dict, train: dict = TRAIN) -> dict:
    return task_recipe(task, block, 8, 32, 0.1, train)


def test_a_task_without_overrides_takes_the_shared_recipe_and_the_defaults():
    r = resolve("msrvtt", SHARED)
    assert r == {
        "augment": True,
        "batch_size": 8,
        "betas": [0.9, 0.98],  # the pretraining optimiser's, as before per-task recipes
        "crop_scale": [0.5, 1.0],
        "drop_path": 0.1,  # the model's
        "epochs": 3,
        "flip": True,  # pretrain.flip
        "frames": 8,
        "grad_clip": 0.0,
        "lr": 1e-3,
        "micro_batch": 0,
        "precision": "fp32",
        "text_length": 32,
        "warmup_steps": 2,
        "weight_decay": 0.05,
    }
    assert list(r) == sorted(r)


def test_overrides_apply_to_their_task_only():
    block = {**SHARED, "tasks": {"anet": {"lr": 4e-5, "epochs": 20, "text_length": 150, "drop_path": 0.2}}}
    anet, msrvtt = resolve("anet", block), resolve("msrvtt", block)
    assert (anet["lr"], anet["epochs"], anet["text_length"], anet["drop_path"]) == (4e-5, 20, 150, 0.2)
    assert msrvtt == resolve("msrvtt", SHARED)


def test_the_papers_protocol_fills_frames_and_uncapped_text_length():
    block = {**SHARED, "evaluate": finetuned_settings({})}  # input: paper
    anet, k400 = resolve("anet", block), resolve("k400", block)
    assert (anet["frames"], anet["text_length"]) == (12, 150)  # beyond the 32 positions: the table will grow
    assert (k400["frames"], k400["text_length"]) == (8, 32)


def test_warmup_epochs_replace_steps_and_a_tasks_warmup_replaces_the_shared_one():
    both = {**SHARED, "warmup_epochs": 1}
    r = resolve("msrvtt", both)
    assert r["warmup_epochs"] == 1 and "warmup_steps" not in r
    assert warmup_steps(r, 35) == 35 and warmup_steps(resolve("msrvtt", SHARED), 35) == 2
    own = resolve("ssv2", {**both, "tasks": {"ssv2": {"warmup_steps": 7}}})
    assert own["warmup_steps"] == 7 and "warmup_epochs" not in own
    assert warmup_steps(resolve("k400", {**both, "warmup_epochs": 0.5}), 5) == 2  # round(2.5), as pretraining


@pytest.mark.parametrize(
    "block,message",
    [
        ({**SHARED, "tasks": {"msrvtt": {"learning_rate": 1}}}, r"finetune.tasks.msrvtt: unknown key"),
        ({k: v for k, v in SHARED.items() if k != "lr"}, r"finetune.lr \(or finetune.tasks.msrvtt.lr\)"),
        ({k: v for k, v in SHARED.items() if k != "warmup_steps"}, r"finetune.warmup_epochs or"),
        ({**SHARED, "tasks": {"msrvtt": {"betas": [0.9, 1.5]}}}, r"finetune.tasks.msrvtt.betas"),
        ({**SHARED, "tasks": {"msrvtt": {"crop_scale": [0.9, 0.5]}}}, r"finetune.tasks.msrvtt.crop_scale"),
        ({**SHARED, "tasks": {"msrvtt": {"text_length": 0}}}, r"finetune.tasks.msrvtt.text_length"),
    ],
)
def test_bad_recipes_name_the_key(block, message):
    with pytest.raises(ValueError, match=message):
        resolve("msrvtt", block)


# ------------------------------------------------------------------ the text position table


def test_extending_the_text_table_appends_zero_rows_and_keeps_everything_else():
    model = initial_model(TINY, 0)
    longer, adapted = with_text_length(model, LONG)
    assert adapted == {
        "from": [TINY.context_length, TINY.text_width],
        "to": [LONG, TINY.text_width],
        "rule": "zero rows appended (official loader)",
    }
    assert longer.cfg.context_length == LONG
    table = longer.state_dict()[TEXT_POS_KEY]
    assert torch.equal(table[: TINY.context_length], model.state_dict()[TEXT_POS_KEY])
    assert not table[TINY.context_length :].any()
    rest = {k: v for k, v in model.state_dict().items() if k != TEXT_POS_KEY}
    assert all(torch.equal(v, longer.state_dict()[k]) for k, v in rest.items())
    # a text that fits the old table embeds as before (causal: padding after EOT is never attended to)
    short = build_tokenizer(TINY.tokenizer, TINY.vocab_size, TINY.context_length)(["a red clip"])
    padded = build_tokenizer(TINY.tokenizer, TINY.vocab_size, LONG)(["a red clip"])
    model.eval(), longer.eval()
    with torch.no_grad():
        torch.testing.assert_close(longer.encode_text(padded), model.encode_text(short))
    assert with_text_length(model, 4) == (model, None)  # shorter: the tokenizer cuts, the table stays


def long_captions(bench_dir: str) -> None:
    """Rewrite the captions so that the colour, the only informative word, sits at token ~20 of ~22."""
    rows = pd.read_parquet(Path(bench_dir) / "frames.parquet")
    filler = " ".join(f"w{i}" for i in range(18))
    colour = [next(w for w in texts[0].split() if w in COLOURS) for texts in rows["texts"]]
    rows["texts"] = [[f"{filler} {c} clip", f"{filler} something {c}"] for c in colour]
    rows.to_parquet(Path(bench_dir) / "frames.parquet", index=False)


@pytest.fixture(scope="module")
def long_job(inputs, tmp_path_factory):  # noqa: F811
    torch.set_num_threads(1)
    tmp = tmp_path_factory.mktemp("long")
    bench = write_bench(tmp / "msrvtt", "msrvtt", "retrieval")
    long_captions(bench)
    spec = job({**inputs, "msrvtt": bench}, tmp / "out", tasks=("msrvtt",))
    recipe = {"text_length": LONG, "lr": 2e-3, "epochs": 8, "warmup_epochs": 1, "betas": [0.9, 0.999]}
    spec["finetune"] = {**spec["finetune"], "tasks": {"msrvtt": recipe}}
    run_job(spec, Dist())
    return spec


def test_a_task_fine_tunes_at_150_tokens_and_its_record_says_so(long_job):
    record = json.loads(Path(long_job["records"][0]).read_text())
    s = record["settings"]
    assert s["text_length"] == s["text_length_requested"] == LONG
    training = s["training"]
    assert training["text_length"] == LONG and training["fed"]["text_length"] == LONG
    assert training["betas"] == [0.9, 0.999] and training["lr"] == 2e-3 and training["epochs"] == 8
    assert training["warmup_epochs"] == 1 and training["warmup_steps_used"] == 4  # one epoch of 32 / 8 clips
    steps = [r for r in lines(long_job["train_logs"][0]) if r["kind"] == "step"]
    assert len(steps) == 32 and {r["text_length"] for r in steps} == {LONG}
    assert max(r["lr"] for r in steps) == pytest.approx(2e-3)
    saved = torch.load(long_job["checkpoints"][0], map_location="cpu", weights_only=True)
    assert saved["config"]["context_length"] == LONG
    table = saved["model"][TEXT_POS_KEY]
    assert table.shape == (LONG, TINY.text_width) and table[TINY.context_length :].abs().sum() > 0  # trained
    # the colour is beyond the tiny model's 8 positions: cut at 8 tokens this scores chance (1/16); 4 clips per
    # colour look alike, so 1/4 is the best a model can do
    assert record["metrics"]["t2v_r1"] >= 3 / record["details"]["n_candidates"], record["metrics"]


# ------------------------------------------------------------------ the workflow


@pytest.mark.slow
def test_changing_one_tasks_recipe_reruns_only_its_jobs(tmp_path, repo, snakemake_bin):
    """per_task jobs: a task's params hold only its own recipe (rules/common.smk get_finetune_settings)."""
    cfg = reduced_config(repo)
    cfg["finetune"]["jobs"] = "per_task"
    cfg["arms"] = {"baseline": cfg["arms"]["baseline"]}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(cfg))
    targets = [f"results/eval/baseline/seed0/{t}-finetuned.json" for t in ("msrvtt", "lsmdc")]
    smk(snakemake_bin, repo, tmp_path, "--cores", "2", *targets)
    assert "Nothing to be done" in smk(snakemake_bin, repo, tmp_path, "-n", *targets).stdout
    cfg["finetune"]["tasks"] = {**(cfg["finetune"].get("tasks") or {}), "lsmdc": {"lr": 2e-3, "text_length": 40}}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(cfg))
    jobs = planned_jobs(smk(snakemake_bin, repo, tmp_path, "-n", *targets).stdout)
    assert [(r, wc) for r, wc in jobs if r != "all"] == [("finetune", "arm=baseline, seed=0, task=lsmdc")], jobs


def test_the_recipes_crop_scale_sets_the_crop_area(inputs):  # noqa: F811
    """Half black, half white frames: small crops mostly see one colour, whole-frame crops always see both."""
    from viclip.data.benchmarks.load import load_benchmark
    from viclip.data.frames import ClipSampler

    frames = np.zeros((1, 8, 32, 32, 3), np.uint8)
    frames[..., 16:, :] = 255

    def mixed(scale) -> float:
        sampler = ClipSampler(frames, np.array([8]), 4, 16, augment=True, crop_scale=scale)
        rng = np.random.default_rng(0)
        clips = [sampler.batch(np.array([0]), True, rng)[0] for _ in range(40)]
        return float(np.mean([bool(c.std(dim=(-2, -1)).max() > 0.1) for c in clips]))  # within a channel

    assert mixed((0.02, 0.02)) < 0.4 and mixed((1.0, 1.0)) == 1.0
    bench = load_benchmark(inputs["k400"], 4, 16, True, False, crop_scale=(0.08, 1.0))
    assert all(s.sampler.crop_scale == (0.08, 1.0) for s in bench.splits.values())
    assert load_benchmark(inputs["k400"], 4, 16, True).splits["train"].sampler.crop_scale == (0.5, 1.0)


def test_the_embedded_defaults_recipes_are_the_ones_it_always_had(repo):
    """config.yaml: every task trains as before per-task recipes, but for the overrides issue 17 chose.

    Before, every task took the shared keys, AdamW betas (0.9, 0.98), the model's drop path and input sizes,
    pretraining's augment and flip, RandomResizedCrop area 0.5-1 and a head of mean normalised prompts.
    Since issue 17 the retrieval tasks set their own lr, and SSv2 its steps, batch, lr and no crop.
    """
    from viclip.eval.protocol import finetuned_settings
    from viclip.model.config import ViCLIPConfig

    config = yaml.safe_load((repo / "config.yaml").read_text())
    model = ViCLIPConfig.from_dict(config["model"])
    evaluate = finetuned_settings(config["evaluate"])
    own = config["finetune"].get("tasks") or {}
    assert evaluate["ensemble"] == "clip" and evaluate["input"] == "model" and set(own) <= {*RETRIEVAL, "ssv2"}
    assert all(set(o) == {"lr"} for t, o in own.items() if t != "ssv2")
    assert set(own["ssv2"]) == {"epochs", "batch_size", "lr", "crop_scale"}
    train = {k: config["pretrain"][k] for k in ("augment", "flip")}
    block = {**config["finetune"], "evaluate": evaluate}
    shared = {k: v for k, v in config["finetune"].items() if k not in ("jobs", "execution", "tasks")}
    for task in ("k400", "ssv2", "msrvtt", "lsmdc", "didemo", "msvd", "anet"):
        r = task_recipe(task, block, model.num_frames, model.context_length, model.drop_path, train)
        mine = own.get(task, {})
        assert {k: r[k] for k in shared} == {**shared, **{k: v for k, v in mine.items() if k in shared}}
        assert r["crop_scale"] == mine.get("crop_scale", [0.5, 1.0])
        assert r["betas"] == [0.9, 0.98] and r["drop_path"] == model.drop_path
        assert (r["frames"], r["text_length"]) == (model.num_frames, model.context_length)
        assert (r["augment"], r["flip"]) == (train["augment"], train["flip"])


def test_the_schema_names_a_bad_per_task_key(repo):
    from viclip.config import ConfigError, validate

    config = yaml.safe_load((repo / "config.yaml").read_text())
    config["finetune"]["tasks"] = {"msrvtt": {"lr": -1, "text_len": 3}, "imagenet": {}}
    with pytest.raises(ConfigError) as err:
        validate(config, repo / "configs" / "schema.yaml")
    text = str(err.value)
    assert "finetune.tasks.imagenet" in text and "finetune.tasks.msrvtt.text_len" in text
    assert "finetune.tasks.msrvtt.lr" in text
