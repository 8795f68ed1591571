"""Workloads: the built-in ones and the user's own, trained for real on a tiny synthetic set;
their loading cost; their code in exactly their own cells' rerun trigger (end to end)."""

from __future__ import annotations

import io
import re
import shutil
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from speedlimit import project as project_files
from speedlimit.data import idx, imagefolder
from speedlimit.grid import Cell
from speedlimit.run import costs, hooks, train, workloads
from speedlimit.run.workloads import augment, build

from conftest import TINY, mtimes, planned

CUSTOM = "examples.compressed:make"


def cell(**kw) -> Cell:
    base = dict(loader="dataloader", batch_size=100, lr=0.01, torch_threads=1, device="cpu",
                num_workers=0, pin_memory=False, persistent_workers=False,
                prefetch_factor=None, workload="fashionmnist")
    base.update(kw)
    if base["loader"] == "tensor":
        base.update(num_workers=None, pin_memory=None, persistent_workers=None)
    return Cell(**base)


@pytest.fixture(scope="module")
def data_root(tmp_path_factory) -> str:
    """A tiny synthetic data set with its images also written as files."""
    root = tmp_path_factory.mktemp("workloads") / "synthetic"
    idx.write_synthetic(root, 600, 100, seed=0)
    imagefolder.write(root)
    return str(root)


# --- names and functions ------------------------------------------------------------------


def test_workload_names_and_functions():
    assert workloads.function_of("fashionmnist") == "speedlimit.run.workloads.fashionmnist:make"
    assert workloads.builtin_file("imagefolder").name == "imagefolder.py"
    assert workloads.function_of("custom", CUSTOM) == CUSTOM
    with pytest.raises(workloads.WorkloadError, match="workloads.custom names no function"):
        workloads.function_of("custom")
    with pytest.raises(workloads.WorkloadError, match="unknown workload 'mnist'"):
        workloads.function_of("mnist")
    with pytest.raises(workloads.WorkloadError, match="package.module:function"):
        workloads.function_of("custom", "examples/compressed.py")


# --- what each workload loads ---------------------------------------------------------------


def test_augmentation_is_seeded_per_item_and_epoch_in_every_process(data_root):
    data = augment.make(data_root, seed=0)
    data.set_epoch(1)
    first = data[3][0]
    assert torch.equal(first, data[3][0])  # the same item, the same augmentation
    assert first.shape == (1, 28, 28) and first.dtype == torch.float32
    data.set_epoch(2)
    assert not torch.equal(first, data[3][0])  # a new epoch, a new augmentation
    assert not torch.equal(augment.make(data_root, seed=1)[3][0], data[3][0])
    # Persistent workers see each epoch (shared memory) and load what the main process would.
    loader = torch.utils.data.DataLoader(data, batch_size=100, num_workers=2,
                                         persistent_workers=True)
    for epoch in (1, 2):
        data.set_epoch(epoch)
        from_workers = torch.cat([x for x, _ in loader])
        in_main = torch.stack([data[i][0] for i in range(len(data))])
        assert torch.equal(from_workers, in_main), epoch
    # Loading a sample leaves the caller's random numbers alone.
    torch.manual_seed(5)
    expected = torch.rand(3)
    torch.manual_seed(5)
    data[7]
    assert torch.equal(torch.rand(3), expected)


def test_the_image_files_decode_to_the_data_sets_pixels(data_root):
    raw, labels = (idx.decode(Path(p).read_bytes()) for p in idx.raw_paths(data_root)[:2])
    folder = Path(imagefolder.train_dir(data_root))
    assert len(list(folder.rglob("*.png"))) == 600
    assert sorted(p.name for p in folder.iterdir()) == [str(k) for k in range(10)]
    data = build.build("imagefolder", workloads.function_of("imagefolder"), data_root, 0).dataset
    for i, (path, _) in enumerate(data.imgs[:50]):
        image, label = data[i]
        index = int(Path(path).stem)
        assert label == labels[index]
        assert torch.equal(image, torch.from_numpy(raw[index]).float().div(255).unsqueeze(0))
    # Nothing half-written is left beside it.
    assert not list(Path(imagefolder.root(data_root)).parent.glob(".ImageFolder*"))


