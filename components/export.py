"""Component: export to ONNX with DeepStream files (``tlt <network> export --gen_ds_config``)."""

from kfp import dsl
from kfp.dsl import Artifact, Input, Model, Output

from components import TLT_CORE_IMAGE


@dsl.component(base_image=TLT_CORE_IMAGE, install_kfp_package=False)
def export(
    model: Input[Model],
    experiment_spec: str,
    onnx_model: Output[Model],
    deepstream: Output[Artifact],
    max_batch_size: int = 16,
    network: str = "ssd",
) -> None:
    """Writes the ONNX model and a folder with labels.txt and nvinfer_config.txt."""
    import time

    from tlt_core import pipeline_support as support

    start = time.time()
    info = support.run_export(
        model.path,
        experiment_spec,
        onnx_model.path,
        deepstream.path,
        max_batch_size=max_batch_size,
        network=network,
    )
    onnx_model.metadata.update(info)
    support.record_stage(onnx_model, "export", start)
