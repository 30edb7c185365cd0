"""TensorRT engine build from an exported model (``tlt-converter``, ``export --engine_file``).

``tensorrt`` is imported lazily: without it, or without a CUDA GPU, an EngineBuildError says
what is missing. INT8 comes two ways (``EngineOptions.int8_mode``): ``cache`` (implicit
quantization, TensorRT 8.x): scales from a calibration cache only (TensorRT's
``IInt8EntropyCalibrator2`` whose ``get_batch`` never yields data), so no images are needed
on the build machine; ``qdq`` (explicit quantization, TensorRT 10's way): the ONNX carries
QuantizeLinear/DequantizeLinear nodes and the engine is built with the INT8 flag and no
calibrator. An ONNX holding Q/DQ nodes is always built the explicit way. Written against the TensorRT 8.6 / 10 Python API (name-based tensor
API, ``build_serialized_network``, memory-pool limits).
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tlt_core.errors import EngineBuildError, UsageError, located

log = logging.getLogger(__name__)

DATA_TYPES = ("fp32", "fp16", "int8")
INT8_MODES = ("cache", "qdq")
INPUT_ORDERS = ("nchw", "nhwc", "nc")
DEFAULT_WORKSPACE = 1 << 30
MISSING_TENSORRT = "tensorrt Python package not installed (pip install tlt-pipelines[tensorrt])"
_SHAPE = re.compile(r"^\d+(x\d+)*$")


@dataclass(frozen=True)
class ShapeProfile:
    """One optimisation profile entry: input name with min/opt/max shapes."""

    input_name: str
    min_shape: tuple[int, ...]
    opt_shape: tuple[int, ...]
    max_shape: tuple[int, ...]


def parse_dims(text: str, order: str = "nchw", option: str = "-d") -> tuple[int, ...]:
    """``"3,300,300"`` -> (3, 300, 300); the count must fit ``order`` (batch excluded)."""
    expected = len(order) - 1
    parts = [p.strip() for p in text.split(",")]
    if not all(p.isdigit() and int(p) > 0 for p in parts):
        raise UsageError(
            located(
                f"{text!r}: expected {expected} comma-separated positive integers", field=option
            )
        )
    if len(parts) != expected:
        raise UsageError(
            located(
                f"{text!r}: expected {expected} dimensions for input order "
                f"{order}, got {len(parts)}",
                field=option,
            )
        )
    return tuple(int(p) for p in parts)


def _parse_shape(text: str, option: str, whole: str) -> tuple[int, ...]:
    text = text.strip()
    if not _SHAPE.match(text) or any(int(d) == 0 for d in text.split("x")):
        raise UsageError(
            located(
                f"{whole!r}: shape {text!r} is not <n>x<c>x<h>x<w> of positive integers",
                field=option,
            )
        )
    return tuple(int(d) for d in text.split("x"))


def parse_profile(text: str, option: str = "-p") -> ShapeProfile:
    """``"Input,1x3x300x300,8x3x300x300,16x3x300x300"`` -> ShapeProfile."""
    parts = text.split(",")
    if len(parts) != 4 or not parts[0].strip():
        raise UsageError(
            located(f"{text!r}: expected <input_name>,<min>,<opt>,<max>", field=option)
        )
    name = parts[0].strip()
    shapes = [_parse_shape(p, option, text) for p in parts[1:]]
    if len({len(s) for s in shapes}) != 1:
        raise UsageError(
            located(f"{text!r}: min/opt/max shapes have different ranks", field=option)
        )
    low, opt, high = shapes
    if not all(a <= b <= c for a, b, c in zip(low, opt, high, strict=True)):
        raise UsageError(
            located(f"{text!r}: needs min <= opt <= max in every dimension", field=option)
        )
    return ShapeProfile(name, low, opt, high)


@dataclass(frozen=True)
class EngineOptions:
    data_type: str = "fp32"
    input_dims: tuple[int, ...] | None = None  # without batch, in ``input_order``
    input_order: str = "nchw"
    output_names: tuple[str, ...] = ()
    max_batch_size: int = 16
    workspace_bytes: int = DEFAULT_WORKSPACE
    cal_cache: str | None = None
    cal_batch_size: int = 8
    profiles: tuple[ShapeProfile, ...] = ()
    strict_types: bool = False
    dla_core: int | None = None
    # Inner tensors also marked as engine outputs (export --engine_file adds the softmax
    # scores and loc, so the engine can be evaluated with the shared decode + NMS).
    extra_outputs: tuple[str, ...] = ()
    int8_mode: str = "cache"  # cache: calibration cache; qdq: the ONNX's Q/DQ nodes
    verbose: bool = False  # TensorRT's verbose log (tlt-converter -v)

    def __post_init__(self) -> None:
        if self.int8_mode not in INT8_MODES:
            raise UsageError(
                located(f"{self.int8_mode!r} not one of {INT8_MODES}", field="int8_mode")
            )
        if self.data_type not in DATA_TYPES:
            raise UsageError(located(f"{self.data_type!r} not one of {DATA_TYPES}", field="-t"))
        if self.input_order not in INPUT_ORDERS:
            raise UsageError(located(f"{self.input_order!r} not one of {INPUT_ORDERS}", field="-i"))
        for name, value in (
            ("-m", self.max_batch_size),
            ("-b", self.cal_batch_size),
            ("-w", self.workspace_bytes),
        ):
            if value <= 0:
                raise UsageError(located(f"must be positive, got {value}", field=name))
        if self.dla_core is not None and self.dla_core < 0:
            raise UsageError(located(f"DLA core must be >= 0, got {self.dla_core}", field="-u"))
        if self.dla_core is not None and self.data_type == "fp32":
            raise UsageError(located("DLA runs only fp16 or int8 engines (-t)", field="-u"))
        if self.data_type == "int8" and self.int8_mode == "cache" and not self.cal_cache:
            raise UsageError(located("int8 needs a calibration cache", field="-c"))


@dataclass(frozen=True)
class EngineBuildInfo:
    engine_path: str
    info_path: str
    tensorrt_version: str
    gpu_name: str
    data_type: str
    flags: list[str] = field(default_factory=list)
    inputs: dict[str, dict[str, list[int]]] = field(default_factory=dict)
    outputs: list[str] = field(default_factory=list)
    model_metadata: dict[str, Any] = field(default_factory=dict)  # the ONNX tlt.* metadata


def import_tensorrt():
    try:
        import tensorrt as trt
    except ImportError:
        raise EngineBuildError(MISSING_TENSORRT) from None
    return trt


def read_model_bytes(input_file: str | Path, key: str | None) -> bytes:
    """ONNX bytes of an ``.onnx`` file, or of an ``.etlt`` opened with ``key``."""
    from tlt_core.modelfile import KIND_ETLT, open_bytes, read_model_file

    path = Path(input_file)
    data = read_model_file(path)
    if path.suffix == ".etlt":
        return open_bytes(data, key or "", kind=KIND_ETLT, source=str(path))
    return data


# --------------------------------------------------------------------------- calibrator


def cache_calibrator_class(base: type) -> type:
    """An INT8 calibrator on ``base`` (``trt.IInt8EntropyCalibrator2``) that only reads a cache.

    TensorRT asks ``read_calibration_cache`` first; when it returns the bytes, the scales are
    taken from them and ``get_batch`` is never needed. ``get_batch`` returns ``None`` (end of
    data) so that a cache missing a tensor fails the build instead of calibrating on nothing.
    """

    class CacheOnlyCalibrator(base):  # type: ignore[misc, valid-type]
        def __init__(self, cache_bytes: bytes, batch_size: int) -> None:
            base.__init__(self)
            self._cache = cache_bytes
            self._batch_size = batch_size
            self.batches_requested = 0

        def get_batch_size(self) -> int:
            return self._batch_size

        def get_batch(self, names, *args):  # TensorRT passes the input names
            self.batches_requested += 1
            return None

        def read_calibration_cache(self) -> bytes:
            return self._cache

        def write_calibration_cache(self, cache) -> None:
            return None  # the cache file is the source, never overwritten

    return CacheOnlyCalibrator


def load_cache_bytes(cache_path: str | Path, tensor_names: list[str] | None = None) -> bytes:
    """Read and validate a calibration cache; check its tensors against the network's."""
    from tlt_core.errors import ExportError
    from tlt_core.export.cache import check_cache_matches, read_cache

    try:
        cache = read_cache(cache_path)
        if tensor_names is not None:
            check_cache_matches(cache, tensor_names, cache_path, "the network")
    except ExportError as error:
        raise EngineBuildError(str(error)) from None
    return Path(cache_path).read_bytes()


