"""Findings, the published comparison, the front page and the HTML tables, from hand-made
records run through the real aggregation and race (no training). Each sentence that states a
finding has a case that makes it true and one that makes it false."""

from __future__ import annotations

import dataclasses
import html.parser

import numpy as np
import pandas as pd
import pytest
from docutils.core import publish_parts

from speedlimit import axes, grid
from speedlimit.results import aggregate, answer, claims, findings, frontpage, htmltable
from speedlimit.results import notes
from speedlimit.results import published
from speedlimit.groups import preference
from decided import LEVERS, outcomes_of, summarize

from test_aggregate import record, write
from test_claims import make

# Epoch durations (s) per batch size and num_workers; "tensor" is the loader-free limit.
DURATIONS = {100: {0: 10.0, 1: 8.0, 2: 7.0, 4: 9.0, "tensor": 5.0},
             1000: {0: 5.0, 1: 6.0, 2: 6.5, 4: 7.0, "tensor": 3.0}}
CONFIG = {"grid": {"num_workers": [0, 1, 2, 4], "batch_size": [100, 1000], "lr": [0.01],
                   "torch_threads": [1], "loader": ["dataloader", "tensor"]},
          "train": {"epochs": 1, "seed": 0, "repeats": 10},
          "data": {"source": "synthetic", "synthetic": {"train_size": 2000}}}


def tables_of(tmp_path, repeats: int):
    g = {"num_workers": [0, 1, 2, 4], "batch_size": [100, 1000], "lr": [0.01],
         "torch_threads": [1], "pin_memory": [False], "persistent_workers": [False],
         "prefetch_factor": [None], "device": ["cpu"], "workload": ["fashionmnist"],
         "loader": ["dataloader", "tensor"]}
    expected = grid.expand(g, repeats)[0]
    rng = np.random.default_rng(0)
    recs = []
    for c in expected:
        key = "tensor" if c.loader == "tensor" else c.num_workers
        recs.append(record(c, DURATIONS[c.batch_size][key] * np.exp(rng.normal(0, 0.003))))
    aggregate.build_table(write(tmp_path, recs), expected).to_csv(tmp_path / "t.csv",
                                                                  index=False)
    table = pd.read_csv(tmp_path / "t.csv")
    summarize(table).to_csv(tmp_path / "s.csv", index=False)
    return table, pd.read_csv(tmp_path / "s.csv")  # as the findings rule reads them


def compute(table, summary, **kwargs):
    outcomes = outcomes_of(table)
    groups = claims.build(summary, outcomes)
    fam = claims.family(outcomes, False) if outcomes else None
    return findings.compute(summary, groups, fam, table=table, **kwargs)


@pytest.fixture
def run10(tmp_path):
    return tables_of(tmp_path, 10)


@pytest.fixture
def summary10(run10):
    return run10[1]


@pytest.fixture
def run1(tmp_path):
    return tables_of(tmp_path, 1)


@pytest.fixture
def summary1(run1):
    return run1[1]


def text_of(sections) -> str:
    return "\n".join(f"{s.title}: " + " ".join(s.sentences) for s in sections)


def section(sections, start: str) -> str:
    return " ".join(next(s for s in sections if s.title.startswith(start)).sentences)


def test_the_answer_comes_first_with_how_sure(run10):
    sections = compute(*run10)
    assert [s.title for s in sections[:2]] == ["The answer", "How sure"]
    answer = sections[0].sentences
    assert answer[0].startswith("Workload fashionmnist, batch_size 100: `DataLoader(dataset, "
                                "batch_size=100, shuffle=True, num_workers=2)` with "
                                "`torch.set_num_threads(1), device cpu` (tested; over "
                                "`num_workers=0`: 1.43x (interval ")
    assert answer[0].endswith(": faster by more than noise); the fastest setting tried "
                              "(interval 0.70-1.00x of the fastest other's epoch)).")
    assert answer[1].startswith("Workload fashionmnist, batch_size 1000: `DataLoader(dataset, "
                                "batch_size=1000, shuffle=True, num_workers=0)` with "
                                "`torch.set_num_threads(1), device cpu` (tested; it "
                                "is `num_workers=0` itself; the fastest setting tried")
    sure = section(sections, "How sure")
    assert "the run's 10 comparisons" in sure and "multiple comparisons with the best" in sure
    assert "fixed-sample intervals for one look at the end" in sure
    assert "Each cell ran 10 times (whole epochs)." in sure


