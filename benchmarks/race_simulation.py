"""The race's error rate and power, simulated through its own decision code (not a unit
test: the table in docs/statistics.md; tests/test_race.py asserts the rates).

For each scenario of speedbench.simulation (the seed grid's shape: 3 groups of 6
settings, 27 comparisons; 3% run-to-run noise unless the scenario says otherwise; the
"this machine" rows fitted to this VM's measured noise) and each construction of the race's
intervals (``blocks``: the group's pooled spread, planned looks, the race's; ``pairwise``:
each pair's own confidence sequence; ``pooled, no guard``: blocks without its guard, in the
guard's negative control), it prints:

* false claims: share of simulated runs with any false claim (a setting shown slower when it
  is not; the recommendation shown as fast, or faster than num_workers=0, when it is not);
* missed: share of runs where any final interval of the family missed the truth;
* decided: share of runs where every group was decided;
* rounds until every group was decided (mean; the cap where not), and what they take at
  ``--round-minutes`` a round (this VM's measured round of the seed's grid).

With ``--margins M [M ...]`` it prints instead what ``train.margin`` buys on the "this
machine" rows (docs/race.md).

Usage: python benchmarks/race_simulation.py [--runs N] [--rounds N] [--round-minutes M]
       [--margins M ...]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
from speedbench import simulation  # noqa: E402

CONSTRUCTIONS = {"blocks": {}, "pairwise": {"method": "pairwise"}}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--round-minutes", type=float, default=4.3)
    parser.add_argument("--margins", type=float, nargs="*")
    args = parser.parse_args(argv)
    if args.margins:
        return margins(args)
    rows = [(name, scenario, construction, kwargs)
            for name, scenario in {**simulation.SCENARIOS, **simulation.MACHINE}.items()
            for construction, kwargs in CONSTRUCTIONS.items()]
    control = simulation.NOISIER_CONTROL
    rows += [("guard's control", control, "blocks", {}),
             ("guard's control", control, "pooled, no guard", {"guard": None})]
    print("| scenario | construction | false claims | missed | decided | rounds (minutes) |")
    print("|---|---|---|---|---|---|")
    for name, scenario, construction, kwargs in rows:
        start = time.perf_counter()
        r = simulation.simulate(scenario, runs=args.runs, rounds=args.rounds, seed=11,
                                **kwargs)
        print(f"| {name}: {scenario.name} | {construction} | {r.false_claim:.4f} | "
              f"{r.missed:.4f} | {r.decided:.3f} | {r.mean_rounds:.1f} "
              f"({r.mean_rounds * args.round_minutes:.0f}) |", flush=True)
        print(f"<!-- {time.perf_counter() - start:.0f} s -->", file=sys.stderr)


def margins(args) -> None:
    rows = ["this machine", "this machine, turning"]
    print("| `train.margin` | " + " | ".join(f"{r}: decided within {args.rounds} rounds | "
                                           "mean rounds | false claims" for r in rows) + " |")
    print("|---" * (1 + 3 * len(rows)) + "|")
    for margin in args.margins:
        cells = []
        levers = {**simulation.LEVERS, "margin": margin}
        for name in rows:
            r = simulation.simulate(simulation.MACHINE[name], runs=args.runs,
                                    rounds=args.rounds, seed=11, levers=levers)
            cells += [f"{r.decided:.3f}", f"{r.mean_rounds:.1f}", f"{r.false_claim:.4f}"]
        print(f"| {margin:.2f} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