def trt_version_int(version: str) -> int:
    """TensorRT's version number as in a cache header: 8.6.1 -> 8601, 10.3.0 -> 100300.

    (``NV_TENSORRT_VERSION``: major*1000 + minor*100 + patch before TensorRT 10,
    major*10000 + minor*100 + patch from 10 on.)
    """
    parts = [int(p) for p in re.findall(r"\d+", version)[:3]]
    major, minor, patch = [*parts, 0, 0, 0][:3]
    return major * (10000 if major >= 10 else 1000) + minor * 100 + patch


def retag_cache(cache_bytes: bytes, version: int) -> bytes:
    """The cache with its header naming ``version`` (TensorRT ignores a cache whose header
    names another version and would then ask for calibration batches)."""
    head, sep, rest = cache_bytes.partition(b"\n")
    algorithm = head.decode("ascii", "replace").rsplit("-", 1)[-1].strip()
    return f"TRT-{version}-{algorithm}".encode() + sep + rest


# --------------------------------------------------------------------------- build


def _gpu_name() -> str:
    try:
        try:
            from cuda.bindings import runtime as cudart
        except ImportError:
            from cuda import cudart
        err, props = cudart.cudaGetDeviceProperties(0)
        if int(err) == 0:
            name = props.name
            return (name.decode() if isinstance(name, bytes) else str(name)).rstrip("\x00")
    except Exception:  # best effort: the name only goes into the info JSON
        pass
    return "unknown"


