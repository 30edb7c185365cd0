"""Keras model -> ONNX: the raw network (tf2onnx) plus the network's post-processing graph.

The exported graph:

- input ``Input`` float32 [batch, C, H, W] (NCHW, dynamic batch): exactly what the model was
  trained on (SSD: BGR pixels minus the training image mean), transposed to NCHW. The
  normalisation is *not* in the graph: DeepStream applies it (``offsets=``), and calibration
  sees the same tensor TensorRT will.
- the raw network outputs (named as the Keras model names them; SSD ``conf``, ``loc``)
  stay as named intermediate tensors, and so do the network's ``raw_output_names`` that the
  runners read for evaluation (SSD: ``pp_scores``, ``loc``);
- outputs: the network's post-processing (``Network.onnx_postprocess``; SSD's decode + NMS
  in ``tlt_core.networks.ssd.onnx_postprocess``), or the raw outputs themselves.

Metadata (``metadata_props``): network, class names, input shape, raw and final output
names, the network's own keys (SSD: image mean, NMS settings, anchors), the
post-processing variant and the SHA-256 of the spec text.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tlt_core.errors import ExportError, located

log = logging.getLogger(__name__)

INPUT_NAME = "Input"
DEFAULT_OPSET = 17
METADATA_PREFIX = "tlt."


@dataclass(frozen=True)
class ExportedModel:
    network: Any  # onnx.ModelProto: Input -> the Keras model's outputs (what calibration runs)
    full: Any  # onnx.ModelProto: Input -> the network's post-processed outputs


def keras_to_onnx(model, opset: int = DEFAULT_OPSET):
    """The raw network as ONNX: NCHW input ``Input`` [batch, C, H, W] -> the model's outputs,
    named as the model names them (the keys of its output dict: SSD ``conf``, ``loc``)."""
    import tensorflow as tf
    import tf2onnx

    height, width, channels = (int(v) for v in model.inputs[0].shape[1:])

    @tf.function(
        input_signature=[
            tf.TensorSpec([None, channels, height, width], tf.float32, name=INPUT_NAME)
        ]
    )
    def nchw_model(images):
        outputs = model(tf.transpose(images, [0, 2, 3, 1]), training=False)
        if not isinstance(outputs, dict):
            outputs = dict(zip(output_names, tf.nest.flatten(outputs), strict=True))
        return dict(outputs)

    output_names = _output_names(model)

    try:
        proto, _ = tf2onnx.convert.from_function(
            nchw_model, input_signature=nchw_model.input_signature, opset=opset
        )
    except Exception as error:  # tf2onnx raises plain exceptions for unsupported ops
        raise ExportError(f"ONNX conversion failed: {type(error).__name__}: {error}") from error
    names = [o.name for o in proto.graph.output]
    if sorted(names) != sorted(output_names):
        raise ExportError(f"ONNX conversion gave outputs {names}, expected {output_names}")
    return named_batch_dim(without_colons(proto))


BATCH_DIM = "batch"


def named_batch_dim(model):
    """Name the leading (batch) dimension ``batch`` on the graph's inputs, outputs and
    intermediate shapes (in place; returns ``model``).

    tf2onnx names an unknown dimension ``unk__NNN``; DeepStream and TensorRT optimisation
    profiles show that name, and the post-processing outputs already say ``batch``.
    """
    graph = model.graph
    generated = set()
    for info in (*graph.input, *graph.output):
        dims = info.type.tensor_type.shape.dim
        if dims and not dims[0].HasField("dim_value"):
            if dims[0].dim_param:
                generated.add(dims[0].dim_param)
            dims[0].dim_param = BATCH_DIM
    for info in graph.value_info:
        for dim in info.type.tensor_type.shape.dim:
            if dim.HasField("dim_param") and dim.dim_param in generated:
                dim.dim_param = BATCH_DIM
    return model


def _output_names(model) -> list[str]:
    output = model.output
    if isinstance(output, dict):
        return list(output)
    return list(model.output_names)


def without_colons(model):
    """Rename tensors ``a/b:0`` to ``a/b_0`` (in place; returns ``model``).

    The calibration cache is ``name: hex`` per line; a name free of ``:`` reads the same
    whichever way a parser splits the line.
    """
    graph = model.graph
    taken = {n for node in graph.node for n in (*node.input, *node.output)}
    taken |= {i.name for i in graph.initializer} | {i.name for i in graph.input}
    mapping: dict[str, str] = {}
    for name in sorted(taken):
        if ":" in name:
            new = name.replace(":", "_")
            while new in taken or new in mapping.values():
                new += "_"
            mapping[name] = new
    if not mapping:
        return model
    for node in graph.node:
        node.input[:] = [mapping.get(n, n) for n in node.input]
        node.output[:] = [mapping.get(n, n) for n in node.output]
    for info in (*graph.initializer, *graph.input, *graph.output, *graph.value_info):
        info.name = mapping.get(info.name, info.name)
    return model


def spec_hash(spec_text: str) -> str:
    return hashlib.sha256(spec_text.encode("utf-8")).hexdigest()


def set_metadata(model, values: Mapping[str, Any]) -> None:
    """Store ``values`` as ``metadata_props`` (JSON-encoded, keys prefixed ``tlt.``)."""
    existing = {p.key: p for p in model.metadata_props}
    for key, value in values.items():
        full_key = METADATA_PREFIX + key
        text = value if isinstance(value, str) else json.dumps(value)
        if full_key in existing:
            existing[full_key].value = text
        else:
            prop = model.metadata_props.add()
            prop.key, prop.value = full_key, text


def get_metadata(model) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for prop in model.metadata_props:
        if prop.key.startswith(METADATA_PREFIX):
            key = prop.key[len(METADATA_PREFIX) :]
            try:
                out[key] = json.loads(prop.value)
            except ValueError:
                out[key] = prop.value
    return out


def export_model(
    model,
    network,
    spec,
    *,
    variant: str,
    opset: int = DEFAULT_OPSET,
    layout: str | None = None,
) -> ExportedModel:
    """Convert ``model`` (a ``network`` model for ``spec``) and append the network's
    post-processing graph (``network.onnx_postprocess``), its outputs in ``layout`` (one
    of ``network.output_layouts``; default the first); both carry the metadata."""
    raw = keras_to_onnx(model, opset)
    full = network.onnx_postprocess(spec, raw, model, variant=variant)
    layout = layout or network.output_layouts[0]
    full = network.with_output_layout(full, layout)
    height, width, channels = (int(v) for v in model.inputs[0].shape[1:])
    meta = {
        "network": network.name,
        "class_names": list(spec.class_names),
        "num_classes": len(spec.class_names),
        **network.describe_model(model),
        "input_shape_chw": [channels, height, width],
        "input_name": INPUT_NAME,
        "network_outputs": [o.name for o in raw.graph.output],
        "raw_outputs": list(network.raw_output_names),
        "outputs": [o.name for o in full.graph.output],
        **network.export_metadata(spec, model, variant=variant),
        "postprocess": variant,
        "output_layout": layout,
        "spec_sha256": spec_hash(spec.text),
    }
    set_metadata(raw, meta)
    set_metadata(full, meta)
    return ExportedModel(network=raw, full=full)


def append_graph(network, post, *, name: str, check: bool = True):
    """``network`` with the nodes and initializers of ``post`` appended and ``post``'s
    outputs as the outputs (the tensors they share are named the same in both).

    ``onnx.compose`` would do the same but always runs the ONNX checker, which rejects
    TensorRT plugin nodes; ``check`` runs it here when the graph has none.
    """
    import onnx

    clash = (
        {n for node in network.graph.node for n in node.output}
        | {i.name for i in network.graph.initializer}
    ) & (
        {n for node in post.graph.node for n in node.output}
        | {i.name for i in post.graph.initializer}
    )
    if clash:
        raise ExportError(f"network and post-processing share tensor names: {sorted(clash)[:3]}")
    merged = onnx.ModelProto()
    merged.CopyFrom(network)
    graph = merged.graph
    graph.node.extend(post.graph.node)
    graph.initializer.extend(post.graph.initializer)
    graph.value_info.extend(network.graph.output)  # raw outputs keep their shapes and types
    del graph.output[:]
    graph.output.extend(post.graph.output)
    graph.name = name
    merged.producer_name = "tlt_core.export"
    if check:
        onnx.checker.check_model(merged)
    return merged


# Exports written before the metadata named the raw network's outputs were all SSD's.
LEGACY_NETWORK_OUTPUTS = ("conf", "loc")


def network_part(model):
    """The raw network of an exported graph: ``Input`` -> the Keras model's outputs (named
    by the export metadata's ``network_outputs``; SSD: ``conf``, ``loc``)."""
    import onnx

    names = list(get_metadata(model).get("network_outputs") or LEGACY_NETWORK_OUTPUTS)
    produced = {o for node in model.graph.node for o in node.output}
    if not set(names) <= produced:
        if {o.name for o in model.graph.output} >= set(names):
            return model
        raise ExportError(f"exported model has no {'/'.join(names)} tensors: not a tlt export")
    # The extractor types its new outputs from value_info; a raw output that fed the
    # post-processing appended at export (DetectNet_v2's NCHW transposes) may have none.
    typed = {v.name for v in (*model.graph.value_info, *model.graph.output, *model.graph.input)}
    if not set(names) <= typed:
        model = onnx.shape_inference.infer_shapes(model)
        typed |= {v.name for v in model.graph.value_info}
        model.graph.value_info.extend(
            onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None)
            for name in names
            if name not in typed
        )
    return onnx.utils.Extractor(model).extract_model([INPUT_NAME], names)


