"""The noise of the machine at hand, measured where a race measures: the seed's workload and
model, one torch thread, on the synthetic stand-in of FashionMNIST (``make noise``).

(a) **spread against length**: one setting trained steadily for ``--seconds`` in one process,
    every step's end recorded; cut into windows of 0.1-10 s, the spread of their rate;
(b) **shared by timings some time apart**: windows 0.1 s, 1 s, 10 s and 60 s apart, the sd of
    their paired log-ratio and the share of the spread they have in common (what a comparison
    of two timings that far apart cancels);
(c) **between processes and within**: ``--processes`` fresh processes, each timing a few
    seconds of 1-second windows: the spread of their medians against their windows' spread
    (Kalibera and Jones 2013), and each process's fixed costs: starting Python and importing
    torch and torchvision, loading the data set;
(d) **a run's fixed costs**: the workers' start (to the first batch) and shutdown for each
    number of workers, alone;
(e) **interleaved**: num_workers 0, 1 and 2 timed in one process in windows of
    ``--window`` seconds in a random order (:mod:`speedlimit.run.interleave`): the sd of the
    paired log-ratio within a round (windows a fraction of a second apart) against the same
    windows paired across rounds, and of the medians of ``--block`` rounds in a row (what a
    race's round of that many windows per setting pairs), per batch size;
(f) **what one whole epoch can check**: num_workers=0 at batch size 100, its rate in one
    window spanning its epoch (the race's check epoch), interleaved alone and interleaved beside
    the seed's other settings, in ``--repeats`` blocks alternating in one process.

Figures are from one run of this script, on this machine, at the moment it ran: noise moves.
Usage: python benchmarks/noise.py [--seconds 180] [--processes 5] [--train-size 60000]
                                  [--rounds 60] [--window 0.1 0.3] [--block 10]
                                  [--sections trace processes costs interleaved check]
                                  [--json FILE] [--quick]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

# torch's advice to use fewer workers than the machine's CPUs: this benchmark times them all
warnings.filterwarnings("ignore", message="This DataLoader will create")


sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))

LENGTHS = (0.1, 0.3, 1.0, 3.0, 10.0)
LAGS = (0.1, 1.0, 10.0, 60.0)
WORKERS = (0, 1, 2, 4, 8, 16)
SECTIONS = ("trace", "processes", "costs", "interleaved", "check")


def cell(num_workers: int, batch_size: int):
    from speedlimit.grid import Cell

    return Cell(loader="dataloader", batch_size=batch_size, lr=0.01, torch_threads=1,
                device="cpu", num_workers=num_workers, pin_memory=False,
                persistent_workers=False, prefetch_factor=None, workload="fashionmnist")


def workload(root: str):
    from speedlimit.run import workloads
    from speedlimit.run.workloads import build

    return build.build("fashionmnist", workloads.resolve("fashionmnist").function, root, 0)


def trace(root: str, seconds: float, num_workers: int, batch_size: int):
    """Train one setting for ``seconds``: per epoch, its start and each step's end and size."""
    import torch

    from speedbench import trace as tr
    from speedlimit.run import train
    from speedlimit.run.epoch import Epoch

    torch.set_num_threads(1)
    work = workload(root)
    the_cell = cell(num_workers, batch_size)
    torch.manual_seed(0)
    network = work.model()
    optimizer = torch.optim.Adam(network.parameters(), lr=0.01)
    gen = torch.Generator()
    loader = train.make_loader(work.dataset, the_cell, 0, gen)
    parts, until, epoch = [], time.perf_counter() + seconds, 0
    while time.perf_counter() < until:
        epoch += 1
        gen.manual_seed(train.epoch_seed(0, epoch))
        acc = Epoch(torch.device("cpu"), work.train_step, probing=True)
        for batch in loader:
            acc.step(network, optimizer, batch, False)
            if time.perf_counter() >= until:
                break
        parts.append((acc.start, acc.marks, acc.sizes))
    train._shut_down(loader)
    return parts, tr


def steady(parts, tr, length: float):
    """A trace's windows of ``length``, across epochs (a setting without workers starts an
    epoch in milliseconds): from the end of the first step (the start-up) on."""
    marks = [m for _, ms, _ in parts for m in ms]
    sizes = [z for _, _, zs in parts for z in zs]
    return tr.cut(marks[0], marks[1:], sizes[1:], length)


