"""Shared checks of the local pipeline-run tests: what a published version holds."""

from __future__ import annotations

from pipelines.targets import load_targets

# What calibration_refresh republishes unchanged from its source version.
UNCHANGED_BY_REFRESH = ("model.onnx", "deepstream/labels.txt", "deepstream/nvinfer_config.txt")


def version_files() -> set[str]:
    """The files every train_deploy version publishes (one build report per target)."""
    expected = {
        "model.onnx",
        "calibration.cache",
        "model.qdq.onnx",
        "deepstream/labels.txt",
        "deepstream/nvinfer_config.txt",
        "metrics.json",
        "experiment_spec.txt",
    }
    return expected | {f"engines/{t.name}/build_report.json" for t in load_targets()}


def assert_refreshed_from(refreshed: dict, source: dict) -> None:
    """A calibration_refresh manifest keeps its source's model, DeepStream files, metrics
    and evaluation data."""
    for name in UNCHANGED_BY_REFRESH:
        assert refreshed["artifacts"][name] == source["artifacts"][name], name
    assert refreshed["metrics"] == source["metrics"]
    assert refreshed["evaluation_data"] == source["evaluation_data"]
