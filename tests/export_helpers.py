"""Shared helpers of the export tests (a tiny hand-made ONNX network)."""

from __future__ import annotations

import numpy as np


def tiny_network(seed: int = 0):
    """Input [N,3,8,8] -> Conv -> Relu -> Conv -> out; weights fixed by ``seed``."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    w1 = rng.normal(size=(4, 3, 3, 3)).astype(np.float32) * 0.3
    w2 = rng.normal(size=(2, 4, 1, 1)).astype(np.float32) * 0.5
    graph = helper.make_graph(
        [
            helper.make_node("Conv", ["Input", "w1"], ["conv1"], pads=[1, 1, 1, 1]),
            helper.make_node("Relu", ["conv1"], ["relu1"]),
            helper.make_node("Shape", ["relu1"], ["shape"]),  # not an activation
            helper.make_node("Conv", ["relu1", "w2"], ["out"]),
        ],
        "tiny",
        [helper.make_tensor_value_info("Input", TensorProto.FLOAT, ["N", 3, 8, 8])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, ["N", 2, 8, 8])],
        [numpy_helper.from_array(w1, "w1"), numpy_helper.from_array(w2, "w2")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    onnx.checker.check_model(model)
    return model


def tiny_ssd(dataset_root, root, seed: int, key: str, name: str = "model.tlt"):
    """A tiny resnet10 SSD (128x96) on the sample data: its spec file written under ``root``,
    the loaded experiment, and the model built with Keras seed ``seed`` (also saved as
    ``root/name`` with ``key``).

    Untrained heads on 0-255 inputs give logits and offsets in the hundreds (exp overflow in
    decoding); scaled down, the outputs are in a trained model's range."""
    import keras

    from tlt_core.modelfile import save_model
    from tlt_core.networks import get_network
    from tlt_core.networks.ssd.model import build_ssd
    from tlt_core.networks.ssd.sample_spec import sample_experiment_spec
    from tlt_core.networks.ssd.spec import load_experiment
    from tlt_core.train.loop import model_metadata

    spec = root / "spec.txt"
    spec.write_text(
        sample_experiment_spec(
            dataset_root,
            arch="resnet",
            nlayers=10,
            output_width=128,
            output_height=96,
            confidence_threshold=0.05,
        )
    )
    experiment = load_experiment(spec)
    keras.utils.set_random_seed(seed)
    model = build_ssd(experiment, experiment.num_classes)
    for layer in model.layers:
        if layer.name.startswith(("ssd_conf_", "ssd_loc_")) and "reshape" not in layer.name:
            layer.set_weights([w * 0.003 for w in layer.get_weights()])
    save_model(root / name, model, key, model_metadata(get_network("ssd"), experiment, model))
    return spec, experiment, model
