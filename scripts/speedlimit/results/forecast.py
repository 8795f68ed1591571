"""About how many more rounds a group needs: its race continued in simulated futures drawn
from what it measured (:func:`forecast`), decided exactly as the race will decide."""

from __future__ import annotations

import math

import numpy as np

from speedlimit.results.race import Decision, Group


FORECASTS = 100  # simulated futures of a group behind "about N more rounds"
FORECAST_CAP = 150  # rounds a forecast looks ahead at most


def fit(logs: np.ndarray) -> tuple[np.ndarray, np.ndarray, float, int]:
    """Each setting's level and its standard error, the noise of one run and its degrees of
    freedom, from a group's log durations (``k x rounds``, NaN where a setting did not run)
    by the additive model ``log t = setting + round + noise`` (a round's speed shared by its
    runs)."""
    present = ~np.isnan(logs)
    k, r = logs.shape
    level = np.zeros(k)
    shift = np.zeros(r)
    for _ in range(20):  # alternating means: exact for a full table, close for a ragged one
        level = np.nanmean(np.where(present, logs - shift[None, :], np.nan), axis=1)
        level = np.where(np.isnan(level), 0.0, level)
        shift = np.nanmean(np.where(present, logs - level[:, None], np.nan), axis=0)
        shift = np.where(np.isnan(shift), 0.0, shift)
    residual = np.where(present, logs - level[:, None] - shift[None, :], np.nan)
    n = present.sum()
    dof = max(1, n - k - r + 1)
    noise = float(np.sqrt(np.nansum(residual ** 2) / dof)) if n > k + 1 else math.nan
    runs = np.maximum(present.sum(axis=1), 1)
    return level, noise / np.sqrt(runs), noise, dof


def forecast(group: Group, rng: np.random.Generator | None = None,
             futures: int = FORECASTS, cap: int = FORECAST_CAP,
             noise_scale: float = 1.0) -> np.ndarray | None:
    """More rounds until the group is decided, in ``futures`` simulated continuations of its
    race (``cap``: not by then), or None when already decided. Each future draws the
    settings' true levels from what was measured (level +- its standard error) and the noise
    from what its runs spread (scaled by chi-square over its degrees of freedom: a spread
    seen in three rounds may be twice as large), runs every round the decision code asks
    for, and
    decides after each round exactly as the race will: so what is left counts everything the
    race needs (the settings that leave, those that may be fastest, the baseline's part), not
    one pair's spread. (``noise_scale``: for the calibration test's negative control.)"""
    if bool(group.decide().decided):
        return None
    rng = rng or np.random.default_rng(0)
    logs = np.stack(group.logs, axis=-1)  # (k, rounds)
    level, se, noise, dof = fit(logs)
    if not np.isfinite(noise) or noise <= 0:
        noise, dof = 0.05, 1  # (too few runs to tell: a noisy machine's)
        se = np.full(group.k, noise)
    scale = np.sqrt(dof / rng.chisquare(dof, (futures, 1)))  # the noise's own uncertainty
    noise = noise * scale * noise_scale
    truth = level[None, :] + rng.normal(0.0, 1.0, (futures, group.k)) * se[None, :] * scale
    ahead = Group(group.k, group.base, group.design, batch=(futures,))
    for past in group.logs:
        ahead.add_round(np.broadcast_to(np.exp(past), (futures, group.k)))
    running = ahead.decide().running
    done = np.full(futures, cap)
    for r in range(cap):
        eps = rng.normal(0.0, 1.0, (futures, group.k)) * noise  # (a round's shared speed
        # cancels in every comparison: not drawn)
        ahead.add_round(np.where(running, np.exp(truth + eps), np.nan))
        decision = ahead.decide()
        done = np.where((done == cap) & decision.decided, r + 1, done)
        running = decision.running & (done == cap)[:, None]
        if not running.any():
            break
    return done


def rounds_more(group: Group, decision: Decision, cap: int = FORECAST_CAP
                ) -> int | None:
    """About how many more rounds the group needs to be decided (None when decided): the
    median over :func:`forecast`'s futures (``cap`` where most are not decided by then)."""
    if bool(decision.decided):
        return None
    done = forecast(group, cap=cap)
    return int(np.median(done)) if done is not None else None