def test_one_run_per_cell_claims_nothing(run1):
    sections = compute(*run1)
    answer = " ".join(sections[0].sentences)
    assert "(one run, not tested; over `num_workers=0`: 1.43x (one run: no interval))" in answer
    sure = section(sections, "How sure")
    assert sure.startswith("Every cell ran once (`train.repeats: 1`, the seed's reproduction)")
    text = text_of(sections)
    assert "faster by more than noise" not in text and "(tested;" not in text


def test_a_group_section_says_each_claim_once(run10):
    sections = compute(*run10)
    group = section(sections, "Workload fashionmnist, batch_size 100")
    assert group.startswith("Recommended: `DataLoader(dataset, batch_size=100, shuffle=True, "
                            "num_workers=2)`, tested: over `num_workers=0`: 1.43x")
    assert ("Passed over, before it in the order of preference (fewest workers, then torch's "
            "defaults): `num_workers=0` is slower than the fastest setting tried by more than "
            "noise (1.43x the fastest other's epoch, interval ") in group
    assert "`num_workers=1` is slower than the fastest setting tried by more than noise" in group
    assert "It is also the fastest measured (7 s per epoch, median)." in group
    assert group.count("1.43x") == 2  # the gain, and num_workers=0's ratio: once each
    at1000 = section(sections, "Workload fashionmnist, batch_size 1000")
    assert at1000.startswith("Recommended: `DataLoader(dataset, batch_size=1000, shuffle=True, "
                             "num_workers=0)`, tested: no setting with workers was shown "
                             "faster than loading in the main process")
    assert "Passed over" not in at1000


@pytest.fixture
def declare():
    """Declare more axes for one test (speedlimit.axes.declare); then the axes as they were."""
    shipped = axes.AXES
    yield lambda *more: axes.declare(shipped + more)
    axes.declare(shipped)


def test_a_dataloader_axis_in_the_declaration_alone_is_pasted(tmp_path, declare):
    """A new DataLoader keyword needs no word anywhere but its Axis: the pasted call, the
    cell's DataLoader keywords and the race's preference for torch's defaults follow it."""
    group, _ = make(tmp_path, {0: 10.0, 2: 5.0}, repeats=10)
    declare(axes.Axis("in_order", bool, kinds=(axes.DATALOADER,), loader_keyword="in_order",
                      default=True))

    def with_in_order(text):  # each setting as the race holds it, the new axis's value as text
        settings = [{**s, "in_order": text} for s in group.outcome.settings]
        return dataclasses.replace(group, outcome=dataclasses.replace(group.outcome,
                                                                      settings=settings))

    i = group.recommendation.setting
    assert findings.paste(with_in_order("False"), i) == (
        "DataLoader(dataset, batch_size=100, shuffle=True, num_workers=2, in_order=False)")
    # At torch's default it is left out, as pin_memory: false is.
    assert findings.paste(with_in_order("True"), i) == (
        "DataLoader(dataset, batch_size=100, shuffle=True, num_workers=2)")
    assert axes.loader_kwargs({"batch_size": 100, "num_workers": 2, "in_order": False}) == {
        "batch_size": 100, "num_workers": 2, "in_order": False}
    assert axes.TORCH_DEFAULTS["in_order"] is True
    assert (preference({"num_workers": 2, "in_order": "True"})
            < preference({"num_workers": 2, "in_order": "False"}))


