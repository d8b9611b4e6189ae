"""Load and check a workflow config against its JSON Schema.

Errors name the file and the key path (e.g. `arms.nomask.mask_ratio`), so a
typo stops the workflow before any job runs.
"""

from __future__ import annotations

import copy
from pathlib import Path

import jsonschema
import yaml

from viclip.model.config import PRESETS


class ConfigError(ValueError):
    pass


def _path(error: jsonschema.ValidationError) -> str:
    return ".".join(str(p) for p in error.absolute_path) or "<top level>"


def _closest(error: jsonschema.ValidationError) -> list[jsonschema.ValidationError]:
    """For a section that matches none of its kinds: the errors of the kind it is nearest to."""
    branches: dict[int, list] = {}
    for sub in error.context:
        branches.setdefault(sub.relative_schema_path[0], []).append(sub)
    best = min(branches.values(), key=len)
    return [
        e for sub in best for e in (_closest(sub) if sub.validator in ("oneOf", "anyOf") and sub.context else [sub])
    ]


def _describe(error: jsonschema.ValidationError) -> str:
    if error.validator in ("oneOf", "anyOf") and error.context:
        return "\n  ".join(_describe(e) for e in _closest(error))
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        allowed = set(error.schema.get("properties", {}))
        extra = sorted(k for k in error.instance if k not in allowed) if allowed else []
        where = _path(error)
        keys = ", ".join(f"{where}.{k}" if where != "<top level>" else k for k in extra)
        return f"unknown key {keys}" if extra else error.message
    return f"{_path(error)}: {error.message}"


# Sections that come in kinds, each told apart by one key it alone has.
_KINDS = {
    "corpus": (("internvid_corpus", "metadata"), ("synthetic_corpus", "n_clips")),
    "benchmark": (("real_benchmark", "reader"), ("benchmark", "seed")),
}


def _unmix(merged: dict, override: dict, family: str, defs: dict) -> dict:
    for kind, marker in _KINDS[family]:
        if marker in override:
            foreign = set(merged) - set(defs[kind]["properties"])
            return copy.deepcopy(override) if foreign else merged
    return merged


def resolve_kinds(config: dict, override: dict, schema_path: str | Path) -> dict:
    """Undo Snakemake's key-by-key merge where an override switches a section's kind.

    `--configfile` is merged into config.yaml key by key: right for a tweak
    (`corpus: {n_clips: 100}`), wrong when a paper config swaps the synthetic
    corpus for InternVid, a synthetic benchmark slot for a real one, or the
    tiny model for a published preset (`model: {name: viclip-b16}`), which
    would leave a mix of both. There the override's section replaces the
    merged one whole. `override` is what the command line gave.
    """
    defs = yaml.safe_load(Path(schema_path).read_text())["$defs"]
    out = dict(config)
    model = override.get("model")
    if isinstance(model, dict) and model.get("name") in PRESETS:
        # a preset fixes the architecture: the base config's (tiny) model keys must not leak into it
        out["model"] = copy.deepcopy(model)
    if isinstance(override.get("corpus"), dict) and isinstance(out.get("corpus"), dict):
        out["corpus"] = _unmix(out["corpus"], override["corpus"], "corpus", defs)
    if isinstance(override.get("benchmarks"), dict) and isinstance(out.get("benchmarks"), dict):
        out["benchmarks"] = dict(out["benchmarks"])
        for name, slot in override["benchmarks"].items():
            if isinstance(slot, dict) and isinstance(out["benchmarks"].get(name), dict):
                out["benchmarks"][name] = _unmix(out["benchmarks"][name], slot, "benchmark", defs)
    return out


def validate(config: dict, schema_path: str | Path, source: str = "config") -> dict:
    """Check `config`; raise ConfigError listing every problem, each with its key path."""
    schema = yaml.safe_load(Path(schema_path).read_text())
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(config), key=lambda e: list(map(str, e.absolute_path)))
    problems = [_describe(e) for e in errors]
    if not problems:
        baseline = config["report"]["baseline"]
        if baseline not in config["arms"]:
            problems.append(f"report.baseline: {baseline!r} is not an arm (arms: {', '.join(config['arms'])})")
    if problems:
        raise ConfigError(f"{source}: invalid config:\n  " + "\n  ".join(problems))
    return config


def load(path: str | Path, schema_path: str | Path) -> dict:
    path = Path(path)
    try:
        config = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(config, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    return validate(config, schema_path, str(path))
