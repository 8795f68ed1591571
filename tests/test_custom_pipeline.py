"""End to end: the user's own training job through the real snakemake, as a user brings it.
A workload module kept outside the project folder (importable through PYTHONPATH), on data of
its own (written to a folder of its own), with its own model and loss (a regression, MSE),
its batches dicts: no FashionMNIST file is there, and nothing downloads or makes one; its
args reach it, and changing them reruns exactly its cells."""

from __future__ import annotations

import re
import textwrap

import numpy as np
import pandas as pd
import pytest
from conftest import TINY, planned

pytestmark = pytest.mark.e2e

WORKLOAD = '''
    """A regression on the user's own files: dict samples, an MLP, mean squared error."""
    from pathlib import Path

    import numpy as np
    import torch
    import torch.nn.functional as F

    from speedlimit.run.workloads import Custom


    class Table(torch.utils.data.Dataset):
        def __init__(self, path):
            data = np.load(path)
            self.x = torch.from_numpy(data["x"])
            self.y = torch.from_numpy(data["y"])

        def __len__(self):
            return len(self.y)

        def __getitem__(self, i):
            return {"x": self.x[i], "y": self.y[i]}


    class Model(torch.nn.Module):
        def __init__(self, features, hidden):
            super().__init__()
            self.layers = torch.nn.Sequential(torch.nn.Linear(features, hidden),
                                              torch.nn.ReLU(), torch.nn.Linear(hidden, 1))

        def forward(self, batch):
            return self.layers(batch["x"]).squeeze(1)


    def mse(outputs, batch):
        return F.mse_loss(outputs, batch["y"])


    def make(seed, root, hidden=16):
        dataset = Table(Path(root) / "table.npz")
        return Custom(dataset, model=lambda: Model(dataset.x.shape[1], hidden), loss=mse)
'''

GRID = {"num_workers": [0, 2], "batch_size": [50], "loader": ["dataloader", "tensor"],
        "workload": ["custom"]}


def custom_config(root, hidden=16, **more) -> dict:
    return {"grid": GRID, "train": {"repeats": 1},
            "workloads": {"custom": {"function": "mine.regression:make",
                                     "args": {"root": str(root), "hidden": hidden}}},
            # FashionMNIST's own source, at a mirror that refuses: a download would fail.
            "data": {"source": "fashionmnist", "mirrors": ["http://127.0.0.1:9/"],
                     "retries": 1, "timeout": 1},
            **more}


def cells_planned(project, *args) -> list[str]:
    return sorted(re.findall(r"wildcards: cell=(\S+)", project.run("-n", *args).stdout))


def test_a_custom_workload_outside_the_project_needs_no_fashionmnist(project, tmp_path,
                                                                    monkeypatch):
    elsewhere = tmp_path / "elsewhere"  # the user's code: not in the project's folder
    (elsewhere / "mine").mkdir(parents=True)
    (elsewhere / "mine" / "__init__.py").write_text("")
    (elsewhere / "mine" / "regression.py").write_text(textwrap.dedent(WORKLOAD))
    data = tmp_path / "my-data"  # the user's data: nowhere near data.root
    data.mkdir()
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1000, 6)).astype(np.float32)
    np.savez(data / "table.npz", x=x, y=(x @ rng.standard_normal(6)).astype(np.float32))
    monkeypatch.setenv("PYTHONPATH", str(elsewhere))  # (snakemake's, and so its jobs')
    project.write_config("mine.yaml", custom_config(data))
    cfg = ["--configfile", "config.yaml", "mine.yaml"]

    proc = project.run("--cores", "all", *cfg)
    said = proc.stdout + proc.stderr
    assert "download_fashionmnist" not in said and "make_synthetic" not in said
    assert not (project.path / "data").exists()  # no data set of the pipeline's, anywhere
    table = pd.read_csv(project.path / "results" / "table.csv")
    assert len(table) == 3 and table["status"].eq("ok").all()
    assert table["workload"].eq("custom").all() and table["accuracy"].isna().all()
    assert table["loss"].gt(0).all() and table["loss"].nunique() == 1  # same batches, same MSE
    assert table["quality_consistent"].all()
    summary = pd.read_csv(project.path / "results" / "summary.csv")
    assert len(summary) == 3 and summary["accuracy_median"].isna().all()
    assert "## Workload custom, batch_size 50" in (project.path / "results" / "findings.md"
                                                    ).read_text()
    requests = [r["params"] for r in project.runs().values()]
    assert all(p["dataset_size"] == 1000 for p in requests)
    assert planned(project, *cfg) == {}

    # Beside a built-in workload (on the synthetic stand-in): the custom cells stay as they
    # are, whatever the pipeline's data set; changing its args reruns exactly its cells.
    both = custom_config(data, grid={**GRID, "workload": ["custom", "fashionmnist"]},
                         data={"source": "synthetic", **{k: v for k, v in TINY["data"].items()
                                                         if k != "source"}})
    project.write_config("both.yaml", both)
    both_cfg = ["--configfile", "config.yaml", "both.yaml"]
    assert all("workload~fashionmnist" in c for c in cells_planned(project, *both_cfg))
    project.run("--cores", "all", *both_cfg)
    project.write_config("both.yaml", custom_config(data, hidden=8, grid=both["grid"],
                                                    data=both["data"]))
    changed = cells_planned(project, *both_cfg)
    assert len(changed) == 3 and all("workload~custom" in c for c in changed), changed


def test_the_shipped_template_config_plans_no_data_set(project):
    """configs/custom.yaml as shipped (examples/template.py, its own data): a race of the
    custom cells, and no job that downloads or makes FashionMNIST."""
    plan = planned(project, "--configfile", "config.yaml", "configs/custom.yaml")
    assert plan["train_cell"] == 5 and plan["race_round"] == 1
    assert "download_fashionmnist" not in plan and "make_synthetic" not in plan