def test_as_fast_and_the_fastest_when_fewer_workers_stand_in(tmp_path):
    group, fam = make(tmp_path, {0: 10.0, 1: 5.05, 2: 5.0}, repeats=10)
    text = " ".join(findings.group_sentences(group))
    assert ("Recommended: `DataLoader(dataset, batch_size=100, shuffle=True, num_workers=1)`, "
            "tested: over `num_workers=0`: 1.98x (interval 1.98-1.99x: faster by more than "
            "noise); at most 1% slower than the fastest setting tried (interval 1.01-1.01x of "
            "the fastest other's epoch).") in text
    assert "The fastest measured was `num_workers=2` (5 s per epoch, median;" in text
    same, _ = make(tmp_path / "s", {0: 10.0, 1: 4.0, 2: 5.0}, repeats=10)
    text = " ".join(findings.group_sentences(same))
    assert "The fastest measured was" not in text and "It is also the fastest measured" in text


def test_an_undecided_group_says_what_is_open(tmp_path):
    group, _ = make(tmp_path, {0: 10.0, 1: 5.0, 2: 5.0}, repeats=4, noise=0.10)
    text = " ".join(findings.group_sentences(group))
    assert text.startswith("Undecided after 4 round(s); the fewest workers measured within "
                           "the 2% noise threshold of the fastest: `DataLoader(")
    assert "Still open: whether `num_workers=" in text and "more round(s) would settle it" in text
    assert text.count("at most 1.10x as long") <= 1  # the rule said once
    decided, _ = make(tmp_path / "d", {0: 10.0, 1: 5.0, 2: 5.0}, repeats=10)
    assert "Still open" not in " ".join(findings.group_sentences(decided))


def test_the_prediction_holds_or_fails_by_the_intervals(tmp_path):
    holds, _ = make(tmp_path, {0: 10.0, 1: 5.0, 2: 5.0}, repeats=10, load=1e-4, compute=1e-4,
                    cpus=2)
    text = " ".join(findings.prediction_sentences(holds))
    assert ("so workers stop helping at `num_workers=1` (within 2% of the best the grid "
            "allows), and the race's own rule applied to these predicted epochs picks "
            "`num_workers=1`.") in text
    assert "Nothing measured contradicts the prediction: each of its 2 speed-up(s)" in text
    assert "The measurement contradicts" not in text
    fails, _ = make(tmp_path / "f", {0: 10.0, 1: 8.0, 2: 6.0}, repeats=10, load=1e-4,
                    compute=1e-4, cpus=2)
    text = " ".join(findings.prediction_sentences(fails))
    assert "The measurement contradicts the prediction: 2 of its 2 speed-up(s)" in text
    assert "Furthest off: `num_workers=1`, where computing one sample took 110 µs with the " \
           "workers beside it, against 100 µs alone" in text
    assert "Nothing measured contradicts" not in text


def test_the_cost_sentence(tmp_path):
    group, _ = make(tmp_path, {0: 10.0, 1: 5.0}, repeats=10, load=3e-4, compute=1e-4, cpus=2)
    assert findings.cost_sentence(group).endswith(
        "Per batch of 100: 30 ms of loading against 10 ms of compute, so loading costs 3.00 "
        "times the compute.")
    none, _ = make(tmp_path / "n", {0: 10.0, 1: 5.0}, repeats=10)
    assert "no loading cost" in findings.cost_sentence(none)


def test_the_race_check_sentence(tmp_path):
    group, _ = make(tmp_path, {0: 10.0, 1: 5.0}, repeats=10)
    group.checks = [claims.Check(1, 5.0, 4.0)]
    [text] = findings.check_sentences(group)
    assert "`num_workers=1`: 5 s predicted (median over its runs), 4 s measured (+25%)" in text
    group.checks = []
    assert findings.check_sentences(group) == []


