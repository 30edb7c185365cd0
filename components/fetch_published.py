"""Component: fetch a published model version (for the calibration refresh)."""

from kfp import dsl
from kfp.dsl import Artifact, Metrics, Model, Output

from components import TLT_CORE_IMAGE


@dsl.component(base_image=TLT_CORE_IMAGE, install_kfp_package=False)
def fetch_published(
    publish_uri: str,
    model_version: str,
    onnx_model: Output[Model],
    deepstream: Output[Artifact],
    metrics: Output[Metrics],
) -> str:
    """Download the ONNX model and DeepStream files of a published version, checking the
    manifest's hashes; its metrics go to ``metrics``. Returns the experiment spec text
    stored with that version."""
    from tlt_core import pipeline_support as support

    spec, published_metrics = support.run_fetch_published(
        publish_uri, model_version, onnx_model.path, deepstream.path
    )
    support.log_metrics(metrics, published_metrics)
    return spec