def onnx_metadata(onnx_bytes: bytes) -> dict[str, Any]:
    import onnx

    from tlt_core.export.onnx import get_metadata

    return get_metadata(onnx.load_from_string(onnx_bytes))


def onnx_tensor_names(onnx_bytes: bytes) -> list[str]:
    """Graph inputs and node outputs of an ONNX model: the names a cache may hold.

    Checked on the ONNX graph, not on TensorRT's network, because the parser keeps the ONNX
    name for a node's output but may add internal tensors of its own.
    """
    import onnx

    model = onnx.load_from_string(onnx_bytes)
    names = [inp.name for inp in model.graph.input]
    for node in model.graph.node:
        names += list(node.output)
    return names


def _mark_extra_outputs(network, names: tuple[str, ...], source: str) -> None:
    if not names:
        return
    tensors = {}
    for i in range(network.num_layers):
        layer = network.get_layer(i)
        for j in range(layer.num_outputs):
            tensors[layer.get_output(j).name] = layer.get_output(j)
    for name in names:
        if name not in tensors:
            raise EngineBuildError(located(f"no tensor {name!r} in the network", source))
        network.mark_output(tensors[name])


def _check_input(network, opts: EngineOptions) -> None:
    if network.num_inputs != 1:
        return  # -d describes a single input; multi-input models rely on -p only
    tensor = network.get_input(0)
    shape = list(tensor.shape)
    if opts.input_dims is None:
        return
    dims = list(opts.input_dims)
    if opts.input_order == "nhwc" and len(dims) == 3:
        dims = [dims[2], dims[0], dims[1]]  # compare in the model's NCHW order
    model_dims = [d for d in shape[1:]]
    if len(model_dims) != len(dims) or any(
        m not in (-1, d) for m, d in zip(model_dims, dims, strict=True)
    ):
        raise EngineBuildError(
            located(
                f"input dims {opts.input_dims} ({opts.input_order}) do not match the model input "
                f"{tensor.name} {shape} (NCHW)",
                field="-d",
            )
        )


