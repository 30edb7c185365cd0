"""Component: INT8 on the CPU from calibration images, both forms: the TensorRT calibration
cache (entropy method) and the explicitly quantised Q/DQ ONNX (TensorRT 10); for a model
trained with QAT, both forms from its learned ranges instead."""

from typing import Optional

from kfp import dsl
from kfp.dsl import Artifact, Input, Model, Output

from components import TLT_CORE_IMAGE


@dsl.component(base_image=TLT_CORE_IMAGE, install_kfp_package=False)
def calibrate(
    onnx_model: Input[Model],
    experiment_spec: str,
    calibration_images_uri: str,
    calibration_cache: Output[Artifact],
    qdq_model: Output[Model],
    batches: int = 10,
    batch_size: int = 8,
    network: str = "ssd",
    model: Optional[Input[Model]] = None,  # noqa: UP045 (KFP reads Optional[...], not X | None)
) -> int:
    """Returns the number of tensors in the cache. ``model``: the ``.tlt`` the ONNX was
    exported from; when it holds QAT ranges they give both forms and no image is read."""
    import time

    from tlt_core import pipeline_support as support

    start = time.time()
    count = support.run_calibrate(
        onnx_model.path,
        experiment_spec,
        calibration_images_uri,
        calibration_cache.path,
        qdq_out=qdq_model.path,
        batches=batches,
        batch_size=batch_size,
        network=network,
        model_path=model.path if model is not None else None,
    )
    calibration_cache.metadata["tensors"] = count
    support.record_stage(calibration_cache, "calibrate", start)
    return count
