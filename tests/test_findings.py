"""Findings, the published comparison, the front page and the HTML tables, from hand-made
records run through the real aggregation (no training)."""

from __future__ import annotations

import html.parser

import pandas as pd
import pytest
from docutils.core import publish_parts

from speedlimit import grid
from speedlimit.results import aggregate, frontpage, findings, htmltable, published

from test_aggregate import record, write

# Epoch durations (s) per batch size and num_workers; "tensor" is the loader-free limit.
DURATIONS = {100: {0: 10.0, 1: 8.0, 2: 7.0, 4: 9.0, "tensor": 5.0},
             1000: {0: 5.0, 1: 6.0, 2: 6.5, 4: 7.0, "tensor": 3.0}}
CONFIG = {"grid": {"num_workers": [0, 1, 2, 4], "batch_size": [100, 1000], "lr": [0.01],
                   "torch_threads": [1], "loader": ["dataloader", "tensor"]},
          "train": {"epochs": 1, "seed": 0, "repeats": 3},
          "data": {"source": "synthetic", "synthetic": {"train_size": 2000}}}


def summary_of(tmp_path, repeats: int) -> pd.DataFrame:
    g = {"num_workers": [0, 1, 2, 4], "batch_size": [100, 1000], "lr": [0.01],
         "torch_threads": [1], "pin_memory": [False], "persistent_workers": [False],
         "prefetch_factor": [None], "device": ["cpu"], "workload": ["fashionmnist"],
         "loader": ["dataloader", "tensor"]}
    expected = grid.expand(g, repeats)[0]
    recs = []
    for c in expected:
        key = "tensor" if c.loader == "tensor" else c.num_workers
        jitter = 1 + 0.01 * (c.repeat - (repeats - 1) / 2)  # small; the median run: 1
        recs.append(record(c, DURATIONS[c.batch_size][key] * jitter))
    table = aggregate.build_table(write(tmp_path, recs), expected)
    # As the findings rule sees it: read back from CSV.
    path = tmp_path / "summary.csv"
    aggregate.summarize(table).to_csv(path, index=False)
    return pd.read_csv(path)


@pytest.fixture
def summary5(tmp_path):
    """Five runs per cell: enough for this grid's 6 comparisons (2/C(10, 5) <= 0.05/6)."""
    return summary_of(tmp_path, 5)


@pytest.fixture
def summary3(tmp_path):
    return summary_of(tmp_path, 3)


@pytest.fixture
def summary1(tmp_path):
    return summary_of(tmp_path, 1)


def text_of(sections) -> str:
    return "\n".join(f"{s.title}: " + " ".join(s.sentences) for s in sections)


def test_fastest_setting_interval_more_workers_and_limit(summary5):
    sections = findings.compute(summary5)
    text = text_of(sections)
    assert "Fastest num_workers per batch size: 100: 2 (1.43x); 1000: 0 (1.00x)" in text
    at100 = next(s for s in sections if s.title == "batch_size 100").sentences
    assert at100[0].startswith("At batch_size 100, `num_workers=2` was fastest: 7 s per epoch "
                               "against 10 s with `num_workers=0`, a speed-up of 1.43x (95% "
                               "interval")
    assert at100[0].endswith("; more than noise).")
    assert any("`num_workers=2` took 12% less time per epoch than `num_workers=1`; whether "
               "more than one worker helps is not tested (too few repeats, or one run per "
               "cell)." in s for s in at100)  # 5 runs are too few for the run's 12 pairs
    assert summary5["pairs"].dropna().eq(12).all()  # two batch sizes' 6 pairs, one family
    assert any(s.startswith("More workers than 2 did not help: 4 workers took 29% longer")
               for s in at100)
    # 7 s against a 5 s loader-free epoch: 1.40 times as long, 71% of the limit's speed.
    assert any("took 1.40 times as long, so it reached 71% of the limit's speed" in s
               for s in at100)
    at1000 = next(s for s in sections if s.title == "batch_size 1000").sentences
    assert at1000[0].startswith("At batch_size 1000, loading in the main process "
                                "(`num_workers=0`) was fastest")
    assert "Each cell ran 5 times" in text
    assert ("the run's 6 comparisons were corrected together (Holm), so the chance that any "
            "\"more than noise\" below is false is at most 5%: 3 faster and 3 slower by more "
            "than noise, 0 within noise.") in text


def test_three_runs_per_cell_are_too_few_to_tell(summary3):
    """The old bootstrap called 3-run differences "more than noise"; no exact test can."""
    text = text_of(findings.compute(summary3))
    assert "(too few repeats to tell: 5 or more runs per cell are needed for 6 comparisons)" in text
    assert "6 of the 6 comparisons had too few repeats to tell at all" in text
    assert "0 faster and 0 slower by more than noise" in text


def test_one_run_per_cell_claims_no_significance(summary1):
    text = text_of(findings.compute(summary1))
    assert "one run per cell, so no interval: this may be noise" in text
    assert "Every cell ran once" in text
    assert "more than noise" not in text.replace("shown to be more than noise", "")


