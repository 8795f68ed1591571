"""The rerun trigger of each rule follows its script's imports."""

from speedlimit import project


def test_modules_used_by_follows_imports_lazy_ones_included():
    used = project.modules_used_by(project.ROOT / "scripts" / "train_cell.py")
    # train is imported lazily by cell, model only by train: both are found.
    assert {"cell", "warm", "train", "model", "resources", "grid", "metrics"} <= set(used)
    assert not {"plots", "findings", "aggregate"} & set(used)
    assert project.modules_used_by(project.ROOT / "scripts" / "plot.py") == [
        "logs", "plots", "published"]


def test_the_digest_changes_with_an_imported_module_only(tmp_path, monkeypatch):
    copy = project.copy_to(tmp_path / "copy")
    monkeypatch.setattr(project, "ROOT", copy)
    train, plot = project.code_digest("scripts/train_cell.py"), project.code_digest("scripts/plot.py")
    model = copy / "scripts" / "speedlimit" / "model.py"
    model.write_text(model.read_text() + "\n# an edit\n")
    assert project.code_digest("scripts/train_cell.py") != train
    assert project.code_digest("scripts/plot.py") == plot
