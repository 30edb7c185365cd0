"""The input pipelines stay parallel under op determinism.

Training with a ``random_seed`` turns on ``tf.config.experimental.enable_op_determinism``;
tf.data then rewrites every parallel map whose function holds a stateful op into a
sequential one (one thread decodes and augments every image) and TensorFlow logs a
``NodeDef mentions attribute use_unbounded_threadpool`` error line for each rewrite, once
per epoch. A class-name hash table was such an op. These tests look at the dataset graphs
every network's training and evaluation input builds, and run one under determinism.
"""

from __future__ import annotations

import subprocess
import sys

import pytest
import tensorflow as tf
from tensorflow.python.framework import op_def_registry

from tlt_core.networks import get_network
from tlt_core.stages.sample_data import generate_classification


def _stateful_ops_of_maps(dataset: tf.data.Dataset) -> dict[str, list[str]]:
    graph = tf.compat.v1.GraphDef()
    graph.ParseFromString(dataset._as_serialized_graph().numpy())
    functions = {f.signature.name: f for f in graph.library.function}

    def stateful(name: str, seen: set[str]) -> list[str]:
        found = []
        for node in functions[name].node_def:
            op = op_def_registry.get(node.op)
            if op is not None and op.is_stateful:
                found.append(node.op)
            for attr in node.attr.values():
                inner = attr.func.name if attr.HasField("func") else ""
                if inner in functions and inner not in seen:
                    seen.add(inner)
                    found += stateful(inner, seen)
        return found

    return {
        node.name: stateful(node.attr["f"].func.name, set())
        for node in graph.node
        if node.op.startswith("ParallelMapDataset")
    }


@pytest.fixture(scope="module")
def classification_spec(tmp_path_factory):
    return generate_classification(
        tmp_path_factory.mktemp("cls") / "data", num_train=12, num_val=6
    ).spec


def _spec_path(name, sample_dataset, classification_spec):
    if name == "classification":
        return classification_spec
    return sample_dataset.experiment_specs[name]


@pytest.mark.parametrize("name", ["ssd", "detectnet_v2", "classification"])
@pytest.mark.parametrize("training", [True, False])
def test_parallel_maps_hold_no_stateful_op(name, training, sample_dataset, classification_spec):
    network = get_network(name)
    spec = network.spec_of(_spec_path(name, sample_dataset, classification_spec))
    dataset = network.input_pipeline(spec, training=training, batch_size=2, seed=1)
    maps = _stateful_ops_of_maps(dataset)
    assert maps, "no parallel map: the pipeline's decoding runs on one thread"
    assert all(not ops for ops in maps.values()), maps


_ITERATE = """
import sys
import tensorflow as tf
from tlt_core.networks import get_network
network = get_network(sys.argv[1])
spec = network.spec_of(sys.argv[2])
tf.config.experimental.enable_op_determinism()
for _ in range(2):  # two epochs: the rewrite (and its log line) happened once per iterator
    for _ in network.input_pipeline(spec, training=True, batch_size=4, seed=1).take(2):
        pass
"""


def test_seeded_training_input_logs_no_nodedef_error(sample_dataset):
    result = subprocess.run(
        [sys.executable, "-c", _ITERATE, "ssd", str(sample_dataset.experiment_specs["ssd"])],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    assert "use_unbounded_threadpool" not in result.stderr
    assert "NodeDef mentions" not in result.stderr
