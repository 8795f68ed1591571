"""The epoch-duration figure keeps machines apart: a panel per node when cells ran on several
(separate SLURM allocations on different hardware), one panel when all ran on one."""

import matplotlib.pyplot as plt
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
