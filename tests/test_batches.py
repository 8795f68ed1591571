"""A batch, whatever its shape (speedlimit.run.batches): its size, its rows, its device and
what a sample takes in shared memory, for tuples, dicts, tensors and nestings of them."""

import collections

import pytest
import torch
from torch.utils.data import default_collate

from speedlimit.run import batches

SAMPLES = [{"x": torch.full((3,), float(i)), "y": torch.tensor(float(i)),
            "meta": {"id": i, "mask": torch.ones(2)}} for i in range(5)]


def test_the_size_is_the_first_tensors_length_whatever_the_batch():
    image_labels = default_collate([(torch.zeros(1, 4, 4), k) for k in range(7)])
    assert batches.size(image_labels) == 7
    assert batches.size(default_collate(SAMPLES)) == 5
    assert batches.size(torch.zeros(9, 2)) == 9
    assert batches.size([[torch.zeros(4, 1)], torch.zeros(2)]) == 4  # depth first
    Pair = collections.namedtuple("Pair", "inputs labels")
    assert batches.size(Pair(torch.zeros(6), torch.zeros(6))) == 6
    with pytest.raises(TypeError, match="no tensor of samples"):
        batches.size({"name": "a", "n": 3})
    with pytest.raises(TypeError, match="no tensor of samples"):
        batches.size(torch.tensor(1.0))


def test_rows_scatter_and_device_keep_the_batchs_shape():
    whole = default_collate(SAMPLES)
    some = batches.rows(whole, torch.tensor([4, 1]))
    assert some["x"][:, 0].tolist() == [4.0, 1.0] and some["y"].tolist() == [4.0, 1.0]
    assert some["meta"]["id"].tolist() == [4, 1] and some["meta"]["mask"].shape == (2, 2)
    # Only items 1 and 3 loaded, placed in a whole set of 5 rows (the others zero).
    part = default_collate([SAMPLES[1], SAMPLES[3]])
    full = batches.scatter(part, torch.tensor([1, 3]), 5)
    assert full["y"].tolist() == [0.0, 1.0, 0.0, 3.0, 0.0]
    assert full["meta"]["id"].dtype == torch.int64 and full["x"].shape == (5, 3)
    moved = batches.to_device((torch.zeros(2), {"a": torch.ones(2), "n": 3}), torch.device("cpu"))
    assert isinstance(moved, tuple) and moved[1]["n"] == 3
    assert torch.equal(moved[1]["a"], torch.ones(2))


def test_the_model_gets_the_inputs_and_the_default_loss_the_labels():
    pair = (torch.zeros(2, 3), torch.tensor([1, 0]))
    assert batches.inputs(pair) is pair[0] and batches.labels(pair) is pair[1]
    as_dict = {"x": torch.zeros(2)}
    assert batches.inputs(as_dict) is as_dict and batches.labels(as_dict) is None
    tensor = torch.zeros(2, 3)
    assert batches.inputs(tensor) is tensor and batches.labels(tensor) is None
    assert batches.labels([torch.zeros(2)]) is None  # inputs only: no labels


def test_a_samples_bytes_count_every_tensor_and_number():
    assert batches.sample_bytes((torch.zeros(1, 28, 28), 3)) == 28 * 28 * 4 + 8
    assert batches.sample_bytes(SAMPLES[0]) == 3 * 4 + 8 + 8 + 2 * 4
    assert batches.sample_bytes(torch.zeros(10, dtype=torch.float64)) == 80
