"""``train_deploy``: data step -> train -> evaluate -> prune -> retrain -> evaluate -> gate ->
export + INT8 calibration -> engine builds per target -> publish.

One DAG for every network of the network table: the network is a parameter of every
component (its hooks decide what the data step does and which metric the gate reads);
`build` names the pipeline ``tlt-<network>-train-deploy`` and makes that network the
default of its ``network`` parameter.
"""

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
from pipelines.names import network_title, pipeline_name
from pipelines.targets import Target
from pipelines.tasks import (
    build_and_publish,
    launches_jobs,
    on_cpu,
    on_gpu,
    retried,
    with_secrets,
)
from tlt_core.networks import DEFAULT_NETWORK, NETWORKS, get_network

PIPELINE = "train_deploy"
NAME = pipeline_name(PIPELINE)  # the default network's


def description(network: str = DEFAULT_NETWORK) -> str:
    metric = get_network(network).primary_metric
    return (
        f"Train {network_title(network)} (the network parameter; {network} here) on its "
        "dataset, prune and retrain it, check its primary metric "
        f"({metric.name}: {metric.description}) against the quality gate, export it to ONNX "
        "with INT8 calibration and DeepStream files, build a TensorRT engine per deployment "
        "target and publish the version."
    )


# The run form's parameter help (KFP copies the Args: section into the IR), filled in for
# the network the pipeline is compiled for.
_DOC = """Train, prune, retrain, gate, export and build engines; publish one model version.

        Args:
            dataset_uri: Where the training data is: an s3://bucket/prefix or a path on a
                mounted volume. Detectors (ssd, detectnet_v2): KITTI image_2/ and label_2/
                folders; classification: train/ and val/, one folder per class in each.
            experiment_spec: Text of the network's experiment spec used for training and
                evaluation; its data sources are replaced by the data step's output.
            publish_uri: Where model versions are published: an s3://bucket/prefix; the
                version is written under publish_uri/model_version/.
            model_version: Name of the version to publish, e.g. the git commit or v1.4.0
                (letters, digits, dots, dashes); an existing version is not overwritten.
            convert_spec: Text of the dataset-convert spec (TLT's kitti_config) for a
                detector; its root_directory_path is replaced by dataset_uri. Not used by
                classification (leave empty).
            retrain_spec: Text of the spec for retraining the pruned model. Empty: the
                experiment spec with no regularizer, as TLT recommends.
            calibration_images_uri: Folder (s3:// prefix or path) of JPEG/PNG images for
                INT8 calibration, ideally from the deployment cameras (a folder of class
                folders is read class by class); needs at least cal_batches x
                cal_batch_size images.
            git_commit: Commit of the specs, recorded in the published manifest.
            min_map: Quality gate: the smallest value of the network's primary metric
                ({metric}) the pruned, retrained model must reach on the validation data,
                from 0 to 1 (0.5 = 50 %).
            max_map_drop: Quality gate: the largest loss of {metric} the pruned model may
                show against the unpruned one, from 0 to 1 in absolute terms (0.02 = 2
                points).
            prune_threshold: Filters whose normalised L2 norm is below this are removed,
                from 0 to 1; higher prunes more (0.1 is TLT's example; try 0.05 to 0.5).
            cal_batches: Number of image batches used for INT8 calibration (1 or more).
            cal_batch_size: Images per calibration batch (1 or more).
            require_tensorrt: Fail the engine builds when TensorRT or a GPU is missing.
                Off only for local test runs: the report then says no engine was built.
            network: The network trained and deployed, a name of tlt_core's network
                table ({networks}); experiment_spec must be that network's spec.
            workers: Pods that train and retrain together; 1 trains in the task's own pod,
                more runs a TrainJob or TFJob of that many pods (one chief).
            gpus_per_worker: GPUs each training pod gets when workers is more than 1.
            launcher: What runs multi-pod training: trainjob (Kubeflow Trainer v2, on the
                chart's TrainingRuntime) or tfjob (Kubeflow Training Operator v1).
        """


