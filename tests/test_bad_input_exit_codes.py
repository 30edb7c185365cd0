"""Issue 16, class 2: no "internal error" where a located message and the documented exit
code are due.

Output paths are checked before the work starts (``PathResolver.output(uri, kind)`` /
``io_utils.check_output_path``), OS errors on user paths become UsageError/StorageError
naming the path (``run_command``), a missing model file is exit 4 everywhere, malformed
environment variables are named, and absurd input sizes are refused at spec load.
"""

from __future__ import annotations

import argparse
import errno
import logging

import pytest

from tlt_core.cli import main, run_command
from tlt_core.errors import (
    EngineBuildError,
    ModelFileError,
    SpecError,
    StorageError,
    UsageError,
)

USAGE, DATA, MODEL, STORAGE = 2, 3, 4, 7
LABEL = "car 0 0 0 10 10 50 50 0 0 0 0 0 0 0\n"


@pytest.fixture(autouse=True)
def _reset_logging():
    yield
    logging.getLogger().handlers.clear()


def _run(capsys, *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) >= 1
    last = err[-1]
    assert "internal error" not in last and "Traceback" not in "\n".join(err), err
    return code, last


@pytest.fixture
def files(tmp_path):
    model = tmp_path / "model.tlt"
    model.write_bytes(b"not checked before the output path")
    spec = tmp_path / "spec.txt"
    spec.write_text("not parsed before the output path\n")
    a_dir = tmp_path / "a_dir"
    a_dir.mkdir()
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    return {"model": model, "spec": spec, "dir": a_dir, "file": a_file}


def test_prune_output_is_an_existing_directory(capsys, files):
    m, d = str(files["model"]), str(files["dir"])
    code, err = _run(capsys, "ssd", "prune", "-m", m, "-o", d, "-k", "k")
    assert code == USAGE and d in err and "is a directory" in err


def test_export_output_is_an_existing_directory(capsys, files):
    m, s, d = str(files["model"]), str(files["spec"]), str(files["dir"])
    code, err = _run(capsys, "ssd", "export", "-m", m, "-k", "k", "-e", s, "-o", d)
    assert code == USAGE and d in err


def test_export_output_below_a_file(capsys, files):
    m, s = str(files["model"]), str(files["spec"])
    out = str(files["file"] / "model.etlt")
    code, err = _run(capsys, "ssd", "export", "-m", m, "-k", "k", "-e", s, "-o", out)
    assert code == USAGE and "not a directory" in err and str(files["file"]) in err


def test_inference_output_dir_is_an_existing_file(capsys, files):
    m, s, f = str(files["model"]), str(files["spec"]), str(files["file"])
    code, err = _run(capsys, "ssd", "inference", "-m", m, "-e", s, "-i", str(files["dir"]), "-o", f)
    assert code == USAGE and f in err and "is a file" in err


def test_train_results_dir_is_an_existing_file(capsys, files):
    s, f = str(files["spec"]), str(files["file"])
    code, err = _run(capsys, "ssd", "train", "-e", s, "-r", f, "-k", "k")
    assert code == USAGE and f in err


def test_log_file_is_an_existing_directory(capsys, files):
    m, d = str(files["model"]), str(files["dir"])
    out = str(files["dir"] / "p.tlt")
    code, err = _run(capsys, "ssd", "prune", "-m", m, "-o", out, "-k", "k", "--log_file", d)
    assert code == USAGE and d in err and "--log_file" in err


def test_evaluate_labels_json_is_an_existing_directory(capsys, tmp_path, files):
    gt = tmp_path / "gt"
    gt.mkdir()
    (gt / "000001.txt").write_text(LABEL)
    d = str(files["dir"])
    code, err = _run(capsys, "evaluate-labels", "-g", str(gt), "-p", str(gt), "--json", d)
    assert code == USAGE and d in err


def test_pipeline_compile_output_is_an_existing_file(capsys, files):
    f = str(files["file"])
    code, err = _run(capsys, "pipeline", "compile", "-o", f)
    assert code == USAGE and f in err


def test_label_path_that_is_a_directory(capsys, tmp_path):
    from tlt_core.data.kitti import read_labels
    from tlt_core.errors import DataError

    (tmp_path / "000001.txt").mkdir()
    with pytest.raises(DataError, match=r"000001\.txt: is a directory"):
        read_labels(tmp_path / "000001.txt")


