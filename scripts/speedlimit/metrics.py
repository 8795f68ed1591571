"""The per-cell metrics record: its JSON schema and how a file of it is read back."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema

SCHEMA_VERSION = 2
SCHEMA_PATH = Path(__file__).resolve().parents[2] / "schemas" / "metrics.schema.json"


REDO = "delete the file and run snakemake again to measure the cell again"


class MetricsError(ValueError):
    """A metrics file is unreadable or does not follow the schema; the message names it."""


def load_schema() -> dict:
    return json.loads(SCHEMA_PATH.read_text())


def read(path: str | Path, schema: dict | None = None) -> dict:
    """Parse and validate one metrics file; raise :class:`MetricsError` naming file and problem."""
    schema = schema or load_schema()
    try:
        text = Path(path).read_text()
    except OSError as err:
        raise MetricsError(f"{path}: cannot be read: {err}") from err
    try:
        record = json.loads(text)
    except json.JSONDecodeError as err:
        raise MetricsError(f"{path}: not valid JSON (truncated or corrupt?): {err}; "
                           f"{REDO}") from err
    version = record.get("schema_version") if isinstance(record, dict) else None
    if version != SCHEMA_VERSION:
        raise MetricsError(
            f"{path}: schema_version {version!r} is not the supported {SCHEMA_VERSION}; "
            + REDO
        )
    validator = jsonschema.Draft202012Validator(schema)
    error = jsonschema.exceptions.best_match(validator.iter_errors(record))
    if error is not None:
        where = "/".join(map(str, error.absolute_path)) or "(top level)"
        raise MetricsError(f"{path}: does not follow schemas/metrics.schema.json at {where}: "
                           f"{error.message}; {REDO}")
    return record
