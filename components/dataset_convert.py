"""Component: KITTI dataset (path or s3:// URI) -> sharded TFRecords."""

from kfp import dsl
from kfp.dsl import Dataset, Output

from components import TLT_CORE_IMAGE


@dsl.component(base_image=TLT_CORE_IMAGE, install_kfp_package=False)
def dataset_convert(dataset_uri: str, convert_spec: str, tfrecords: Output[Dataset]) -> str:
    """Convert the KITTI dataset at ``dataset_uri`` with the dataset-convert spec text.

    Returns the per-fold class counts as JSON (also stored in the artifact's metadata).
    """
    import json
    import time

    from tlt_core import pipeline_support as support

    start = time.time()
    counts = support.run_dataset_convert(dataset_uri, convert_spec, tfrecords.path)
    tfrecords.metadata["class_counts"] = counts
    support.record_stage(tfrecords, "dataset-convert", start)
    return json.dumps(counts, sort_keys=True)
