"""Loading, coercing and validating the pipeline configuration.

Snakemake's ``--config key=value`` parses nested values with YAML's BaseLoader, so
``--config grid="{num_workers: [0, 3]}"`` arrives as ``{"num_workers": ["0", "3"]}``.
:func:`coerce` turns such strings into the type the schema asks for (and leaves anything
that does not convert cleanly alone, so validation rejects it with a message naming the key).
"""

from __future__ import annotations

import copy
import difflib
import re
from pathlib import Path
from typing import Any

import jsonschema
import yaml

SCHEMA_PATH = Path(__file__).resolve().parents[2] / "schemas" / "config.schema.yaml"

_INT = re.compile(r"^[+-]?\d+$")
_BOOL = {"true": True, "false": False, "yes": True, "no": False}
_NULL = {"null", "~", "none", ""}


class ConfigError(ValueError):
    """The configuration is invalid; the message names every offending key."""


def load_schema(path: Path | str = SCHEMA_PATH) -> dict:
    with open(path) as fh:
        return yaml.safe_load(fh)


def lever_defaults(path: Path | str = SCHEMA_PATH) -> dict:
    """The answer's levers as the schema defaults them (``train.threshold``,
    ``train.margin``): for code that runs without a config (the simulation, the tests)."""
    train = load_schema(path)["properties"]["train"]["properties"]
    return {"threshold": train["threshold"]["default"], "margin": train["margin"]["default"]}


def _types(schema: dict) -> list[str]:
    if "oneOf" in schema:  # e.g. train.repeats: an integer or "auto"
        return [t for option in schema["oneOf"] for t in _types(option)]
    t = schema.get("type", [])
    return [t] if isinstance(t, str) else list(t)


def _coerce_scalar(value: str, types: list[str]) -> Any:
    text = value.strip()
    low = text.lower()
    if "null" in types and low in _NULL:
        return None
    if "integer" in types and _INT.match(text):
        return int(text)
    if "number" in types:
        if _INT.match(text):
            return int(text)
        try:
            number = float(text)
        except ValueError:
            pass
        else:
            if number == number and number not in (float("inf"), float("-inf")):
                return number
    if "boolean" in types and low in _BOOL:
        return _BOOL[low]
    return value


def coerce(value: Any, schema: dict) -> Any:
    """Return ``value`` with strings converted to the scalar types ``schema`` expects."""
    types = _types(schema)
    if isinstance(value, str) and "oneOf" in schema:  # an integer, or one of some words
        if any(value in option.get("enum", ()) for option in schema["oneOf"]):
            return value
        return _coerce_scalar(value, [t for t in types if t != "string"])
    if isinstance(value, str) and "string" not in types:
        return _coerce_scalar(value, types)
    if isinstance(value, dict) and "properties" in schema:
        props = schema["properties"]
        return {k: coerce(v, props[k]) if k in props else v for k, v in value.items()}
    if isinstance(value, list) and "items" in schema:
        return [coerce(v, schema["items"]) for v in value]
    return value


def _where(path) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def _schema_at(schema: dict, path) -> dict:
    node = schema
    for part in path:
        if isinstance(part, int):
            node = node.get("items", {})
        else:
            node = node.get("properties", {}).get(part, {})
    return node


def _allowed(schema: dict) -> str:
    """A short statement of what a key accepts, from its schema."""
    if schema.get("type") == "object" and "properties" in schema:
        return "keys: " + ", ".join(schema["properties"])
    items = schema.get("items")
    if schema.get("type") == "array" and items:
        inner = _allowed(items)
        unique = ", no duplicates" if schema.get("uniqueItems") else ""
        return f"a non-empty list of {inner}{unique}"
    if "enum" in schema:
        return "one of " + ", ".join(map(str, schema["enum"]))
    if "oneOf" in schema:
        return " or ".join(_allowed(option) for option in schema["oneOf"])
    kinds = " or ".join(_types(schema)) or "any value"
    bounds = []
    if "minimum" in schema:
        bounds.append(f">= {schema['minimum']}")
    if "exclusiveMinimum" in schema:
        bounds.append(f"> {schema['exclusiveMinimum']}")
    return kinds + (" " + " and ".join(bounds) if bounds else "")


