"""The figures keep machines apart: a panel per node when cells ran on several (separate SLURM
allocations on different hardware), one panel when all ran on one; and workloads apart."""

import matplotlib.pyplot as plt
import pandas as pd
import pytest

from speedlimit.results import aggregate, plots
from test_aggregate import cells, durations, record, write


def table_on(tmp_path, nodes):
    expected = cells(repeats=3)
    recs = []
    for c in expected:
        r = record(c, durations(c))
        r["environment"]["node"] = nodes[c.repeat % len(nodes)]
        recs.append(r)
    return aggregate.build_table(write(tmp_path, recs), expected)


@pytest.mark.parametrize("nodes", [["n1"], ["n1", "n2"]])
def test_a_panel_per_node_only_when_there_are_several(tmp_path, nodes):
    fig = plots.epoch_duration(table_on(tmp_path, nodes))
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    plt.close(fig)
    assert len(titles) == len(nodes)
    if len(nodes) == 1:
        assert "node" not in titles[0]
    else:
        assert [t.splitlines()[0] for t in titles] == [f"Epoch duration - node {n}" for n in nodes]
        assert all("loader-free limit" in t for t in titles)


def test_the_prediction_figure_has_a_panel_per_workload(tmp_path):
    from test_claims import tables

    _, a = tables(tmp_path / "a", {0: 10, 1: 8, 2: 5}, 7, load=4e-4, compute=1e-4, cpus=2,
                  workload="fashionmnist-augment")
    _, b = tables(tmp_path / "b", {0: 5, 1: 6, 2: 6.5}, 7, load=1e-5, compute=1e-4, cpus=2)
    fig = plots.prediction(pd.concat([a, b]))
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    labels = [t.get_text() for ax in fig.axes for t in ax.get_legend().get_texts()]
    plt.close(fig)
    assert titles == ["Measured vs predicted - workload=fashionmnist",
                      "Measured vs predicted - workload=fashionmnist-augment"]
    assert labels == ["100 measured", "100 predicted"] * 2


@pytest.mark.parametrize("accuracy", [True, False])
def test_the_quality_figure_says_when_no_cell_has_an_accuracy(tmp_path, accuracy):
    table = table_on(tmp_path, ["n1"])
    if not accuracy:  # a workload with its own loss or step: null in every record
        table["accuracy"] = float("nan")
    fig = plots.quality(table)
    said = [t.get_text() for ax in fig.axes for t in ax.texts]
    plt.close(fig)
    assert ("no accuracy: the workload trains with its own loss or step" in said) is (
        not accuracy)
