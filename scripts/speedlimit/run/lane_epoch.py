"""A lane's whole epoch predicted from what an interleaved run timed of it
(:mod:`speedlimit.run.interleave`): its steady rate over its windows, its start-up, warm-up and
shutdown. A race's group job records it as each setting's epoch (:mod:`speedlimit.run.group`).
"""

from __future__ import annotations

import statistics

from scipy.stats import trim_mean

from speedlimit.run.interleave import Lane

TRIM = 0.1  # the steady rate's trimmed share at each end (one window of ten)


def steady_rate(lane: Lane) -> float | None:
    """The lane's seconds per sample: the 10%-trimmed mean of its windows' rates (scipy's
    ``trim_mean``). Against the median it halves the variance of a round's paired log-ratio
    at batch size 100 here, and one wild window of ten still moves it little
    (docs/benchmarks.md)."""
    rates = [w.rate for w in lane.windows]
    return float(trim_mean(rates, TRIM)) if rates else None


def predict(lane: Lane, dataset_size: int, rate: float | None = None) -> dict:
    """The lane's predicted epoch: its (median) start-up and warm-up, the rest of the epoch's
    samples at ``rate`` (its steady rate by default), and its (median) shutdown where a
    full epoch's last batch would shut its workers down (not ``persistent_workers``)."""
    rate = steady_rate(lane) if rate is None else rate
    startup = statistics.median(o.startup for o in lane.openings)
    warmup = statistics.median(o.warmup for o in lane.openings)
    opened = statistics.median(o.samples for o in lane.openings)
    shutdown = statistics.median(lane.shutdowns) if lane.shutdowns else 0.0
    ends_with_epoch = bool(lane.cell.num_workers) and not lane.cell.persistent_workers
    rest = max(0, dataset_size - opened)
    epoch = startup + warmup + (rate or 0.0) * rest + (shutdown if ends_with_epoch else 0.0)
    return {"epoch_duration": epoch, "startup": startup, "warmup": warmup, "rate": rate,
            "rest_samples": rest, "shutdown": shutdown,
            "shutdown_counted": ends_with_epoch, "windows": len(lane.windows),
            "openings": len(lane.openings)}
