"""``calibration_refresh``: recalibrate a published ONNX model on fresh images (CPU only),
rebuild the INT8 engines for every target and publish them as a new version.

Caching is off for every task: the inputs look the same every night while the images
behind the URI change.
"""

from kfp import dsl

from components.calibrate import calibrate
from components.fetch_published import fetch_published
from components.secrets import SecretNames
from pipelines.targets import Target
from pipelines.tasks import build_and_publish, on_cpu, retried, with_secrets

NAME = "tlt-ssd-calibration-refresh"


def build(targets: list[Target], secrets: SecretNames | None = None):
    secrets = secrets or SecretNames()

    @dsl.pipeline(name=NAME, description="Nightly INT8 recalibration and engine rebuild.")
    def calibration_refresh(
        publish_uri: str,
        source_version: str,
        new_version: str,
        calibration_images_uri: str,
        git_commit: str = "unknown",
        cal_batches: int = 10,
        cal_batch_size: int = 8,
        require_tensorrt: bool = True,
        network: str = "ssd",
    ):
        fetched = fetch_published(publish_uri=publish_uri, model_version=source_version)
        retried(with_secrets(on_cpu(fetched, "1", "2Gi"), secrets, s3=True))

        calibrated = calibrate(
            onnx_model=fetched.outputs["onnx_model"],
            experiment_spec=fetched.outputs["Output"],
            calibration_images_uri=calibration_images_uri,
            batches=cal_batches,
            batch_size=cal_batch_size,
            network=network,
        )
        retried(with_secrets(on_cpu(calibrated, "4", "8Gi"), secrets, s3=True))

        builds, published = build_and_publish(
            targets,
            secrets,
            precisions_of=lambda target: ["int8"] if "int8" in target.precisions else [],
            onnx_model=fetched.outputs["onnx_model"],
            calibration_cache=calibrated.outputs["calibration_cache"],
            deepstream=fetched.outputs["deepstream"],
            metrics=fetched.outputs["metrics"],
            experiment_spec=fetched.outputs["Output"],
            publish_uri=publish_uri,
            model_version=new_version,
            git_commit=git_commit,
            require_tensorrt=require_tensorrt,
        )

        for task in (fetched, calibrated, *builds, published):
            task.set_caching_options(enable_caching=False)

    return calibration_refresh
