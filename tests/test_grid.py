import pytest

from speedlimit import config, grid


def seed_grid(**overrides):
    cfg = config.validate({"grid": overrides})
    return cfg["grid"]


def test_seed_grid_has_18_cells_in_the_seed_order_and_the_limit_by_default():
    cells, skipped = grid.expand(seed_grid())
    tensor = [c for c in cells if c.loader == "tensor"]
    cells = [c for c in cells if c.loader == "dataloader"]
    assert len(cells) == 18 and not skipped
    # The loader-free limit is part of every default run: one cell per batch size.
    assert sorted(c.batch_size for c in tensor) == [100, 1000, 10000]
    order = [(c.batch_size, c.num_workers) for c in cells]
    assert order[:6] == [(100, w) for w in (0, 1, 2, 4, 8, 16)]
    assert order[-1] == (10000, 16)
    assert grid.run_numbers(cells)[cells[0].path] == 1


def test_path_is_readable_and_round_trips():
    cells, _ = grid.expand(seed_grid(loader=["dataloader", "tensor"]), repeats=2)
    cell = cells[0]
    assert cell.path == ("dataloader/batch_size~100/num_workers~0/lr~0.01/torch_threads~1/"
                         "pin_memory~false/persistent_workers~false/prefetch_factor~default/"
                         "device~cpu/workload~fashionmnist/repeat~0")
    for c in cells:
        assert grid.parse_path(c.path) == c
        assert grid.parse_path(c.path + ".json") == c
    tensor = [c for c in cells if c.loader == "tensor"]
    assert len(tensor) == 3 * 2  # once per batch size (and repeat), not per num_workers
    assert tensor[0].path == ("tensor/batch_size~100/lr~0.01/torch_threads~1/device~cpu/"
                              "workload~fashionmnist/repeat~0")


def test_adding_a_value_keeps_every_existing_path():
    before = {c.path for c in grid.expand(seed_grid())[0]}
    after = {c.path for c in grid.expand(seed_grid(num_workers=[0, 1, 2, 3, 4, 8, 16],
                                                   pin_memory=[False, True]))[0]}
    assert before < after
    assert len(after - before) == 3 + 7 * 3  # num_workers=3 x 3 batch sizes; pin_memory=true x 21


@pytest.mark.parametrize("path", [
    "dataloader/batch_size~100",
    "gpu/batch_size~100/lr~0.01/torch_threads~1/device~cpu/repeat~0",
    "tensor/lr~0.01/batch_size~100/torch_threads~1/device~cpu/repeat~0",
    "tensor/batch_size~100/lr~0.010/torch_threads~1/device~cpu/repeat~0",
    "tensor/batch_size~x/lr~0.01/torch_threads~1/device~cpu/repeat~0",
])
def test_parse_rejects_what_is_not_a_canonical_cell_path(path):
    with pytest.raises(ValueError):
        grid.parse_path(path)


def test_invalid_combinations_are_skipped_with_a_reason():
    cells, skipped = grid.expand(seed_grid(num_workers=[0, 2], batch_size=[100],
                                           prefetch_factor=[None, 4],
                                           persistent_workers=[False, True],
                                           loader=["dataloader"]))
    assert {(c.num_workers, c.prefetch_factor, c.persistent_workers) for c in cells} == {
        (0, None, False), (2, None, False), (2, 4, False), (2, None, True), (2, 4, True)}
    reasons = sorted(r for _, r in skipped)
    assert len(skipped) == 3
    assert all("num_workers > 0" in r for r in reasons)


def test_an_integer_lr_still_makes_a_canonical_path():
    cells, _ = grid.expand(seed_grid(lr=[1, 0.5]))  # YAML's `lr: [1]` is an int
    lrs = sorted({c.lr for c in cells})
    assert lrs == [0.5, 1.0] and all(isinstance(v, float) for v in lrs)
    for c in cells:
        assert grid.parse_path(c.path) == c


def test_a_race_times_together_the_settings_whose_epoch_holds_windows():
    cells, _ = grid.expand(config.validate({})["grid"], 2)  # the seed's grid
    together = grid.interleaved_groups(cells, lambda workload: 60_000)
    by_lead = {}
    for cell, lead in together.items():
        by_lead.setdefault(lead, []).append(grid.parse_path(cell + "/repeat~0"))
    # batch size 100: 600 batches, every setting; 1000: 60 batches, all but 16 workers (32
    # batches loaded ahead, twice, and two more: 67); 10000: 6 batches, only 0 workers: none.
    sizes = {lead: sorted(c.num_workers for c in members) for lead, members in by_lead.items()}
    assert sorted(sizes.values()) == [[0, 1, 2, 4, 8], [0, 1, 2, 4, 8, 16]]
    assert all("num_workers~0/" in lead and "/repeat~" not in lead for lead in by_lead)
    assert not any(c.startswith("tensor/") for c in together)
    # A workload whose size is unknown before it runs times each setting on its own.
    assert grid.interleaved_groups(cells, lambda workload: None) == {}


def test_a_groups_round_may_take_the_time_limit_once_per_setting():
    from speedlimit.run.request import Request

    cell = grid.parse_path(grid.expand(config.validate({})["grid"], 1)[0][0].path)
    cells = [cell.path, cell.path.replace("num_workers~0", "num_workers~2")]
    for timing, limit in [({"mode": "windows"}, 60.0),
                          ({"mode": "interleaved", "cells": cells}, 120.0)]:
        text = Request.for_rule(cell, timing, 1, 0, "data", {"function": None}, "c", 0, None)
        assert Request.from_rule(text, "out.json", None, time_limit=60.0).time_limit == limit
    assert Request.from_rule(text, "out.json", None, time_limit=None).time_limit is None
