"""Running a trained model on preprocessed image batches, whatever file holds it.

Evaluation and inference only need ``ModelRunner.predict(images) -> raw``:

- ``images``: float32 ``[B, H, W, C]``, preprocessed as the network's input pipeline does;
- ``raw``: a tuple of float32 arrays in the order of the network's ``raw_output_names``
  (SSD: softmax class probabilities ``[B, A, C+1]`` and encoded offsets ``[B, A, 4]``),
  whatever file the model came from; the network's ``postprocessor`` turns them into
  predictions.

``open_runner(path, key, network)`` picks the implementation from the file suffix through
the ``RUNNERS`` table (suffix -> "module:callable", each a callable ``(path, key, network)
-> ModelRunner``). This module holds the Keras ``.tlt`` runner; the ONNX Runtime (``.onnx``
/ ``.etlt``) and TensorRT (``.engine`` / ``.trt`` / ``.plan``) runners live in
``tlt_core.export.runners``. A runner whose ``final_outputs_only`` is true (an engine built
with only the final outputs) is read through ``detect(images) -> {name: array}`` and the
network's ``final_postprocessor``; ``description`` names the runtime.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np

from tlt_core.errors import ModelFileError

if TYPE_CHECKING:
    from tlt_core.networks.base import Network

# suffix -> "module:factory"; factory(path, key, network) -> ModelRunner.
RUNNERS: dict[str, str] = {
    ".tlt": "tlt_core.inference_runner:KerasRunner.from_file",
    ".onnx": "tlt_core.export.runners:OnnxRunner.from_file",
    ".etlt": "tlt_core.export.runners:OnnxRunner.from_file",
    ".engine": "tlt_core.export.runners:TensorRTRunner.from_file",
    # 000 names engines .trt (export --engine_file detection.trt); TensorRT's samples .plan.
    ".trt": "tlt_core.export.runners:TensorRTRunner.from_file",
    ".plan": "tlt_core.export.runners:TensorRTRunner.from_file",
}


@runtime_checkable
class ModelRunner(Protocol):
    """A loaded model that maps image batches to the network's raw outputs; it is also the
    ``info`` (input shape, class count, metadata) the network's hooks read."""

    input_shape: tuple[int, int, int]  # (H, W, C) the model expects
    num_classes: int  # object classes, background excluded
    metadata: dict[str, Any]  # the model file's (or export's) metadata
    max_batch_size: int | None  # None: any batch size

    def predict(self, images: np.ndarray) -> tuple[np.ndarray, ...]: ...


class KerasRunner:
    """A ``.tlt`` (or in-memory Keras) model; ``network.raw_outputs`` applies the
    activations the exported graph has (SSD: softmax over ``conf``)."""

    max_batch_size = None
    final_outputs_only = False
    description = "Keras (.tlt)"

    def __init__(self, model, network: Network, metadata: dict[str, Any] | None = None) -> None:
        self.model = model
        self.network = network
        self.metadata = {**(metadata or {}), **network.describe_model(model)}
        shape = tuple(model.inputs[0].shape[1:])
        self.input_shape = tuple(int(v) for v in shape)
        self.num_classes = network.model_classes(model)

    @classmethod
    def from_file(cls, path: str | Path, key: str, network: Network) -> KerasRunner:
        from tlt_core.modelfile import load_model

        def prepare(_metadata: dict) -> None:
            import tlt_core.models.qat  # noqa: F401  (a QAT model's layers)

            network.register_keras_classes()

        model, metadata = load_model(path, key, prepare=prepare)
        return cls(model, network, metadata)

    def predict(self, images: np.ndarray) -> tuple[np.ndarray, ...]:
        # predict_on_batch compiles one predict function per model (any Keras backend).
        outputs = self.model.predict_on_batch(np.asarray(images, np.float32))
        return self.network.raw_outputs(outputs)


def open_runner(path: str | Path, key: str | None, network: Network) -> ModelRunner:
    """Load the model file at ``path`` (a ``network`` model) with the runner its suffix
    calls for."""
    path = Path(path)
    target = RUNNERS.get(path.suffix.lower())
    if target is None:
        known = ", ".join(sorted(RUNNERS))
        raise ModelFileError(f"{path}: unsupported model file type (known: {known})")
    if not path.exists():
        raise ModelFileError(f"{path}: no such model file")
    module_name, _, attr = target.partition(":")
    factory: Any = importlib.import_module(module_name)
    for part in attr.split("."):
        factory = getattr(factory, part)
    return factory(path, key, network)
