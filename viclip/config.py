"""Load and check a workflow config against its JSON Schema.

Errors name the file and the key path (e.g. `arms.nomask.mask_ratio`), so a
typo stops the workflow before any job runs.
"""

from __future__ import annotations

import copy
import math
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
    "arm": (("released_arm", "checkpoint"), ("trained_arm", "captions")),
}


def _unmix(merged: dict, override: dict, family: str, defs: dict) -> dict:
    for kind, marker in _KINDS[family]:
        if marker in override:
            foreign = set(merged) - set(defs[kind]["properties"])
            return copy.deepcopy(override) if foreign else merged
    return merged


def _string_leaves(value, path: tuple = ()):
    """(path, string) of every string in a nest of dicts and lists."""
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from _string_leaves(v, (*path, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _string_leaves(v, (*path, i))


_NOT_SCALAR = object()


def _scalar(text: str):
    """What a command-line string means as YAML: a finite number, a boolean or null (else `_NOT_SCALAR`)."""
    for parse in (int, float):  # float() also reads `1e-3`, which YAML 1.1 leaves a string
        try:
            value = parse(text)
        except ValueError:
            continue
        return value if math.isfinite(value) else _NOT_SCALAR
    if not text.strip():
        return _NOT_SCALAR
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        return _NOT_SCALAR
    return value if value is None or isinstance(value, (bool, int, float)) else _NOT_SCALAR


def _get(config, path: tuple):
    for part in path:
        try:
            config = config[part]
        except (KeyError, IndexError, TypeError):
            return _NOT_SCALAR
    return config


def _set(config, path: tuple, value) -> None:
    for part in path[:-1]:
        config = config[part]
    config[path[-1]] = value


def _error_paths(validator, config: dict) -> set[tuple]:
    """Key paths of the errors in `config`; in a section with kinds, those of the kind it is nearest to."""
    paths = set()
    for error in validator.iter_errors(config):
        leaves = _closest(error) if error.validator in ("oneOf", "anyOf") and error.context else [error]
        paths.update(tuple(e.absolute_path) for e in leaves)
    return paths


def typed_overrides(config: dict, override: dict, schema: dict) -> dict:
    """`config` with the numbers, booleans and nulls among `override`'s strings typed where the schema wants them.

    Snakemake types a top-level `--config key=value` itself, but reads a
    nested value (`--config "arms={nomask: {mask_ratio: 0.5}}"`) with YAML's
    base loader, which leaves every leaf a string: `0.5` would be refused as
    "not of type number". Here each string of `override` that reads as a
    number, boolean or null takes that type, unless the string is what the
    schema wants there (`label: "1"` stays a string). A value wrong either
    way keeps its type, so the error says what is wrong with it (a mask
    ratio of 1.0 is out of range, not "not a number").
    """
    out = copy.deepcopy(config)
    typed = {}
    for path, text in _string_leaves(override):
        value = _scalar(text)
        if path and value is not _NOT_SCALAR and _get(out, path) == text:
            _set(out, path, value)
            typed[path] = text
    if not typed:
        return out
    validator = jsonschema.Draft202012Validator(schema)
    for path in sorted(typed.keys() & _error_paths(validator, out), key=str):
        value = _get(out, path)
        _set(out, path, typed[path])
        if path in _error_paths(validator, out):  # wrong as a string too: keep the type
            _set(out, path, value)
    return out


def resolve_kinds(config: dict, override: dict, schema_path: str | Path) -> dict:
    """Undo Snakemake's key-by-key merge where an override switches a section's kind.

    `--configfile` is merged into config.yaml key by key: right for a tweak
    (`corpus: {n_clips: 100}`), wrong when a paper config swaps the synthetic
    corpus for InternVid, a synthetic benchmark slot for a real one, or the
    tiny model for a published preset (`model: {name: viclip-b16}`), which
    would leave a mix of both. There the override's section replaces the
    merged one whole; so does an arm switched between trained and released
    weights. `override` is what the command line gave; the numbers,
    booleans and nulls of its nested `--config` values are typed last
    (`typed_overrides`).
    """
    schema = yaml.safe_load(Path(schema_path).read_text())
    defs = schema["$defs"]
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
    if isinstance(override.get("arms"), dict) and isinstance(out.get("arms"), dict):
        out["arms"] = dict(out["arms"])
        for name, arm in override["arms"].items():
            if isinstance(arm, dict) and isinstance(out["arms"].get(name), dict):
                out["arms"][name] = _unmix(out["arms"][name], arm, "arm", defs)
    return typed_overrides(out, override, schema)


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
