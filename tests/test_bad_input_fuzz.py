"""Issue 16: every reader of a user file, fed random bytes, random text and mutated valid
files, either reads it or raises a TltError whose message names the file; never another
exception, and never more than a bounded time and (Python-heap) memory per input.

Readers: KITTI labels, experiment and dataset-convert specs, images (dataset-convert's
frame reader: header, size bound and full decode), sealed model files and plain ONNX,
INT8 calibration caches, the target matrix YAML.
"""

from __future__ import annotations

import io
import json
import time
import tracemalloc
import zipfile
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tlt_core.errors import TltError

MAX_SECONDS = 5.0
MAX_PYTHON_HEAP = 64 << 20
EXAMPLES = 40  # per reader and input kind: 8 readers x 3 kinds x 40 = 960 inputs
TRIED: dict[str, int] = {}


def _label(root: Path) -> bytes:
    return b"car 0.00 0 -1.58 587.01 173.33 614.12 200.12 1.65 1.67 3.64 -0.65 1.71 46.70 -1.59\n"


def _experiment(root: Path) -> bytes:
    from tlt_core.networks.ssd.sample_spec import sample_experiment_spec

    return sample_experiment_spec(root, output_width=64, output_height=64).encode()


def _convert_spec(root: Path) -> bytes:
    from tlt_core.data.sample import sample_convert_spec

    return sample_convert_spec(root).encode()


def _png(root: Path) -> bytes:
    pixels = np.random.default_rng(0).integers(0, 255, (24, 32, 3), dtype=np.uint8)
    return cv2.imencode(".png", pixels)[1].tobytes()


def _sealed_model(root: Path) -> bytes:
    from tlt_core.modelfile import seal_bytes

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("metadata.json", json.dumps({"class_names": ["car"]}))
    return seal_bytes(buffer.getvalue(), "key")


def _onnx(root: Path) -> bytes:
    from export_helpers import tiny_network

    return tiny_network().SerializeToString()


def _cache(root: Path) -> bytes:
    from tlt_core.export.cache import CalibrationCache, format_cache

    return format_cache(CalibrationCache({"Input": 0.0078125, "conv1": 0.05})).encode()


def _targets(root: Path) -> bytes:
    return (Path(__file__).parents[1] / "pipelines" / "targets.yaml").read_bytes()


def _read_label(path: Path) -> None:
    from tlt_core.data.kitti import read_labels

    read_labels(path)


def _read_experiment(path: Path) -> None:
    from tlt_core.networks.ssd.spec import load_experiment

    load_experiment(path)


def _read_convert_spec(path: Path) -> None:
    from tlt_core.spec.convert import load_convert_spec

    load_convert_spec(path)


def _read_image(path: Path) -> None:
    from tlt_core.data.convert import _frame_record
    from tlt_core.data.kitti import Frame

    label = path.with_name("frame.txt")
    label.write_text("car 0 0 0 1 1 5 5 0 0 0 0 0 0 0\n")
    _frame_record(Frame("frame", path, label), strict=False)


def _read_model(path: Path) -> None:
    from tlt_core.modelfile import load_metadata

    load_metadata(path, "key")


def _read_onnx(path: Path) -> None:
    from tlt_core.export.onnx import read_model

    read_model(path.with_suffix(".onnx") if path.suffix != ".onnx" else path)


def _read_cache(path: Path) -> None:
    from tlt_core.export.cache import read_cache

    read_cache(path)


def _read_targets(path: Path) -> None:
    from pipelines.targets import load_targets

    load_targets(path)


READERS: dict[str, tuple[Callable[[Path], None], Callable[[Path], bytes], str]] = {
    "kitti_label": (_read_label, _label, "000001.txt"),
    "experiment_spec": (_read_experiment, _experiment, "spec.txt"),
    "convert_spec": (_read_convert_spec, _convert_spec, "convert.txt"),
    "image": (_read_image, _png, "frame.png"),
    "model_file": (_read_model, _sealed_model, "model.tlt"),
    "onnx": (_read_onnx, _onnx, "model.onnx"),
    "calibration_cache": (_read_cache, _cache, "cal.bin"),
    "target_yaml": (_read_targets, _targets, "targets.yaml"),
}


def _check(name: str, root: Path, data: bytes) -> None:
    reader, _, filename = READERS[name]
    path = root / filename
    path.write_bytes(data)
    TRIED[name] = TRIED.get(name, 0) + 1
    tracemalloc.start()
    start = time.monotonic()
    try:
        reader(path)
    except TltError as error:
        assert filename in str(error), f"{name}: not located: {error}"
        assert "\n" not in str(error).strip(), f"{name}: not one line: {error}"
    finally:
        seconds = time.monotonic() - start
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    assert seconds < MAX_SECONDS, f"{name}: {seconds:.1f} s for {len(data)} bytes"
    assert peak < MAX_PYTHON_HEAP, f"{name}: {peak >> 20} MiB for {len(data)} bytes"


def _mutate(valid: bytes, edits: list[tuple[int, int, int]]) -> bytes:
    data = bytearray(valid)
    for position, op, value in edits:
        at = position % (len(data) + 1)
        if op == 0 and at < len(data):  # flip a byte
            data[at] = value
        elif op == 1:  # insert
            data[at:at] = bytes([value]) * (1 + value % 7)
        elif op == 2:  # delete a run
            del data[at : at + 1 + value % 13]
        else:  # truncate
            del data[at:]
    return bytes(data)


FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,  # time is asserted per input above, on the reader alone
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    derandomize=True,
)
EDITS = st.lists(
    st.tuples(st.integers(0, 1 << 16), st.integers(0, 3), st.integers(0, 255)),
    min_size=1,
    max_size=8,
)


@pytest.fixture(scope="module")
def root(tmp_path_factory, sample_dataset) -> Path:
    return tmp_path_factory.mktemp("fuzz")


@pytest.fixture(scope="module")
def valid(root, sample_dataset) -> dict[str, bytes]:
    return {name: make(sample_dataset.root) for name, (_, make, _) in READERS.items()}


@pytest.mark.parametrize("name", list(READERS))
def test_valid_files_read(name, root, valid):
    reader, _, filename = READERS[name]
    path = root / name
    path.mkdir(exist_ok=True)
    (path / filename).write_bytes(valid[name])
    reader(path / filename)


@pytest.mark.parametrize("name", list(READERS))
@FUZZ
@given(data=st.binary(max_size=4096))
def test_random_bytes(name, root, data):
    _check(name, root, data)


@pytest.mark.parametrize("name", list(READERS))
@FUZZ
@given(text=st.text(max_size=2048))
def test_random_text(name, root, text):
    _check(name, root, text.encode("utf-8", "surrogatepass"))


@pytest.mark.parametrize("name", list(READERS))
@FUZZ
@given(edits=EDITS)
def test_mutated_valid_files(name, root, valid, edits):
    _check(name, root, _mutate(valid[name], edits))
