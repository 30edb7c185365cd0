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


# The field of each network's spec that names pretrained weights.
PRETRAINED_FIELD = {
    "ssd": "training_config.pretrain_model_path",
    "detectnet_v2": "model_config.pretrained_model_file",
    "classification": "train_config.pretrained_model_path",
}


@pytest.mark.parametrize("name", sorted(NETWORKS))
def test_retrain_start_replaces_a_pretrained_start(name, tmp_path, sample_dataset):
    """The pipeline's retrain of a user's spec (which names pretrained weights, as TLT's
    samples do) starts from the pruned model, and the spec stays valid (SSD's takes only
    one start path)."""
    from tlt_core.stages.sample_data import generate_classification

    network = get_network(name)
    if name == "classification":
        spec_path = generate_classification(tmp_path / "cls", num_train=4, num_val=2).spec
    else:
        spec_path = sample_dataset.experiment_specs[name]
    spec = network.spec_of(spec_path)
    pretrained = tmp_path / "pretrained.tlt"
    user_spec = spec.with_overrides({PRETRAINED_FIELD[name]: str(pretrained)})
    assert network.training_settings(user_spec).start_models[0][0] == str(pretrained)
    pruned = tmp_path / "pruned.tlt"
    retrain_spec = user_spec.with_overrides(network.pruned_start_overrides(str(pruned)))
    assert network.training_settings(retrain_spec).start_models[0][0] == str(pruned)
