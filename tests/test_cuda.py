"""The CUDA path for real: cells on a GPU, pinned memory, the warm start's fork after torch
is imported. Skipped on a machine without a GPU (CI has none); run on one with

    pytest tests/test_cuda.py
"""

from __future__ import annotations

import pandas as pd
import pytest
import torch

from conftest import TINY
from speedlimit.run import train
from test_train import cell

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


def cuda_cell(**settings):
    return cell(device="cuda", **settings)


@pytest.mark.parametrize("workers", [0, 2])
def test_pinned_batches_reach_the_gpu_inside_the_data_clock(synthetic_root, workers):
    """With pin_memory a batch's copy is queued (non_blocking) and waited for on the data's
    clock: the record says the GPU, pinned memory is active, and both clocks have time."""
    pinned = train.run_cell(cuda_cell(num_workers=workers, pin_memory=True), synthetic_root)
    plain = train.run_cell(cuda_cell(num_workers=workers, pin_memory=False), synthetic_root)
    for record, active in ((pinned, True), (plain, False)):
        env = record["environment"]
        assert env["device"].startswith("cuda") and env["gpu_name"], env
        assert env["pin_memory_active"] is active
        epoch = record["epochs"][0]
        assert epoch["data_wait"] > 0 and epoch["compute"] > 0
        assert epoch["data_wait"] + epoch["compute"] <= epoch["epoch_duration"] * 1.0001
        assert epoch["samples"] == 1200
    # Same batches, same order: pinning changes when the copy happens, not what is learned.
    assert pinned["epochs"][0]["loss"] == pytest.approx(plain["epochs"][0]["loss"], rel=1e-3)


def test_the_loader_free_limit_runs_on_the_gpu(synthetic_root):
    record = train.run_cell(cuda_cell(loader="tensor"), synthetic_root)
    assert record["environment"]["gpu_name"] and record["epochs"][0]["samples"] == 1200


def test_pipeline_on_a_gpu_warm_and_cold(project):
    """The real pipeline with cuda cells beside cpu ones: every cell runs (none skipped), the
    warm start's children (forked from a server that imported torch, never CUDA) use the GPU,
    and the findings have no "Not run" section."""
    config = {**TINY, "grid": {**TINY["grid"], "device": ["cpu", "cuda"],
                               "pin_memory": [False, True]}}
    project.write_config("gpu.yaml", config)
    cfg = ["--configfile", "config.yaml", "gpu.yaml"]
    project.run("--cores", "all", *cfg)
    table = pd.read_csv(project.path / "results" / "table.csv")
    assert (table["status"] == "ok").all(), table[["cell", "status", "reason"]]
    assert set(table["device"]) == {"cpu", "cuda"}
    runs = project.runs()
    gpu = {cell: r for cell, r in runs.items() if r["params"]["device"] == "cuda"}
    assert gpu and all(r["environment"]["gpu_name"] for r in gpu.values())
    assert all(r["environment"]["warm_start"] for r in runs.values())
    assert "Not run" not in (project.path / "results" / "findings.md").read_text()

    project.run("--cores", "all", *cfg, "--forcerun", "train_cell",
                "--config", "train={warm_start: false}")
    cold = project.runs()
    assert not any(r["environment"]["warm_start"] for r in cold.values())
    assert all(r["status"] == "ok" for r in cold.values())
