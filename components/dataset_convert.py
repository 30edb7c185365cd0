"""Component: the data step: a dataset (path or s3:// URI) made into what the network
trains on (KITTI detectors: sharded TFRecord folds; classification: class folders checked
and passed on), by the network's ``prepare_dataset`` hook."""

from kfp import dsl
from kfp.dsl import Dataset, Output

from components import TLT_CORE_IMAGE


@dsl.component(base_image=TLT_CORE_IMAGE, install_kfp_package=False)
def dataset_convert(
    dataset_uri: str, dataset: Output[Dataset], convert_spec: str = "", network: str = "ssd"
) -> str:
    """Prepare the dataset at ``dataset_uri`` for ``network``: a detector's KITTI data is
    converted with the dataset-convert spec text ``convert_spec``; a classifier's train/
    and val/ class folders are checked and copied (``convert_spec`` unused).

    Returns the per-fold (or per-split) class counts as JSON (also in the artifact's
    metadata).
    """
    import json
    import time

    from tlt_core import pipeline_support as support

    start = time.time()
    counts = support.run_dataset_convert(dataset_uri, convert_spec, dataset.path, network)
    dataset.metadata["class_counts"] = counts
    support.record_stage(dataset, "dataset-convert", start)
    return json.dumps(counts, sort_keys=True)
