"""The post-processing graph appended to the exported network: softmax, box decode, NMS.

Built with ``onnx.helper`` from stock operators only, then merged onto the raw network
(inputs ``conf`` logits [B, A, C+1] and ``loc`` encoded offsets [B, A, 4]). Outputs, in this
order (the layout of TensorRT's BatchedNMS plugin, which DeepStream's
``NvDsInferParseCustomBatchedNMSTLT`` parser reads)::

    num_detections    int32   [B, 1]     valid rows of the three tensors below
    detection_boxes   float32 [B, K, 4]  x1, y1, x2, y2 normalised to the network input (0..1)
    detection_scores  float32 [B, K]     softmax score, descending
    detection_classes float32 [B, K]     model class index (1..C; 0 = background never kept)

K = min(top_k, C * A). Rows at or after ``num_detections`` are padding: score 0, class 0,
box zeros. NMS is per class (ONNX ``NonMaxSuppression``): boxes with score >
confidence_threshold, greedy suppression of IoU > clustering_iou_threshold, at most top_k
per class, then the top_k best over all classes of the image.

The TensorRT-only variant replaces the NMS part with the stock ``EfficientNMS_TRT`` plugin
(no OSS build) and casts its int32 classes to float, so both variants have one layout.

Output layouts (``export --output_layout``): ``batched_nms`` is the four tensors above;
``tlt_nms`` is what TLT 3.0's SSD export gave (TensorRT OSS's NMS plugin), which
DeepStream's ``NvDsInferParseCustomNMSTLT`` parser and ``tlt-converter -o NMS`` expect,
computed from the four tensors by stock operators (:func:`tlt_nms_layout`)::

    NMS    float32 [B, 1, K, 7]  per row: image id, label, confidence, x1, y1, x2, y2
                                 (normalised); rows at or after the keep count: label -1,
                                 confidence 0, box zeros
    NMS_1  int32   [B, 1, 1, 1]  the keep count (= num_detections)

:func:`read_detections` reads either layout back into per-image rows, for every runner.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

CONF_INPUT = "conf"
LOC_INPUT = "loc"
OUTPUT_NAMES = ("num_detections", "detection_boxes", "detection_scores", "detection_classes")
NMS_ONNX = "onnx"
NMS_EFFICIENT_TRT = "efficient_nms_trt"
NMS_VARIANTS = (NMS_ONNX, NMS_EFFICIENT_TRT)
LAYOUT_BATCHED = "batched_nms"
LAYOUT_TLT_NMS = "tlt_nms"
OUTPUT_LAYOUTS = (LAYOUT_BATCHED, LAYOUT_TLT_NMS)
TLT_NMS_OUTPUTS = ("NMS", "NMS_1")
LAYOUT_OUTPUTS = {LAYOUT_BATCHED: OUTPUT_NAMES, LAYOUT_TLT_NMS: TLT_NMS_OUTPUTS}


@dataclass(frozen=True)
class PostprocessConfig:
    anchors: np.ndarray  # [A, 4] normalised (cx, cy, w, h), tlt_core.networks.ssd.anchors order
    variances: tuple[float, float, float, float]
    num_classes: int  # including background (the last dim of conf)
    confidence_threshold: float
    iou_threshold: float
    top_k: int
    # 1..10: candidates ordered on FP16 scores cut to that many mantissa bits
    # (tlt_core.boxes.nms rule 6, nms_config.infer_nms_score_bits); 0: exact scores.
    score_bits: int = 0

    @property
    def num_anchors(self) -> int:
        return int(self.anchors.shape[0])

    @property
    def keep(self) -> int:
        return min(self.top_k, (self.num_classes - 1) * self.num_anchors)


def _const(name: str, value, dtype=np.float32):
    from onnx import numpy_helper

    return numpy_helper.from_array(np.asarray(value, dtype=dtype), name)


def _decode_nodes(cfg: PostprocessConfig):
    """Box decode (inverse of the SSD centre-size coding) to normalised corners ``pp_boxes``."""
    from onnx import helper

    anchors = cfg.anchors.astype(np.float32)
    inits = [
        _const("pp_variances", np.asarray(cfg.variances, np.float32).reshape(1, 1, 4)),
        _const("pp_anchor_cxy", anchors[None, :, :2]),
        _const("pp_anchor_wh", anchors[None, :, 2:]),
        _const("pp_half", 0.5),
        _const("pp_split", [2, 2], np.int64),
    ]
    nodes = [
        helper.make_node("Mul", [LOC_INPUT, "pp_variances"], ["pp_scaled"]),
        helper.make_node("Split", ["pp_scaled", "pp_split"], ["pp_txy", "pp_twh"], axis=2),
        helper.make_node("Mul", ["pp_txy", "pp_anchor_wh"], ["pp_dxy"]),
        helper.make_node("Add", ["pp_dxy", "pp_anchor_cxy"], ["pp_cxy"]),
        helper.make_node("Exp", ["pp_twh"], ["pp_ewh"]),
        helper.make_node("Mul", ["pp_ewh", "pp_anchor_wh"], ["pp_wh"]),
        helper.make_node("Mul", ["pp_wh", "pp_half"], ["pp_half_wh"]),
        helper.make_node("Sub", ["pp_cxy", "pp_half_wh"], ["pp_xy1"]),
        helper.make_node("Add", ["pp_cxy", "pp_half_wh"], ["pp_xy2"]),
        helper.make_node("Concat", ["pp_xy1", "pp_xy2"], ["pp_boxes"], axis=2),
        helper.make_node("Softmax", [CONF_INPUT], ["pp_scores"], axis=-1),
    ]
    return nodes, inits


def _onnx_nms_nodes(cfg: PostprocessConfig):
    """Per-class NonMaxSuppression, then the top K of each image packed into fixed tensors."""
    from onnx import TensorProto, helper

    a, c = cfg.num_anchors, cfg.num_classes - 1
    inits = [
        _const("pp_max_per_class", [cfg.top_k], np.int64),
        _const("pp_iou", [cfg.iou_threshold]),
        _const("pp_score_thr", [cfg.confidence_threshold]),
        _const("pp_fg_start", [1], np.int64),
        _const("pp_fg_end", [cfg.num_classes], np.int64),
        _const("pp_axis2", [2], np.int64),
        _const("pp_axis0", [0], np.int64),
        _const("pp_num_anchors", a, np.int64),
        _const("pp_flat_width", [c * a], np.int64),
        _const("pp_col_b", [0], np.int64),
        _const("pp_col_c", [1], np.int64),
        _const("pp_col_end", [3], np.int64),
        _const("pp_axis1", [1], np.int64),
        _const("pp_k", [cfg.keep], np.int64),
        _const("pp_zero", 0.0),
        _const("pp_one_i64", 1, np.int64),
        _const("pp_last", [-1], np.int64),
        _const("pp_split11", [1, 1], np.int64),
        _const("pp_flat_shape", [0, c * a], np.int64),
    ]
    n = helper.make_node
    nodes = [
        # Foreground scores, class-major for NonMaxSuppression: [B, C, A].
        n("Slice", ["pp_scores", "pp_fg_start", "pp_fg_end", "pp_axis2"], ["pp_fg"]),
        n("Transpose", ["pp_fg"], ["pp_fg_cmajor"], perm=[0, 2, 1]),
    ]
    # What candidates are ordered by: the scores, or their cut FP16 keys (rule 6).
    key, key_threshold = "pp_fg_cmajor", "pp_score_thr"
    if cfg.score_bits:
        key_nodes, key_inits = _score_key_nodes(cfg)
        nodes += key_nodes
        inits += key_inits
        key, key_threshold = "pp_fg_key", "pp_key_thr"
    nodes += [
        n(
            "NonMaxSuppression",
            ["pp_boxes", key, "pp_max_per_class", "pp_iou", key_threshold],
            ["pp_selected"],
            center_point_box=0,
        ),
        n("GatherND", [key, "pp_selected"], ["pp_sel_keys"]),
        # Scatter the kept scores into a dense [B, C*A] map (-1 elsewhere) and take its top K.
        n("Slice", ["pp_selected", "pp_col_b", "pp_col_c", "pp_axis1"], ["pp_sel_b"]),
        n("Slice", ["pp_selected", "pp_col_c", "pp_col_end", "pp_axis1"], ["pp_sel_ca"]),
        n("Split", ["pp_sel_ca", "pp_split11"], ["pp_sel_c", "pp_sel_a"], axis=1),
        n("Mul", ["pp_sel_c", "pp_num_anchors"], ["pp_sel_c_off"]),
        n("Add", ["pp_sel_c_off", "pp_sel_a"], ["pp_sel_flat"]),
        n("Concat", ["pp_sel_b", "pp_sel_flat"], ["pp_scatter_idx"], axis=1),
        n("Shape", [CONF_INPUT], ["pp_conf_shape"]),
        n("Slice", ["pp_conf_shape", "pp_axis0", "pp_axis1", "pp_axis0"], ["pp_batch"]),
        n("Concat", ["pp_batch", "pp_flat_width"], ["pp_dense_shape"], axis=0),
        n(
            "ConstantOfShape",
            ["pp_dense_shape"],
            ["pp_dense_init"],
            value=helper.make_tensor("pp_minus_one", TensorProto.FLOAT, [1], [-1.0]),
        ),
        n("ScatterND", ["pp_dense_init", "pp_scatter_idx", "pp_sel_keys"], ["pp_dense"]),
        n(
            "TopK",
            ["pp_dense", "pp_k"],
            ["pp_top_keys", "pp_top_idx"],
            axis=1,
            largest=1,
            sorted=1,
        ),
        n("GreaterOrEqual", ["pp_top_keys", "pp_zero"], ["pp_valid"]),
        n("Cast", ["pp_valid"], ["pp_valid_i32"], to=TensorProto.INT32),
        n("ReduceSum", ["pp_valid_i32", "pp_axis1"], ["num_detections"], keepdims=1),
        # The exact scores of the rows TopK chose: the keys only ordered them.
        n("Reshape", ["pp_fg_cmajor", "pp_flat_shape"], ["pp_fg_flat"]),
        n("GatherElements", ["pp_fg_flat", "pp_top_idx"], ["pp_top_scores"], axis=1),
        n("Where", ["pp_valid", "pp_top_scores", "pp_zero"], ["detection_scores"]),
        # Flat index -> (class, anchor); classes are model indices (background = 0).
        n("Div", ["pp_top_idx", "pp_num_anchors"], ["pp_top_c"]),
        n("Mod", ["pp_top_idx", "pp_num_anchors"], ["pp_top_a"]),
        n("Add", ["pp_top_c", "pp_one_i64"], ["pp_top_cls"]),
        n("Cast", ["pp_top_cls"], ["pp_top_cls_f"], to=TensorProto.FLOAT),
        n("Where", ["pp_valid", "pp_top_cls_f", "pp_zero"], ["detection_classes"]),
        n("Unsqueeze", ["pp_top_a", "pp_last"], ["pp_top_a_idx"]),
        n("GatherND", ["pp_boxes", "pp_top_a_idx"], ["pp_top_boxes"], batch_dims=1),
        n("Unsqueeze", ["pp_valid", "pp_last"], ["pp_valid_box"]),
        n("Where", ["pp_valid_box", "pp_top_boxes", "pp_zero"], ["detection_boxes"]),
    ]
    return nodes, inits


def _score_key_nodes(cfg: PostprocessConfig):
    """``pp_fg_key``: each score rounded to FP16 and cut to its exponent and top
    ``score_bits`` mantissa bits (as a float: floor(x / 2^(e - bits)) * 2^(e - bits), e the
    FP16 exponent, at least -14 for subnormals), the order `boxes.nms.score_sort_key`
    gives; scores not above the confidence threshold get -1, so NonMaxSuppression drops
    them (``pp_key_thr`` -0.5) on the exact comparison."""
    from onnx import TensorProto, helper

    inits = [
        _const("pp_ln2", float(np.log(2.0))),
        _const("pp_two", 2.0),
        _const("pp_min_exp", -14.0),
        _const("pp_bits", float(cfg.score_bits)),
        _const("pp_minus_one_f", -1.0),
        _const("pp_key_thr", [-0.5]),
    ]
    n = helper.make_node
    nodes = [
        n("Cast", ["pp_fg_cmajor"], ["pp_fg_half"], to=TensorProto.FLOAT16),
        n("Cast", ["pp_fg_half"], ["pp_fg_h"], to=TensorProto.FLOAT),
        n("Log", ["pp_fg_h"], ["pp_fg_log"]),
        n("Div", ["pp_fg_log", "pp_ln2"], ["pp_fg_log2"]),
        n("Floor", ["pp_fg_log2"], ["pp_fg_exp_raw"]),
        n("Max", ["pp_fg_exp_raw", "pp_min_exp"], ["pp_fg_exp"]),
        n("Sub", ["pp_fg_exp", "pp_bits"], ["pp_fg_step_exp"]),
        n("Pow", ["pp_two", "pp_fg_step_exp"], ["pp_fg_step"]),
        n("Div", ["pp_fg_h", "pp_fg_step"], ["pp_fg_units"]),
        n("Floor", ["pp_fg_units"], ["pp_fg_units_cut"]),
        n("Mul", ["pp_fg_units_cut", "pp_fg_step"], ["pp_fg_cut"]),
        n("Greater", ["pp_fg_cmajor", "pp_score_thr"], ["pp_fg_above"]),
        n("Where", ["pp_fg_above", "pp_fg_cut", "pp_minus_one_f"], ["pp_fg_key"]),
    ]
    return nodes, inits


def _efficient_nms_nodes(cfg: PostprocessConfig):
    """TensorRT's stock EfficientNMS_TRT plugin (TensorRT >= 8.0; no ONNX Runtime kernel)."""
    from onnx import TensorProto, helper

    nodes = [
        helper.make_node(
            "EfficientNMS_TRT",
            ["pp_boxes", "pp_scores"],
            ["num_detections", "detection_boxes", "detection_scores", "pp_classes_i32"],
            name="efficient_nms",
            plugin_version="1",
            background_class=0,
            max_output_boxes=cfg.keep,
            score_threshold=cfg.confidence_threshold,
            iou_threshold=cfg.iou_threshold,
            score_activation=0,
            box_coding=0,
        ),
        helper.make_node("Cast", ["pp_classes_i32"], ["detection_classes"], to=TensorProto.FLOAT),
    ]
    return nodes, []


