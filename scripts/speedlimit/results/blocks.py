"""Intervals from the whole group's rounds: the race's rounds as blocks of a randomized block
design.

A group's round runs its settings in a random order, so its log epoch durations follow the
additive model ``log t[s, r] = level[s] + speed[r] + noise``: the round's ``speed`` (the
machine's drift, a busy neighbour for a while) is shared by every setting of the round and
cancels in each paired log-ratio ``d = log t_i - log t_j``. What is left is the noise, and it
is the *same* noise for every pair of a group: so its spread is estimated once, from every
pair at once, with ``(rounds - 1)(k - 1)`` degrees of freedom (a pair's own rounds give only
``rounds - 1``).

* **The pooled spread.** For a full table the additive model's residual variance is half the
  mean over the pairs of their paired log-ratios' variance (the interaction sum of squares is
  ``1/k`` of the pairs' sum), so :func:`intervals` pools those, weighted by their degrees of
  freedom, and takes the model's residual degrees of freedom (observations - settings -
  rounds + 1): the same estimate for a ragged table, where settings left the race.
* **The guard: settings noisier than the rest.** Pooling assumes one spread for every
  setting; a setting whose runs spread four times as much (many workers sharing two cores)
  would borrow the others' quiet and make false claims. Each setting's own variance is read
  off the pairs (``var(d_ij) = var_i + var_j``: least squares over the pairs, Shukla's
  stability variance for a full table) and set against the others' pooled one by an F test at
  a liberal level (:data:`GUARD`): a setting flagged there is compared by its pairs' own
  paired spread (``rounds - 1`` degrees of freedom), the rest share the pooled spread of the
  unflagged settings. Chosen by simulation (``docs/statistics.md``): without the guard,
  pooling makes false claims in more than 5% of runs when one setting is four times noisier.
* **Few looks, each paying its share.** The race looks after every round, and each look
  spends part of the error rate: the look at round ``n`` gets ``alpha * spend(n)``
  (:func:`spend`: most of it on rounds 3-8, where a race on this machine decides, and a
  summable tail so a race continued later keeps its level), Bonferroni over the family's
  comparisons within a look and over the looks. Every look's intervals then hold together
  with probability ``1 - alpha``, and so does their running intersection
  (:class:`race.Group` keeps it), whatever was decided at any look.

Each pair's estimate is its paired log-ratios' mean over the rounds both ran in (unbiased
whatever the round speeds). Everything is vectorized over leading axes (simulated races).
"""

from __future__ import annotations

import warnings

import numpy as np
from scipy import special

GUARD = 0.1  # the F test's level that flags a setting noisier than the rest (liberal: a
# flag costs a little power, a missed noisy setting costs false claims)
# The looks: the rounds after which the race decides anything, each spending an equal share
# of LOOKS_SHARE of the error rate; past the last, a look every TAIL_EVERY rounds, with
# shares that add up to the rest (a race continued with a larger train.max_rounds keeps its
# level).
LOOKS = (4, 5, 6, 8, 11, 15, 20, 28, 40)
LOOKS_SHARE = 0.9
TAIL_EVERY = 10


def spend(n) -> np.ndarray:
    """The share of the run's error rate spent by the look after round ``n`` (vectorized):
    0 where round ``n`` is no look; over every round the shares add up to at most 1."""
    n = np.asarray(n, float)
    planned = np.where(np.isin(n, LOOKS), LOOKS_SHARE / len(LOOKS), 0.0)
    m = (n - LOOKS[-1]) / TAIL_EVERY  # the m-th look past the last planned one
    with np.errstate(divide="ignore", invalid="ignore"):
        tail = np.where(m == np.round(m), (1 - LOOKS_SHARE) / (m * (m + 1)), 0.0)
    return np.where(m >= 1, tail, planned)


def _pairs(k: int):
    return np.triu_indices(k, 1)


