"""How much interleaving cancels (``benchmarks/noise.py``): the spread of two lanes' log-ratio
of rates, from an :class:`speedlimit.run.interleave.Result`."""

from __future__ import annotations

import math
import statistics

from speedlimit.run.interleave import Result


def log_ratio_spread(result: Result, a: int, b: int, block: int = 1) -> dict:
    """How much interleaving cancels, for lanes ``a`` and ``b``: the sd of the log-ratio of
    their rates, paired within a round (windows seconds apart) and paired across rounds
    (each of ``a``'s windows with ``b``'s window ``rounds // 2`` rounds later); and with
    ``block`` > 1 the sd of the log-ratio of their median rates over each ``block`` rounds in
    a row (what a race's round of ``block`` windows per setting pairs)."""
    ra = {w.round: math.log(w.rate) for w in result.lanes[a].windows}
    rb = {w.round: math.log(w.rate) for w in result.lanes[b].windows}
    common = sorted(set(ra) & set(rb))
    within = [ra[r] - rb[r] for r in common]
    shift = max(1, len(common) // 2)
    across = [ra[common[i]] - rb[common[(i + shift) % len(common)]]
              for i in range(len(common))]
    blocks = [common[i:i + block] for i in range(0, len(common) - block + 1, block)]
    blocked = [statistics.median(ra[r] for r in rounds) - statistics.median(rb[r] for r in rounds)
               for rounds in blocks]
    sd = statistics.stdev
    return {"pairs": len(common),
            "median_ratio": math.exp(statistics.median(within)) if within else None,
            "within": sd(within) if len(within) > 1 else None,
            "across": sd(across) if len(across) > 1 else None,
            "block": block, "blocks": len(blocked),
            "blocked": sd(blocked) if len(blocked) > 1 else None}