def build_postprocess_graph(
    cfg: PostprocessConfig, variant: str = NMS_ONNX, opset: int = 17, ir_version: int = 8
):
    """The post-processing model: inputs ``conf``, ``loc``; outputs :data:`OUTPUT_NAMES`."""
    from onnx import TensorProto, helper

    if variant not in NMS_VARIANTS:
        raise ValueError(f"unknown NMS variant {variant!r}; one of {NMS_VARIANTS}")
    decode, decode_inits = _decode_nodes(cfg)
    nms, nms_inits = (_onnx_nms_nodes if variant == NMS_ONNX else _efficient_nms_nodes)(cfg)
    a, k = cfg.num_anchors, cfg.keep
    graph = helper.make_graph(
        decode + nms,
        f"ssd_postprocess_{variant}",
        inputs=[
            helper.make_tensor_value_info(
                CONF_INPUT, TensorProto.FLOAT, ["batch", a, cfg.num_classes]
            ),
            helper.make_tensor_value_info(LOC_INPUT, TensorProto.FLOAT, ["batch", a, 4]),
        ],
        outputs=[
            helper.make_tensor_value_info("num_detections", TensorProto.INT32, ["batch", 1]),
            helper.make_tensor_value_info("detection_boxes", TensorProto.FLOAT, ["batch", k, 4]),
            helper.make_tensor_value_info("detection_scores", TensorProto.FLOAT, ["batch", k]),
            helper.make_tensor_value_info("detection_classes", TensorProto.FLOAT, ["batch", k]),
        ],
        initializer=decode_inits + nms_inits,
    )
    # An explicit IR version: onnx.compose needs it equal to the network's, and ONNX
    # Runtime rejects IR versions newer than it knows.
    return helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", opset)],
        producer_name="tlt_core.networks.ssd.onnx_postprocess",
        ir_version=ir_version,
    )


