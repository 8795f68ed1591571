"""The race's error rate and power, simulated through its own decision code (not a unit
test: the table in docs/statistics.md; tests/test_race.py asserts the rates).

For each scenario of speedlimit.results.simulation (the seed grid's shape: 3 groups of 6
settings, 27 comparisons; 3% run-to-run noise unless the scenario says otherwise; the
"this machine" rows fitted to this VM's measured noise) it prints:

* false claims: share of simulated runs with any false claim (a setting shown slower when it
  is not; the recommendation shown as fast, or faster than num_workers=0, when it is not);
* missed: share of runs where any final interval of any pair missed the truth;
* decided / correct: share of runs where every group was decided / decided acceptably;
* runs per race, rounds until decided (mean);
* fixed: the fewest runs per cell a fixed design (one look, the same rule) needs to be
  correct as often as the race, and its runs per pipeline run; with the ratio of the two.

Usage: python benchmarks/race_simulation.py [--runs N] [--rounds N]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
from speedlimit.results import simulation  # noqa: E402

def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=40)
    args = parser.parse_args(argv)
    scenarios = {**simulation.SCENARIOS, **simulation.MACHINE}
    print("| scenario | false claims | missed | decided | correct | runs per race "
          "(rounds) | fixed design: runs per cell (per race) | race / fixed |")
    print("|---|---|---|---|---|---|---|---|")
    for name, scenario in scenarios.items():
        start = time.perf_counter()
        r = simulation.simulate(scenario, runs=args.runs, rounds=args.rounds)
        cells = 3 * len(scenario.speedups)
        n = (simulation.fixed_runs_for(scenario, r.correct, runs=max(200, args.runs // 5))
             if r.correct >= 0.5 else None)  # matching a power near 0 says nothing
        fixed = f"{n} ({n * cells})" if n else "-"
        ratio = f"{r.mean_runs / (n * cells):.2f}" if n else "-"
        print(f"| {name}: {scenario.name} | {r.false_claim:.4f} | {r.missed:.4f} | "
              f"{r.decided:.3f} | {r.correct:.3f} | {r.mean_runs:.0f} ({r.mean_rounds:.1f}) | "
              f"{fixed} | {ratio} |", flush=True)
        print(f"<!-- {time.perf_counter() - start:.0f} s -->", file=sys.stderr)


if __name__ == "__main__":
    main()