@pytest.mark.parametrize("command", ["prune", "evaluate", "export", "train"])
def test_missing_model_file_is_exit_4(capsys, tmp_path, files, command):
    missing = str(tmp_path / "missing.tlt")
    s = str(files["spec"])
    argv = {
        "prune": ["ssd", "prune", "-m", missing, "-o", str(tmp_path / "o.tlt"), "-k", "k"],
        "evaluate": ["ssd", "evaluate", "-m", missing, "-e", s, "-k", "k"],
        "export": ["ssd", "export", "-m", missing, "-e", s, "-k", "k"],
        "train": ["ssd", "train", "-e", s, "-r", str(tmp_path / "r"), "-k", "k", "-m", missing],
    }[command]
    code, err = _run(capsys, *argv)
    assert code == MODEL == ModelFileError.exit_code and missing in err


def test_converter_missing_input_is_a_model_file_error(capsys, tmp_path):
    from tlt_core.cli.converter import main as converter_main

    missing = str(tmp_path / "m.etlt")
    code = converter_main(
        [missing, "-k", "k", "-d", "3,64,64", "-o", "out", "-e", str(tmp_path / "m.engine")]
    )
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert code == MODEL != EngineBuildError.exit_code and missing in err


@pytest.mark.parametrize(
    "value", ["http://minio:notaport", "http://minio:99999", "http://:9000", "ftp://host"]
)
def test_malformed_s3_endpoint_names_the_variable(value):
    from tlt_core.storage import S3Settings

    with pytest.raises(StorageError, match=rf"^S3_ENDPOINT_URL={value}"):
        S3Settings.from_env({"S3_ENDPOINT_URL": value})


def test_malformed_s3_endpoint_through_the_cli(capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("S3_ENDPOINT_URL", "http://minio:notaport")
    gt = tmp_path / "gt"
    gt.mkdir()
    (gt / "000001.txt").write_text(LABEL)
    code, err = _run(capsys, "evaluate-labels", "-g", "s3://bucket/gt", "-p", str(gt))
    assert code == STORAGE and "S3_ENDPOINT_URL" in err


@pytest.mark.parametrize(
    "value", ["{not json", "[]", '{"cluster": {}}', '{"cluster": {}, "task": {"type": "w"}}']
)
def test_tf_config_that_is_not_usable(value):
    from tlt_core.train.trainer import check_tf_config

    with pytest.raises(UsageError, match=r"^TF_CONFIG: "):
        check_tf_config(value)


def test_tf_config_not_json_through_train(capsys, monkeypatch, tmp_path, sample_dataset):
    from tlt_core.networks.ssd.sample_spec import sample_experiment_spec

    spec = tmp_path / "spec.txt"
    spec.write_text(
        sample_experiment_spec(
            sample_dataset.root, arch="resnet", nlayers=10, output_width=64, output_height=64
        )
    )
    monkeypatch.setenv("TF_CONFIG", "{not json")
    code, err = _run(capsys, "ssd", "train", "-e", str(spec), "-r", str(tmp_path / "r"), "-k", "k")
    assert code == USAGE and "TF_CONFIG: not JSON" in err


@pytest.mark.parametrize(
    ("width", "height"), [(4294967295, 300), (8192, 8192), (300, 5000), (4096, 4096)]
)
def test_absurd_input_size_is_refused_at_spec_load(sample_dataset, tmp_path, width, height):
    from tlt_core.networks.ssd.sample_spec import sample_experiment_spec
    from tlt_core.networks.ssd.spec import load_experiment

    spec = tmp_path / "spec.txt"
    spec.write_text(
        sample_experiment_spec(sample_dataset.root, output_width=width, output_height=height)
    )
    with pytest.raises(SpecError, match=r"spec\.txt:\d+: augmentation_config\.output_"):
        load_experiment(spec)


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (PermissionError(errno.EACCES, "Permission denied", "/data/out"), USAGE),
        (IsADirectoryError(errno.EISDIR, "Is a directory", "/data/out"), USAGE),
        (OSError(errno.ENOSPC, "No space left on device", "/data/out"), STORAGE),
        (OSError(errno.EROFS, "Read-only file system", "/data/out"), STORAGE),
    ],
)
def test_os_errors_on_user_paths_name_the_path(capsys, error, code):
    def command(_args):
        raise error

    assert run_command(command, argparse.Namespace()) == code
    err = capsys.readouterr().err.strip()
    assert err.startswith("tlt: error: /data/out: ") and len(err.splitlines()) == 1


def test_os_error_without_a_path_is_still_a_bug(capsys):
    def command(_args):
        raise OSError("something internal")

    assert run_command(command, argparse.Namespace()) == 1
    assert "internal error" in capsys.readouterr().err