def section_trace(root: str, seconds: float, batch_size: int) -> dict:
    parts, tr = trace(root, seconds, 0, batch_size)
    out = {"seconds": seconds, "batch_size": batch_size, "num_workers": 0, "lengths": [],
           "lags": []}
    for length in LENGTHS:
        w = steady(parts, tr, length)
        out["lengths"].append({"length": length, **tr.spread(w.log_rates)})
    for lag in LAGS:
        length = min(lag, 1.0)
        w = steady(parts, tr, length)
        out["lags"].append({"window": length, **tr.shared(w, lag)})
    return out


def child(root: str, seconds: float) -> None:
    """One fresh process of section (c): print its fixed costs and its windows' log rates."""
    import torch  # noqa: F401
    import torchvision  # noqa: F401

    imported = time.time()
    t0 = time.perf_counter()
    workload(root)
    loaded = time.perf_counter() - t0
    parts, tr = trace(root, seconds, 0, 100)
    rates = steady(parts, tr, 1.0).log_rates
    print(json.dumps({"imported": imported, "data_set": loaded, "log_rates": rates.tolist()}))


def section_processes(root: str, processes: int, seconds: float) -> dict:
    from speedbench import trace as tr

    runs = []
    for _ in range(processes):
        before = time.time()
        proc = subprocess.run([sys.executable, __file__, "--child", root, "--seconds",
                               str(seconds)], capture_output=True, text=True, check=True)
        wall = time.time() - before
        got = json.loads(proc.stdout.strip().splitlines()[-1])
        runs.append({"python_and_import": got["imported"] - before, "data_set": got["data_set"],
                     "process": wall, "log_rates": got["log_rates"]})
    levels = tr.between_within([r["log_rates"] for r in runs])
    return {"processes": processes, "seconds_each": seconds, **levels,
            "python_and_import": _median_range([r["python_and_import"] for r in runs]),
            "data_set": _median_range([r["data_set"] for r in runs]),
            "process": _median_range([r["process"] for r in runs])}


def section_costs(root: str, batch_size: int, repeats: int) -> list[dict]:
    """Each number of workers' start-up (to the first batch) and shutdown, alone."""
    import torch

    from speedlimit.run import train

    torch.set_num_threads(1)
    work = workload(root)
    rows = {n: {"startup": [], "shutdown": []} for n in WORKERS}
    order = [n for _ in range(repeats) for n in WORKERS]
    random.Random(0).shuffle(order)
    for n in order:
        gen = torch.Generator().manual_seed(1)
        loader = train.make_loader(work.dataset, cell(n, batch_size), 0, gen)
        start = time.perf_counter()
        iterator = iter(loader)
        next(iterator)
        rows[n]["startup"].append(time.perf_counter() - start)
        for _ in range(min(3, len(loader) - 1)):  # a few batches, never the epoch's end
            next(iterator)
        start = time.perf_counter()
        if hasattr(iterator, "_shutdown_workers"):
            iterator._shutdown_workers()
        rows[n]["shutdown"].append(time.perf_counter() - start)
        del iterator, loader
    return [{"num_workers": n, "batch_size": batch_size,
             "startup": _median_range(r["startup"]), "shutdown": _median_range(r["shutdown"])}
            for n, r in rows.items()]