def test_png_is_a_valid_grayscale_png():
    from PIL import Image

    image = np.arange(28 * 30, dtype=np.uint8).reshape(28, 30)
    decoded = Image.open(io.BytesIO(imagefolder.png(image)))
    assert decoded.mode == "L" and decoded.size == (30, 28)
    assert np.array_equal(np.asarray(decoded), image)


@pytest.mark.parametrize("workload, function", [
    ("fashionmnist", None), ("fashionmnist-augment", None), ("imagefolder", None),
    ("custom", CUSTOM)])
def test_every_workload_trains_the_same_batches_however_they_are_loaded(data_root, workload,
                                                                        function):
    """Same seed: the same samples in the same order, so the same loss, with or without
    workers (persistent ones too) and without a DataLoader at all (the loader-free limit)."""
    variants = [cell(workload=workload), cell(workload=workload, num_workers=2,
                                              persistent_workers=True),
                cell(workload=workload, loader="tensor")]
    losses = {}
    for v in variants:
        record = train.run_cell(v, data_root, epochs=2, seed=0, workload_function=function)
        losses[v.path] = [e["loss"] for e in record["epochs"]]
        assert record["params"]["workload"] == workload
        assert record["costs"]["load_per_sample"] > 0 and record["costs"]["load_items"] == 256
        assert all(e["compute_per_sample"] == pytest.approx(e["compute"] / 600)
                   for e in record["epochs"])
    assert len({tuple(v) for v in losses.values()}) == 1, losses
    assert losses[variants[0].path][1] < losses[variants[0].path][0]  # it learns


def test_the_custom_example_brings_its_own_model(data_root):
    made = build.build("custom", CUSTOM, data_root, 0, search=[project_files.ROOT])
    assert type(made.model()).__name__ == "MLP"
    x, y = made.dataset[0]
    assert x.shape == (1, 28, 28) and isinstance(y, int)


def write_module(folder, name, body) -> None:
    (folder / f"{name}.py").write_text(textwrap.dedent(body))


@pytest.mark.parametrize("body, error, problem", [
    ("def make(seed):\n    return [1, 2, 3][5]\n", IndexError, "out of range"),
    ("def make(seed):\n    return 42\n", workloads.WorkloadError,
     "returned int, not a map-style data set"),
    ("import torch\ndef make(seed):\n    return torch.utils.data.TensorDataset("
     "torch.zeros(0, 1), torch.zeros(0))\n", workloads.WorkloadError, "empty data set"),
    ("import torch\ndef make(seed):\n    return (torch.utils.data.TensorDataset("
     "torch.zeros(4, 1), torch.zeros(4)), 7)\n", workloads.WorkloadError, "neither an nn.Module"),
    ("def other(seed):\n    pass\n", workloads.WorkloadError, "has no function 'make'"),
    # The old signature under another first name: called the new way, and told so.
    ("def make(root, seed):\n    pass\n", workloads.WorkloadError,
     r"make\(root, seed\) cannot be called as make\(seed, \*\*args\) .*names its first "
     "parameter dataset_root"),
    ("import torch\nfrom speedlimit.run.workloads import Custom\ndef make(seed):\n"
     "    data = torch.utils.data.TensorDataset(torch.zeros(4, 1))\n"
     "    return Custom(data, loss=lambda o, b: 0, step=lambda m, b, o: 0)\n",
     workloads.WorkloadError, "both a loss and a step"),
])
def test_a_broken_custom_workload_says_what_is_wrong(tmp_path, body, error, problem):
    name = f"broken_{abs(hash(body))}"  # a fresh module each (a cell imports it once)
    write_module(tmp_path, name, body)
    with pytest.raises(error, match=problem):
        build.build("custom", f"{name}:make", "-", 0, search=[tmp_path])
    with pytest.raises(workloads.WorkloadError, match="cannot import nowhere_at_all"):
        build.build("custom", "nowhere_at_all:make", "-", 0, search=[tmp_path])


