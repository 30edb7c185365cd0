"""TensorRT INT8 calibration cache: the text format TensorRT reads and writes.

Layout (what ``IInt8EntropyCalibrator2.write_calibration_cache`` produces)::

    TRT-8601-EntropyCalibration2
    Input: 3c010a14
    conv1/Conv2D:0: 3d8f5c29

The first line names the TensorRT version (major*1000 + minor*100 + patch) and the
calibration algorithm. Each further line is ``tensor_name: hex`` where ``hex`` is the IEEE-754
bit pattern of the float32 scale written as 8 big-endian hex digits; scale = amax / 127.
Tensor names may themselves contain ``:`` (TensorFlow-style names), so a line is split at its
last ``": "``.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from tlt_core.errors import ExportError, located
from tlt_core.io_utils import write_text_atomic

DEFAULT_TRT_VERSION = 8601
ALGORITHM = "EntropyCalibration2"
_HEADER = re.compile(r"^TRT-(\d+)-(\w+)$")
_HEX = re.compile(r"^[0-9a-fA-F]{8}$")


@dataclass(frozen=True)
class CalibrationCache:
    """Per-tensor INT8 scales (scale = amax / 127), in file order."""

    scales: dict[str, float] = field(default_factory=dict)
    trt_version: int = DEFAULT_TRT_VERSION
    algorithm: str = ALGORITHM

    @property
    def header(self) -> str:
        return f"TRT-{self.trt_version}-{self.algorithm}"


def scale_to_hex(scale: float) -> str:
    """Float32 bit pattern of ``scale`` as 8 big-endian hex digits."""
    return struct.pack(">f", scale).hex()


def hex_to_scale(text: str) -> float:
    return struct.unpack(">f", bytes.fromhex(text))[0]


def format_cache(cache: CalibrationCache) -> str:
    lines = [cache.header]
    lines += [f"{name}: {scale_to_hex(scale)}" for name, scale in cache.scales.items()]
    return "\n".join(lines) + "\n"


def write_cache(path: str | Path, cache: CalibrationCache) -> Path:
    """Write ``cache`` atomically in TensorRT's text format."""
    for name, scale in cache.scales.items():
        if not (scale > 0.0 and scale < float("inf")):
            raise ExportError(
                located(f"scale {scale!r} is not a positive finite float", path, field=name)
            )
    return write_text_atomic(path, format_cache(cache))


def parse_cache(text: str, path: str | Path = "<cache>") -> CalibrationCache:
    """Parse TensorRT's text calibration cache; a malformed line raises a located ExportError."""
    lines = text.splitlines()
    if not lines:
        raise ExportError(located("empty calibration cache", path, 1))
    match = _HEADER.match(lines[0].strip())
    if match is None:
        raise ExportError(
            located(
                f"first line {lines[0][:60]!r} is not a TensorRT cache header "
                "(TRT-<version>-<algorithm>)",
                path,
                1,
            )
        )
    scales: dict[str, float] = {}
    for number, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        name, sep, value = line.rpartition(": ")
        value = value.strip()
        if not sep or not name or not _HEX.match(value):
            raise ExportError(
                located(f"expected 'tensor_name: <8 hex digits>', got {line[:80]!r}", path, number)
            )
        if name in scales:
            raise ExportError(located("tensor listed twice", path, number, name))
        scales[name] = hex_to_scale(value)
    return CalibrationCache(
        scales=scales, trt_version=int(match.group(1)), algorithm=match.group(2)
    )


def read_cache(path: str | Path) -> CalibrationCache:
    from tlt_core.io_utils import read_bytes_limited

    path = Path(path)
    if not path.exists():
        raise ExportError(located("calibration cache not found", path))
    # A cache holds one line per tensor (tens of KB); 16 MiB bounds a wrong file's cost.
    data = read_bytes_limited(path, 16 << 20, what="calibration cache", error_type=ExportError)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise ExportError(located("not a text TensorRT calibration cache", path)) from None
    return parse_cache(text, path)


def check_cache_matches(
    cache: CalibrationCache,
    tensor_names: Iterable[str],
    cache_path: str | Path,
    graph_name: str = "graph",
) -> None:
    """Raise a located ExportError when ``cache`` holds a tensor the graph does not have.

    A cache made for another graph names tensors this one lacks; TensorRT would silently
    ignore them and fall back to FP32 (or fail), so we refuse early instead. Tensors of the
    graph absent from the cache are allowed (the post-processing part is never calibrated).
    """
    names = set(tensor_names)
    missing = [name for name in cache.scales if name not in names]
    if missing:
        raise ExportError(
            located(
                f"cache tensor not in {graph_name} ({len(missing)} of {len(cache.scales)} unknown): "
                "the cache was made for another model",
                cache_path,
                field=missing[0],
            )
        )
    if not cache.scales:
        raise ExportError(located("calibration cache holds no tensor scales", cache_path))


def scales_from_amax(amax: Mapping[str, float]) -> dict[str, float]:
    """INT8 symmetric scale per tensor: amax / 127 (TensorRT's convention)."""
    return {name: float(value) / 127.0 for name, value in amax.items()}