def attach_postprocess(network, cfg: PostprocessConfig, variant: str = NMS_ONNX):
    """Append the post-processing graph to ``network`` (its ``conf``/``loc`` feed it).

    The two graphs share exactly the tensor names ``conf`` and ``loc`` (every
    post-processing name starts with ``pp_`` or is an output name). The stock-operator
    variant is checked with the ONNX checker; the EfficientNMS one holds a TensorRT plugin
    node the checker rejects.
    """
    from tlt_core.export.onnx import append_graph, opset_of

    post = build_postprocess_graph(
        cfg, variant, opset=opset_of(network), ir_version=network.ir_version
    )
    return append_graph(network, post, name="ssd_export", check=variant == NMS_ONNX)


def _tlt_nms_nodes(keep: int):
    """``NMS`` and ``NMS_1`` from the four BatchedNMS-layout tensors (stock operators)."""
    from onnx import TensorProto, helper

    inits = [
        _const("tlt_nms_zero_i64", 0, np.int64),
        _const("tlt_nms_one_i64", 1, np.int64),
        _const("tlt_nms_k", keep, np.int64),
        _const("tlt_nms_axis1", [1], np.int64),
        _const("tlt_nms_last", [-1], np.int64),
        _const("tlt_nms_minus_one", -1.0),
        _const("tlt_nms_keep_shape", [-1, 1, 1, 1], np.int64),
    ]
    n = helper.make_node
    nodes = [
        # Image id of every row: the batch index broadcast over [B, K].
        n("Shape", ["detection_scores"], ["tlt_nms_bk"]),
        n("Gather", ["tlt_nms_bk", "tlt_nms_zero_i64"], ["tlt_nms_b"], axis=0),
        n("Range", ["tlt_nms_zero_i64", "tlt_nms_b", "tlt_nms_one_i64"], ["tlt_nms_ids"]),
        n("Cast", ["tlt_nms_ids"], ["tlt_nms_ids_f"], to=TensorProto.FLOAT),
        n("Unsqueeze", ["tlt_nms_ids_f", "tlt_nms_axis1"], ["tlt_nms_ids_col"]),
        n("Expand", ["tlt_nms_ids_col", "tlt_nms_bk"], ["tlt_nms_image"]),
        # Rows at or after the keep count carry label -1, as the NMS plugin pads them.
        n("Range", ["tlt_nms_zero_i64", "tlt_nms_k", "tlt_nms_one_i64"], ["tlt_nms_rows"]),
        n("Cast", ["num_detections"], ["tlt_nms_count"], to=TensorProto.INT64),
        n("Less", ["tlt_nms_rows", "tlt_nms_count"], ["tlt_nms_valid"]),
        n(
            "Where",
            ["tlt_nms_valid", "detection_classes", "tlt_nms_minus_one"],
            ["tlt_nms_label"],
        ),
        n("Unsqueeze", ["tlt_nms_image", "tlt_nms_last"], ["tlt_nms_image_c"]),
        n("Unsqueeze", ["tlt_nms_label", "tlt_nms_last"], ["tlt_nms_label_c"]),
        n("Unsqueeze", ["detection_scores", "tlt_nms_last"], ["tlt_nms_score_c"]),
        n(
            "Concat",
            ["tlt_nms_image_c", "tlt_nms_label_c", "tlt_nms_score_c", "detection_boxes"],
            ["tlt_nms_rows7"],
            axis=2,
        ),
        n("Unsqueeze", ["tlt_nms_rows7", "tlt_nms_axis1"], ["NMS"]),
        n("Reshape", ["num_detections", "tlt_nms_keep_shape"], ["NMS_1"]),
    ]
    return nodes, inits