def opset_of(model) -> int:
    return next(
        (o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), DEFAULT_OPSET
    )


def output_dims(model, name: str) -> list[int | str]:
    """Dims of graph output ``name`` (ints, or the symbolic names of dynamic ones)."""
    for out in model.graph.output:
        if out.name == name:
            return [
                d.dim_value if d.HasField("dim_value") else d.dim_param
                for d in out.type.tensor_type.shape.dim
            ]
    return []


def model_bytes(model) -> bytes:
    return model.SerializeToString()


def write_model(path: str | Path, model, key: str | None = None) -> Path:
    """Write ``model`` atomically: plain ``.onnx``, or sealed ``.etlt`` under ``key``."""
    from tlt_core.io_utils import atomic_path
    from tlt_core.modelfile import KIND_ETLT, seal_bytes

    path = Path(path)
    data = model_bytes(model)
    if path.suffix == ".etlt":
        if not key:
            raise ExportError(located("an .etlt output needs a key (-k)", path))
        data = seal_bytes(data, key, kind=KIND_ETLT)
    elif path.suffix != ".onnx":
        raise ExportError(located("output must end in .etlt (sealed) or .onnx (plain)", path))
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    log.info("wrote %s (%.1f MiB)", path, len(data) / 2**20)
    return path


def ort_session(model, providers: list[str] | None = None):
    """An ONNX Runtime session for ``model`` (a ModelProto), quiet, without thread spinning.

    Spinning worker threads (ONNX Runtime's default) make a session several times slower
    when other processes share the CPU cores, as on CI machines and training nodes.
    """
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    available = ort.get_available_providers()
    providers = providers or [
        p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in available
    ]
    return ort.InferenceSession(model.SerializeToString(), options, providers=providers)


def read_model(path: str | Path, key: str | None = None):
    """Load an exported ``.onnx`` or ``.etlt`` (opened with ``key``) as an onnx.ModelProto."""
    import onnx

    from tlt_core.errors import ModelFileError
    from tlt_core.modelfile import KIND_ETLT, open_bytes, read_model_file

    path = Path(path)
    data = read_model_file(path)
    if path.suffix == ".etlt":
        data = open_bytes(data, key or "", kind=KIND_ETLT, source=str(path))
    try:
        return onnx.load_from_string(data)
    except Exception as error:  # protobuf DecodeError and friends
        raise ModelFileError(f"{path}: not an ONNX model ({error})") from None