def test_limit_not_measured_is_said(summary5):
    no_tensor = (summary5[summary5["loader"].eq("dataloader")]
                 .assign(limit_ratio_median=float("nan")))
    assert "loader-free limit was not measured" in text_of(findings.compute(no_tensor))


def test_published_speedups_and_comparison(summary5):
    pub = published.load()
    assert len(pub) == 18
    speed = published.speedups(pub).set_index(["batch_size", "num_workers"])["speedup"]
    assert speed[(100, 0)] == 1.0
    assert speed[(100, 1)] == pytest.approx(23.281029 / 18.125359)
    comparison = published.compare(pub, summary5)
    # Both have batch_size 100 and 1000 with 1, 2 and 4 workers (no 0: trivially 1).
    assert len(comparison) == 6
    row = comparison.set_index(["batch_size", "num_workers"]).loc[(100, 2)]
    assert row["reproduced_speedup"] == pytest.approx(10 / 7, rel=0.02)
    assert row["agreement"] == "agree" and row["published_direction"] == "faster"
    slow = comparison.set_index(["batch_size", "num_workers"]).loc[(1000, 1)]
    assert slow["agreement"] == "disagree" and slow["reproduced_ci_high"] < 1
    assert comparison["published_in_interval"].notna().all()
    sentences = findings.published_sentences(comparison)
    assert ("our 95% interval lies on the published value's side of 1 in 3 of 6 cells, on the "
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
    sentences = findings.published_sentences(comparison)
    assert "so no agreement or disagreement is claimed" in sentences[0]
    assert "whether it holds here is not claimed" in " ".join(sentences)
    glance = findings.published_glance(comparison)
    assert "does not record its hardware" in glance[-1]


def test_no_shared_cells_is_said(summary5):
    other = summary5.assign(lr=0.5)
    comparison = published.compare(published.load(), other)
    assert comparison.empty
    assert "nothing to compare" in findings.published_sentences(comparison)[0]


def test_direction():
    assert published.direction(1.2) == "faster"
    assert published.direction(0.8) == "slower"
    assert published.direction(1.03) == "no change"
    assert published.direction(float("nan")) == "unknown"


ENV = {"python": "3.11.7", "torch": "2.14.1", "torchvision": "0.29.1", "cpu_count": 2,
       "physical_cores": 2, "cpus_allowed": 2, "memory_bytes": 24 * 2**30, "node": "vm",
       "cpu_model": "AMD EPYC", "device": "cpu", "torch_threads": 1,
       "thread_env": {"OMP_NUM_THREADS": "1"}, "os": "Linux"}


def test_front_page_rst_renders_cleanly_and_says_everything(summary5):
    comparison = published.compare(published.load(), summary5)
    doc = frontpage.document(summary5, comparison, [ENV] * 3, CONFIG, revision="abc123")
    rst = doc.rst()
    parts = publish_parts(rst, writer="html",
                          settings_overrides={"report_level": 2, "halt_level": 2})
    body = parts["html_body"]
    for needle in ("At a glance", "What was run", "Hardware", "AMD EPYC", "2 logical CPUs",
                   "24.0 GiB RAM", "How to reproduce", "abc123", "num_workers 0, 1, 2, 4",
                   "Against the published table"):
        assert needle in body, needle
    assert "``snakemake --cores all --configfile reproduce.yaml``" in rst
    md = doc.markdown()
    assert md.startswith("# speedlimit: findings") and "## batch_size 100" in md
    assert "```yaml\ngrid:" in md
    page = doc.html()
    assert "batch_size 1000" in page and "<code>num_workers=0</code>" in page


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


def test_a_best_setting_faster_than_the_limit_is_flagged_not_celebrated(summary5):
    faster = summary5.copy()
    faster["limit_ratio_median"] = faster["limit_ratio_median"] / 2
    text = text_of(findings.compute(faster))
    assert "faster than the limit should allow" in text and "143%" not in text


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


def test_equal_quality_is_said_and_a_differing_cell_named(tmp_path, summary1):
    same = text_of(findings.compute(summary1, table=quality_table(tmp_path / "a")))
    assert "Quality: Quality is not what the settings trade" in same
    assert ("all cells with the same batch_size, lr, torch_threads, device and workload trained "
            "on the same batches") in same
    assert "(3 runs checked)" in same
    odd = text_of(findings.compute(summary1, table=quality_table(tmp_path / "b", 0.7)))
    assert "1 of 3 runs reached a different training loss" in odd
    assert "run 2 (`dataloader/batch_size~100/num_workers~2/" in odd and "0.700000" in odd


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
    return table, aggregate.summarize(table)


def test_the_machines_noise_is_stated(tmp_path):
    table, summary = noisy_table(tmp_path, disturbed_cell=3)
    text = " ".join(findings.machine_noise_sentences(table, summary))
    assert "The reference kernel (the same fixed computation" in text
    assert "took a median 21 ms" in text
    assert "1 of 10 runs were disturbed" in text and "run 4 (" not in text.split("disturbed")[0]
    assert "Repeats were interleaved" in text
    assert "the rest of the machine (everything but the cell's own processes) used a median " \
           "6% of one CPU" in text
    assert "The smallest difference this run could resolve at 5 repeats: about +-" in text
    # Repeats run cell by cell instead: said, not hidden.
    out_of_order = table.assign(order=table["run"])
    text = " ".join(findings.machine_noise_sentences(out_of_order, summary))
    assert "Repeats were not fully interleaved" in text
    quiet, quiet_summary = noisy_table(tmp_path / "q")
    assert "No run was disturbed" in " ".join(findings.machine_noise_sentences(quiet,
                                                                            quiet_summary))


def test_the_steady_state_ranking_is_compared_with_whole_runs(tmp_path):
    table, summary = noisy_table(tmp_path, epochs=3)
    loader = summary[summary["loader"].eq("dataloader")]
    assert findings.steady_state_sentences(loader, table)[0].endswith(
        "is the same at every batch size.")
    # From the second epoch on, loading in the main process is faster: the ranking flips.
    table, summary = noisy_table(tmp_path / "b", epochs=3, steady={0: 7.9, 2: 8.0})
    loader = summary[summary["loader"].eq("dataloader")]
    text = findings.steady_state_sentences(loader, table)[0]
    assert ("changes: at batch_size 100, whole runs rank num_workers 2 < 0 (fastest first), "
            "epochs after the first 0 < 2.") in text


def test_persistent_workers_with_one_epoch_is_said(tmp_path):
    from speedlimit.run import preflight

    table, summary = noisy_table(tmp_path, warnings=preflight.PERSISTENT_ONE_EPOCH)
    loader = summary[summary["loader"].eq("dataloader")]
    text = " ".join(findings.steady_state_sentences(loader, table))
    assert "`persistent_workers: true` cannot help with `train.epochs: 1` (5 run(s))" in text
    clean, summary = noisy_table(tmp_path / "c")
    assert findings.steady_state_sentences(summary, clean) == []


def test_every_cell_not_run_is_named_with_its_reason(tmp_path):
    cells, skipped = grid.expand({"num_workers": [0, 2], "batch_size": [100], "lr": [0.01],
                                  "torch_threads": [1], "pin_memory": [False],
                                  "persistent_workers": [False], "prefetch_factor": [None, 4],
                                  "device": ["cpu"], "workload": ["fashionmnist"],
                                  "loader": ["dataloader"]})
    grid_skipped = pd.DataFrame([[c.path, r] for c, r in skipped], columns=["cell", "reason"])
    table = aggregate.build_table(write(tmp_path, [record(c, 1.0) for c in cells]), cells)
    [sentence] = findings.not_run_sentences(table, grid_skipped)
    assert sentence.startswith("1 run(s) of the grid (`num_workers=0`, `prefetch_factor=4`) "
                               "were not run because prefetch_factor needs num_workers > 0")
    assert findings.not_run_sentences(table, grid_skipped.iloc[:0]) == []


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
    text = " ".join(findings.noise_sentences(aggregate.summarize(table)))
    assert ("2 cell(s) may be unstable: their runs spread by more than 10% of their median "
            "(MAD), pyperf's threshold: batch_size 100 with `num_workers=2` (torch_threads=1) and "
            "batch_size 100 with `num_workers=2` (torch_threads=2).") in text, text
    calm = aggregate.build_table(
        write(tmp_path / "calm", [record(c, 10.0 * steady[c.repeat]) for c in expected]),
        expected)
    assert "unstable" not in " ".join(findings.noise_sentences(aggregate.summarize(calm)))


def test_more_than_one_worker_helps_only_when_the_pairs_test_says_so(tmp_path):
    from test_advice import run

    def said(cells, name):
        summary, _ = run(tmp_path / name, cells)
        section = next(x for x in findings.compute(summary) if x.title.startswith("batch_size"))
        return " ".join(section.sentences)

    assert ("More than one worker helped here: `num_workers=2` took 38% less time per epoch "
            "than `num_workers=1` (more than noise).") in said({0: 10, 1: 8, 2: 5}, "a")
    # Where pinned memory is faster still, num_workers=1 was tested against that cell, not
    # against this paragraph's best: no claim about the two.
    pinned = said({(0, False): 10, (1, False): 5.05, (2, False): 5, (0, True): 10, (2, True): 4},
                  "p")
    assert "helped here" not in pinned
    assert ("`num_workers=2` took 1% less time per epoch than `num_workers=1`; not tested "
            "against each other") in pinned
    close = said({0: 10, 1: 5.1, 2: 5}, "b")
    assert ("`num_workers=2` took 2% less time per epoch than `num_workers=1`, but that cannot "
            "be told apart from noise") in close and "helped here" not in close