def _yaml_problem(value: Any) -> str:
    """For a ``--config key=value`` whose value was meant as YAML but does not parse: why."""
    if not isinstance(value, str) or value.lstrip()[:1] not in ("{", "["):
        return ""
    try:
        yaml.safe_load(value)
    except yaml.YAMLError as err:
        problem = " ".join(str(getattr(err, "problem", None) or err).split())
        return f" (a --config value that is not valid YAML: {problem})"
    return ""


def check_yaml_file(path: Path | str) -> None:
    """Raise :class:`ConfigError` naming the file, line and column when ``path`` is not YAML.

    (Snakemake's own message for a malformed config file names neither.)
    """
    try:
        with open(path) as fh:
            yaml.safe_load(fh)
    except FileNotFoundError:
        return  # Snakemake says so itself
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = " ".join(str(getattr(err, "problem", None) or err).split())
        raise ConfigError(f"{path} is not valid YAML{where}: {problem}") from None


# Keys read under an old name, with a warning: (section, old, new).
RENAMED = [("train", "max_repeats", "max_rounds")]  # (section, old key, its new name)


def renamed(config: dict) -> list[str]:
    """An error for each old key (:data:`RENAMED`) the config still uses, naming the new one."""
    return [f"{section}.{old} is now {section}.{new}: rename it in your config"
            for section, old, new in RENAMED
            if isinstance(config.get(section), dict) and old in config[section]]


def validate(config: dict, schema_path: Path | str = SCHEMA_PATH) -> dict:
    """Coerce, validate and fill defaults; return a new config or raise :class:`ConfigError`."""
    schema = load_schema(schema_path)
    if config is None:
        config = {}
    if not isinstance(config, dict):
        raise ConfigError("config must be a mapping of keys to values, got "
                          f"{type(config).__name__}")
    config = coerce(copy.deepcopy(config), schema)
    old_keys = renamed(config)
    if old_keys:
        raise ConfigError("invalid configuration:\n" + "\n".join(f"- {k}" for k in old_keys))
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(config), key=lambda e: list(map(str, e.absolute_path)))
    if errors:
        lines = []
        for err in errors:
            path = list(err.absolute_path)
            if err.validator == "additionalProperties":
                where_schema = _schema_at(schema, path)
                known = ", ".join(where_schema.get("properties", {}))
                extra = sorted(set(err.instance) - set(where_schema.get("properties", {})))
                for key in extra:
                    known_keys = where_schema.get("properties", {})
                    close = difflib.get_close_matches(str(key), known_keys, 1)
                    hint = f"did you mean {close[0]!r}? " if close else ""
                    lines.append(f"- {_where(path + [key])}: unknown key "
                                 f"({hint}allowed here: {known})")
                continue
            lines.append(
                f"- {_where(path)}: {err.message}{_yaml_problem(err.instance)} "
                f"(allowed: {_allowed(_schema_at(schema, path))})"
            )
        raise ConfigError("invalid configuration:\n" + "\n".join(lines))
    # Snakemake's own validator fills the schema's defaults (nested ones included).
    from snakemake.utils import validate as snakemake_validate

    snakemake_validate(config, str(schema_path))
    problems = _combinations(config)
    if problems:
        raise ConfigError("invalid configuration:\n" + "\n".join(problems))
    return config


def _combinations(config: dict) -> list[str]:
    """Problems of keys that are each valid but do not go together."""
    train = config.get("train", {})
    out = []
    if train.get("repeats") == "auto" and train.get("epochs", 1) != 1:
        out.append(f"- train.epochs: {train['epochs']} with train.repeats: auto (a race's runs "
                   "time windows of one epoch and predict it; set train.epochs: 1, or a "
                   "number of train.repeats to time whole epochs)")
    if train["threshold"] >= train["margin"]:
        out.append(f"- train.threshold: {train.get('threshold')} is not below train.margin: "
                   f"{train.get('margin')} (the noise threshold must be smaller than the "
                   "\"as fast\" margin, or nothing can be shown as fast and gaining)")
    return out


def budget_seconds(value) -> float | None:
    """Seconds of ``train.budget``: ``900``, ``"90s"``, ``"15m"``, ``"1.5h"``; None: none."""
    if value is None:
        return None
    if isinstance(value, (int, float)):
        return float(value)
    text = str(value).strip().lower()
    units = {"s": 1, "m": 60, "h": 3600}
    if text and text[-1] in units:
        return float(text[:-1]) * units[text[-1]]
    return float(text)
