"""The decision record: every group's outcome (:class:`speedlimit.results.decisions.Outcome`)
as JSON, written once by the stage that decides (``scripts/decide.py``) into a race's round
file or, with fixed repeats, ``results/decisions.json``, and read by every stage after it.
Strict JSON: what is not finite (no interval yet, an unbounded side) is null."""

from __future__ import annotations

import json
import math

import numpy as np

from speedlimit.results.decisions import Outcome
from speedlimit.results.race import Decision, Design


def _encode(values: np.ndarray) -> list:
    """An array as nested lists, each value that is not finite (NaN, an unbounded side) as
    None."""
    array = np.asarray(values, float)
    return np.where(np.isfinite(array), array, None).tolist()


def _decode(values: list, missing: float = math.nan) -> np.ndarray:
    """:func:`_encode`'s lists as a float array, None as ``missing``."""
    array = np.array(values, dtype=object)
    return np.where(array == None, missing, array).astype(float)  # noqa: E711 - elementwise


DECISION_SIDES = {"best_low": -math.inf, "best_high": math.inf}  # None on either: unbounded


def outcome_to_dict(o: Outcome) -> dict:
    """One group's outcome as the decision record holds it (JSON: no NaN or inf)."""
    decision = {}
    for name in Decision.__dataclass_fields__:
        value = np.asarray(getattr(o.decision, name))
        decision[name] = _encode(value) if name in DECISION_SIDES else value.tolist()
    return {
        "label": o.label, "conditions": o.conditions, "settings": o.settings,
        "cells": o.cells, "varying": o.varying, "base": [int(b) for b in o.base],
        "rounds": o.rounds, "round_numbers": [int(r) for r in o.round_numbers],
        "runs": [int(n) for n in o.runs], "decision": decision,
        "low": _encode(o.low), "high": _encode(o.high), "estimate": _encode(o.estimate),
        "common": np.asarray(o.common, int).tolist(), "left_at": o.left_at,
        "history": [[_encode(low), _encode(high)] for low, high in o.history],
        "rounds_more": o.rounds_more, "durations": _encode(o.durations),
        "design": None if o.design is None else dict(vars(o.design)),
    }


def outcome_from_dict(d: dict) -> Outcome:
    """:func:`outcome_to_dict`'s inverse."""
    k = len(d["settings"])
    decision = {}
    for name in Decision.__dataclass_fields__:
        if name in DECISION_SIDES:
            decision[name] = _decode(d["decision"][name], DECISION_SIDES[name])
        else:
            decision[name] = np.asarray(d["decision"][name])
    history = [(_decode(low, -math.inf), _decode(high, math.inf)) for low, high in d["history"]]
    durations = _decode(d["durations"]) if d["durations"] else np.zeros((k, 0))
    return Outcome(d["conditions"], d["label"], d["settings"], d["cells"], d["varying"],
                   list(d["base"]), d["rounds"], list(d["runs"]), Decision(**decision),
                   _decode(d["low"]), _decode(d["high"]), _decode(d["estimate"]),
                   np.asarray(d["common"], int), list(d["left_at"]), history,
                   d["rounds_more"], Design(**d["design"]) if d["design"] else None,
                   durations.reshape(k, -1), list(d["round_numbers"]))


def read_record(path) -> list[Outcome]:
    """Every group's outcome from the decision record at ``path`` (a round of the race, or
    the decisions of a run of fixed repeats): what every stage after the decision reads."""
    with open(path) as fh:
        state = json.load(fh)
    return [outcome_from_dict(d) for d in state.get("outcomes", [])]
