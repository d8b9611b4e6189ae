"""The evaluation protocol a config resolves to: per table column, and item by item against the paper's.

`column_protocols` says, for each of the table's 30 columns, how it is
produced: frames, views, queries, prompt ensembling, text length, WiSE-FT and
the fine-tuning recipe. `markdown` renders that as the table of
docs/EVALUATION.md, which tests/test_paper_configs.py holds equal to the one
rendered from configs/paper.yaml. `protocol_items` flattens the same
settings into the items of viclip_spec.md §5.1-5.4, for the item-by-item check
(departures: `viclip.eval.protocol.DEPARTURES`).
"""

from __future__ import annotations

from viclip.eval.catalog import CLASSIFICATION_FT, DISPLAY, columns
from viclip.eval.protocol import DEPARTURES, PARAGRAPH_BENCHMARKS, finetuned_settings, zeroshot_settings
from viclip.model.config import ViCLIPConfig
from viclip.train.recipe import task_recipe

HEADER = ("column", "frames", "views", "queries", "ensembling", "text length", "WiSE-FT", "fine-tuning recipe")
# What we build where the spec names a method (constants of the code, not settings)
LOSS = "contrastive"
CROP = "random_resized_crop"
REGULARISATION = "none"
HEAD_INIT = "class_prompts"


def _resolved(config: dict) -> tuple[ViCLIPConfig, dict, dict, dict]:
    model = ViCLIPConfig.from_dict(config["model"])
    evaluate = config.get("evaluate", {})
    zs, ft = zeroshot_settings(evaluate), finetuned_settings(evaluate)
    train = {k: config["pretrain"][k] for k in ("augment", "flip") if k in config["pretrain"]}
    block = {**config["finetune"], "evaluate": ft}
    recipes = {
        task: task_recipe(task, block, model.num_frames, model.context_length, model.drop_path, train)
        for task in {c.benchmark for c in columns() if c.protocol == "finetuned"}
    }
    return model, zs, ft, recipes


def _templates(config: dict, bench: str, choice: str) -> str:
    if choice != "auto":
        return choice
    return "viclip" if "reader" in config.get("benchmarks", {}).get(bench, {}) else "benchmark's own"


def _views(v: dict | None) -> str:
    v = v or {"clips": 1, "crops": 1}
    return f"{v['clips']} x {v['crops']}"


def recipe_text(r: dict) -> str:
    warmup = f"{r['warmup_epochs']:g} ep" if r.get("warmup_epochs") is not None else f"{r['warmup_steps']} steps"
    lo, hi = r["crop_scale"]
    return (
        f"lr {r['lr']:g}, {r['epochs']} ep (warmup {warmup}), batch {r['batch_size']}, drop path {r['drop_path']:g}, "
        f"AdamW betas ({r['betas'][0]:g}, {r['betas'][1]:g}), wd {r['weight_decay']:g}, "
        f"flip {'on' if r['flip'] else 'off'}, crop area {lo:g}-{hi:g}"
    )


def column_protocols(config: dict) -> list[dict]:
    """One row per reported column (catalog order), every value as the resolved config gives it."""
    model, zs, ft, recipes = _resolved(config)
    rows = []
    for col in columns():
        b = col.benchmark
        name = f"{DISPLAY[b]} {col.label} ({'zero-shot' if col.protocol == 'zeroshot' else 'fine-tuned'})"
        classification = col.group.endswith("classification")
        if col.protocol == "zeroshot":
            if classification:
                queries = f"class prompts ({_templates(config, b, zs['templates'])} templates)"
            else:
                queries = f"{zs['queries']}s" if b in PARAGRAPH_BENCHMARKS else "captions"
            row = {
                "frames": model.num_frames,
                "views": _views(zs["views"]),
                "queries": queries,
                "ensembling": zs["ensemble"] if classification else "-",
                "text length": model.context_length,
                "WiSE-FT": f"alpha {zs['wise_ft_alpha']:g}",
                "fine-tuning recipe": "-",
            }
        else:
            r = recipes[b]
            if classification:
                queries = "linear head"
                ensembling = f"head init: {ft['ensemble']}"
            else:
                queries = f"{ft['queries']}s" if b in PARAGRAPH_BENCHMARKS else "captions"
                ensembling = "-"
            row = {
                "frames": r["frames"],
                "views": _views(ft["views"].get(b) if classification else None),
                "queries": queries,
                "ensembling": ensembling,
                "text length": r["text_length"],
                "WiSE-FT": "-",
                "fine-tuning recipe": recipe_text(r),
            }
        rows.append({"column": name, **row})
    return rows


def markdown(config: dict) -> str:
    """The column table as GitHub markdown (one header, one line per column)."""
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    for row in column_protocols(config):
        lines.append("| " + " | ".join(str(row[h]) for h in HEADER) + " |")
    return "\n".join(lines) + "\n"


def protocol_items(config: dict) -> dict:
    """The resolved settings as the items of viclip_spec.md §5.1-5.4 (dotted names, plain values)."""
    model, zs, ft, recipes = _resolved(config)
    items = {
        "zeroshot.frames": model.num_frames,
        "zeroshot.views": zs["views"],
        "zeroshot.text_length": model.context_length,
        "zeroshot.classification.templates": _templates(config, "k400", zs["templates"]),
        "zeroshot.classification.ensemble": zs["ensemble"],
        "zeroshot.wise_ft_alpha": zs["wise_ft_alpha"],
        "zeroshot.retrieval.paragraph_queries": zs["queries"],
        "zeroshot.retrieval.dsl": zs["dsl"],
        "finetuned.retrieval.loss": LOSS,
        "finetuned.retrieval.paragraph_queries": ft["queries"],
        "finetuned.retrieval.crop": CROP,
        "finetuned.classification.regularisation": REGULARISATION,
        "finetuned.classification.head": HEAD_INIT,
    }
    for task, r in sorted(recipes.items()):
        kind = "classification" if task in CLASSIFICATION_FT else "retrieval"
        for key in ("lr", "epochs", "warmup_epochs", "batch_size", "drop_path", "betas", "weight_decay"):
            items[f"finetuned.{kind}.{task}.{key}"] = r.get(key)
        items[f"finetuned.{kind}.{task}.frames"] = r["frames"]
        items[f"finetuned.{kind}.{task}.flip"] = r["flip"]
        items[f"finetuned.{kind}.{task}.crop_scale"] = r["crop_scale"]
        if kind == "retrieval":
            items[f"finetuned.retrieval.{task}.text_length"] = r["text_length"]
        else:
            items[f"finetuned.classification.{task}.views"] = ft["views"].get(task)
    return items


def departures_markdown() -> str:
    """`viclip.eval.protocol.DEPARTURES` as a markdown list (item: reason), for docs/EVALUATION.md."""
    return "".join(f"- `{item}`: {reason}.\n" for item, reason in DEPARTURES.items())


def docs_block(config: dict) -> str:
    """The generated part of docs/EVALUATION.md: the column table, then the departures."""
    return markdown(config) + "\nWhere this departs from viclip_spec.md §5.1-5.4:\n\n" + departures_markdown()