def test_a_model_instance_is_accepted(tmp_path):
    write_module(tmp_path, "withmodel", """
        import torch
        def make(seed):
            data = torch.utils.data.TensorDataset(torch.zeros(4, 3), torch.zeros(4).long())
            return data, torch.nn.Linear(3, 10)
        """)
    made = build.build("custom", "withmodel:make", "-", 0, search=[tmp_path])
    assert isinstance(made.model(), torch.nn.Linear)


# --- the user's own workload: its args, its signature, its training step ---------------------

TEMPLATE = "examples.template:make"


def test_the_config_names_the_custom_function_alone_or_with_its_args(tmp_path):
    spec = {"function": TEMPLATE, "args": {"root": "/data/mine", "size": 100}}
    assert workloads.function_of("custom", spec) == TEMPLATE
    assert workloads.custom_parts(spec) == (TEMPLATE, {"root": "/data/mine", "size": 100})
    assert workloads.custom_parts(CUSTOM) == (CUSTOM, {})
    assert workloads.describe("custom", spec) == f"the user's own, from {TEMPLATE}"
    with pytest.raises(workloads.WorkloadError, match="names no function"):
        workloads.function_of("custom", {"args": {"root": "x"}})
    with pytest.raises(workloads.WorkloadError, match="args has seed: .*set train.seed"):
        workloads.custom_parts({"function": TEMPLATE, "args": {"seed": 1}})
    # Resolved: the args ride in the custom cells' request (their rerun trigger), and only
    # a function of the old signature reads the pipeline's data set.
    root = [project_files.ROOT]
    template = workloads.resolve("custom", spec, root)
    assert template.args == spec["args"] and not template.dataset
    assert template.for_request()["args"] == spec["args"]
    other = workloads.resolve("custom", {**spec, "args": {"root": "/data/other"}}, root)
    assert other.for_request() != template.for_request() and other.code == template.code
    assert workloads.resolve("custom", CUSTOM, root).dataset  # make(dataset_root, seed)
    builtin = workloads.resolve("fashionmnist", spec)
    assert builtin.dataset and "args" not in builtin.for_request()
    write_module(tmp_path, "imported", """
        from examples.template import make
        def later(dataset_root, seed): pass
        """)
    assert not workloads.reads_dataset_root(tmp_path / "imported.py", "make")
    assert workloads.reads_dataset_root(tmp_path / "imported.py", "later")


def test_the_function_is_called_with_the_seed_and_its_args_or_as_before(tmp_path):
    write_module(tmp_path, "calls", """
        import torch
        CALLS = []
        def make(seed, root="default", size=4):
            CALLS.append(("new", seed, root, size))
            return torch.utils.data.TensorDataset(torch.zeros(size, 3), torch.zeros(size).long())
        def old(dataset_root, seed):
            CALLS.append(("old", dataset_root, seed))
            return torch.utils.data.TensorDataset(torch.zeros(2, 3), torch.zeros(2).long())
        """)
    search = [tmp_path]
    made = build.build("custom", "calls:make", None, 7, search=search,
                       args={"root": "/data/mine", "size": 6})
    assert len(made.dataset) == 6
    build.build("custom", "calls:old", "/the/data/set", 3, search=search)
    from calls import CALLS

    assert CALLS == [("new", 7, "/data/mine", 6), ("old", "/the/data/set", 3)]
    with pytest.raises(workloads.WorkloadError, match=r"make\(seed, root='default', size=4\) "
                       r"cannot be called as make\(seed, \*\*args\) .*args given: colour"):
        build.build("custom", "calls:make", None, 0, search=search, args={"colour": "red"})
    # An old signature the rules could not see (not a def of its module): said, not guessed.
    write_module(tmp_path, "reexports", "from calls import old as make\n")
    with pytest.raises(workloads.WorkloadError, match="first parameter is dataset_root"):
        build.build("custom", "reexports:make", None, 0, search=search)