def _add_profiles(trt, builder, network, config, opts: EngineOptions) -> dict:
    shapes: dict[str, dict[str, list[int]]] = {}
    by_name = {p.input_name: p for p in opts.profiles}
    inputs = [network.get_input(i) for i in range(network.num_inputs)]
    known = {t.name for t in inputs}
    for name in by_name:
        if name not in known:
            raise EngineBuildError(
                located(f"profile for unknown input {name!r}; inputs: {sorted(known)}", field="-p")
            )
    dynamic = [t for t in inputs if any(d < 0 for d in t.shape)]
    if not dynamic:
        return {t.name: {"shape": list(t.shape)} for t in inputs}
    profile = builder.create_optimization_profile()
    for tensor in dynamic:
        entry = by_name.get(tensor.name)
        if entry is None:
            if opts.input_dims is None and any(d < 0 for d in tensor.shape[1:]):
                raise EngineBuildError(
                    located(
                        f"input {tensor.name} {list(tensor.shape)} has dynamic dims: give -d or -p",
                        field="-p",
                    )
                )
            chw = [
                d if d > 0 else v
                for d, v in zip(tensor.shape[1:], opts.input_dims or tensor.shape[1:], strict=False)
            ]
            entry = ShapeProfile(
                tensor.name, (1, *chw), (opts.max_batch_size, *chw), (opts.max_batch_size, *chw)
            )
        profile.set_shape(tensor.name, entry.min_shape, entry.opt_shape, entry.max_shape)
        shapes[tensor.name] = {
            "min": list(entry.min_shape),
            "opt": list(entry.opt_shape),
            "max": list(entry.max_shape),
        }
    config.add_optimization_profile(profile)
    if opts.data_type == "int8":
        config.set_calibration_profile(profile)
    return shapes


