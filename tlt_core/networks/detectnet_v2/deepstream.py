"""DetectNet_v2 export: raw outputs in DeepStream's layout, and the nvinfer files.

The exported graph's outputs are the two raw heads in NCHW, named as 002 and DeepStream's
built-in DetectNet_v2 parser expect: ``output_cov/Sigmoid`` [B, C, H/16, W/16] and
``output_bbox/BiasAdd`` [B, 4C, H/16, W/16] (`nchw_outputs` appends the two transposes to
the channels-last Keras graph). No post-processing is in the graph: DeepStream clusters
(``cluster-mode=1``, DBSCAN) with the spec's per-class settings:

- ``pre-cluster-threshold`` = ``coverage_threshold``; ``eps`` = ``dbscan_eps``;
  ``dbscan-min-score`` = ``dbscan_min_samples`` (DeepStream's minimum sum of confidences
  in a neighbourhood, the same rule as `clustering`); ``minBoxes=1``;
  ``detected-min-h`` = ``minimum_bounding_box_height`` (network-input pixels).
- The built-in parser decodes boxes with scale 35 and offset 0.5 (``bboxNormX/Y``, grid
  centres ``(j * stride + 0.5) / 35``): a spec with other ``objective_set.bbox`` values
  gets a warning in the config, as DeepStream would mis-place its boxes.
- ``labels.txt``: the classes in output-channel order, no background (DetectNet_v2 has
  none).
"""

from __future__ import annotations

from tlt_core.errors import ExportError, located
from tlt_core.export.deepstream import (
    CONFIG_FILE,
    LABELS_FILE,
    check_data_type,
    detector_keys,
    model_file_keys,
    model_label_names,
)
from tlt_core.networks.detectnet_v2.coding import STRIDE
from tlt_core.networks.detectnet_v2.outputs import BBOX_NODE, BBOX_OUTPUT, COV_NODE, COV_OUTPUT

CLUSTER_MODE_DBSCAN = 1
DEEPSTREAM_BBOX_SCALE = 35.0
DEEPSTREAM_BBOX_OFFSET = 0.5


def nchw_outputs(network_onnx):
    """A copy of the raw ONNX graph whose outputs are the heads transposed to NCHW and
    named ``output_cov/Sigmoid`` / ``output_bbox/BiasAdd``."""
    import onnx
    from onnx import TensorProto, helper

    model = onnx.ModelProto()
    model.CopyFrom(network_onnx)
    graph = model.graph
    by_name = {o.name: o for o in graph.output}
    missing = [n for n in (COV_OUTPUT, BBOX_OUTPUT) if n not in by_name]
    if missing:
        raise ExportError(f"the ONNX graph has no output {missing[0]!r}")
    del graph.output[:]
    for source, node_name in ((COV_OUTPUT, COV_NODE), (BBOX_OUTPUT, BBOX_NODE)):
        graph.node.append(
            helper.make_node(
                "Transpose", [source], [node_name], perm=[0, 3, 1, 2], name=f"{source}_nchw"
            )
        )
        dims = [d.dim_param or d.dim_value for d in by_name[source].type.tensor_type.shape.dim]
        nchw = [dims[0], dims[3], dims[1], dims[2]] if len(dims) == 4 else None
        graph.output.append(helper.make_tensor_value_info(node_name, TensorProto.FLOAT, nchw))
    onnx.checker.check_model(model)
    return model


def nvinfer_config_text(
    spec,
    *,
    model_file: str,
    data_type: str,
    batch_size: int = 1,
    engine_file: str | None = None,
    cal_cache_file: str | None = None,
) -> str:
    check_data_type(data_type, cal_cache_file)
    lines = [
        "[property]",
        "gpu-id=0",
        "# Input = BGR pixels minus the training mean: y = net-scale-factor * (x - offsets)",
        "net-scale-factor=1.0",
        "offsets=" + ";".join(f"{m:g}" for m in spec.image_mean_bgr),
        "model-color-format=1",
        *model_file_keys(
            model_file=model_file,
            engine_file=engine_file,
            labels_file=LABELS_FILE,
            data_type=data_type,
            cal_cache_file=cal_cache_file,
        ),
        *detector_keys(
            spec.input_shape,
            batch_size=batch_size,
            data_type=data_type,
            num_classes=len(spec.class_names),
        ),
        f"output-blob-names={COV_NODE};{BBOX_NODE}",
        "# DeepStream's built-in DetectNet_v2 parser (no parse-bbox-func-name), DBSCAN",
        f"cluster-mode={CLUSTER_MODE_DBSCAN}",
    ]
    if (spec.bbox_scale, spec.bbox_offset) != (DEEPSTREAM_BBOX_SCALE, DEEPSTREAM_BBOX_OFFSET):
        lines.append(
            f"# WARNING: objective_set.bbox scale {spec.bbox_scale:g} / offset "
            f"{spec.bbox_offset:g}: the built-in parser decodes with 35 / 0.5"
        )
    lines += [
        "",
        "[class-attrs-all]",
        "roi-top-offset=0",
        "roi-bottom-offset=0",
        "detected-min-w=0",
        "detected-max-w=0",
        "detected-max-h=0",
    ]
    for index, (name, setting) in enumerate(zip(spec.class_names, spec.clustering, strict=True)):
        lines += [
            "",
            f"# {name}",
            f"[class-attrs-{index}]",
            f"pre-cluster-threshold={setting.coverage_threshold:g}",
            f"post-cluster-threshold={setting.confidence_threshold:g}",
            f"eps={setting.dbscan_eps:g}",
            "minBoxes=1",
            f"dbscan-min-score={setting.dbscan_min_samples:g}",
            f"detected-min-h={setting.minimum_bounding_box_height:g}",
        ]
    return "\n".join(lines) + "\n"


def deepstream_files(
    spec,
    *,
    model_file,
    model_class_names,
    data_type: str,
    batch_size: int = 1,
    engine_file=None,
    cal_cache_file=None,
) -> dict[str, str]:
    """``{labels.txt: ..., nvinfer_config.txt: ...}`` for a DetectNet_v2 export."""
    labels = model_label_names(spec.class_names, model_class_names)
    if spec.input_shape[0] % STRIDE or spec.input_shape[1] % STRIDE:
        raise ExportError(located("input size is not a multiple of 16", field="preprocessing"))
    text = nvinfer_config_text(
        spec,
        model_file=str(model_file),
        data_type=data_type,
        batch_size=batch_size,
        engine_file=str(engine_file) if engine_file else None,
        cal_cache_file=str(cal_cache_file) if cal_cache_file else None,
    )
    return {LABELS_FILE: "\n".join(labels) + "\n", CONFIG_FILE: text}