def test_how_sure_says_why_a_race_stopped():
    fam = claims.Family(0.05, 45, True, 12, **LEVERS)
    for stopped, words in (("decided", "every group was decided"),
                           ("max_rounds", "it reached `train.max_rounds` = 40"),
                           ("budget", "the next round would have passed `train.budget` = 15.0 "
                                      "min")):
        state = {"rounds": 12, "spent_seconds": 300.0, "stopped": stopped, "max_rounds": 40,
                 "budget_seconds": 900.0}
        text = " ".join(findings.how_sure_sentences(fam, state, []))
        assert f"The race ran 12 round(s) (5.0 min of rounds) and stopped because {words}." \
            in text
        assert "together they hold at every round at once however often the race looked" \
            in text


def test_published_speedups_and_comparison(summary10):
    pub = published.load()
    assert len(pub) == 18
    speed = published.speedups(pub).set_index(["batch_size", "num_workers"])["speedup"]
    assert speed[(100, 0)] == 1.0
    assert speed[(100, 1)] == pytest.approx(23.281029 / 18.125359)
    comparison = published.compare(pub, summary10)
    # Both have batch_size 100 and 1000 with 1, 2 and 4 workers (no 0: trivially 1).
    assert len(comparison) == 6
    row = comparison.set_index(["batch_size", "num_workers"]).loc[(100, 2)]
    assert row["reproduced_speedup"] == pytest.approx(10 / 7, rel=0.02)
    assert row["agreement"] == "agree" and row["published_direction"] == "faster"
    slow = comparison.set_index(["batch_size", "num_workers"]).loc[(1000, 1)]
    assert slow["agreement"] == "disagree" and slow["reproduced_ci_high"] < 1
    assert comparison["published_in_interval"].notna().all()
    sentences = notes.published_sentences(comparison)
    assert ("our interval lies on the published value's side of 1 in 3 of 6 cells, on the "
            "other side in 3, and straddles 1 (inconclusive) in 0.") in sentences[0]
    assert sentences[1].startswith("They agree at batch_size 100 with 1 worker")
    assert sentences[2].startswith("They disagree at batch_size 1000 with 1 worker")
    assert any("it holds at batch_size 100 (interval above 1); it is reversed at batch_size "
               "1000 (interval below 1)" in s for s in sentences)


def test_a_straddling_interval_is_inconclusive_and_single_runs_claim_nothing(summary1):
    assert published.agreement(1.3, 0.9, 1.4) == "inconclusive"
    assert published.agreement(1.3, 1.1, 1.4) == "agree"
    assert published.agreement(1.3, 0.7, 0.9) == "disagree"
    assert published.agreement(1.02, 0.97, 1.04) == "agree"  # published: no change
    assert published.agreement(1.3, float("nan"), float("nan")) == "no interval"
    comparison = published.compare(published.load(), summary1)
    assert comparison["agreement"].eq("no interval").all()
    sentences = notes.published_sentences(comparison)
    assert "so no agreement or disagreement is claimed" in sentences[0]
    assert "whether it holds here is not claimed" in " ".join(sentences)
    assert "does not record its hardware" in sentences[-1]


def test_no_shared_cells_is_said(summary10):
    other = summary10.assign(lr=0.5)
    comparison = published.compare(published.load(), other)
    assert comparison.empty
    assert "nothing to compare" in notes.published_sentences(comparison)[0]


def test_direction():
    assert published.direction(1.2) == "faster"
    assert published.direction(0.8) == "slower"
    assert published.direction(1.03) == "no change"
    assert published.direction(float("nan")) == "unknown"


ENV = {"python": "3.11.7", "torch": "2.14.1", "torchvision": "0.29.1", "cpu_count": 2,
       "physical_cores": 2, "cpus_allowed": 2, "memory_bytes": 24 * 2**30, "node": "vm",
       "cpu_model": "AMD EPYC", "device": "cpu", "torch_threads": 1,
       "thread_env": {"OMP_NUM_THREADS": "1"}, "os": "Linux"}


