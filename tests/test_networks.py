"""The network table and the interface every entry implements."""

from __future__ import annotations

import inspect

import pytest

from tlt_core.errors import ModelFileError, UsageError
from tlt_core.networks import NETWORKS, get_network, network_of_metadata
from tlt_core.networks.base import TASKS, MetricSpec, Network


@pytest.mark.parametrize("name", sorted(NETWORKS))
def test_table_entries_are_complete_networks(name):
    network = NETWORKS[name]
    assert isinstance(network, Network) and network.name == name
    assert not inspect.isabstract(type(network))
    assert isinstance(network.primary_metric, MetricSpec) and network.primary_metric.name
    assert network.raw_output_names and network.export_variants
    assert set(network.tasks) <= set(TASKS)


def test_lookup_errors_are_one_line():
    assert get_network(None) is NETWORKS["ssd"]
    with pytest.raises(UsageError, match=r"unknown network 'nope'.*ssd"):
        get_network("nope")
    with pytest.raises(ModelFileError, match=r"m\.tlt: model of network 'nope'"):
        network_of_metadata({"network": "nope"}, source="m.tlt")
    # Model files written before the key existed are SSD's.
    assert network_of_metadata({}) is NETWORKS["ssd"]


def test_spec_of_takes_a_path_or_a_parsed_spec(tmp_path):
    from tlt_core.networks.ssd.sample_spec import sample_experiment_spec

    ssd = get_network("ssd")
    path = tmp_path / "spec.txt"
    path.write_text(sample_experiment_spec(tmp_path))
    spec = ssd.spec_of(path)
    assert ssd.spec_of(spec) is spec and spec.class_names == ("car", "cyclist", "pedestrian")
    assert ssd.spec_of(str(path)).text == spec.text
