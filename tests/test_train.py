"""Training a cell for real, on a tiny synthetic set."""

import pytest
import torch

from speedlimit.run import train
from speedlimit.grid import Cell

# Stated tolerance: data_wait + compute equal epoch_duration to 1 ms (they partition it).
TOLERANCE_S = 1e-3


def cell(**kw) -> Cell:
    base = dict(loader="dataloader", batch_size=100, lr=0.01, torch_threads=1, device="cpu",
                num_workers=0, pin_memory=False, persistent_workers=False, prefetch_factor=None,
                workload="fashionmnist")
    base.update(kw)
    if base["loader"] == "tensor":
        base.update(num_workers=None, pin_memory=None, persistent_workers=None,
                    prefetch_factor=None)
    return Cell(**base)


def test_loss_falls_and_the_record_is_complete(synthetic_root):
    record = train.run_cell(cell(), synthetic_root, epochs=3, seed=0)
    losses = [e["loss"] for e in record["epochs"]]
    assert losses[2] < losses[0] * 0.8, losses
    assert record["epochs"][2]["accuracy"] > 0.5
    assert record["params"]["dataset_size"] == 1200
    env = record["environment"]
    assert env["torch_threads"] == 1 and env["device"] == "cpu"
    assert env["torch"] == torch.__version__
    assert record["started_at"] < record["finished_at"]
    assert record["started_at"][-6] in "+-"  # ISO 8601 with a time zone


@pytest.mark.parametrize("settings", [
    {"num_workers": 0},
    {"num_workers": 2},
    {"num_workers": 2, "persistent_workers": True, "prefetch_factor": 4},
])
def test_data_wait_and_compute_partition_each_epoch(synthetic_root, settings):
    record = train.run_cell(cell(**settings), synthetic_root, epochs=2, seed=0)
    for epoch in record["epochs"]:
        total = epoch["data_wait"] + epoch["compute"]
        assert abs(total - epoch["epoch_duration"]) < TOLERANCE_S
        assert epoch["data_wait"] > 0 and epoch["compute"] > 0
        assert epoch["batches"] == 12
    assert record["run_duration"] >= sum(e["epoch_duration"] for e in record["epochs"])
    assert 0 < record["startup"] < record["run_duration"]


def test_quality_does_not_depend_on_how_batches_are_loaded(synthetic_root):
    """Same seed -> the same batches in the same order -> the same loss, bit for bit."""
    variants = [
        cell(num_workers=0),
        cell(num_workers=2),
        cell(num_workers=1, pin_memory=True, prefetch_factor=3),
        cell(num_workers=2, persistent_workers=True),
        cell(loader="tensor"),
    ]
    losses = {v.path: [e["loss"] for e in train.run_cell(v, synthetic_root, epochs=2)["epochs"]]
              for v in variants}
    assert len({tuple(v) for v in losses.values()}) == 1, losses


def test_a_different_seed_changes_the_loss(synthetic_root):
    a = train.run_cell(cell(), synthetic_root, seed=0)["epochs"][0]["loss"]
    b = train.run_cell(cell(), synthetic_root, seed=1)["epochs"][0]["loss"]
    assert a != b


def test_threads_are_set_not_inherited(synthetic_root):
    torch.set_num_threads(1)
    record = train.run_cell(cell(torch_threads=2), synthetic_root)
    assert record["environment"]["torch_threads"] == 2


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_without_a_gpu_is_a_skip_not_a_crash(synthetic_root):
    with pytest.raises(train.CellSkipped, match="cuda"):
        train.run_cell(cell(device="cuda"), synthetic_root)
    assert train.resolve_device("auto").type == "cpu"


def test_a_diverged_loss_is_recorded_as_null():
    assert train._finite(0.5) == 0.5
    assert train._finite(float("nan")) is None and train._finite(float("inf")) is None


DELAY = 0.004  # seconds per sample: 1200 samples -> 4.8 s of loading in the main process


def test_data_wait_measures_waiting_for_data(synthetic_root, monkeypatch):
    """A data set whose every sample takes DELAY longer to load (the test hook): with no
    worker the main process waits about DELAY x samples more than without the delay, all of
    it in data_wait (not in compute); four workers load (sleep) in parallel, so it waits less."""
    plain = train.run_cell(cell(num_workers=0), synthetic_root, epochs=1, seed=0)["epochs"][0]
    monkeypatch.setenv(train.SAMPLE_DELAY_ENV, str(DELAY))
    slow = train.run_cell(cell(num_workers=0), synthetic_root, epochs=1, seed=0)["epochs"][0]
    added = DELAY * 1200
    # A sleep lasts at least what it asks for; on a loaded machine, waking up takes longer:
    # the bound above is generous, the one below is not.
    assert 0.9 * added <= slow["data_wait"] - plain["data_wait"] <= 2 * added, (slow, plain)
    assert slow["compute"] < added / 4  # the delay did not leak into compute
    four = train.run_cell(cell(num_workers=4), synthetic_root, epochs=1, seed=0)["epochs"][0]
    assert four["data_wait"] < 0.7 * slow["data_wait"], (four, slow)


def test_persistent_workers_end_on_the_clock(synthetic_root):
    record = train.run_cell(cell(num_workers=2, persistent_workers=True), synthetic_root,
                            epochs=2, seed=0)
    assert record["shutdown"] > 0
    epochs = sum(e["epoch_duration"] for e in record["epochs"])
    assert record["run_duration"] >= epochs + record["shutdown"]
    one = train.run_cell(cell(num_workers=2, persistent_workers=True), synthetic_root,
                         epochs=1, seed=0)
    assert any("persistent_workers cannot help with train.epochs: 1" in w
               for w in one["warnings"])
    assert not record["warnings"]


def test_the_reference_kernel_and_the_machine_load_are_recorded(synthetic_root):
    record = train.run_cell(cell(), synthetic_root, epochs=1, seed=0)
    ref = record["reference"]
    assert ref["before"] > 0 and ref["after"] > 0
    assert ref["disturbed"] == (abs(ref["after"] / ref["before"] - 1) > 0.25)
    load = record["machine_load"]
    assert load["cell_cpu_seconds"] > 0 and load["other_cpu_seconds"] >= 0
    assert load["steal_seconds"] >= 0


def test_cpu_time_of_other_processes_during_the_clock_is_visible(synthetic_root):
    """A busy process outside the pipeline, running through the cell's clock, shows up in
    the record's machine_load (one CPU's worth of the clock, give or take)."""
    import subprocess
    import sys

    quiet = train.run_cell(cell(), synthetic_root, epochs=2, seed=0)
    hog = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        busy = train.run_cell(cell(), synthetic_root, epochs=2, seed=0)
    finally:
        hog.kill()
        hog.wait()
    other = busy["machine_load"]["other_cpu_seconds"]
    assert other > 0.5 * busy["run_duration"], busy["machine_load"]
    assert other > quiet["machine_load"]["other_cpu_seconds"] + 0.3 * busy["run_duration"]