def test_front_page_rst_renders_cleanly_and_says_everything(run10):
    table, summary = run10
    comparison = published.compare(published.load(), summary)
    doc = frontpage.document(summary, comparison, [ENV] * 3, CONFIG, revision="abc123",
                             table=table, outcomes=outcomes_of(table))
    rst = doc.rst()
    parts = publish_parts(rst, writer="html",
                          settings_overrides={"report_level": 2, "halt_level": 2})
    body = parts["html_body"]
    for needle in ("The answer", "How sure", "What was run", "Hardware", "AMD EPYC",
                   "2 logical CPUs", "24.0 GiB RAM", "How to reproduce", "abc123",
                   "num_workers 0, 1, 2, 4"):
        assert needle in body, needle
    assert body.index("The answer") < body.index("What was run") < body.index("Hardware")
    md_titles = [line for line in doc.markdown().splitlines() if line.startswith("## ")]
    assert md_titles[:2] == ["## The answer", "## How sure"]
    assert "``snakemake --cores all --configfile reproduce.yaml``" in rst
    md = doc.markdown()
    assert md.startswith("# speedlimit: findings\n\n## The answer")
    assert "## Workload fashionmnist, batch_size 100" in md
    assert "```yaml\ngrid:" in md
    page = doc.html()
    assert "batch_size 1000" in page and "<code>num_workers=0</code>" in page
    entries = doc.recommendation["recommendations"]
    assert [e["dataloader_kwargs"]["num_workers"] for e in entries] == [2, 0]
    assert entries[0]["how_sure"]["level"] == "tested"
    assert entries[0]["speedup_over_num_workers_0"]["verdict"] == "faster"
    assert entries[1]["speedup_over_num_workers_0"] == "this is num_workers=0"
    assert "simultaneous at 95%" in doc.recommendation["about"]
    # the answers first, the explanation after them; the call with what it holds under
    assert list(doc.recommendation) == ["recommendations", "about"]
    assert list(entries[0])[:5] == ["workload", "batch_size", "paste", "with", "how_sure"]
    # the answer as a table first, in every format, one row per group, the sentences below
    rows = answer.rows(entries)
    assert [r[:2] for r in rows] == [["fashionmnist", "100"], ["fashionmnist", "1000"]]
    head = md.split("## The answer\n\n", 1)[1]
    assert head.startswith("| workload | batch size | over num_workers=0 |")
    assert head.index("| fashionmnist | 1000 |") < head.index("\n- ")
    assert f"| {rows[0][2]} | {rows[0][3]} | {rows[0][4]} |" in head
    assert "<th>vs the fastest tried</th>" in page and f"<td>{rows[0][4]}</td>" in page
    assert "over num_workers=0</th>" in body  # the front page's rst renders the table
    assert body.index("status</th>") < body.index("How sure")
    assert entries[0]["with"] == "torch.set_num_threads(1), device cpu"


