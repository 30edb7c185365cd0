"""Component: publish a model version (ONNX, cache, DeepStream files, metrics, manifest)."""

from kfp import dsl
from kfp.dsl import Artifact, Input, Metrics, Model

from components import TLT_CORE_IMAGE


@dsl.component(base_image=TLT_CORE_IMAGE, install_kfp_package=False)
def publish(
    onnx_model: Input[Model],
    calibration_cache: Input[Artifact],
    qdq_model: Input[Model],
    deepstream: Input[Artifact],
    metrics: Input[Metrics],
    experiment_spec: str,
    publish_uri: str,
    model_version: str,
    git_commit: str,
) -> str:
    """Upload the version's files, then its manifest (last: a version without one is
    incomplete). Engines were staged there by the build tasks. Returns the manifest URI."""
    from tlt_core import pipeline_support as support

    return support.run_publish(
        publish_uri,
        model_version,
        files={
            "model.onnx": onnx_model.path,
            "calibration.cache": calibration_cache.path,
            "model.qdq.onnx": qdq_model.path,
            "deepstream": deepstream.path,
        },
        metrics=dict(metrics.metadata),
        experiment_spec=experiment_spec,
        git_commit=git_commit,
    )
