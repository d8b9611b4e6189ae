"""Load and check a workflow config against its JSON Schema.

Errors name the file and the key path (e.g. `arms.nomask.mask_ratio`), so a
typo stops the workflow before any job runs.
"""

from __future__ import annotations

from pathlib import Path

import jsonschema
import yaml


class ConfigError(ValueError):
    pass


def _path(error: jsonschema.ValidationError) -> str:
    return ".".join(str(p) for p in error.absolute_path) or "<top level>"


def _describe(error: jsonschema.ValidationError) -> str:
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        allowed = set(error.schema.get("properties", {}))
        extra = sorted(k for k in error.instance if k not in allowed) if allowed else []
        where = _path(error)
        keys = ", ".join(f"{where}.{k}" if where != "<top level>" else k for k in extra)
        return f"unknown key {keys}" if extra else error.message
    return f"{_path(error)}: {error.message}"


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