def run(workload_cell, function, epochs=2, **kw):
    return train.run_cell(workload_cell, None, epochs=epochs, seed=0,
                          workload_function=function, **kw)


def test_the_template_trains_its_own_data_model_and_loss_however_loaded(tmp_path):
    """examples/template.py as shipped: a regression of its own, written under args.root,
    dict batches, its own MLP and MSE; the same batches with and without workers and
    without a DataLoader (its as_tensors), no accuracy, and no data set of the pipeline."""
    args = {"root": str(tmp_path / "mine"), "size": 600, "features": 8}
    losses = {}
    for v in (cell(workload="custom"),
              cell(workload="custom", num_workers=2, persistent_workers=True),
              cell(workload="custom", loader="tensor")):
        record = run(v, TEMPLATE, workload_args=args)
        losses[v.path] = [e["loss"] for e in record["epochs"]]
        assert all(e["accuracy"] is None for e in record["epochs"])
        assert record["params"]["dataset_size"] == 600
        assert [e["samples"] for e in record["epochs"]] == [600, 600]
    assert len({tuple(v) for v in losses.values()}) == 1, losses
    first = next(iter(losses.values()))
    assert first[1] < first[0]  # it learns
    assert [p.name for p in (tmp_path / "mine").iterdir()] == ["regression-600x8.npz"]
    # The record passes the metrics schema (accuracy: null).
    path = tmp_path / "record.json"
    import json

    from speedlimit import record as record_module

    path.write_text(json.dumps(record))
    assert record_module.read(path)["epochs"][0]["accuracy"] is None


STEPPED = """
    import torch
    from speedlimit.run.workloads import Custom

    SEEN = {"steps": 0, "optimizers": set(), "collated": 0}

    class Rows(torch.utils.data.Dataset):
        # each sample one tensor: 4 features and the target in its last column
        def __init__(self):
            g = torch.Generator().manual_seed(1)
            self.rows = torch.randn(300, 5, generator=g)
        def __len__(self):
            return len(self.rows)
        def __getitem__(self, i):
            return self.rows[i]

    def collate(samples):
        SEEN["collated"] += 1
        rows = torch.stack(samples)
        return {"x": rows[:, :4], "y": rows[:, 4]}

    def step(model, batch, optimizer):
        SEEN["steps"] += 1
        SEEN["optimizers"].add(type(optimizer).__name__)
        optimizer.zero_grad()
        loss = ((model(batch["x"]).squeeze(1) - batch["y"]) ** 2).mean()
        loss.backward()
        optimizer.step()
        return loss

    def make(seed):
        return Custom(Rows(), model=lambda: torch.nn.Linear(4, 1), step=step,
                      collate_fn=collate,
                      optimizer=lambda params, lr: torch.optim.SGD(params, lr=lr))
"""


def test_a_workloads_own_step_collate_and_optimizer_train_every_batch(tmp_path, monkeypatch):
    write_module(tmp_path, "stepped", STEPPED)
    monkeypatch.chdir(tmp_path)  # (imported from the working directory first)
    loaded = run(cell(workload="custom", batch_size=50), "stepped:make", epochs=1)
    limit = run(cell(workload="custom", batch_size=50, loader="tensor"), "stepped:make",
                epochs=1)
    from stepped import SEEN

    assert SEEN["steps"] == 12 and SEEN["optimizers"] == {"SGD"}
    # The DataLoader's batches, and the whole set once for the loader-free limit.
    assert SEEN["collated"] == 6 + 1
    assert loaded["epochs"][0]["loss"] == pytest.approx(limit["epochs"][0]["loss"], rel=1e-6)
    assert loaded["epochs"][0]["accuracy"] is None and loaded["epochs"][0]["batches"] == 6


