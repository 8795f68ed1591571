"""The answer block printed on the terminal (speedlimit.results.answer)."""

from speedlimit.results import answer

FINDINGS = """# speedlimit findings

## The answer

- Workload fashionmnist, batch_size 100: `DataLoader(dataset, batch_size=100, shuffle=True, num_workers=2)` (tested; over `num_workers=0`: 1.43x).
- These runs used the synthetic stand-in data.

## How sure

Every claim of the findings rests on one family of intervals.
"""


def test_the_block_is_the_answer_section_without_markdown_and_where_the_rest_is(tmp_path):
    (tmp_path / "findings.md").write_text(FINDINGS)
    text = answer.block(tmp_path)
    lines = text.splitlines()
    assert lines[1] == "speedlimit: the answer"
    assert lines[2] == ("  Workload fashionmnist, batch_size 100: DataLoader(dataset, batch_size=100, "
                        "shuffle=True, num_workers=2) (tested; over num_workers=0: 1.43x).")
    assert lines[3] == "  These runs used the synthetic stand-in data."
    assert "How sure" not in text and "family" not in text
    assert f"findings: {tmp_path / 'findings.md'}" in lines[4]
    assert "recommendation.yaml" in lines[4] and "snakemake --report report.html" in lines[4]


def test_no_findings_no_block(tmp_path):
    assert answer.block(tmp_path) is None
    (tmp_path / "findings.md").write_text("# speedlimit findings\n")
    assert answer.block(tmp_path) is None
