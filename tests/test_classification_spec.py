"""The classification spec: 002's sample parses unchanged, errors are located, the proto
and its committed gencode agree."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_spec_proto import _descriptor_declarations, _normalise, _proto_declarations

from tlt_core.errors import SpecError
from tlt_core.networks.classification import classification_experiment_pb2
from tlt_core.networks.classification.spec import load_spec, parse_spec

SAMPLE = Path("/work/shared/specs/classification_train.txt")
PROTO = (
    Path(__file__).resolve().parents[1]
    / "tlt_core/networks/classification/classification_experiment.proto"
)

# 002's sample spec (11.1), as in ../shared/specs/classification_train.txt.
SAMPLE_TEXT = """model_config {
  arch: "resnet",
  n_layers: 18
  input_image_size: "3,224,224"
}
train_config {
  train_dataset_path: "/workspace/tlt_drive/classification/make_1k/train"
  val_dataset_path: "/workspace/tlt_drive/classification/make_1k/val"
  pretrained_model_path: "/workspace/resnet18.tlt"
  optimizer: "sgd"
  batch_size_per_gpu: 64
  n_epochs: 80
  n_workers: 16
  # regularizer
  reg_config {
    type: "L2"
    scope: "Conv2D,Dense"
    weight_decay: 0.00005
  }
  # learning_rate
  lr_config {
    scheduler: "step"
    learning_rate: 0.006
    step_size: 10
    gamma: 0.1
  }
}
"""


def test_gencode_matches_proto():
    declared = _normalise(_proto_declarations(PROTO.read_text()))
    assert _descriptor_declarations(classification_experiment_pb2) == declared
    source = PROTO.with_name("classification_experiment_pb2.py").read_text()
    assert "_runtime_version" not in source


def test_sample_spec_parses_unchanged():
    if SAMPLE.exists():
        assert SAMPLE.read_text() == SAMPLE_TEXT
    spec = parse_spec(SAMPLE_TEXT, "spec.txt", base_dir="/tmp")
    assert (spec.arch, spec.n_layers, spec.input_shape) == ("resnet", 18, (224, 224, 3))
    assert spec.train_dataset_path == "/workspace/tlt_drive/classification/make_1k/train"
    assert spec.pretrained_model_path == "/workspace/resnet18.tlt"
    assert (spec.optimizer, spec.momentum, spec.batch_size_per_gpu) == ("sgd", 0.9, 64)
    assert (spec.n_epochs, spec.n_workers) == (80, 16)
    assert (spec.reg_type, spec.reg_scope, spec.weight_decay) == ("L2", ("Conv2D", "Dense"), 5e-5)
    assert spec.lr.kind == "step"
    assert (spec.lr.learning_rate, spec.lr.step_size, spec.lr.gamma) == (0.006, 10, 0.1)
    assert spec.preprocess_mode == "caffe" and spec.top_k == 5 and spec.eval_batch_size == 64
    assert spec.arch_name == "resnet18"


def test_relative_paths_and_round_trip(tmp_path):
    text = SAMPLE_TEXT.replace("/workspace/tlt_drive/classification/make_1k/", "data/")
    path = tmp_path / "spec.txt"
    path.write_text(text)
    spec = load_spec(path)
    assert spec.train_dataset_path == str(tmp_path / "data/train")
    again = parse_spec(spec.to_text(absolute_paths=True), "copy.txt")
    assert again.train_dataset_path == spec.train_dataset_path
    moved = spec.with_paths(train="/x/train", n_epochs=3)
    assert (moved.train_dataset_path, moved.n_epochs) == ("/x/train", 3)
    assert moved.val_dataset_path == str(tmp_path / "data/val")


def _error(text: str) -> str:
    with pytest.raises(SpecError) as caught:
        parse_spec(text, "spec.txt")
    assert caught.value.exit_code == 2
    message = str(caught.value)
    assert "\n" not in message
    return message


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ('arch: "resnet"', 'arch: "resnt"', "spec.txt:2: model_config.arch: unknown arch 'resnt'"),
        ("n_layers: 18", "n_layers: 19", "spec.txt:3: model_config.n_layers: resnet has no 19"),
        ("n_layers: 18", "n_layer: 18", "spec.txt:3: model_config.n_layer: unknown field; did you mean n_layers?"),
        ('"3,224,224"', '"3,224"', 'spec.txt:4: model_config.input_image_size: expected "C,H,W"'),
        ('"3,224,224"', '"1,224,224"', "spec.txt:4: model_config.input_image_size: only 3-channel"),
        ('optimizer: "sgd"', 'optimizer: "adagrad"', "spec.txt:10: train_config.optimizer: unknown value 'adagrad'; one of sgd, adam, rmsprop"),
        ("batch_size_per_gpu: 64", "batch_size_per_gpu: 0", "spec.txt:11: train_config.batch_size_per_gpu: must be positive"),
        ('type: "L2"', 'type: "L3"', "spec.txt:16: train_config.reg_config.type: unknown value 'L3'"),
        ('scope: "Conv2D,Dense"', 'scope: "Conv2D,Dens"', "spec.txt:17: train_config.reg_config.scope: unknown layer type 'Dens'"),
        ('scheduler: "step"', 'scheduler: "exp"', "spec.txt:22: train_config.lr_config.scheduler: unknown value 'exp'"),
        ("step_size: 10", "min_lr_ratio: 0.1", "spec.txt:24: train_config.lr_config.min_lr_ratio: not a field of the step schedule"),
        ("learning_rate: 0.006", "learning_rate: -1", "spec.txt:23: train_config.lr_config.learning_rate: must be positive"),
        ("gamma: 0.1", "gamma: 0.1\n    cosine { learning_rate: 0.1 }", "spec.txt:22: train_config.lr_config.scheduler: give the schedule flat or as a cosine {} block, not both"),
        ("  n_epochs: 80\n", "", "spec.txt:6: train_config.n_epochs: required field is missing"),
        ("  # regularizer\n  reg_config {", "  # regularizer\n  reg_config \n", 'spec.txt:17: train_config.reg_config: Expected "{"'),
        ("n_workers: 16", "n_workers: 16\n  mixup_alpha: -1", "spec.txt:14: train_config.mixup_alpha: must be >= 0"),
        ('arch: "resnet",', 'arch: "resnet",\n  use_batch_norm: false', "spec.txt:3: model_config.use_batch_norm: the shared backbones are built with use_batch_norm: true"),
        ('arch: "resnet",', 'arch: "resnet",\n  freeze_blocks: 7', "spec.txt:3: model_config.freeze_blocks[0]: resnet has no block 7"),
    ],
)  # fmt: skip
def test_corrupted_spec_gives_one_located_line(old, new, expected):
    assert old in SAMPLE_TEXT
    message = _error(SAMPLE_TEXT.replace(old, new, 1))
    assert message.startswith(expected), message


def test_missing_block_close_is_located():
    text = SAMPLE_TEXT.replace("    gamma: 0.1\n  }\n}\n", "    gamma: 0.1\n  }\n")
    assert "block not closed" in _error(text)


def test_nested_schedules_resolve():
    soft = SAMPLE_TEXT.replace(
        '    scheduler: "step"\n    learning_rate: 0.006\n    step_size: 10\n    gamma: 0.1\n',
        "    soft_anneal {\n      learning_rate: 0.05\n      soft_start: 0.1\n"
        '      annealing_points: "0.3, 0.6, 0.8"\n      annealing_divider: 10\n    }\n',
    )
    lr = parse_spec(soft).lr
    assert (lr.kind, lr.soft_start, lr.annealing_points) == ("soft_anneal", 0.1, (0.3, 0.6, 0.8))
    bad = soft.replace('"0.3, 0.6, 0.8"', '"0.6, 0.3"')
    assert (
        "spec.txt:25: train_config.lr_config.soft_anneal.annealing_points: must increase"
        in _error(bad)
    )


@settings(max_examples=40, deadline=None)
@given(
    line=st.integers(min_value=0, max_value=SAMPLE_TEXT.count("\n") - 1),
    junk=st.sampled_from(["{", "}", ":", "x y", '"']),
)
def test_any_corruption_is_one_located_line(line, junk):
    """Inserting junk anywhere gives a SpecError with the spec path, or still parses."""
    lines = SAMPLE_TEXT.split("\n")
    lines[line] = lines[line] + " " + junk
    try:
        parse_spec("\n".join(lines), "spec.txt")
    except SpecError as error:
        assert str(error).startswith("spec.txt") and "\n" not in str(error)
