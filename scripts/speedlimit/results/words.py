"""The one vocabulary of the findings, the front page, the recommendation and the captions:
one way to write a speed-up, a ratio of epochs, an interval, a verdict, seconds, a share and a
num_workers setting everywhere (single backticks mark code, as the findings' Markdown and the
report's reStructuredText both show it)."""

from __future__ import annotations

import math

from speedlimit.results import stats


def times(value: float) -> str:
    """A speed-up or ratio: ``1.43x``."""
    return f"{value:.2f}x"


def percent(value: float, digits: int = 0) -> str:
    """A share: ``0.1`` -> ``10%`` (``digits`` after the point: ``0.012`` -> ``1.2%``)."""
    return f"{100 * value:.{digits}f}%"


def workers(n) -> str:
    """A num_workers setting as code: ``num_workers=2`` in backticks."""
    return f"`num_workers={int(n)}`"


def seconds(value: float) -> str:
    """A duration: ``4.21 s``; below a second in ms (``230 ms``), below a ms in µs."""
    if value >= 1:
        return f"{value:.3g} s"
    if value >= 1e-3:
        return f"{value * 1e3:.3g} ms"
    return f"{value * 1e6:.3g} µs"


def minutes(value: float) -> str:
    """A longer duration: ``42 s`` or ``3.5 min``."""
    return f"{value:.0f} s" if value < 90 else f"{value / 60:.1f} min"


def interval(low: float, high: float) -> str:
    """An interval of a ratio: ``interval 1.20-1.45x``, or that there is none yet."""
    if not (math.isfinite(low) and math.isfinite(high)):
        return "no interval yet"
    return f"interval {low:.2f}-{high:.2f}x"


def behind(low: float, high: float) -> str:
    """How much slower than the fastest setting tried a setting may be, read off its interval
    against the fastest of the others (a ratio of epoch durations): ``at most 6% slower than
    the fastest setting tried (interval 0.97-1.06x of the fastest other's epoch)``."""
    if not (math.isfinite(low) and math.isfinite(high)):
        return "not yet compared with the fastest setting tried (no interval yet)"
    against = f"({interval(low, high)} of the fastest other's epoch)"
    if high <= 1:
        return f"the fastest setting tried {against}"
    return f"at most {percent(high - 1)} slower than the fastest setting tried {against}"


# What each verdict of a speed ratio (above 1: faster) says, in words: the one place.
VERDICTS = {
    stats.FASTER: "faster by more than noise",
    stats.SLOWER: "slower by more than noise",
    stats.SMALL: "within the {threshold} noise threshold",
    stats.NO_CLEAR: "not told apart",
    stats.TOO_FEW: "too few runs for an interval",
    stats.SINGLE: "one run: no interval",
}


def verdict(name: str, threshold: float) -> str:
    """A verdict in words (``threshold``: the noise threshold it was read with)."""
    return VERDICTS.get(name, name).format(threshold=percent(threshold))


def speedup(estimate: float, low: float, high: float, verdict_name: str,
            threshold: float) -> str:
    """A speed-up with its interval and verdict: ``1.43x (interval 1.25-1.60x: faster by
    more than noise)``; one run: the value alone, said so."""
    if verdict_name == stats.SINGLE:
        return f"{times(estimate)} (one run: no interval)"
    return f"{times(estimate)} ({interval(low, high)}: {verdict(verdict_name, threshold)})"


def join(items) -> str:
    """Items in a sentence: ``a``, ``a and b``, ``a, b and c``."""
    items = list(items)
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]