def test_the_default_step_needs_labels_and_the_limit_one_row_per_sample(tmp_path):
    write_module(tmp_path, "unlabelled", """
        import torch
        from speedlimit.run.workloads import Custom
        class Dicts(torch.utils.data.Dataset):
            def __len__(self):
                return 40
            def __getitem__(self, i):
                return {"x": torch.zeros(4)}
        def make(seed):
            return Custom(Dicts(), model=lambda: torch.nn.Linear(4, 2))
        def pairs(seed):  # its collate makes one row of every two samples
            data = torch.utils.data.TensorDataset(torch.zeros(40, 4), torch.zeros(40).long())
            halve = lambda samples: torch.utils.data.default_collate(samples[::2])
            return Custom(data, model=lambda: torch.nn.Linear(4, 2), collate_fn=halve)
        """)
    made = build.build("custom", "unlabelled:make", None, 0, search=[tmp_path])
    network = made.model()
    optimizer = made.make_optimizer(network, 0.01)
    with pytest.raises(workloads.WorkloadError, match=r"batches are dicts, not \(inputs, labels\) "
                       r"tuples.*Custom\(dataset, model, loss=\.\.\.\) or Custom"):
        made.train_step(network, {"x": torch.zeros(2, 4)}, optimizer)
    pairs = build.build("custom", "unlabelled:pairs", None, 0, search=[tmp_path])
    with pytest.raises(workloads.WorkloadError, match="40 samples collated into tensors of 20 "
                       "rows.*leave `tensor` out"):
        pairs.tensors(1)


def test_a_workload_module_is_found_on_the_jobs_pythonpath(tmp_path, monkeypatch):
    """A cell forked from a warm server has its job's environment but the server's
    sys.path: the job's PYTHONPATH is searched too (after the working directory)."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    write_module(elsewhere, "faraway", "def make(seed):\n    return [1, 2]\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PYTHONPATH", f"/nonexistent:{elsewhere}")
    assert build.import_path() == [str(tmp_path), "/nonexistent", str(elsewhere)]
    assert str(elsewhere) not in __import__("sys").path
    assert build.load_function("faraway:make")(0) == [1, 2]


# --- the loading cost ---------------------------------------------------------------------


def test_the_fixed_sample_of_items_depends_on_the_seed_only():
    assert costs.items(1000, 0) == costs.items(1000, 0)
    assert costs.items(1000, 0) != costs.items(1000, 1)
    assert len(costs.items(1000, 0)) == costs.ITEMS and len(costs.items(50, 0)) == 50


def test_the_loading_cost_is_measured_in_the_main_process_before_the_clock(data_root):
    plain = train.run_cell(cell(), data_root, seed=0)
    delay = 0.002
    slow = train.run_cell(cell(num_workers=2), data_root, seed=0,
                          hooks=hooks.Hooks(sample_delay=delay))  # as the job reads the hook
    added = slow["costs"]["load_per_sample"] - plain["costs"]["load_per_sample"]
    # A sleep never ends early, but a loaded machine wakes sleepers late: tight from below,
    # generous from above.
    assert 0.9 * delay < added < 2.5 * delay
    assert slow["setup"] > (costs.ITEMS + costs.WARMUP) * delay  # all of it before the clock


def test_a_slow_data_set_is_measured_within_its_budget():
    class Slow:
        def __getitem__(self, i):
            import time
            time.sleep(0.01)
            return i

    seconds, timed = costs.load_per_sample(Slow(), list(range(256)), budget=0.1)
    assert costs.MINIMUM <= timed < 64 and seconds == pytest.approx(0.01, rel=0.5)


# --- a user module's code digest --------------------------------------------------------------


def test_a_user_modules_digest_follows_its_own_imports_only(tmp_path):
    pkg = tmp_path / "mypkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "data.py").write_text("import numpy\nfrom mypkg import helper\nfrom . import rel\n")
    (pkg / "helper.py").write_text("X = 1\n")
    (pkg / "rel.py").write_text("Y = 1\n")
    (pkg / "unrelated.py").write_text("Z = 1\n")
    (tmp_path / "sibling.py").write_text("W = 1\n")
    digest = project_files.module_digest("mypkg.data", [tmp_path])
    assert project_files.module_location("mypkg.data", [tmp_path]) == (pkg / "data.py", tmp_path)
    for name in ("helper.py", "rel.py", "__init__.py", "data.py"):
        before = (pkg / name).read_text()
        (pkg / name).write_text(before + "# an edit\n")
        assert project_files.module_digest("mypkg.data", [tmp_path]) != digest, name
        (pkg / name).write_text(before)
    (pkg / "unrelated.py").write_text("Z = 2\n")
    (tmp_path / "sibling.py").write_text("W = 2\n")
    assert project_files.module_digest("mypkg.data", [tmp_path]) == digest
    with pytest.raises(FileNotFoundError, match="no module mypkg.nothing"):
        project_files.module_digest("mypkg.nothing", [tmp_path])


def test_a_user_modules_digest_follows_what_it_uses_of_speedlimit(tmp_path, monkeypatch):
    """A user's module that builds on a speedlimit module (here the built-in augmentation)
    reruns when that module changes, though it lies outside the user's folder."""
    package = tmp_path / "package" / "speedlimit"
    (package / "run" / "workloads").mkdir(parents=True)
    for init in (package, package / "run", package / "run" / "workloads"):
        (init / "__init__.py").write_text("")
    augment = package / "run" / "workloads" / "augment.py"
    augment.write_text("STEPS = 1\n")
    monkeypatch.setattr(project_files, "package_dir", lambda: package)
    user = tmp_path / "user"
    user.mkdir()
    (user / "mine.py").write_text("from speedlimit.run.workloads import augment\n")
    digest = project_files.module_digest("mine", [user])
    augment.write_text("STEPS = 2\n")
    assert project_files.module_digest("mine", [user]) != digest


