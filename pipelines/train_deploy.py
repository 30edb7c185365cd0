"""``train_deploy``: convert -> train -> evaluate -> prune -> retrain -> evaluate -> gate ->
export + INT8 calibration -> engine builds per target -> publish."""

from kfp import dsl

from components.calibrate import calibrate
from components.dataset_convert import dataset_convert
from components.evaluate import evaluate
from components.export import export
from components.gate import quality_gate
from components.prune import prune
from components.retrain import retrain
from components.secrets import SecretNames
from components.train import train
from pipelines.targets import Target
from pipelines.tasks import (
    build_and_publish,
    launches_jobs,
    on_cpu,
    on_gpu,
    retried,
    with_secrets,
)

NAME = "tlt-ssd-train-deploy"


def build(targets: list[Target], secrets: SecretNames | None = None):
    """The pipeline function for a target matrix (engine builds are fanned out at compile
    time, one task per target, so each gets its own node pool and image)."""
    secrets = secrets or SecretNames()

    @dsl.pipeline(
        name=NAME,
        description="Train, prune, retrain, export and build engines of a network (SSD by "
        "default); the gate reads the network's primary metric (SSD: mAP).",
    )
    def train_deploy(
        dataset_uri: str,
        convert_spec: str,
        experiment_spec: str,
        publish_uri: str,
        model_version: str,
        retrain_spec: str = "",
        calibration_images_uri: str = "",
        git_commit: str = "unknown",
        min_map: float = 0.5,
        max_map_drop: float = 0.02,
        prune_threshold: float = 0.1,
        cal_batches: int = 10,
        cal_batch_size: int = 8,
        require_tensorrt: bool = True,
        network: str = "ssd",
        workers: int = 1,
        gpus_per_worker: int = 1,
        launcher: str = "trainjob",
    ):
        converted = dataset_convert(dataset_uri=dataset_uri, convert_spec=convert_spec)
        retried(with_secrets(on_cpu(converted), secrets, s3=True))

        distributed = {"workers": workers, "gpus_per_worker": gpus_per_worker, "launcher": launcher}
        trained = train(
            tfrecords=converted.outputs["tfrecords"],
            experiment_spec=experiment_spec,
            network=network,
            **distributed,
        )
        retried(with_secrets(on_gpu(trained), secrets, model_key=True), attempts=2)
        launches_jobs(trained, secrets)

        evaluated = evaluate(
            model=trained.outputs["model"],
            tfrecords=converted.outputs["tfrecords"],
            experiment_spec=experiment_spec,
            network=network,
        )
        with_secrets(on_gpu(evaluated, memory="16Gi"), secrets, model_key=True)

        pruned = prune(model=trained.outputs["model"], threshold=prune_threshold, network=network)
        with_secrets(on_cpu(pruned), secrets, model_key=True)

        retrained = retrain(
            pruned_model=pruned.outputs["pruned_model"],
            tfrecords=converted.outputs["tfrecords"],
            experiment_spec=experiment_spec,
            retrain_spec=retrain_spec,
            network=network,
            **distributed,
        )
        retried(with_secrets(on_gpu(retrained), secrets, model_key=True), attempts=2)
        launches_jobs(retrained, secrets)

        evaluated_pruned = evaluate(
            model=retrained.outputs["model"],
            tfrecords=converted.outputs["tfrecords"],
            experiment_spec=experiment_spec,
            network=network,
        )
        evaluated_pruned.set_display_name("evaluate-pruned")
        with_secrets(on_gpu(evaluated_pruned, memory="16Gi"), secrets, model_key=True)

        gate = quality_gate(
            unpruned_map=evaluated.outputs["Output"],
            pruned_map=evaluated_pruned.outputs["Output"],
            min_map=min_map,
            max_map_drop=max_map_drop,
            network=network,
        )
        on_cpu(gate, "500m", "1Gi")

        with dsl.If(gate.output == "pass", name="quality-gate-passed"):
            exported = export(
                model=retrained.outputs["model"], experiment_spec=experiment_spec, network=network
            )
            with_secrets(on_cpu(exported), secrets, model_key=True)

            calibrated = calibrate(
                onnx_model=exported.outputs["onnx_model"],
                experiment_spec=experiment_spec,
                calibration_images_uri=calibration_images_uri,
                batches=cal_batches,
                batch_size=cal_batch_size,
                network=network,
            )
            retried(with_secrets(on_cpu(calibrated, "4", "8Gi"), secrets, s3=True))

            build_and_publish(
                targets,
                secrets,
                precisions_of=lambda target: list(target.precisions),
                onnx_model=exported.outputs["onnx_model"],
                calibration_cache=calibrated.outputs["calibration_cache"],
                deepstream=exported.outputs["deepstream"],
                metrics=evaluated_pruned.outputs["metrics"],
                experiment_spec=experiment_spec,
                publish_uri=publish_uri,
                model_version=model_version,
                git_commit=git_commit,
                require_tensorrt=require_tensorrt,
            )

    return train_deploy
