"""The engine-build target matrix: load and validate ``targets.yaml``."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from tlt_core.errors import PipelineError

DEFAULT_TARGETS_FILE = Path(__file__).with_name("targets.yaml")
PRECISIONS = ("fp32", "fp16", "int8")
INT8_MODES = ("cache", "qdq")
_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_TOLERATION_KEYS = {"key", "operator", "value", "effect", "toleration_seconds"}


@dataclass(frozen=True)
class Target:
    """One deployment target: where its engine is built and with which precisions."""

    name: str
    image: str
    node_selector: dict[str, str]
    tolerations: list[dict] = field(default_factory=list)
    accelerator_type: str = "nvidia.com/gpu"
    accelerator_count: int = 1
    cpu: str = "4"
    memory: str = "16Gi"
    precisions: tuple[str, ...] = ("fp16",)
    max_batch_size: int = 16
    dla_core: int | None = None
    # INT8 from the calibration cache (implicit quantization, TensorRT 8.x) or from the
    # Q/DQ ONNX (explicit quantization, TensorRT 10: no calibrator).
    int8_mode: str = "cache"


def _fail(path: Path, where: str, message: str) -> PipelineError:
    return PipelineError(f"{path}: {where}: {message}")


def parse_targets(data: object, path: Path) -> list[Target]:
    if not isinstance(data, dict) or not isinstance(data.get("targets"), list):
        raise _fail(path, "targets", "expected a mapping with a 'targets' list")
    targets: list[Target] = []
    for index, entry in enumerate(data["targets"]):
        where = f"targets[{index}]"
        if not isinstance(entry, dict):
            raise _fail(path, where, "expected a mapping")
        name = entry.get("name")
        if not isinstance(name, str) or not _NAME.match(name):
            raise _fail(path, f"{where}.name", f"{name!r} is not a DNS-1123 label")
        where = f"targets[{name}]"
        image = entry.get("image")
        if not isinstance(image, str) or ":" not in image.rsplit("/", 1)[-1]:
            raise _fail(path, f"{where}.image", f"{image!r} must be pinned by tag")
        if image.endswith(":latest"):
            raise _fail(path, f"{where}.image", "':latest' is not a pinned tag")
        selector = entry.get("node_selector") or {}
        if not isinstance(selector, dict) or "kubernetes.io/arch" not in selector:
            raise _fail(path, f"{where}.node_selector", "must set kubernetes.io/arch")
        tolerations = entry.get("tolerations") or []
        for t_index, toleration in enumerate(tolerations):
            if not isinstance(toleration, dict) or set(toleration) - _TOLERATION_KEYS:
                raise _fail(
                    path,
                    f"{where}.tolerations[{t_index}]",
                    f"expected keys among {sorted(_TOLERATION_KEYS)}",
                )
        precisions = tuple(entry.get("precisions") or ("fp16",))
        for precision in precisions:
            if precision not in PRECISIONS:
                raise _fail(path, f"{where}.precisions", f"{precision!r} not in {PRECISIONS}")
        int8_mode = entry.get("int8_mode", "cache")
        if int8_mode not in INT8_MODES:
            raise _fail(path, f"{where}.int8_mode", f"{int8_mode!r} not in {INT8_MODES}")
        accelerator = entry.get("accelerator") or {}
        resources = entry.get("resources") or {}
        count = int(accelerator.get("count", 1))
        max_batch = int(entry.get("max_batch_size", 16))
        if count < 0 or max_batch < 1:
            raise _fail(path, where, "accelerator.count must be >= 0, max_batch_size >= 1")
        targets.append(
            Target(
                name=name,
                image=image,
                node_selector={str(k): str(v) for k, v in selector.items()},
                tolerations=[dict(t) for t in tolerations],
                accelerator_type=str(accelerator.get("type", "nvidia.com/gpu")),
                accelerator_count=count,
                cpu=str(resources.get("cpu", "4")),
                memory=str(resources.get("memory", "16Gi")),
                precisions=precisions,
                max_batch_size=max_batch,
                dla_core=entry.get("dla_core"),
                int8_mode=int8_mode,
            )
        )
    names = [t.name for t in targets]
    if len(set(names)) != len(names):
        raise _fail(path, "targets", "target names must be unique")
    if not targets:
        raise _fail(path, "targets", "at least one target is needed")
    return targets


def load_targets(path: str | Path | None = None) -> list[Target]:
    from tlt_core.io_utils import read_bytes_limited

    path = Path(path) if path else DEFAULT_TARGETS_FILE
    if not path.exists():
        raise PipelineError(f"{path}: no such target matrix file")
    raw = read_bytes_limited(path, 1 << 20, what="target matrix file", error_type=PipelineError)
    try:
        data = yaml.safe_load(raw.decode("utf-8-sig"))
    except UnicodeDecodeError as error:
        raise PipelineError(f"{path}: not UTF-8 text (byte {error.start})") from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        line = f":{mark.line + 1}" if mark else ""
        raise PipelineError(f"{path}{line}: not valid YAML") from None
    return parse_targets(data, path)