def _setting_variances(var: np.ndarray, weight: np.ndarray, k: int) -> np.ndarray:
    """Each setting's own variance from its pairs' (``var_ij = var_i + var_j``), weighted
    least squares over the pairs with a variance; ``[.., k]``."""
    i, j = _pairs(k)
    e = np.zeros((len(i), k))
    e[np.arange(len(i)), i] = 1.0
    e[np.arange(len(i)), j] = 1.0
    w = np.where(np.isfinite(var), weight, 0.0)
    v = np.where(np.isfinite(var), var, 0.0)
    a = np.einsum("...p,pk,pl->...kl", w, e, e) + 1e-12 * np.eye(k)
    b = np.einsum("...p,pk->...k", w * v, e)
    return np.linalg.solve(a, b[..., None])[..., 0]


def _pooled(var, weight, use):
    """Degrees-of-freedom weighted mean of the pairs' variances where ``use``."""
    w = np.where(use & np.isfinite(var), weight, 0.0)
    total = w.sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, (w * np.where(use & np.isfinite(var), var, 0.0)).sum(-1)
                        / total, np.nan)


def _model_dof(present: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """The additive model's residual degrees of freedom over the settings ``keep``
    (observations - settings - rounds + 1, rounds and settings with a run counted)."""
    p = present & keep[..., :, None]
    obs = p.sum(axis=(-1, -2))
    settings = p.any(axis=-1).sum(axis=-1)
    rounds = p.any(axis=-2).sum(axis=-1)
    return np.maximum(obs - settings - rounds + 1, 0)


def intervals(logs: np.ndarray, alpha: float, guard: float | None = GUARD):
    """Simultaneous intervals at level ``alpha`` each (the caller's share: Bonferroni over
    the family and the look) for ``log(t_i / t_j)`` of every pair ``i < j`` from a group's
    log epoch durations ``logs`` (``[.., k, rounds]``, NaN where a setting did not run).

    Returns ``(low, high, estimate, flagged)``: per pair (``[.., pairs]`` in
    ``np.triu_indices(k, 1)`` order) the interval (``-inf``/``inf`` where none) and the
    paired mean; per setting whether the guard compared it by its own pairs' spread.
    ``guard=None`` pools every setting (the negative control)."""
    logs = np.asarray(logs, float)
    k = logs.shape[-2]
    i, j = _pairs(k)
    present = ~np.isnan(logs)
    d = logs[..., i, :] - logs[..., j, :]
    both = ~np.isnan(d)
    n = both.sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(both, d, 0.0).sum(axis=-1) / n
        var = np.where(both, (d - mean[..., None]) ** 2, 0.0).sum(axis=-1) / (n - 1)
    var = np.where(n >= 2, var, np.nan)
    weight = np.maximum(n - 1, 0).astype(float)

    flagged = noisier(logs, guard) if guard is not None and k >= 3 else \
        np.zeros(logs.shape[:-2] + (k,), bool)
    pair_flagged = flagged[..., i] | flagged[..., j]
    pooled = _pooled(var, weight, ~pair_flagged) / 2  # one setting's variance
    dof_pool = _model_dof(present, ~flagged)
    runs = present.sum(axis=-1)
    if flagged.any():
        own = np.maximum(_setting_variances(var, weight, k), 0.0)
        # a flagged setting's own variance (its rounds - 1 degrees of freedom); the rest the
        # pooled one; a pair's variance their sum, its degrees of freedom Welch-Satterthwaite's
        each = np.where(flagged, own, pooled[..., None])
        each_dof = np.where(flagged, np.maximum(runs - 1, 1), np.maximum(dof_pool, 1)[..., None])
        spread2 = each[..., i] + each[..., j]
        with np.errstate(invalid="ignore", divide="ignore"):
            dof = spread2 ** 2 / (each[..., i] ** 2 / each_dof[..., i]
                                  + each[..., j] ** 2 / each_dof[..., j])
        dof = np.where(pair_flagged, np.minimum(dof, dof_pool[..., None] + 0.0), dof_pool[..., None])
        spread2 = np.where(pair_flagged, spread2, 2 * pooled[..., None])
    else:
        spread2 = np.broadcast_to(2 * pooled[..., None], mean.shape)
        dof = np.broadcast_to(dof_pool[..., None], mean.shape)
    with np.errstate(invalid="ignore", divide="ignore"):
        t = special.stdtrit(np.maximum(dof, 1), 1 - alpha / 2)
        half = t * np.sqrt(spread2 / n)
    ok = (dof >= 1) & (n >= 2) & np.isfinite(half)
    low = np.where(ok, mean - half, -np.inf)
    high = np.where(ok, mean + half, np.inf)
    return low, high, mean, flagged


def fit(logs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The additive model's ``level`` of each setting (``[.., k]``) and ``speed`` of each
    round (``[.., rounds]``), by alternating means: exact for a full table, close for a
    ragged one. ``exp(level_i - level_j)`` is what the run measured of ``t_i / t_j``."""
    logs = np.asarray(logs, float)
    present = ~np.isnan(logs)
    speed = np.zeros(logs.shape[:-2] + (logs.shape[-1],))
    level = np.zeros(logs.shape[:-1])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # (a setting or round with no run)
        for _ in range(20):
            level = np.nanmean(np.where(present, logs - speed[..., None, :], np.nan), axis=-1)
            level = np.where(np.isnan(level), 0.0, level)
            speed = np.nanmean(np.where(present, logs - level[..., None], np.nan), axis=-2)
            speed = np.where(np.isnan(speed), 0.0, speed)
    return level, speed


WINSOR = 2.0  # the guard's fit: Huber's pseudo-observations cut at this many robust spreads
TEST_WINSOR = 2.5  # its test's residuals cut at this many: a wider cut flags a setting for
# one wild run (a busy second of the host) more often, a narrower one misses more of the
# settings that are noisier in every run


def noisier(logs: np.ndarray, guard: float = GUARD) -> np.ndarray:
    """Which settings spread more than the rest (``[.., k]``): Cochran's step-down idea with
    an F test at level ``guard``: the setting whose residual variance in the additive model
    is the largest against the pooled one of the settings not flagged yet is flagged while
    the test rejects, then the next. For the test only, the model is fitted to Huber's
    pseudo-observations and its residuals winsorized at :data:`WINSOR` robust spreads (the
    MAD of all of them), so that one wild run, or a heavy tail shared by every setting, flags
    none, while a setting whose every run spreads wide still does."""
    logs = np.asarray(logs, float)
    k = logs.shape[-2]
    present = ~np.isnan(logs)
    flagged = np.zeros(logs.shape[:-1], bool)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        pseudo = logs
        for _ in range(3):  # Huber's pseudo-observations: the fit itself not pulled by one run
            level, speed = fit(pseudo)
            fitted = level[..., None] + speed[..., None, :]
            resid = np.where(present, logs - fitted, np.nan)
            mad = 1.4826 * np.nanmedian(np.abs(resid), axis=(-1, -2))
            cut = WINSOR * mad[..., None, None]
            pseudo = np.where(present, fitted + np.clip(resid, -cut, cut), np.nan)
        wide = (TEST_WINSOR / WINSOR) * cut
        r2 = np.where(present, np.clip(resid, -wide, wide) ** 2, 0.0).sum(axis=-1)
        runs = present.sum(axis=-1)
        # a setting's share of the residual degrees of freedom, as in a full table
        own_dof = np.maximum((runs - 1) * (k - 1) / k, 1e-9)
        own = r2 / own_dof
        testable = runs >= 4
        for _ in range(max(0, k - 2)):
            pool = ~flagged
            rest_r2 = (np.where(pool, r2, 0.0).sum(axis=-1)[..., None] - r2)
            rest_dof = np.where(pool, own_dof, 0.0).sum(axis=-1)[..., None] - own_dof
            ratio = own / (rest_r2 / np.maximum(rest_dof, 1e-9))
            crit = special.fdtri(own_dof, np.maximum(rest_dof, 1e-9), 1 - guard)
            candidate = np.where(pool & testable & (rest_dof >= 1), ratio / crit, -np.inf)
            worst = np.argmax(candidate, axis=-1)
            hit = np.take_along_axis(candidate, worst[..., None], axis=-1)[..., 0] > 1
            if not hit.any():
                break
            flagged |= hit[..., None] & (np.arange(k) == worst[..., None])
    return flagged
