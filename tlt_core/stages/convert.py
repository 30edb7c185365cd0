"""Stage: build a TensorRT engine from an exported model (``tlt-converter``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tlt_core.export.tensorrt import EngineBuildInfo, EngineOptions


@dataclass(frozen=True)
class ConvertResult:
    engine_path: str
    info_path: str
    info: EngineBuildInfo


def build_engine(
    input_file: str | Path,
    engine_path: str | Path,
    *,
    key: str | None,
    options: EngineOptions | None = None,
) -> ConvertResult:
    """Open ``input_file`` (``.etlt`` with ``key``, or ``.onnx``) and build the engine."""
    from tlt_core.export import tensorrt

    options = options or EngineOptions()
    onnx_bytes = tensorrt.read_model_bytes(input_file, key)
    info = tensorrt.build_engine(onnx_bytes, engine_path, options, source=str(input_file))
    return ConvertResult(engine_path=info.engine_path, info_path=info.info_path, info=info)