def tlt_nms_layout(model):
    """A copy of an exported SSD graph whose outputs are ``NMS`` and ``NMS_1`` (TLT 3.0's
    layout), computed from its BatchedNMS-layout outputs, which stay as inner tensors."""
    import onnx
    from onnx import TensorProto, helper

    present = [o.name for o in model.graph.output]
    if present == list(TLT_NMS_OUTPUTS):
        return model
    if sorted(present) != sorted(OUTPUT_NAMES):
        raise ValueError(f"outputs {present}: not an SSD export in the {LAYOUT_BATCHED} layout")
    dims = [
        next(
            o for o in model.graph.output if o.name == "detection_scores"
        ).type.tensor_type.shape.dim[1]
    ]
    keep = int(dims[0].dim_value)
    nodes, inits = _tlt_nms_nodes(keep)
    out = onnx.ModelProto()
    out.CopyFrom(model)
    graph = out.graph
    graph.node.extend(nodes)
    graph.initializer.extend(inits)
    graph.value_info.extend(graph.output)  # the four keep their shapes and types
    del graph.output[:]
    graph.output.extend(
        [
            helper.make_tensor_value_info("NMS", TensorProto.FLOAT, ["batch", 1, keep, 7]),
            helper.make_tensor_value_info("NMS_1", TensorProto.INT32, ["batch", 1, 1, 1]),
        ]
    )
    return out


