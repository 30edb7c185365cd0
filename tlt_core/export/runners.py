"""ModelRunners for exported models: ONNX Runtime (``.onnx``, ``.etlt``), TensorRT (``.engine``).

They implement ``tlt_core.inference_runner.ModelRunner``: ``predict(images [B,H,W,C]) ->
raw`` reads the tensors the export metadata lists as ``raw_outputs`` (the network's
``raw_output_names``; SSD: ``pp_scores`` = softmax(conf) and ``loc``), so evaluation and
inference apply the network's post-processing exactly as for a ``.tlt``. ``detect(images)``
returns the graph's own outputs (SSD: ``num_detections``, ``detection_boxes``,
``detection_scores``, ``detection_classes``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from tlt_core.errors import EngineBuildError, ModelFileError
from tlt_core.export.onnx import get_metadata, ort_session, read_model

# Exports written before the metadata named their tensors were all SSD's.
LEGACY_RAW_OUTPUTS = ("pp_scores", "loc")
LEGACY_OUTPUTS = ("num_detections", "detection_boxes", "detection_scores", "detection_classes")


def raw_output_names(metadata: dict[str, Any]) -> tuple[str, ...]:
    return tuple(metadata.get("raw_outputs") or LEGACY_RAW_OUTPUTS)


def output_names(metadata: dict[str, Any]) -> tuple[str, ...]:
    return tuple(metadata.get("outputs") or LEGACY_OUTPUTS)


def _nchw(images: np.ndarray) -> np.ndarray:
    images = np.asarray(images, np.float32)
    if images.ndim != 4 or images.shape[-1] != 3:
        raise ValueError(f"expected images [B, H, W, 3], got {images.shape}")
    return np.ascontiguousarray(images.transpose(0, 3, 1, 2))


class OnnxRunner:
    """An exported model in ONNX Runtime (CPU, or CUDA when onnxruntime-gpu provides it)."""

    max_batch_size = None

    def __init__(self, model, providers: list[str] | None = None) -> None:
        import onnx

        self.metadata = get_metadata(model)
        channels, height, width = self.metadata.get("input_shape_chw") or _input_chw(model)
        self.input_shape = (int(height), int(width), int(channels))
        self.num_classes = _num_classes(self.metadata)
        self.raw_outputs = raw_output_names(self.metadata)
        self.outputs = tuple(o.name for o in model.graph.output)
        exposed = onnx.ModelProto()
        exposed.CopyFrom(model)
        present = {o.name for o in exposed.graph.output}
        for name in self.raw_outputs:
            if name not in present:
                exposed.graph.output.append(onnx.helper.make_empty_tensor_value_info(name))
        self.session = ort_session(exposed, providers)
        self.input_name = self.session.get_inputs()[0].name

    @classmethod
    def from_file(cls, path: str | Path, key: str | None, network: Any = None) -> OnnxRunner:
        return cls(read_model(path, key))

    def predict(self, images: np.ndarray) -> tuple[np.ndarray, ...]:
        return tuple(self.session.run(list(self.raw_outputs), {self.input_name: _nchw(images)}))

    def detect(self, images: np.ndarray) -> dict[str, np.ndarray]:
        values = self.session.run(list(self.outputs), {self.input_name: _nchw(images)})
        return dict(zip(self.outputs, values, strict=True))


def _num_classes(metadata: dict[str, Any], source: str = "model") -> int:
    """The class count of the export metadata (ModelFileError for a foreign graph)."""
    try:
        return int(metadata["num_classes"])
    except (KeyError, TypeError, ValueError):
        raise ModelFileError(
            f"{source}: no tlt export metadata (num_classes): not exported by "
            "`tlt <network> export`"
        ) from None


def _input_chw(model) -> list[int]:
    dims = model.graph.input[0].type.tensor_type.shape.dim
    values = [d.dim_value for d in dims[1:]]
    if len(values) != 3 or not all(values):
        raise ModelFileError("exported model has no static C, H, W input dims")
    return values


class TensorRTRunner:
    """A serialized TensorRT engine with the raw outputs (built by ``export --engine_file``).

    Uses the name-based I/O API of TensorRT 8.5+/10 and cuda-python for device memory.
    """

    def __init__(
        self, engine_bytes: bytes, metadata: dict[str, Any], source: str = "<engine>"
    ) -> None:
        from tlt_core.export.tensorrt import import_tensorrt

        self.metadata = metadata
        self.num_classes = _num_classes(metadata, source)
        self.raw_outputs = raw_output_names(metadata)
        self.final_outputs = output_names(metadata)

        trt = import_tensorrt()
        self._cudart = _import_cudart()
        self._trt = trt
        logger = trt.Logger(trt.Logger.WARNING)
        trt.init_libnvinfer_plugins(logger, "")
        self.engine = trt.Runtime(logger).deserialize_cuda_engine(engine_bytes)
        if self.engine is None:
            raise ModelFileError(
                f"{source}: cannot deserialize the TensorRT engine (built "
                "by another TensorRT version or for another GPU?)"
            )
        self.context = self.engine.create_execution_context()
        names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
        self.inputs = [n for n in names if self.engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        self.outputs = [n for n in names if n not in self.inputs]
        missing = [n for n in self.raw_outputs if n not in self.outputs]
        if missing:
            raise ModelFileError(
                f"{source}: engine lacks output {missing[0]!r}; build it with "
                "`tlt <network> export --engine_file` to evaluate it"
            )
        shape = list(self.engine.get_tensor_shape(self.inputs[0]))
        self.input_shape = (int(shape[2]), int(shape[3]), int(shape[1]))
        profile_max = self.engine.get_tensor_profile_shape(self.inputs[0], 0)[2]
        self.max_batch_size = int(profile_max[0])

    @classmethod
    def from_file(
        cls, path: str | Path, key: str | None = None, network: Any = None
    ) -> TensorRTRunner:
        """Load ``path`` and the model metadata from the JSON written beside it."""
        from tlt_core.export.tensorrt import engine_info

        try:
            metadata = engine_info(path).get("model_metadata", {})
        except (OSError, ValueError):
            raise ModelFileError(
                f"{path}: no readable {Path(path).name}.json beside the "
                "engine (written by tlt-converter / export)"
            ) from None
        return cls(Path(path).read_bytes(), metadata, source=str(path))

    def _check(self, result: Any) -> Any:
        err = result[0] if isinstance(result, tuple) else result
        if int(err) != 0:
            raise EngineBuildError(f"CUDA error {int(err)}")
        return result[1] if isinstance(result, tuple) and len(result) > 1 else None

    def _run(self, images: np.ndarray, names: tuple[str, ...]) -> list[np.ndarray]:
        cudart = self._cudart
        batch = _nchw(images)
        self.context.set_input_shape(self.inputs[0], batch.shape)
        host: dict[str, np.ndarray] = {}
        device: dict[str, int] = {}
        stream = self._check(cudart.cudaStreamCreate())
        try:
            for name in [self.inputs[0], *self.outputs]:
                shape = tuple(self.context.get_tensor_shape(name))
                dtype = np.dtype(self._trt.nptype(self.engine.get_tensor_dtype(name)))
                host[name] = batch if name == self.inputs[0] else np.empty(shape, dtype)
                device[name] = self._check(cudart.cudaMalloc(max(host[name].nbytes, 1)))
                self.context.set_tensor_address(name, int(device[name]))
            h2d, d2h = (
                cudart.cudaMemcpyKind.cudaMemcpyHostToDevice,
                cudart.cudaMemcpyKind.cudaMemcpyDeviceToHost,
            )
            self._check(
                cudart.cudaMemcpy(device[self.inputs[0]], batch.ctypes.data, batch.nbytes, h2d)
            )
            if not self.context.execute_async_v3(int(stream)):
                raise EngineBuildError("TensorRT execution failed")
            self._check(cudart.cudaStreamSynchronize(stream))
            for name in names:
                self._check(
                    cudart.cudaMemcpy(host[name].ctypes.data, device[name], host[name].nbytes, d2h)
                )
        finally:
            for pointer in device.values():
                cudart.cudaFree(pointer)
            cudart.cudaStreamDestroy(stream)
        return [host[name] for name in names]

    def predict(self, images: np.ndarray) -> tuple[np.ndarray, ...]:
        return tuple(v.astype(np.float32) for v in self._run(images, self.raw_outputs))

    def detect(self, images: np.ndarray) -> dict[str, np.ndarray]:
        names = self.final_outputs
        return dict(zip(names, self._run(images, names), strict=True))


def _import_cudart():
    try:
        from cuda.bindings import runtime as cudart
    except ImportError:
        try:
            from cuda import cudart
        except ImportError:
            raise EngineBuildError(
                "cuda-python not installed (pip install tlt-pipelines[tensorrt])"
            ) from None
    return cudart
