"""Training a cell for real, on a tiny synthetic set."""

import pytest
import torch

from speedlimit.run import hooks, train
from speedlimit.run.epoch import finite
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
    assert finite(0.5) == 0.5
    assert finite(float("nan")) is None and finite(float("inf")) is None


DELAY = 0.004  # seconds per sample: 1200 samples -> 4.8 s of loading in the main process


def test_data_wait_measures_waiting_for_data(synthetic_root):
    """A data set whose every sample takes DELAY longer to load (the test hook): with no
    worker the main process waits about DELAY x samples more than without the delay, all of
    it in data_wait (not in compute); four workers load (sleep) in parallel, so it waits less."""
    plain = train.run_cell(cell(num_workers=0), synthetic_root, epochs=1, seed=0)["epochs"][0]
    delayed = hooks.Hooks(sample_delay=DELAY)  # as the job reads SPEEDLIMIT_SAMPLE_DELAY
    slow = train.run_cell(cell(num_workers=0), synthetic_root, epochs=1, seed=0,
                          hooks=delayed)["epochs"][0]
    added = DELAY * 1200
    # A sleep lasts at least what it asks for; on a loaded machine, waking up takes longer:
    # the bound above is generous, the one below is not.
    assert 0.9 * added <= slow["data_wait"] - plain["data_wait"] <= 2 * added, (slow, plain)
    assert slow["compute"] < added / 4  # the delay did not leak into compute
    four = train.run_cell(cell(num_workers=4), synthetic_root, epochs=1, seed=0,
                          hooks=delayed)["epochs"][0]
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


def test_a_race_run_times_windows_and_predicts_the_epoch(synthetic_root):
    """timing windows: the first batch (start-up), the batches the workers loaded meanwhile
    (warm-up) and the windows are timed; the rest of the epoch is predicted at the median
    window's rate, and the record keeps both."""
    timing = {"mode": "windows", "windows": 2, "window_samples": 200}
    record = train.run_cell(cell(num_workers=2), synthetic_root, timing=timing)
    p = record["predicted"]
    # 1 + 2 x 2 (warm-up) + 2 x 2 (windows of 200 samples at batch_size 100) = 9 batches
    assert record["epochs"][0]["batches"] == 9 and p["timed_samples"] == 900
    assert p["warmup_batches"] == 4 and len(p["window_rates"]) == 2
    assert p["rest_samples"] == 300
    assert p["epoch_duration"] == pytest.approx(p["timed"] + p["rate"] * 300 + p["shutdown"])
    assert record["timing"] == timing and "costs" in record
    # A later round's run does not measure the loading cost again.
    later = train.run_cell(cell(num_workers=2, repeat=1), synthetic_root, timing=timing,
                           measure_costs=False)
    assert "costs" not in later
    # A plan that covers the epoch times the whole epoch and predicts nothing.
    whole = train.run_cell(cell(batch_size=600), synthetic_root, timing=timing)
    assert "predicted" not in whole and whole["epochs"][0]["batches"] == 2
    with pytest.raises(ValueError, match="train.epochs must be 1"):
        train.run_cell(cell(), synthetic_root, epochs=2, timing=timing)


def test_a_loader_free_race_run_loads_only_what_it_times(synthetic_root):
    timing = {"mode": "windows", "windows": 1, "window_samples": 100}
    record = train.run_cell(cell(loader="tensor", workload="fashionmnist-augment"),
                            synthetic_root, timing=timing)
    assert record["epochs"][0]["batches"] == 2  # the first batch and one window
    assert record["predicted"]["rest_samples"] == 1000