class _Collector(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags, self.rows, self.external = [], 0, []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.rows += tag == "tr"
        for name, value in attrs:
            if name in ("src", "href") and value and not value.startswith(("#", "data:")):
                self.external.append(value)


def test_html_table_is_sortable_escaped_and_self_contained():
    frame = pd.DataFrame({"name": ["<b>x</b>", "y"], "n": pd.array([2, None], dtype="Int64"),
                          "v": [0.123456789, float("nan")], "ok": [True, False]})
    page = htmltable.table_page(frame, "T", "caption", table_id="t")
    parser = _Collector()
    parser.feed(page)
    assert parser.rows == 3 and parser.external == [] and "script" in parser.tags
    assert "&lt;b&gt;x&lt;/b&gt;" in page and "<b>x</b>" not in page
    assert 'data-value="0.123456789">0.1235<' in page
    assert 'data-value="">' in page  # missing values sort last, shown empty
    assert 'class="sortable" id="t"' in page and 'data-filter="t"' in page


def quality_table(tmp_path, odd_loss=None) -> pd.DataFrame:
    g = {"num_workers": [0, 2], "batch_size": [100], "lr": [0.01], "torch_threads": [1],
         "pin_memory": [False], "persistent_workers": [False], "prefetch_factor": [None],
         "device": ["cpu"], "workload": ["fashionmnist"], "loader": ["dataloader", "tensor"]}
    expected = grid.expand(g, 1)[0]
    recs = [record(c, 1.0, loss=odd_loss if odd_loss and c.num_workers == 2 else 0.5)
            for c in expected]
    path = tmp_path / "table.csv"
    aggregate.build_table(write(tmp_path, recs), expected).to_csv(path, index=False)
    return pd.read_csv(path)  # as the findings rule reads it


def test_equal_quality_is_said_and_a_differing_cell_named(tmp_path):
    same = " ".join(notes.quality_sentences(quality_table(tmp_path / "a")))
    assert same.startswith("Quality is not what the settings trade")
    assert ("all cells with the same batch_size, lr, torch_threads, device and workload trained "
            "on the same batches") in same
    assert "(3 runs checked)" in same
    odd = " ".join(notes.quality_sentences(quality_table(tmp_path / "b", 0.7)))
    assert "1 of 3 runs reached a different training loss" in odd
    assert "batch_size 100 with `num_workers=2` (run 2, loss 0.700000)" in odd
    assert "dataloader/" not in odd  # cells named by their settings, not their paths
    race_runs = quality_table(tmp_path / "c").assign(timed="windows")
    assert notes.quality_sentences(race_runs)[0].startswith(
        "A race's runs train on part of an epoch")


def noisy_table(tmp_path, repeats=5, epochs=1, disturbed_cell=None, steady=None,
                warnings=None):
    """Table and summary from records that carry the reference kernel, machine load and, if
    asked, more epochs with their own durations."""
    g = {"num_workers": [0, 2], "batch_size": [100], "lr": [0.01], "torch_threads": [1],
         "pin_memory": [False], "persistent_workers": [False], "prefetch_factor": [None],
         "device": ["cpu"], "workload": ["fashionmnist"], "loader": ["dataloader"]}
    expected = grid.expand(g, repeats)[0]
    recs = []
    for i, c in enumerate(expected):
        first = {0: 10.0, 2: 8.0}[c.num_workers] * (1 + 0.01 * c.repeat)
        r = record(c, first)
        r["params"]["epochs"] = epochs
        for e in range(2, epochs + 1):
            later = (steady or {0: 10.0, 2: 8.0})[c.num_workers] * (1 + 0.01 * c.repeat)
            r["epochs"].append({**r["epochs"][0], "epoch": e, "epoch_duration": later,
                                "data_wait": later / 4, "compute": later * 3 / 4})
        r["run_duration"] = sum(e["epoch_duration"] for e in r["epochs"])
        bad = disturbed_cell is not None and c.path == expected[disturbed_cell].path
        r["reference"] = {"before": 0.020 + 0.001 * (i % 3), "after": 0.040 if bad else 0.020,
                          "disturbed": bad}
        r["machine_load"] = {"other_cpu_seconds": 0.5, "steal_seconds": 0.1,
                             "cell_cpu_seconds": 9.0}
        r["timeline"] = {"clock_started": 1000.0 + c.repeat * 100 + i}
        if warnings and c.num_workers:
            r["warnings"] = [warnings]
        recs.append(r)
    table = aggregate.build_table(write(tmp_path, recs), expected)
    return table, summarize(table)


def test_the_machines_noise_is_stated(tmp_path):
    table, summary = noisy_table(tmp_path, disturbed_cell=3)
    text = " ".join(notes.machine_noise_sentences(table, summary))
    assert "The reference kernel (the same fixed computation" in text
    assert "took a median 21 ms" in text
    assert "1 of 10 runs were flagged `disturbed`" in text
    assert "Repeats were interleaved" in text
    assert "each round in the same order (every cell after the same neighbour)" in text
    shuffled = table.assign(order=table["order"] + (table["repeat"] % 2)
                            * table["num_workers"].map({0: 1, 2: -1}))
    text = " ".join(notes.machine_noise_sentences(shuffled, summary))
    assert "Repeats were interleaved" in text and "the rounds in different orders" in text
    assert "the rest of the machine (everything but the cell's own processes) used a median " \
           "6% of one CPU" in text
    # Repeats run cell by cell instead: said, not hidden.
    out_of_order = table.assign(order=table["run"])
    text = " ".join(notes.machine_noise_sentences(out_of_order, summary))
    assert "Repeats were not fully interleaved" in text
    quiet, quiet_summary = noisy_table(tmp_path / "q")
    assert "No run was flagged `disturbed` (10 runs)." in " ".join(
        notes.machine_noise_sentences(quiet, quiet_summary))


def test_the_steady_state_ranking_is_compared_with_whole_runs(tmp_path):
    table, summary = noisy_table(tmp_path, epochs=3)
    loader = summary[summary["loader"].eq("dataloader")]
    assert notes.steady_state_sentences(loader, table)[0].endswith(
        "is the same at every batch size.")
    # From the second epoch on, loading in the main process is faster: the ranking flips.
    table, summary = noisy_table(tmp_path / "b", epochs=3, steady={0: 7.9, 2: 8.0})
    loader = summary[summary["loader"].eq("dataloader")]
    text = notes.steady_state_sentences(loader, table)[0]
    assert ("changes: at batch_size 100, whole runs rank num_workers 2 < 0 (fastest first), "
            "epochs after the first 0 < 2.") in text


def test_persistent_workers_with_one_epoch_is_said(tmp_path):
    from speedlimit.run import preflight

    table, summary = noisy_table(tmp_path, warnings=preflight.PERSISTENT_ONE_EPOCH)
    loader = summary[summary["loader"].eq("dataloader")]
    text = " ".join(notes.steady_state_sentences(loader, table))
    assert "`persistent_workers: true` cannot help with `train.epochs: 1` (5 run(s))" in text
    clean, summary = noisy_table(tmp_path / "c")
    assert notes.steady_state_sentences(summary, clean) == []


def test_every_cell_not_run_is_named_with_its_reason(tmp_path):
    cells, skipped = grid.expand({"num_workers": [0, 2], "batch_size": [100], "lr": [0.01],
                                  "torch_threads": [1], "pin_memory": [False],
                                  "persistent_workers": [False], "prefetch_factor": [None, 4],
                                  "device": ["cpu"], "workload": ["fashionmnist"],
                                  "loader": ["dataloader"]})
    grid_skipped = pd.DataFrame([[c.path, r] for c, r in skipped], columns=["cell", "reason"])
    table = aggregate.build_table(write(tmp_path, [record(c, 1.0) for c in cells]), cells)
    [sentence] = notes.not_run_sentences(table, grid_skipped)
    assert sentence.startswith("1 run(s) of the grid (`num_workers=0`, `prefetch_factor=4`) "
                               "were not run because prefetch_factor needs num_workers > 0")
    assert notes.not_run_sentences(table, grid_skipped.iloc[:0]) == []


def test_unstable_cells_are_named_by_every_setting_that_varies(tmp_path):
    """Runs spread by more than 10% of their median: those cells, and only those, are named,
    each with the settings that tell it apart (here torch_threads), so no two read alike."""
    g = {"num_workers": [0, 2], "batch_size": [100], "lr": [0.01], "torch_threads": [1, 2],
         "pin_memory": [False], "persistent_workers": [False], "prefetch_factor": [None],
         "device": ["cpu"], "workload": ["fashionmnist"], "loader": ["dataloader"]}
    expected = grid.expand(g, 5)[0]
    spread = [0.7, 0.85, 1.0, 1.15, 1.3]  # MAD 15% of the median
    steady = [0.99, 0.995, 1.0, 1.005, 1.01]

    def duration(c):
        runs = spread if c.num_workers == 2 else steady
        return (8.0 if c.num_workers == 2 else 10.0) * runs[c.repeat]

    table = aggregate.build_table(write(tmp_path, [record(c, duration(c)) for c in expected]),
                                  expected)
    text = " ".join(notes.machine_noise_sentences(table, summarize(table)))
    assert ("2 cell(s) may be unstable: their runs spread by more than 10% of their median "
            "(MAD), pyperf's threshold: batch_size 100 with `num_workers=2` (torch_threads=1) and "
            "batch_size 100 with `num_workers=2` (torch_threads=2).") in text, text
    calm = aggregate.build_table(
        write(tmp_path / "calm", [record(c, 10.0 * steady[c.repeat]) for c in expected]),
        expected)
    assert "unstable" not in " ".join(notes.machine_noise_sentences(
        calm, summarize(calm)))


def test_the_hardware_section_comes_from_the_table_as_the_records_had_it(tmp_path):
    """The findings read the environment from the table's columns, not from run files: the
    thread variables a record ran with reach the hardware sentence, and none are named where
    the records had none."""
    g = {"num_workers": [0, 2], "batch_size": [100], "lr": [0.01], "torch_threads": [1],
         "pin_memory": [False], "persistent_workers": [False], "prefetch_factor": [None],
         "device": ["cpu"], "workload": ["fashionmnist"], "loader": ["dataloader"]}
    expected = grid.expand(g, 1)[0]

    def hardware_text(folder, thread_env):
        recs = [record(c, 1.0, cpu_model="Test CPU") for c in expected]
        for r in recs:
            if thread_env:
                r["environment"]["thread_env"] = thread_env
        table = aggregate.build_table(write(folder, recs), expected)
        path = folder / "table.csv"
        table.to_csv(path, index=False)
        return " ".join(notes.hardware(aggregate.environments(pd.read_csv(path))))

    text = hardware_text(tmp_path / "a", {"OMP_NUM_THREADS": "2", "MKL_NUM_THREADS": "2"})
    assert "2 cell run(s) on node `n1`: Test CPU" in text
    assert "`MKL_NUM_THREADS=2, OMP_NUM_THREADS=2`" in text
    assert "Thread variables" not in hardware_text(tmp_path / "b", None)


def test_a_race_stopped_by_its_rounds_cap_says_so(tmp_path):
    group, fam = make(tmp_path, {0: 10.0, 1: 5.0, 2: 5.0}, repeats=10)
    state = {"rounds": 40, "spent_seconds": 600.0, "stopped": "max_rounds", "max_rounds": 40,
             "budget_seconds": None}
    assert "stopped because it reached `train.max_rounds` = 40." in " ".join(
        findings.how_sure_sentences(fam, state, [group]))


@pytest.mark.parametrize("names, model, source", [
    (["fashionmnist"], "The seed experiment's small CNN (2 conv + 3 linear layers, Adam, "
     "cross-entropy) was trained", "on synthetic stand-in data (500 training images"),
    (["custom"], "The custom workload's own model and training step (by default the seed "
     "experiment's small CNN, Adam and cross-entropy) was trained",
     "on the data the custom workload makes (workloads.custom)"),
    (["fashionmnist", "custom"], "the custom workload may bring its own model, loss or step), "
     "with Adam and cross-entropy, was trained", "on synthetic stand-in data (500 training"),
])
def test_what_was_run_names_the_model_and_data_of_the_workloads_in_the_grid(names, model,
                                                                             source):
    config = {"grid": {"num_workers": [0, 2], "batch_size": [100], "loader": ["dataloader"],
                       "workload": names},
              "train": {"epochs": 1, "repeats": 3, "seed": 0},
              "data": {"source": "synthetic", "synthetic": {"train_size": 500}},
              "workloads": {"custom": {"function": "mine:make", "args": {}}}}
    summary = pd.DataFrame({"loader": ["dataloader"] * 2})
    first, workloads_line, _ = frontpage.what_was_run(summary, config)
    assert model in first and source in first
    assert ("the user's own, from mine:make" in workloads_line) == ("custom" in names)
