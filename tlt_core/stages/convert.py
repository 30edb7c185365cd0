"""Stage: build a TensorRT engine from an exported model (``tlt-converter``).

``-o`` names the engine's outputs. When they belong to another output layout of the
exported network (``-o NMS`` for an SSD exported with the BatchedNMS outputs, as 000's
``tlt-converter -o NMS`` example does), the graph is given that layout first
(``Network.with_output_layout``: stock operators after the same NMS). Output names and
``-d`` are checked against the model before TensorRT is needed.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from tlt_core.errors import UsageError, located
from tlt_core.export.tensorrt import EngineBuildInfo, EngineOptions

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ConvertResult:
    engine_path: str
    info_path: str
    info: EngineBuildInfo


def engine_onnx(onnx_bytes: bytes, output_names: tuple[str, ...]) -> bytes:
    """The ONNX model to build an engine with outputs ``output_names``: as exported, or
    in the layout of its network that has them; UsageError (``-o``) when neither has."""
    import onnx

    from tlt_core.export.onnx import get_metadata, model_bytes, set_metadata
    from tlt_core.networks import NETWORKS

    model = onnx.load_from_string(onnx_bytes)
    present = [o.name for o in model.graph.output]
    missing = [name for name in output_names if name not in present]
    if not missing:
        return onnx_bytes
    metadata = get_metadata(model)
    network = NETWORKS.get(str(metadata.get("network")))
    layout = network.layout_for_outputs(output_names) if network is not None else None
    if network is None or layout is None:
        raise UsageError(
            located(
                f"output {missing[0]!r} is not a model output; outputs: {','.join(present)}"
                + (
                    f" (or another layout of {network.name}: {', '.join(network.output_layouts)})"
                    if network is not None and len(network.output_layouts) > 1
                    else ""
                ),
                field="-o",
            )
        )
    relaid = network.with_output_layout(model, layout)
    set_metadata(
        relaid, {"outputs": [o.name for o in relaid.graph.output], "output_layout": layout}
    )
    log.info(
        "-o %s: the %s outputs of this %s export, computed from its %s outputs",
        ",".join(output_names),
        layout,
        network.name,
        metadata.get("output_layout", network.output_layouts[0]),
    )
    return model_bytes(relaid)


def check_input_dims(onnx_bytes: bytes, options: EngineOptions) -> None:
    """``-d`` against the model's single input (NCHW, static dims), before TensorRT: the
    same rule TensorRT's network is checked with afterwards (a dynamic dim takes any)."""
    import onnx

    if options.input_dims is None:
        return
    model = onnx.load_from_string(onnx_bytes)
    if len(model.graph.input) != 1:
        return  # -d describes one input; several rely on -p
    tensor = model.graph.input[0]
    shape = [d.dim_value or -1 for d in tensor.type.tensor_type.shape.dim]
    dims = list(options.input_dims)
    if options.input_order == "nhwc" and len(dims) == 3:
        dims = [dims[2], dims[0], dims[1]]
    if len(shape) - 1 != len(dims) or any(
        m not in (-1, d) for m, d in zip(shape[1:], dims, strict=True)
    ):
        raise UsageError(
            located(
                f"input dims {','.join(map(str, options.input_dims))} ({options.input_order}) "
                f"do not match the model input {tensor.name} {shape} (NCHW, -1: any)",
                field="-d",
            )
        )


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
    if options.output_names:
        onnx_bytes = engine_onnx(onnx_bytes, options.output_names)
    check_input_dims(onnx_bytes, options)
    info = tensorrt.build_engine(onnx_bytes, engine_path, options, source=str(input_file))
    return ConvertResult(engine_path=info.engine_path, info_path=info.info_path, info=info)