def build_engine(
    onnx_bytes: bytes, engine_path: str | Path, opts: EngineOptions, *, source: str = "<model>"
) -> EngineBuildInfo:
    """Parse ``onnx_bytes`` with TensorRT's OnnxParser, build and write the engine + JSON."""
    from tlt_core.io_utils import atomic_path, write_text_atomic

    explicit = opts.data_type == "int8" and has_qdq_nodes(onnx_bytes)
    if opts.data_type == "int8" and opts.int8_mode == "qdq" and not explicit:
        raise EngineBuildError(
            located(
                "int8_mode qdq needs an ONNX with QuantizeLinear/DequantizeLinear "
                "nodes (export --qdq)",
                source,
            )
        )
    if explicit and opts.cal_cache:
        log.warning("%s holds Q/DQ nodes: the calibration cache is not used", source)
    # The cache is checked before TensorRT is needed, so a wrong cache fails anywhere.
    cache_bytes = (
        load_cache_bytes(opts.cal_cache, onnx_tensor_names(onnx_bytes))
        if opts.data_type == "int8" and not explicit
        else b""
    )
    trt = import_tensorrt()
    logger = trt.Logger(trt.Logger.VERBOSE if opts.verbose else trt.Logger.WARNING)
    trt.init_libnvinfer_plugins(logger, "")  # EfficientNMS_TRT and the other stock plugins
    try:
        builder = trt.Builder(logger)
    except Exception as error:  # pybind returns nullptr when CUDA cannot initialise
        raise EngineBuildError(
            f"no usable CUDA GPU: TensorRT cannot create a builder ({error})"
        ) from None
    if builder is None:
        raise EngineBuildError("no usable CUDA GPU: TensorRT cannot create a builder")
    # EXPLICIT_BATCH is required by TensorRT 8.x and the default (deprecated flag) in 10.x.
    explicit = getattr(trt.NetworkDefinitionCreationFlag, "EXPLICIT_BATCH", None)
    network = builder.create_network(0 if explicit is None else 1 << int(explicit))
    parser = trt.OnnxParser(network, logger)
    if not parser.parse(onnx_bytes):
        first = parser.get_error(0) if parser.num_errors else "unknown error"
        raise EngineBuildError(located(f"TensorRT cannot parse the ONNX model: {first}", source))
    _mark_extra_outputs(network, opts.extra_outputs, source)
    outputs = [network.get_output(i).name for i in range(network.num_outputs)]
    missing = [name for name in opts.output_names if name not in outputs]
    if missing:
        raise EngineBuildError(
            located(
                f"output {missing[0]!r} is not a model output; outputs: {','.join(outputs)}",
                field="-o",
            )
        )
    _check_input(network, opts)

    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, opts.workspace_bytes)
    flags: list[str] = []

    def set_flag(name: str) -> None:
        flag = getattr(trt.BuilderFlag, name, None)
        if flag is None:  # a flag this TensorRT version has removed
            log.warning("TensorRT %s has no builder flag %s; skipped", trt.__version__, name)
            return
        config.set_flag(flag)
        flags.append(name)

    if opts.data_type == "fp16":
        if not getattr(builder, "platform_has_fast_fp16", True):
            log.warning("this GPU has no fast FP16; building FP16 anyway")
        set_flag("FP16")
    if opts.data_type == "int8":
        if not getattr(builder, "platform_has_fast_int8", True):
            log.warning("this GPU has no fast INT8; building INT8 anyway")
        set_flag("INT8")
    if opts.data_type == "int8" and not explicit:
        calibrator_cls = cache_calibrator_class(trt.IInt8EntropyCalibrator2)
        # The scales do not depend on the TensorRT version, the header check does.
        cache_bytes = retag_cache(cache_bytes, trt_version_int(trt.__version__))
        calibrator = calibrator_cls(cache_bytes, opts.cal_batch_size)
        config.int8_calibrator = calibrator
    if opts.strict_types:
        # TensorRT 8.2 replaced STRICT_TYPES; "prefer" falls back (with a warning) where a
        # layer has no kernel in the requested precision instead of failing the build.
        set_flag("PREFER_PRECISION_CONSTRAINTS")
        set_flag("DIRECT_IO")
    if opts.dla_core is not None:
        if builder.num_DLA_cores == 0:
            raise EngineBuildError(located("this platform has no DLA core", field="-u"))
        config.default_device_type = trt.DeviceType.DLA
        config.DLA_core = opts.dla_core
        set_flag("GPU_FALLBACK")
    shapes = _add_profiles(trt, builder, network, config, opts)

    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise EngineBuildError(
            located("TensorRT engine build failed (see the TensorRT log above)", source)
        )
    engine_path = Path(engine_path)
    with atomic_path(engine_path) as tmp:
        tmp.write_bytes(bytes(serialized))
    info = EngineBuildInfo(
        engine_path=str(engine_path),
        info_path=str(engine_info_path(engine_path)),
        tensorrt_version=trt.__version__,
        gpu_name=_gpu_name(),
        data_type=opts.data_type,
        flags=flags,
        inputs=shapes,
        outputs=outputs,
        model_metadata=onnx_metadata(onnx_bytes),
    )
    write_text_atomic(info.info_path, json.dumps(asdict(info), indent=1) + "\n")
    log.info(
        "wrote %s (%d bytes, TensorRT %s)", engine_path, engine_path.stat().st_size, trt.__version__
    )
    return info


def has_qdq_nodes(onnx_bytes: bytes) -> bool:
    """Whether the ONNX graph is explicitly quantised (holds Q/DQ nodes)."""
    import onnx

    model = onnx.load_from_string(onnx_bytes)
    return any(node.op_type in ("QuantizeLinear", "DequantizeLinear") for node in model.graph.node)


def engine_info_path(engine_path: str | Path) -> Path:
    engine_path = Path(engine_path)
    return engine_path.with_name(engine_path.name + ".json")


def engine_info(engine_path: str | Path) -> dict[str, Any]:
    return json.loads(engine_info_path(engine_path).read_text())
