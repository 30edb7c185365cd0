"""Component: one Markdown summary of a run (published version, mAP, stage wall times)."""

from kfp import dsl
from kfp.dsl import HTML, Artifact, Dataset, Input, Markdown, Model, Output

from components import TLT_CORE_IMAGE


@dsl.component(base_image=TLT_CORE_IMAGE, install_kfp_package=False)
def run_summary(
    pipeline_name: str,
    publish_uri: str,
    model_version: str,
    manifest_uri: str,
    summary: Output[Markdown],
    dataset: Input[Dataset] = None,
    trained_model: Input[Model] = None,
    evaluation_report: Input[HTML] = None,
    pruned_model: Input[Model] = None,
    retrained_model: Input[Model] = None,
    pruned_evaluation_report: Input[HTML] = None,
    exported_model: Input[Model] = None,
    fetched_model: Input[Model] = None,
    calibration_cache: Input[Artifact] = None,
) -> None:
    """Summarise the published version ``manifest_uri`` names; each given artifact's
    metadata carries its stage's wall time (engine builds: their staged build reports)."""
    from tlt_core import pipeline_support as support

    print(f"summarising {manifest_uri}")
    stages = [
        ("dataset-convert", dataset),
        ("fetch-published", fetched_model),
        ("train", trained_model),
        ("evaluate", evaluation_report),
        ("prune", pruned_model),
        ("retrain", retrained_model),
        ("evaluate-pruned", pruned_evaluation_report),
        ("export", exported_model),
        ("calibrate", calibration_cache),
    ]
    text = support.summary_report_markdown(pipeline_name, publish_uri, model_version, stages)
    support.write_report(summary.path, text)
