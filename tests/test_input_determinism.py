"""The input pipelines stay parallel under op determinism.

Training with a ``random_seed`` turns on ``tf.config.experimental.enable_op_determinism``;
tf.data then rewrites every parallel map whose function holds a stateful op into a
sequential one (one thread decodes and augments every image) and TensorFlow logs a
``NodeDef mentions attribute use_unbounded_threadpool`` error line for each rewrite, once
per epoch. It even needs only one such op anywhere in the graph to turn every parallel map
and prefetch sequential. A class-name hash table was such an op, and so were the
``InputStats`` counters (a variable's ``assign_add`` in a map). These tests look at the
dataset graphs the trainer and the evaluator build (with their ``InputStats``), and run
the trainer's under determinism.
"""

from __future__ import annotations

import subprocess
import sys

import pytest
import tensorflow as tf
from tensorflow.python.framework import op_def_registry

from tlt_core.data.pipeline import InputStats
from tlt_core.networks import get_network
from tlt_core.stages.sample_data import generate_classification
from tlt_core.train.loop import target_dataset

# tensorflow/core/grappler/optimizers/data/make_deterministic.cc: the stateful ops its
# whole-graph check (GraphMayHaveAsyncNondeterminism) lets through; any other stateful op
# in any dataset function makes it rewrite every parallel map and prefetch.
_ALLOWED_STATEFUL = (
    "TextLineDataset", "FixedLengthRecordDataset", "TFRecordDataset", "TensorSliceDataset",
    "RangeDataset", "SSTableDataset", "RecordIODataset", "RandomUniform", "RandomUniformInt",
    "RandomStandardNormal", "ParameterizedTruncatedNormal", "TruncatedNormal",
    "RandomShuffle", "Multinomial", "RandomGamma", "RandomGammaGrad", "RandomPoisson",
    "RandomCrop", "SampleDistortedBoundingBox", "SampleDistortedBoundingBoxV2", "Print",
    "Assert",
)  # fmt: skip
# Looked into (their functions are in the library) rather than judged themselves.
_FUNCTION_CALLS = ("StatefulPartitionedCall", "If", "While")


def _allowed(op: str) -> bool:
    # data::MatchesAnyVersion: "TFRecordDataset" also covers "TFRecordDatasetV2" etc.
    return any(op == a or (op.startswith(a + "V") and op[len(a) + 1 :].isdigit())
               for a in _ALLOWED_STATEFUL)  # fmt: skip


def _disallowed_stateful_ops(dataset: tf.data.Dataset) -> dict[str, list[str]]:
    """Function name -> the stateful ops in it that the determinism rewrite rejects, over
    the whole function library of the dataset's graph."""
    graph = tf.compat.v1.GraphDef()
    graph.ParseFromString(dataset._as_serialized_graph().numpy())
    found = {}
    for function in graph.library.function:
        bad = []
        for node in function.node_def:
            op = op_def_registry.get(node.op)
            if op is None or not op.is_stateful or node.op in _FUNCTION_CALLS:
                continue
            if not _allowed(node.op):
                bad.append(node.op)
        if bad:
            found[function.signature.name] = bad
    return found


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


def _built_datasets(name, training, sample_dataset, classification_spec):
    """The dataset the trainer (``training``) or the evaluator builds, with its stats."""
    network = get_network(name)
    spec = network.spec_of(_spec_path(name, sample_dataset, classification_spec))
    if not training:  # as tlt_core.evaluate.collect builds it
        return network.input_pipeline(
            spec, training=False, batch_size=2, shuffle=False, stats=InputStats()
        )
    targets = network.training_targets(spec, network.build_model(spec))
    return target_dataset(
        network, spec, targets=targets, batch_size=2, seed=1, skip_batches=1, stats=InputStats()
    )


@pytest.mark.parametrize("name", ["ssd", "detectnet_v2", "classification"])
@pytest.mark.parametrize("training", [True, False])
def test_parallel_maps_hold_no_stateful_op(name, training, sample_dataset, classification_spec):
    dataset = _built_datasets(name, training, sample_dataset, classification_spec)
    maps = _stateful_ops_of_maps(dataset)
    assert maps, "no parallel map: the pipeline's decoding runs on one thread"
    assert all(not ops for ops in maps.values()), maps
    assert _disallowed_stateful_ops(dataset) == {}


_ITERATE = """
import sys
import tensorflow as tf
from tlt_core.data.pipeline import InputStats
from tlt_core.networks import get_network
from tlt_core.train.loop import target_dataset
network = get_network(sys.argv[1])
spec = network.spec_of(sys.argv[2])
targets = network.training_targets(spec, network.build_model(spec))
tf.config.experimental.enable_op_determinism()
for epoch in range(2):  # two epochs: the rewrite (and its log line) happened once per iterator
    stats = InputStats()
    for _ in target_dataset(network, spec, targets=targets, batch_size=4, seed=epoch, stats=stats):
        pass
"""


def test_seeded_training_input_logs_no_nodedef_error(sample_dataset):
    # the trainer's dataset (targets, InputStats) as training builds it each epoch
    result = subprocess.run(
        [sys.executable, "-c", _ITERATE, "ssd", str(sample_dataset.experiment_specs["ssd"])],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "use_unbounded_threadpool" not in result.stderr
    assert "NodeDef mentions" not in result.stderr