def section_interleaved(root: str, batch_size: int, rounds: int, window: float,
                        block: int) -> dict:
    import torch

    from speedbench import spread
    from speedlimit.run import interleave, lane_epoch

    torch.set_num_threads(1)
    work = workload(root)
    cells = [cell(n, batch_size) for n in (0, 1, 2)]
    if not all(interleave.interleavable(c, -(-len(work.dataset) // batch_size)) for c in cells):
        return None
    result = interleave.run(cells, work.dataset, work, 0, torch.device("cpu"), rounds, window,
                            random.Random(0))
    lanes = result.lanes
    pairs = [{"a": a, "b": b, **spread.log_ratio_spread(result, a, b, block)}
             for a, b in ((1, 0), (2, 0), (2, 1))]
    worst = max((w.others_cpu or 0.0) for lane in lanes for w in lane.windows)
    timed = sum(w.seconds for lane in lanes for w in lane.windows)
    return {"batch_size": batch_size, "rounds": rounds, "window": window,
            "seconds": result.seconds, "timed": timed, "settle": result.settle_seconds,
            "max_others_cpu": worst,
            "predicted": [lane_epoch.predict(lane, result.dataset_size)["epoch_duration"]
                          for lane in lanes],
            "pairs": pairs}


def section_check(root: str, batch_size: int, blocks: int, rounds: int, window: float) -> dict:
    """(f) What one whole epoch (the race's check) can confirm: in one process, alternating in
    blocks, num_workers=0's rate in one window spanning its epoch, interleaved alone, and
    interleaved beside the seed's other settings."""
    import torch

    from speedlimit.run import interleave, lane_epoch

    torch.set_num_threads(1)
    work = workload(root)
    cells = [cell(n, batch_size) for n in (0, 1, 2, 4, 8, 16)]
    device = torch.device("cpu")
    kinds = {"whole epoch": ([cells[0]], 1, 1e9), "interleaved alone": ([cells[0]], rounds,
                                                                         window),
             "interleaved, 6 settings": (cells, rounds, window)}
    rates = {k: [] for k in kinds}
    for b in range(blocks):
        for kind in random.Random(b).sample(list(kinds), len(kinds)):
            these, n, w = kinds[kind]
            result = interleave.run(these, work.dataset, work, 0, device, n, w, random.Random(b))
            rates[kind].append(lane_epoch.steady_rate(result.lanes[0]))
    whole = statistics.median(rates["whole epoch"])
    return {"batch_size": batch_size, "blocks": blocks, "rates": rates,
            "ratio_to_whole": {k: statistics.median(v) / whole for k, v in rates.items()}}


def _median_range(values) -> dict:
    return {"median": statistics.median(values), "min": min(values), "max": max(values),
            "n": len(values)}


def _pct(x) -> str:
    return "-" if x is None else f"{100 * x:.1f}%"


def report(res: dict) -> str:
    lines = [f"# Noise on {res['machine']}, {res['date']}", "", f"`{res['command']}`", ""]
    for key, section in (("trace", _report_trace), ("processes", _report_processes),
                         ("costs", _report_costs), ("interleaved", _report_interleaved),
                         ("check", _report_check)):
        if key in res:
            lines += section(res[key]) + [""]
    return "\n".join(lines)


def _report_trace(t: dict) -> list[str]:
    lines = [f"(a) one setting (num_workers=0, batch_size {t['batch_size']}) trained "
             f"{t['seconds']:.0f} s: spread of log rate by window length", "",
             "| window | windows | sd | robust sd | slowest / fastest |", "|---|---|---|---|---|"]
    for r in t["lengths"]:
        lines.append(f"| {r['length']} s | {r['n']} | {_pct(r['sd'])} | {_pct(r['robust_sd'])} "
                     f"| {r['range_ratio'] or 0:.2f} |")
    lines += ["", "(b) shared by two timings some time apart", "",
              "| lag | window | pairs | paired sd | share |", "|---|---|---|---|---|"]
    for r in t["lags"]:
        share = "-" if r["share"] is None else f"{r['share']:.2f}"
        lines.append(f"| {r['lag']} s | {r['window']} s | {r['pairs']} | "
                     f"{_pct(r['paired_sd'])} | {share} |")
    return lines


def _report_processes(p: dict) -> list[str]:
    share = "-" if p["between_share"] is None else format(p["between_share"], ".2f")
    pi = p["python_and_import"]
    return [f"(c) {p['processes']} fresh processes, {p['seconds_each']:.0f} s of 1 s windows "
            "each", "",
            f"- between processes (sd of their medians): {_pct(p['sd_between'])}; within "
            f"(windows about their process's median): {_pct(p['sd_within'])}; share of the "
            f"variance between processes: {share}",
            f"- Python start + import torch, torchvision: {pi['median']:.2f} s "
            f"({pi['min']:.2f}-{pi['max']:.2f}); data set: {p['data_set']['median']:.2f} s; "
            f"whole process: {p['process']['median']:.1f} s"]


def _report_costs(all_costs: list) -> list[str]:
    lines = []
    for costs in all_costs:
        lines += [f"(d) fixed costs at batch_size {costs[0]['batch_size']}, alone (median, "
                  "min-max)", "", "| num_workers | start-up to first batch | shutdown |",
                  "|---|---|---|"]
        for r in costs:
            s, d = r["startup"], r["shutdown"]
            lines.append(f"| {r['num_workers']} | {1e3 * s['median']:.0f} ms "
                         f"({1e3 * s['min']:.0f}-{1e3 * s['max']:.0f}) | "
                         f"{1e3 * d['median']:.0f} ms ({1e3 * d['min']:.0f}-{1e3 * d['max']:.0f}) |")
        lines.append("")
    return lines


def _report_interleaved(runs: list) -> list[str]:
    lines = ["(e) interleaved in one process: sd of the paired log-ratio of one window each, "
             "within a round and across rounds, and of the medians of blocks of rounds", "",
             "| batch size | window | rounds | pair | ratio | within a round | across rounds "
             "| blocks of | blocked | run / timed / settle | others' CPU (max) |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for e in runs:
        for q in e["pairs"]:
            lines.append(
                f"| {e['batch_size']} | {e['window']} s | {e['rounds']} | "
                f"{q['a']} vs {q['b']} workers | {q['median_ratio']:.2f} | {_pct(q['within'])} | "
                f"{_pct(q['across'])} | {q['block']} | {_pct(q['blocked'])} | "
                f"{e['seconds']:.0f} / {e['timed']:.0f} / "
                f"{e['settle']:.1f} s | {e['max_others_cpu']:.2f} s |")
    return lines


def _report_check(c: dict) -> list[str]:
    lines = [f"(f) one whole epoch against windows, num_workers=0 at batch size "
             f"{c['batch_size']}, {c['blocks']} blocks alternating in one process: µs a sample",
             "", "| measured as | each block | median / whole epochs' median |", "|---|---|---|"]
    for kind, rates in c["rates"].items():
        each = ", ".join(f"{1e6 * r:.0f}" for r in rates)
        lines.append(f"| {kind} | {each} | {c['ratio_to_whole'][kind]:.2f} |")
    return lines


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=180.0)
    parser.add_argument("--processes", type=int, default=5)
    parser.add_argument("--process-seconds", type=float, default=6.0)
    parser.add_argument("--train-size", type=int, default=60_000)
    parser.add_argument("--rounds", type=int, default=60)
    parser.add_argument("--window", type=float, nargs="+", default=[0.1, 0.3])
    parser.add_argument("--block", type=int, default=10,
                        help="(e): rounds per block, as a race's round of windows pairs them")
    parser.add_argument("--sections", nargs="+", default=list(SECTIONS), choices=SECTIONS)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[100, 1000])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", help="also write the figures to this file")
    parser.add_argument("--quick", action="store_true", help="a few seconds of each (a test)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(args.child, args.seconds)
        return {}
    if args.quick:
        args.seconds, args.processes, args.process_seconds = 4.0, 2, 2.0
        args.rounds, args.window, args.repeats, args.block = 4, [0.1], 1, 2
    from speedlimit.data import idx

    tmp = tempfile.mkdtemp(prefix="speedlimit-noise-")  # private (0700): not another user's
    try:
        root = os.path.join(tmp, "synthetic")
        idx.write_synthetic(root, args.train_size, 100, seed=0)
        res = {
            "machine": f"{platform.node()} ({os.cpu_count()} CPUs, "
                       f"{platform.processor() or platform.machine()}, "
                       f"Python {platform.python_version()})",
            "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "command": "python benchmarks/noise.py " + " ".join(argv if argv is not None
                                                               else sys.argv[1:]),
            "train_size": args.train_size,
        }
        wanted = set(args.sections)
        if "trace" in wanted:
            res["trace"] = section_trace(root, args.seconds, 100)
        if "processes" in wanted:
            res["processes"] = section_processes(root, args.processes, args.process_seconds)
        if "costs" in wanted:
            res["costs"] = [section_costs(root, b, args.repeats) for b in args.batch_sizes]
        if "check" in wanted:
            res["check"] = section_check(root, 100, args.repeats, 30 if not args.quick else 2,
                                         0.1)
        if "interleaved" in wanted:
            res["interleaved"] = [e for b in args.batch_sizes for w in args.window
                                  if (e := section_interleaved(root, b, args.rounds, w,
                                                               args.block))]
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(report(res))
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=2) + "\n")
    return res


if __name__ == "__main__":
    main()
