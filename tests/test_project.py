"""The rerun trigger of each rule follows its script's imports."""

from speedlimit import project


def test_modules_used_by_follows_imports_lazy_ones_included():
    used = project.modules_used_by(project.ROOT / "scripts" / "train_cell.py")
    # train is imported lazily by job, model only by train: both are found.
    assert {"run/job.py", "run/warm/__init__.py", "run/warm/client.py", "run/warm/server.py",
            "run/train.py", "run/model.py", "run/preflight.py", "grid.py", "record.py"} <= set(used)
    assert not {"results/plots.py", "results/findings.py", "results/aggregate.py"} & set(used)
    assert project.modules_used_by(project.ROOT / "scripts" / "plot.py") == [
        "axes.py", "grid.py", "groups.py", "logs.py", "results/__init__.py", "results/blocks.py",
        "results/decision_file.py", "results/decisions.py", "results/forecast.py",
        "results/plots.py", "results/published.py", "results/race.py", "results/sequential.py",
        "results/stats.py", "results/words.py"]


def test_the_digest_changes_with_an_imported_module_only(tmp_path, monkeypatch):
    copy = project.copy_to(tmp_path / "copy")
    monkeypatch.setattr(project, "ROOT", copy)
    train = project.code_digest("scripts/train_cell.py")
    plot = project.code_digest("scripts/plot.py")
    model = copy / "scripts" / "speedlimit" / "run" / "model.py"
    model.write_text(model.read_text() + "\n# an edit\n")
    assert project.code_digest("scripts/train_cell.py") != train
    assert project.code_digest("scripts/plot.py") == plot


def test_the_findings_digest_follows_their_templates_and_no_other_rule_does(tmp_path,
                                                                            monkeypatch):
    copy = project.copy_to(tmp_path / "copy")
    monkeypatch.setattr(project, "ROOT", copy)
    findings = project.code_digest("scripts/findings.py")
    plot = project.code_digest("scripts/plot.py")
    template = copy / "scripts" / "speedlimit" / "results" / "templates" / "findings.md.j2"
    template.write_text(template.read_text() + "\n")
    assert project.code_digest("scripts/findings.py") != findings
    assert project.code_digest("scripts/plot.py") == plot