# --- end to end -----------------------------------------------------------------------------


def planned_cells(project, *args) -> list[str]:
    out = project.run("-n", *args).stdout
    return sorted(re.findall(r"wildcards: cell=(\S+)", out))


def workload_of(path: str) -> str:
    return re.search(r"/workload~([^/]+)/", path)[1]


@pytest.mark.e2e
def test_every_workload_end_to_end_and_only_its_cells_rerun(project):
    grid = {"num_workers": [0, 1], "batch_size": [100], "loader": ["dataloader", "tensor"]}
    first = {**TINY, "grid": {**grid, "workload": ["fashionmnist", "custom"]},
             "workloads": {"custom": CUSTOM}}
    project.write_config("first.yaml", first)
    project.run("--cores", "all", "--configfile", "config.yaml", "first.yaml")
    assert len(project.runs()) == 6

    # Adding workloads trains only their cells (and writes the image files once).
    every = {**first, "grid": {**grid, "workload": ["fashionmnist", "fashionmnist-augment",
                                                    "imagefolder", "custom"]}}
    project.write_config("every.yaml", every)
    cfg = ["--configfile", "config.yaml", "every.yaml"]
    assert planned(project, *cfg) == {"make_imagefolder": 1, "train_cell": 6, "decide": 1,
                                      "aggregate": 1, "plot": 1, "findings": 1, "tables": 1,
                                      "all": 1}
    assert {workload_of(c) for c in planned_cells(project, *cfg)} == {
        "fashionmnist-augment", "imagefolder"}
    before = mtimes(project)
    project.run("--cores", "all", *cfg)
    after = mtimes(project)
    assert {k: v for k, v in after.items() if k in before} == before and len(after) == 12

    import pandas as pd

    table = pd.read_csv(project.path / "results" / "table.csv")
    assert table["status"].eq("ok").all() and table["quality_consistent"].all()
    assert table.groupby("workload")["loss"].nunique().eq(1).all()  # equal within a workload
    assert table["load_per_sample"].gt(0).all() and table["compute_per_sample"].gt(0).all()
    summary = pd.read_csv(project.path / "results" / "summary.csv")
    assert summary.loc[summary["loader"].eq("dataloader"), "predicted_speedup"].notna().all()
    rec = yaml.safe_load((project.path / "results" / "recommendation.yaml").read_text())
    assert sorted(e["workload"] for e in rec["recommendations"]) == [
        "custom", "fashionmnist", "fashionmnist-augment", "imagefolder"]
    assert all(e["paste"].startswith("DataLoader(dataset, batch_size=100, shuffle=True, "
                                     "num_workers=") for e in rec["recommendations"])
    findings = (project.path / "results" / "findings.md").read_text()
    for name in ("custom", "fashionmnist", "fashionmnist-augment", "imagefolder"):
        assert f"## Workload {name}, batch_size 100" in findings
    comparison = pd.read_csv(project.path / "results" / "published_vs_reproduced.csv")
    assert "workload" not in comparison.columns  # only the seed's workload is compared
    assert planned(project, *cfg) == {}

    # Editing one workload's definition reruns exactly its cells.
    for path, name in (("scripts/speedlimit/run/workloads/augment.py", "fashionmnist-augment"),
                       ("scripts/speedlimit/run/workloads/imagefolder.py", "imagefolder"),
                       ("scripts/speedlimit/run/workloads/fashionmnist.py", "fashionmnist"),
                       ("examples/compressed.py", "custom")):
        module = project.path / path
        original = module.read_text()
        module.write_text(original + "\n# an edit\n")
        cells = planned_cells(project, *cfg)
        assert len(cells) == 3 and {workload_of(c) for c in cells} == {name}, (path, cells)
        module.write_text(original)
    assert planned(project, *cfg) == {}
    # The image files' writer: the files again, then only the imagefolder cells.
    writer = project.path / "scripts" / "speedlimit" / "data" / "imagefolder.py"
    writer.write_text(writer.read_text() + "\n# an edit\n")
    plan = planned(project, *cfg)
    assert plan["make_imagefolder"] == 1 and plan["train_cell"] == 3


