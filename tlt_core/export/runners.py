"""ModelRunners for exported models: ONNX Runtime (``.onnx``, ``.etlt``), TensorRT
(``.engine``, ``.trt``, ``.plan``).

They implement ``tlt_core.inference_runner.ModelRunner``: ``predict(images [B,H,W,C]) ->
raw`` reads the tensors the export metadata lists as ``raw_outputs`` (the network's
``raw_output_names``; SSD: ``pp_scores`` = softmax(conf) and ``loc``), so evaluation and
inference apply the network's post-processing exactly as for a ``.tlt``. ``detect(images)``
returns the model's own final outputs by name (SSD, in the layout exported:
``num_detections``, ``detection_boxes``, ``detection_scores``, ``detection_classes``, or
``NMS``, ``NMS_1``), which the network's ``final_postprocessor`` reads; an engine built by
``tlt-converter`` has only those (``final_outputs_only``). ``description`` says which
runtime runs the model.
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


def _nchw(images: np.ndarray, channels: int = 3) -> np.ndarray:
    images = np.asarray(images, np.float32)
    if images.ndim != 4 or images.shape[-1] != channels:
        raise ValueError(f"expected images [B, H, W, {channels}], got {images.shape}")
    return np.ascontiguousarray(images.transpose(0, 3, 1, 2))


class OnnxRunner:
    """An exported model in ONNX Runtime (CPU, or CUDA when onnxruntime-gpu provides it)."""

    max_batch_size = None
    final_outputs_only = False  # the graph keeps the raw outputs as inner tensors

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
        self.description = f"ONNX Runtime ({', '.join(self.session.get_providers())})"

    @classmethod
    def from_file(cls, path: str | Path, key: str | None, network: Any = None) -> OnnxRunner:
        return cls(read_model(path, key))

    def predict(self, images: np.ndarray) -> tuple[np.ndarray, ...]:
        feed = {self.input_name: _nchw(images, self.input_shape[2])}
        return tuple(self.session.run(list(self.raw_outputs), feed))

    def detect(self, images: np.ndarray) -> dict[str, np.ndarray]:
        feed = {self.input_name: _nchw(images, self.input_shape[2])}
        values = self.session.run(list(self.outputs), feed)
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
        # tlt-converter marks only the final outputs (-o); `export --engine_file` also the
        # raw ones, which the network's own post-processing reads.
        self.final_outputs_only = any(n not in self.outputs for n in self.raw_outputs)
        self.description = f"TensorRT {trt.__version__}" + (
            f" (final outputs {', '.join(self.outputs)})" if self.final_outputs_only else ""
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
        batch = _nchw(images, self.input_shape[2])
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
        if self.final_outputs_only:
            raise ModelFileError(
                f"engine has only the outputs {', '.join(self.outputs)}, not "
                f"{', '.join(self.raw_outputs)}: read it with detect()"
            )
        return tuple(v.astype(np.float32) for v in self._run(images, self.raw_outputs))

    def detect(self, images: np.ndarray) -> dict[str, np.ndarray]:
        """The engine's outputs that are not raw outputs, by name (the final ones, in
        whichever layout the engine was built with)."""
        names = tuple(n for n in self.outputs if n not in self.raw_outputs)
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
