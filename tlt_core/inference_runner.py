"""Running a trained SSD on preprocessed image batches, whatever file holds it.

Evaluation and inference only need ``ModelRunner.predict(images) -> (conf_probs, loc)``:

- ``images``: float32 ``[B, H, W, 3]``, preprocessed as the input pipeline does (BGR minus
  the image mean, resized to the spec's output size);
- ``conf_probs``: float32 ``[B, A, num_classes + 1]`` softmax probabilities (index 0 is
  background);
- ``loc``: float32 ``[B, A, 4]`` encoded offsets (decoded by ``tlt_core.boxes``).

``open_runner(path, key)`` picks the implementation from the file suffix through the
``RUNNERS`` table (suffix -> "module:callable", each a callable ``(path, key) ->
ModelRunner``). This module holds the Keras ``.tlt`` runner; the ONNX Runtime (``.onnx`` /
``.etlt``) and TensorRT (``.engine``) runners live in ``tlt_core.export.runners``.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from tlt_core.errors import ModelFileError

# suffix -> "module:factory"; factory(path, key) -> ModelRunner.
RUNNERS: dict[str, str] = {
    ".tlt": "tlt_core.inference_runner:KerasRunner.from_file",
    ".onnx": "tlt_core.export.runners:OnnxRunner.from_file",
    ".etlt": "tlt_core.export.runners:OnnxRunner.from_file",
    ".engine": "tlt_core.export.runners:TensorRTRunner.from_file",
}


@runtime_checkable
class ModelRunner(Protocol):
    """A loaded detection model that maps image batches to raw SSD outputs."""

    input_shape: tuple[int, int, int]  # (H, W, C) the model expects
    num_classes: int  # object classes, background excluded
    feature_map_sizes: list[tuple[int, int]]  # (h, w) of the 6 predictor maps (anchors)
    max_batch_size: int | None  # None: any batch size

    def predict(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]: ...


def split_outputs(outputs: Any) -> tuple[Any, Any]:
    """``(conf, loc)`` from a model call's outputs (a dict keyed by name, or [conf, loc])."""
    if isinstance(outputs, dict):
        return outputs["conf"], outputs["loc"]
    conf, loc = outputs
    return conf, loc


class KerasRunner:
    """A ``.tlt`` (or in-memory Keras) SSD; applies softmax to the ``conf`` logits."""

    max_batch_size = None

    def __init__(self, model, metadata: dict[str, Any] | None = None) -> None:
        self.model = model
        self.metadata = metadata or {}
        from tlt_core.models.ssd import ssd_feature_map_sizes

        shape = tuple(model.inputs[0].shape[1:])
        self.input_shape = tuple(int(v) for v in shape)
        conf, _ = split_outputs(model.output)
        self.num_classes = int(conf.shape[-1]) - 1
        self.feature_map_sizes = [tuple(s) for s in ssd_feature_map_sizes(model)]

    @classmethod
    def from_file(cls, path: str | Path, key: str) -> KerasRunner:
        from tlt_core.modelfile import load_model

        model, metadata = load_model(path, key)
        return cls(model, metadata)

    def predict(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        # predict_on_batch compiles one predict function per model (any Keras backend).
        conf, loc = split_outputs(self.model.predict_on_batch(np.asarray(images, np.float32)))
        return softmax(np.asarray(conf, np.float32)), np.asarray(loc, np.float32)


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=-1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=-1, keepdims=True)


def open_runner(path: str | Path, key: str | None) -> ModelRunner:
    """Load the model file at ``path`` with the runner its suffix calls for."""
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
    return factory(path, key)