def build(
    targets: list[Target], secrets: SecretNames | None = None, network: str = DEFAULT_NETWORK
):
    """The pipeline function for a target matrix and a network (engine builds are fanned
    out at compile time, one task per target, so each gets its own node pool and image)."""
    secrets = secrets or SecretNames()
    net = get_network(network)

    def train_deploy(
        dataset_uri: str,
        experiment_spec: str,
        publish_uri: str,
        model_version: str,
        convert_spec: str = "",
        retrain_spec: str = "",
        calibration_images_uri: str = "",
        git_commit: str = "unknown",
        min_map: float = 0.5,
        max_map_drop: float = 0.02,
        prune_threshold: float = 0.1,
        cal_batches: int = 10,
        cal_batch_size: int = 8,
        require_tensorrt: bool = True,
        network: str = net.name,
        workers: int = 1,
        gpus_per_worker: int = 1,
        launcher: str = "trainjob",
    ):
        converted = dataset_convert(
            dataset_uri=dataset_uri, convert_spec=convert_spec, network=network
        )
        retried(with_secrets(on_cpu(converted), secrets, s3=True))

        distributed = {"workers": workers, "gpus_per_worker": gpus_per_worker, "launcher": launcher}
        trained = train(
            dataset=converted.outputs["dataset"],
            experiment_spec=experiment_spec,
            network=network,
            **distributed,
        )
        retried(with_secrets(on_gpu(trained), secrets, model_key=True), attempts=2)
        launches_jobs(trained, secrets)

        evaluated = evaluate(
            model=trained.outputs["model"],
            dataset=converted.outputs["dataset"],
            experiment_spec=experiment_spec,
            report_title="Evaluation of the trained model",
            network=network,
        )
        with_secrets(on_gpu(evaluated, memory="16Gi"), secrets, model_key=True)

        pruned = prune(model=trained.outputs["model"], threshold=prune_threshold, network=network)
        with_secrets(on_cpu(pruned), secrets, model_key=True)

        retrained = retrain(
            pruned_model=pruned.outputs["pruned_model"],
            dataset=converted.outputs["dataset"],
            experiment_spec=experiment_spec,
            retrain_spec=retrain_spec,
            network=network,
            **distributed,
        )
        retried(with_secrets(on_gpu(retrained), secrets, model_key=True), attempts=2)
        launches_jobs(retrained, secrets)

        evaluated_pruned = evaluate(
            model=retrained.outputs["model"],
            dataset=converted.outputs["dataset"],
            experiment_spec=experiment_spec,
            report_title="Evaluation of the pruned, retrained model",
            network=network,
        )
        evaluated_pruned.set_display_name("evaluate-pruned")
        with_secrets(on_gpu(evaluated_pruned, memory="16Gi"), secrets, model_key=True)

        gate = quality_gate(
            unpruned_metric=evaluated.outputs["Output"],
            pruned_metric=evaluated_pruned.outputs["Output"],
            min_metric=min_map,
            max_metric_drop=max_map_drop,
            network=network,
        )
        on_cpu(gate, "500m", "1Gi")

        with dsl.If(gate.outputs["Output"] == "pass", name="quality-gate-passed"):
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
                model=retrained.outputs["model"],  # a QAT model keeps its learned scales
            )
            retried(with_secrets(on_cpu(calibrated, "4", "8Gi"), secrets, s3=True, model_key=True))

            build_and_publish(
                targets,
                secrets,
                precisions_of=lambda target: list(target.precisions),
                onnx_model=exported.outputs["onnx_model"],
                calibration_cache=calibrated.outputs["calibration_cache"],
                qdq_model=calibrated.outputs["qdq_model"],
                deepstream=exported.outputs["deepstream"],
                metrics=evaluated_pruned.outputs["metrics"],
                experiment_spec=experiment_spec,
                publish_uri=publish_uri,
                model_version=model_version,
                git_commit=git_commit,
                require_tensorrt=require_tensorrt,
                pipeline_name=pipeline_name(PIPELINE, net.name),
                stage_artifacts={
                    "dataset": converted.outputs["dataset"],
                    "trained_model": trained.outputs["model"],
                    "evaluation_report": evaluated.outputs["report"],
                    "pruned_model": pruned.outputs["pruned_model"],
                    "retrained_model": retrained.outputs["model"],
                    "pruned_evaluation_report": evaluated_pruned.outputs["report"],
                    "exported_model": exported.outputs["onnx_model"],
                },
            )

    train_deploy.__doc__ = _DOC.format(metric=net.primary_metric.name, networks=", ".join(NETWORKS))
    return dsl.pipeline(name=pipeline_name(PIPELINE, net.name), description=description(net.name))(
        train_deploy
    )
