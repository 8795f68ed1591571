"""The answer table (speedlimit.results.answer): its cells from the recommendation, and the
block printed on the terminal when a run ends."""

import yaml

from speedlimit.results import answer

TESTED = {"workload": "fashionmnist", "batch_size": 100,
          "paste": "DataLoader(dataset, batch_size=100, shuffle=True, num_workers=1)",
          "with": "torch.set_num_threads(1), device cpu",
          "how_sure": {"level": "tested", "rounds": 5, "rounds_more": None,
                       "seconds_more": None},
          "speedup_over_num_workers_0": {"estimate": 1.47, "low": 1.2, "high": 1.8,
                                         "verdict": "faster"},
          "vs_fastest_tried": {"estimate": 0.99, "low": 0.95, "high": 1.04,
                               "verdict": "not told apart"}}
OPEN = {**TESTED, "batch_size": 1000,
        "paste": "DataLoader(dataset, batch_size=1000, shuffle=True, num_workers=2)",
        "how_sure": {"level": "undecided", "rounds": 3, "rounds_more": 2, "seconds_more": 67.0},
        "speedup_over_num_workers_0": {"estimate": 1.68, "low": None, "high": None,
                                       "verdict": "too few repeats"},
        "vs_fastest_tried": {"estimate": 1.0, "low": None, "high": None,
                             "verdict": "too few repeats"}}


def test_each_cell_says_what_its_record_holds():
    assert answer.rows([TESTED])[0] == [
        "fashionmnist", "100", "1.47x (1.20-1.80x)", "at most +4%", "tested",
        "`DataLoader(dataset, batch_size=100, shuffle=True, num_workers=1)`"]
    assert answer.rows([OPEN])[0][2:5] == ["1.68x (no interval yet)", "no interval yet",
                                          "open: ~2 more rounds (~67 s)"]
    assert answer.bound_cell({"estimate": 0.9, "low": 0.85, "high": 0.98}) == "the fastest"
    assert answer.bound_cell(None) == "the only setting tried"
    assert answer.gain_cell("this is num_workers=0") == "num_workers=0 itself"
    assert answer.gain_cell(None) == "no num_workers=0 tried"
    assert answer.status_cell({"level": "one run", "rounds": 1}) == "one run: not tested"
    assert answer.status_cell({"level": "undecided", "rounds": 40, "rounds_more": 1,
                               "seconds_more": None}) == "open: ~1 more round"


def test_the_block_is_the_table_aligned_and_where_the_rest_is(tmp_path):
    (tmp_path / "recommendation.yaml").write_text(yaml.safe_dump(
        {"recommendations": [TESTED, OPEN]}))
    lines = answer.block(tmp_path).splitlines()
    assert lines[1] == "speedlimit: the answer"
    header, first, second = lines[2:5]
    assert header.split()[:3] == ["workload", "batch", "size"]
    # one column each, aligned: every cell starts where its header does
    for row, cells in ((first, answer.rows([TESTED])[0]), (second, answer.rows([OPEN])[0])):
        for name, cell in zip(answer.HEADER, cells):
            assert row[header.index(name):].startswith(cell.replace("`", "")), (name, row)
    assert lines[5] == "  measured with torch.set_num_threads(1), device cpu"
    assert f"{tmp_path / 'findings.md'}" in lines[6] and "recommendation.yaml" in lines[6]
    assert "snakemake --report report.html" in lines[6] and len(lines) == 7


def test_rows_measured_differently_each_say_with_what(tmp_path):
    other = {**OPEN, "with": "torch.set_num_threads(2), device cpu"}
    (tmp_path / "recommendation.yaml").write_text(yaml.safe_dump(
        {"recommendations": [TESTED, other]}))
    text = answer.block(tmp_path)
    assert "fashionmnist, batch size 1000: with torch.set_num_threads(2), device cpu" in text
    assert "measured with" not in text


def test_no_recommendation_no_block(tmp_path):
    assert answer.block(tmp_path) is None
    (tmp_path / "recommendation.yaml").write_text(yaml.safe_dump({"recommendations": []}))
    assert answer.block(tmp_path) is None