def said(proc) -> str:
    return proc.stdout + proc.stderr


@pytest.mark.e2e
def test_a_custom_workload_without_a_function_or_module_stops_before_any_job(project):
    project.write_config("bad.yaml", {**TINY, "grid": {**TINY["grid"], "workload": ["custom"]}})
    proc = project.run("-n", "--configfile", "config.yaml", "bad.yaml", check=False)
    assert proc.returncode != 0 and "workloads.custom names no function" in said(proc)
    project.write_config("bad.yaml", {**TINY, "grid": {**TINY["grid"], "workload": ["custom"]},
                                      "workloads": {"custom": "examples.nothing:make"}})
    proc = project.run("-n", "--configfile", "config.yaml", "bad.yaml", check=False)
    assert proc.returncode != 0 and "no module examples.nothing" in said(proc)
    project.write_config("bad.yaml", {**TINY, "grid": {**TINY["grid"], "workload": ["custom"]},
                                      "workloads": {"custom": "examples.compressed:mkae"}})
    proc = project.run("-n", "--configfile", "config.yaml", "bad.yaml", check=False)
    assert proc.returncode != 0 and "defines no 'mkae' at its top level (it defines: " \
        in said(proc) and "make" in said(proc)
    broken = project.path / "examples" / "broken.py"
    broken.write_text("def make(root, seed):\n    return (\n")
    project.write_config("bad.yaml", {**TINY, "grid": {**TINY["grid"], "workload": ["custom"]},
                                      "workloads": {"custom": "examples.broken:make"}})
    proc = project.run("-n", "--configfile", "config.yaml", "bad.yaml", check=False)
    assert proc.returncode != 0 and f"{broken}, line 2" in said(proc)
    assert not (project.path / "results" / "runs").exists()
    shutil.rmtree(project.path / "examples")
    project.write_config("bad.yaml", {**TINY, "workloads": {"custom": "not a function"}})
    proc = project.run("-n", "--configfile", "config.yaml", "bad.yaml", check=False)
    assert proc.returncode != 0 and "workloads.custom" in said(proc)
