"""``calibration_refresh``: recalibrate a published ONNX model on fresh images (CPU only),
rebuild the INT8 engines for every target and publish them as a new version.

Caching is off for every task: the inputs look the same every night while the images
behind the URI change.
"""

from kfp import dsl

from components.calibrate import calibrate
from components.fetch_published import fetch_published
from components.secrets import SecretNames
from pipelines.names import network_title, pipeline_name
from pipelines.targets import Target
from pipelines.tasks import build_and_publish, on_cpu, retried, with_secrets
from tlt_core.networks import DEFAULT_NETWORK, NETWORKS, get_network

PIPELINE = "calibration_refresh"
NAME = pipeline_name(PIPELINE)  # the default network's


def description(network: str = DEFAULT_NETWORK) -> str:
    return (
        f"Recalibrate a published ONNX model of {network_title(network)} (the network "
        f"parameter; {network} here) for INT8 on fresh images (CPU only), rebuild the INT8 "
        "engines of every target and publish them as a new version."
    )


def build(
    targets: list[Target], secrets: SecretNames | None = None, network: str = DEFAULT_NETWORK
):
    """The pipeline function for a target matrix and a network (named
    ``tlt-<network>-calibration-refresh``, that network the default of its parameter)."""
    secrets = secrets or SecretNames()
    net = get_network(network)

    def calibration_refresh(
        publish_uri: str,
        source_version: str,
        new_version: str,
        calibration_images_uri: str,
        git_commit: str = "unknown",
        cal_batches: int = 10,
        cal_batch_size: int = 8,
        require_tensorrt: bool = True,
        network: str = net.name,
    ):
        """Recalibrate a published model and publish its new INT8 engines.

        Args:
            publish_uri: Where model versions are published: an s3://bucket/prefix holding
                source_version/ and receiving new_version/.
            source_version: The published version whose ONNX model is recalibrated.
            new_version: Name of the version to publish (letters, digits, dots, dashes),
                e.g. the date; an existing version is not overwritten.
            calibration_images_uri: Folder (s3:// prefix or path) of fresh JPEG/PNG images
                from the deployment cameras (a folder of class folders is read class by
                class); needs at least cal_batches x cal_batch_size.
            git_commit: Commit of the specs, recorded in the published manifest.
            cal_batches: Number of image batches used for INT8 calibration (1 or more).
            cal_batch_size: Images per calibration batch (1 or more).
            require_tensorrt: Fail the engine builds when TensorRT or a GPU is missing.
                Off only for local test runs: the report then says no engine was built.
            network: The network of the published model, a name of tlt_core's network
                table ({networks}); its spec is read from the published version.
        """
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

        builds, published, summary = build_and_publish(
            targets,
            secrets,
            precisions_of=lambda target: ["int8"] if "int8" in target.precisions else [],
            onnx_model=fetched.outputs["onnx_model"],
            calibration_cache=calibrated.outputs["calibration_cache"],
            qdq_model=calibrated.outputs["qdq_model"],
            deepstream=fetched.outputs["deepstream"],
            metrics=fetched.outputs["metrics"],
            experiment_spec=fetched.outputs["Output"],
            publish_uri=publish_uri,
            model_version=new_version,
            git_commit=git_commit,
            require_tensorrt=require_tensorrt,
            pipeline_name=pipeline_name(PIPELINE, net.name),
            stage_artifacts={"fetched_model": fetched.outputs["onnx_model"]},
        )

        for task in (fetched, calibrated, *builds, published, summary):
            task.set_caching_options(enable_caching=False)

    calibration_refresh.__doc__ = calibration_refresh.__doc__.format(networks=", ".join(NETWORKS))
    return dsl.pipeline(name=pipeline_name(PIPELINE, net.name), description=description(net.name))(
        calibration_refresh
    )
