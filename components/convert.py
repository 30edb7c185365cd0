"""Component: TensorRT engine builds for one deployment target (``tlt-converter``)."""

from kfp import dsl
from kfp.dsl import Artifact, Input, Markdown, Model, Output

from components import TLT_CORE_IMAGE


@dsl.component(base_image=TLT_CORE_IMAGE, install_kfp_package=False)
def build_engines(
    onnx_model: Input[Model],
    calibration_cache: Input[Artifact],
    qdq_model: Input[Model],
    target: str,
    precisions: list,
    max_batch_size: int,
    publish_uri: str,
    model_version: str,
    engines: Output[Model],
    engine_report: Output[Markdown],
    require_tensorrt: bool = True,
    int8_mode: str = "cache",
) -> str:
    """Build one engine per precision and stage it under the version's publish prefix.

    Returns a JSON report per precision (the Markdown report shows it as a table: built or
    why not, engine size, latency when measured). ``int8_mode`` (the target's): INT8 from
    the calibration cache (``cache``) or from the Q/DQ ONNX (``qdq``, TensorRT 10). Without TensorRT and ``require_tensorrt`` false (a
    local run), the report says so and no engine is written; with it true, the task fails.
    """
    import json

    from tlt_core import pipeline_support as support

    report = support.run_engine_builds(
        onnx_model.path,
        calibration_cache.path,
        engines.path,
        target=target,
        precisions=list(precisions),
        max_batch_size=max_batch_size,
        publish_uri=publish_uri,
        model_version=model_version,
        require_tensorrt=require_tensorrt,
        qdq_path=qdq_model.path,
        int8_mode=int8_mode,
    )
    engines.metadata["builds"] = report
    support.write_report(engine_report.path, support.engine_report_markdown(target, report))
    return json.dumps(report, sort_keys=True)