def with_layout(model, layout: str):
    """``model`` (an SSD export, BatchedNMS layout) in ``layout``."""
    if layout not in OUTPUT_LAYOUTS:
        raise ValueError(f"unknown output layout {layout!r}; one of {OUTPUT_LAYOUTS}")
    return model if layout == LAYOUT_BATCHED else tlt_nms_layout(model)


def layout_of(names) -> str | None:
    """The layout whose outputs include all of ``names`` (None: neither)."""
    wanted = set(names)
    for layout, outputs in LAYOUT_OUTPUTS.items():
        if wanted <= set(outputs):
            return layout
    return None


@dataclass(frozen=True)
class DetectionRows:
    """One image's NMS output rows: normalised corners, model class index (1..C), score."""

    boxes: np.ndarray  # [k, 4] float
    classes: np.ndarray  # [k] int64, model index (background 0 never kept)
    scores: np.ndarray  # [k] float


def read_detections(outputs) -> list[DetectionRows]:
    """Per-image rows of an exported SSD's final outputs in either layout (a mapping of
    output name -> array, as ONNX Runtime or a TensorRT engine returns them)."""
    if "NMS" in outputs:
        nms = np.asarray(outputs["NMS"], np.float32)
        batch = nms.shape[0]
        rows = nms.reshape(batch, -1, 7)
        if "NMS_1" in outputs:
            counts = np.asarray(outputs["NMS_1"]).reshape(batch).astype(np.int64)
        else:  # the keep count only bounds the rows; the padding says the same
            counts = (rows[:, :, 1] >= 0).sum(axis=1)
        result = []
        for b in range(batch):
            kept = rows[b, : int(counts[b])]
            kept = kept[kept[:, 1] >= 0]
            result.append(
                DetectionRows(kept[:, 3:7].copy(), kept[:, 1].astype(np.int64), kept[:, 2].copy())
            )
        return result
    missing = [name for name in OUTPUT_NAMES if name not in outputs]
    if missing:
        raise ValueError(
            f"outputs {sorted(outputs)}: neither layout ({', '.join(OUTPUT_NAMES)} or "
            f"{', '.join(TLT_NMS_OUTPUTS)})"
        )
    counts = np.asarray(outputs["num_detections"]).reshape(-1).astype(np.int64)
    boxes = np.asarray(outputs["detection_boxes"], np.float32)
    scores = np.asarray(outputs["detection_scores"], np.float32)
    classes = np.asarray(outputs["detection_classes"])
    return [
        DetectionRows(
            boxes[b, : counts[b]].copy(),
            classes[b, : counts[b]].astype(np.int64),
            scores[b, : counts[b]].copy(),
        )
        for b in range(len(counts))
    ]
