"""The `Network` interface: the hooks every shared stage calls, and nothing else.

A network (SSD, DetectNet_v2, classification) is one folder under ``tlt_core/networks/``
holding a subclass of `Network` and the code only it needs (its spec schema, targets, loss,
post-processing, export graph, DeepStream parts). The stages (``tlt_core.stages``), the
trainer (``tlt_core.train``), evaluation (``tlt_core.evaluate``), export, prune, the model
files, the runners, the CLI and the KFP support code are shared: they take a `Network`
object (from ``tlt_core.networks.get_network(name)``) and call the hooks below. They never
import a network's folder.

The shape follows TF Model Garden's ``Task`` (build_model / build_inputs / build_losses /
validation_step) and Ultralytics' ``BaseTrainer`` hooks. There is no registry: the table is
``tlt_core.networks.NETWORKS``, written out by hand.

Rules a network keeps:

- A network module imports no TensorFlow, Keras or ONNX at import time (the CLI builds its
  parser from the table, and light commands must start without TensorFlow): import them
  inside the hook bodies.
- Models are Keras 3 with stable layer names; TensorFlow ops only in the input pipeline and
  in export.
- Errors are `tlt_core.errors.TltError` subclasses naming file, line and field.

Data that crosses the seam (kept small on purpose):

- ``spec``: whatever `Network.load_spec` returns; shared code reads only the `NetworkSpec`
  protocol from it.
- ``batch``: a dict of numpy arrays / tensors from `Network.input_pipeline`; shared code
  reads only ``batch["image"]`` (float32 ``[B, H, W, C]``, preprocessed exactly as the model
  takes it) and ``batch["frame_id"]`` (string ``[B]``), and hands the whole batch back to
  the network (`training_targets`, `ground_truth`).
- ``raw``: the model's outputs for one batch as a tuple of numpy arrays in the order of
  `Network.raw_output_names` (what a `ModelRunner` returns, whatever the model file).
- ``prediction`` / ``truth``: one per image, network-defined (detections for SSD and
  DetectNet_v2, class scores for classification); shared code only collects them into lists
  and passes them to `Network.metric`.
"""

from __future__ import annotations

import abc
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Protocol, runtime_checkable

# The tasks a network can offer as ``tlt <network> <task>`` (shared stage per task).
TASKS: tuple[str, ...] = ("train", "evaluate", "inference", "prune", "export")


@runtime_checkable
class NetworkSpec(Protocol):
    """What shared code reads from any network's validated experiment spec."""

    path: str  # the file it was read from (labels errors)
    text: str  # the text as read
    base_dir: Path  # relative paths in the spec are resolved against this
    random_seed: int  # 0: not seeded
    class_names: tuple[str, ...]  # target classes, model order (background excluded)
    input_shape: tuple[int, int, int]  # (H, W, C) of the model input

    def to_text(self, *, absolute_paths: bool = False) -> str: ...

    def save(self, path: str | Path, *, absolute_paths: bool = True) -> Path: ...

    def with_overrides(self, overrides: Mapping[str, Any]) -> NetworkSpec: ...

    def replace_data_sources(self, train: Any = None, val: Any = None) -> NetworkSpec: ...


@dataclass(frozen=True)
class TrainingSettings:
    """The numbers the generic training loop needs, resolved from a spec by the network."""

    batch_size_per_replica: int
    num_epochs: int
    checkpoint_interval: int  # epochs between checkpoints (>= 1)
    validation_period: int  # epochs between validations (>= 1)
    seed: int | None  # None: not seeded
    # Where training starts from when ``-m`` is not given: (path, is_pruned) in the order
    # pruned, resume, pretrained; the first one set wins.
    start_models: tuple[tuple[str, bool], ...] = ()
    enable_qat: bool = False
    # The first epoch validated (002's first_validation_epoch); then every
    # validation_period epochs, and always after the last one.
    first_validation_epoch: int = 1
    num_epochs_field: str = "training_config.num_epochs"  # its spec field, for errors


@dataclass(frozen=True)
class MetricSpec:
    """A network's primary metric: the number the quality gate and ``status.json`` use."""

    name: str  # "mAP", "top1_accuracy"; also the key in metrics dicts and results.json
    description: str  # one line for reports and pipeline parameter help
    higher_is_better: bool = True


@dataclass
class MetricResult:
    """A metric over a dataset, as `Network.metric` computes it.

    ``value`` is the primary metric; ``per_class`` its per-class breakdown (AP per class,
    per-class accuracy); ``table`` the human table (``results.txt``, console);
    ``details`` the JSON-ready rest (``results.json``: modes, buckets, counts);
    ``raw`` the full network-specific result object (e.g. ``evaluate.ap.APResult``).
    """

    name: str
    value: float
    per_class: dict[str, float]
    num_images: int
    table: str = ""
    details: dict[str, Any] = field(default_factory=dict)
    raw: Any = field(default=None, repr=False)


@dataclass(frozen=True)
class ModelInfo:
    """What is known about a loaded model, whatever file it came from (``.tlt``, ``.onnx``,
    ``.etlt``, ``.engine``): its input, its class count and its metadata (the network's own
    keys, e.g. SSD's ``feature_map_sizes``). Every ``ModelRunner`` has these three
    attributes too, so hooks taking an ``info`` accept a runner as it is."""

    input_shape: tuple[int, int, int]  # (H, W, C)
    num_classes: int  # object classes, background excluded
    metadata: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class FrameDrawing:
    """How an evaluation report draws a detector's validation frames (``evaluate.frames``):
    ``mean_bgr`` is added back to the model input to show it, and a detection matches an
    object at ``iou_threshold`` (the metric's matching IoU: one for all classes, or one per
    class in ``class_names`` order). The truths the network gives (``ground_truth``) must
    have ``boxes``, ``classes`` and ``difficult`` (as ``evaluate.ap.GroundTruth``)."""

    mean_bgr: tuple[float, float, float]
    iou_threshold: float | tuple[float, ...]


class InferenceWriter(Protocol):
    """Writes ``tlt <network> inference`` results; made by `Network.inference_writer`."""

    def add(self, image_path: Path, image_bgr: Any, prediction: Any) -> int:
        """Record one image's prediction; returns how many objects/labels it wrote."""
        ...

    def close(self) -> dict[str, Any]:
        """Finish (e.g. write a CSV); returns a summary for the stage result."""
        ...


class Network(abc.ABC):
    """One network's hooks. Subclasses set the class attributes and implement the
    abstract methods; the non-abstract ones have defaults that fit most networks."""

    name: ClassVar[str]  # the CLI word and the ``network`` of model-file metadata
    title: ClassVar[str]  # one line for ``tlt --help``
    primary_metric: ClassVar[MetricSpec]
    tasks: ClassVar[tuple[str, ...]] = TASKS
    # Which sample ``tlt sample-data --task`` makes for it: "detection" (the shared KITTI
    # sample, whose specs/<network>_train.txt it gets) or the network's own.
    sample_task: ClassVar[str] = "detection"
    # Names of the raw model outputs, in the order runners return them (``raw``), and the
    # tensor names they have in the exported ONNX graph.
    raw_output_names: ClassVar[tuple[str, ...]]
    # ``tlt <network> inference``'s help: what it does, what -o receives, and what the
    # count it prints at the end counts (a detector's defaults).
    inference_description: ClassVar[str] = (
        "Detect objects in an image or a folder of images; write annotated images and, "
        "with -l, KITTI labels with the score as the 16th field (original image coordinates)."
    )
    inference_output_help: ClassVar[str] = "folder for annotated images (local or s3://)"
    prediction_noun: ClassVar[str] = "detections"
    # Post-processing variants ``export --nms`` may choose (first: the default).
    export_variants: ClassVar[tuple[str, ...]] = ("none",)
    # Layouts of the exported outputs (`export --output_layout`); the first is the default.
    output_layouts: ClassVar[tuple[str, ...]] = ("default",)
    # Spec fields `check_model`'s messages name for the input shape and the classes ("": the
    # spec as a whole).
    input_shape_field: ClassVar[str] = ""
    class_names_field: ClassVar[str] = ""

    # --- spec ------------------------------------------------------------------------------
    @abc.abstractmethod
    def load_spec(self, path: str | Path) -> NetworkSpec:
        """Read, parse and validate the experiment spec file at ``path`` (SpecError with
        ``path:line: field: message``). Stages call it once per task and pass the object on."""

    def spec_of(self, spec_or_path: Any) -> NetworkSpec:
        """A spec object as it is, or the spec file at a path loaded (stages take either,
        so a caller that parsed the spec once passes the object on)."""
        if isinstance(spec_or_path, str | os.PathLike):
            return self.load_spec(spec_or_path)
        return spec_or_path

    @abc.abstractmethod
    def parse_spec(
        self, text: str, *, path: str = "<string>", base_dir: str | Path | None = None
    ) -> NetworkSpec:
        """Parse and validate spec text (``path`` labels errors; ``base_dir`` anchors
        relative paths, default the working directory)."""

    @abc.abstractmethod
    def sample_spec(
        self, data_dir: str | Path, *, fast: bool = False, epochs: int | None = None
    ) -> str:
        """An experiment spec (text) that trains on the sample data in ``data_dir``
        (``tlt sample-data`` layout; ``tlt sample-data`` writes it as
        ``specs/<network>_train.txt``). ``fast``: a spec whose training takes minutes on
        2 CPU cores (the local pipeline run); ``epochs`` overrides the epoch count."""

    def generate_sample(
        self, output_dir: Path, *, num_train: int, num_val: int, seed: int, spec_root: Path
    ) -> tuple[dict[str, dict[str, int]], Path]:
        """Write this network's own sample dataset (``tlt sample-data --task <its task>``)
        into the empty ``output_dir``, with a spec naming ``spec_root``; returns the
        per-split class counts and the spec's path relative to ``output_dir``. Networks
        that train on the shared KITTI sample (the detectors) do not override it."""
        from tlt_core.errors import UsageError

        raise UsageError(f"{self.name} trains on the KITTI sample (tlt sample-data)")

    @abc.abstractmethod
    def training_settings(self, spec: NetworkSpec) -> TrainingSettings:
        """The generic loop's numbers from the spec's training / evaluation config."""

    def pruned_start_overrides(self, pruned_model_path: str) -> dict[str, Any]:
        """Spec overrides (`NetworkSpec.with_overrides`) that make training start from the
        pruned model at ``pruned_model_path``, keeping its shape (the pipeline's retrain).
        Default: TLT's ``training_config.pruned_model_path`` (SSD, DetectNet_v2)."""
        return {"training_config.pruned_model_path": str(pruned_model_path)}

    def no_regularizer_overrides(self) -> dict[str, Any]:
        """Spec overrides that train without a kernel regulariser (what TLT recommends for
        retraining a pruned model). Default: ``training_config.regularizer.type: NO_REG``."""
        return {"training_config.regularizer.type": "NO_REG"}

    # --- model -----------------------------------------------------------------------------
    @abc.abstractmethod
    def build_model(self, spec: NetworkSpec, *, kernel_regularizer: Any = None) -> Any:
        """A new ``keras.Model`` for the spec (inference form: what checkpoints, export and
        prune see). ``kernel_regularizer`` applies to every conv/dense kernel."""

    def kernel_regularizer(self, spec: NetworkSpec) -> Any:
        """The spec's kernel regulariser (a ``keras.regularizers.Regularizer``) or None."""
        return None

    @abc.abstractmethod
    def register_keras_classes(self) -> None:
        """Import the modules whose registered Keras classes (custom layers, losses) loading
        this network's saved models needs (``tlt_core.networks.load_model`` calls it for a
        file whose metadata names this network, ``KerasRunner.from_file`` for its own)."""

    @abc.abstractmethod
    def model_classes(self, model: Any) -> int:
        """Object classes a built Keras model predicts (background excluded)."""

    def describe_model(self, model: Any) -> dict[str, Any]:
        """JSON-ready keys describing a built model's layout that post-processing needs
        (SSD: ``feature_map_sizes``). Stored in model files and exports; runners put them in
        `ModelInfo.metadata`, and `postprocessor` reads them from there."""
        return {}

    def model_metadata(self, spec: NetworkSpec, model: Any) -> dict[str, Any]:
        """The network's own keys for a model file's metadata (shared code adds
        ``network``, ``spec_text``, ``class_names``, ``input_shape``, ``pruned``, ...).
        Default: `describe_model`."""
        return self.describe_model(model)

    def check_model(self, spec: NetworkSpec, info: ModelInfo, *, source: str) -> None:
        """The one model-vs-spec check (evaluate, inference, export, calibrate): raise
        ModelFileError naming ``source`` when the model cannot serve this spec. The default
        compares the input shape and the class count (and names, when the metadata has
        them); networks extend it with their own keys."""
        from tlt_core.errors import ModelFileError

        other = info.metadata.get("network")
        if other is not None and other != self.name:
            raise ModelFileError(f"{source}: a {other} model, not {self.name}")
        want = tuple(spec.input_shape)
        if tuple(info.input_shape) != want:
            shape_field = f"{self.input_shape_field} " if self.input_shape_field else ""
            raise ModelFileError(
                f"{source}: model input (H, W, C) {tuple(info.input_shape)} does not match "
                f"the spec's {shape_field}{want}"
            )
        field = self.class_names_field
        if info.num_classes != len(spec.class_names):
            whose = f"the spec's {field}" if field else "the spec"
            raise ModelFileError(
                f"{source}: model predicts {info.num_classes} classes, {whose} has "
                f"{len(spec.class_names)} ({', '.join(spec.class_names)})"
            )
        names = info.metadata.get("class_names")
        if names is not None and list(names) != list(spec.class_names):
            raise ModelFileError(
                f"{source}: spec classes {list(spec.class_names)} differ from the model's "
                f"{list(names)}" + (f" ({field})" if field else "")
            )

    def model_companion_files(self, class_names: Sequence[str]) -> dict[str, str]:
        """Files written next to every model file of this network (checkpoints, pruned
        models, exports) as ``{file name: text}``: classification's ``classmap.json``.
        Default: none."""
        return {}

    @abc.abstractmethod
    def checkpoint_stem(self, spec: NetworkSpec) -> str:
        """File name stem of training checkpoints, e.g. ``ssd_resnet18`` (the trainer
        appends ``_epoch_NNN[_step_SSSSS].tlt``)."""

    @abc.abstractmethod
    def prune_keep_layers(self, model: Any) -> list[str]:
        """Layers whose output channels pruning must keep (heads whose filter counts are
        fixed by classes / boxes / coordinates)."""

    def head_layers_description(self) -> str:
        """Which layers transfer learning re-initialises when the class count differs
        (for the log line)."""
        return "the output heads"

    # --- data ------------------------------------------------------------------------------
    @abc.abstractmethod
    def input_pipeline(
        self,
        spec: NetworkSpec,
        *,
        training: bool,
        batch_size: int,
        sources: Any = None,
        shuffle: bool | None = None,
        seed: int | None = None,
        repeat: bool = False,
        stats: Any = None,
    ) -> Any:
        """The ``tf.data.Dataset`` of batches (dicts) for training (with the network's
        training augmentation) or evaluation (resized and normalised only).
        ``batch["image"]`` is float32 ``[B, H, W, C]`` as the model takes it and
        ``batch["frame_id"]`` string ``[B]``; the other keys are the network's labels. ``sources`` overrides the spec's data sources;
        ``seed`` (default: the spec's) makes shuffling and augmentation repeatable;
        ``stats`` (a ``tlt_core.data.pipeline.InputStats``), when given, counts the records
        read and delivered, so images that fail to decode are reported, not dropped silently."""

    @abc.abstractmethod
    def dataset_size(self, spec: NetworkSpec, *, training: bool, sources: Any = None) -> int:
        """Number of images `input_pipeline` would read (one pass)."""

    # The file prefix of the TFRecord folds a detector's pipeline data step writes.
    PIPELINE_TFRECORD_PREFIX: ClassVar[str] = "tfrecords"

    def prepare_dataset(
        self, dataset_dir: Path, output_dir: Path, *, convert_spec: str = ""
    ) -> dict[str, Any]:
        """``train_deploy``'s data step: make the dataset at ``dataset_dir`` (local: already
        fetched) into what this network trains on, under ``output_dir`` (the step's output
        artifact, which every later step reads through `dataset_sources`). Returns JSON-ready
        counts for the UI. Default (KITTI detectors): 002's dataset-convert with the
        ``convert_spec`` text (its root_directory_path replaced by ``dataset_dir``) into
        sharded TFRecord folds."""
        from tlt_core.data.convert import convert_kitti, convert_options
        from tlt_core.errors import SpecError
        from tlt_core.spec.convert import parse_convert_spec

        if not convert_spec.strip():
            raise SpecError(
                f"empty: {self.name} trains on TFRecords that dataset-convert writes from "
                "KITTI data; give its spec (kitti_config)",
                "convert_spec",
            )
        spec = parse_convert_spec(convert_spec, path="convert_spec")  # located errors
        output_dir.mkdir(parents=True, exist_ok=True)
        result = convert_kitti(
            convert_options(spec.with_root(dataset_dir)),
            output_dir / self.PIPELINE_TFRECORD_PREFIX,
        )
        return {
            "folds": [dict(sorted(c.items())) for c in result.fold_class_counts],
            "frames_per_fold": list(result.fold_frame_counts),
            "total": dict(sorted(result.class_counts.items())),
        }

    def dataset_sources(self, dataset_dir: Path, *, validation_fold: int) -> tuple[list, list]:
        """``(train, val)`` data sources, in the form `NetworkSpec.replace_data_sources`
        takes, of what `prepare_dataset` wrote in ``dataset_dir``; ``validation_fold`` picks
        the fold validated on where the data has folds. Default: the TFRecord folds
        (``{"tfrecords_path": pattern}``), every other fold trained on."""
        from tlt_core.data.convert import fold_patterns

        train, val = fold_patterns(
            Path(dataset_dir) / self.PIPELINE_TFRECORD_PREFIX, validation_fold
        )
        return [{"tfrecords_path": p} for p in train], [{"tfrecords_path": p} for p in val]

    def has_validation_data(self, spec: NetworkSpec) -> bool:
        """Whether the spec names validation data (training validates only then)."""
        return True

    def training_sources(self, spec: NetworkSpec) -> Any:
        """The ``sources`` (for `input_pipeline`) of the data the spec trains on, for
        ``evaluate --use_training_set``; None: this network does not offer it."""
        return None

    @abc.abstractmethod
    def preprocess(self, spec: NetworkSpec, rgb: Any) -> Any:
        """One decoded uint8 RGB image ``[h, w, 3]`` -> float32 model input ``[H, W, C]``
        (numpy; inference and INT8 calibration use it, the same as the eval pipeline)."""

    # --- training --------------------------------------------------------------------------
    @abc.abstractmethod
    def training_model(self, model: Any) -> Any:
        """The Keras model the optimizer trains: ``model`` with its outputs arranged into
        the one tensor `loss` reads (weights shared with ``model``)."""

    @abc.abstractmethod
    def training_targets(self, spec: NetworkSpec, model: Any) -> Callable[[Any], tuple]:
        """A TF graph function ``batch -> (images, y_true)`` mapped over the training
        pipeline (SSD: anchor matching + box encoding; DetectNet_v2: rasterised
        coverage/bbox grids; classification: one-hot labels). Built once per run (e.g.
        anchors generated here from ``model``)."""

    @abc.abstractmethod
    def loss(self, spec: NetworkSpec) -> Any:
        """A ``keras.losses.Loss``; its ``call(y_true, y_pred)`` returns per-image losses
        (the distributed loop sums them and divides by the global batch)."""

    @abc.abstractmethod
    def optimizer(self, spec: NetworkSpec, *, total_steps: int, replicas: int) -> Any:
        """A ``keras.optimizers.Optimizer`` with the spec's learning-rate schedule
        (rate scaled by ``replicas``) over ``total_steps`` steps."""

    # --- prediction and evaluation ---------------------------------------------------------
    @abc.abstractmethod
    def raw_outputs(self, outputs: Any) -> tuple[Any, ...]:
        """A Keras model call's outputs (numpy) -> ``raw`` in `raw_output_names` order,
        with the activations the exported graph applies (SSD: softmax over ``conf``), so
        every runner returns the same thing."""

    @abc.abstractmethod
    def postprocessor(
        self, spec: NetworkSpec, info: ModelInfo, *, threshold: float | None = None
    ) -> Callable[[tuple[Any, ...], Sequence[tuple[int, int]]], list[Any]]:
        """A function ``(raw, image_sizes) -> [prediction per image]``; ``image_sizes`` are
        ``(h, w)`` pixels the predictions are scaled to. Built once per task: SSD generates
        its anchors here (the one place), DetectNet_v2 its grid and clustering settings.
        ``threshold`` overrides the spec's confidence threshold (inference ``-t``)."""

    @abc.abstractmethod
    def ground_truth(self, batch: Mapping[str, Any]) -> list[Any]:
        """The truth per image of an evaluation batch (numpy), for `metric`."""

    @abc.abstractmethod
    def metric(
        self,
        spec: NetworkSpec,
        predictions: Sequence[Any],
        truths: Sequence[Any],
        *,
        mode: str | None = None,
    ) -> MetricResult:
        """The primary metric (and its breakdown) of collected predictions. ``mode``
        selects a variant where the network has one (SSD's AP ``SAMPLE``/``INTEGRATE``)."""

    def prediction_agreement(
        self,
        spec: NetworkSpec,
        predictions: Sequence[Any],
        reference: Sequence[Any],
        *,
        threshold: float,
    ) -> float | None:
        """How well ``predictions`` agree with ``reference`` predictions of the same images
        (the INT8 check: INT8 against FP32), 1.0 = the same; None when not defined."""
        return None

    def metric_report(
        self, spec: NetworkSpec, result: MetricResult, output_dir: Path
    ) -> list[Path]:
        """Write ``results.json`` (and any plots) for ``evaluate -o``; returns the paths,
        ``results.json`` first (the stage adds the model path and the other modes to it)."""
        import json

        from tlt_core.io_utils import write_text_atomic

        summary = {
            result.name: result.value,
            "per_class": result.per_class,
            "num_images": result.num_images,
            **result.details,
        }
        return [write_text_atomic(output_dir / "results.json", json.dumps(summary, indent=2))]

    def metric_variants(self, spec: NetworkSpec) -> tuple[str, ...]:
        """Other modes ``evaluate`` also reports for reference (computed with ``mode=``)."""
        return ()

    def eval_batch_size(self, spec: NetworkSpec) -> int:
        """Default evaluation batch size."""
        return 1

    def evaluation_cost(self, spec: NetworkSpec) -> Callable[[tuple, Any], Any] | None:
        """The training cost over an evaluation batch: ``(raw outputs, batch) -> cost per
        image``, averaged by ``evaluate`` into its "Validation cost" line (002 6.2); None:
        the network reports no cost."""
        return None

    def frame_drawing(self, spec: NetworkSpec) -> FrameDrawing | None:
        """How the evaluation report draws frames, for a network whose predictions are
        ``boxes.nms.Detections`` and truths ``evaluate.ap.GroundTruth``; None (no grid of
        frames) otherwise."""
        return None

    # --- network-specific task options -----------------------------------------------------
    def add_task_options(self, task: str, parser: Any) -> None:
        """Add this network's own options to the ``tlt <network> <task>`` parser (none by
        default; DetectNet_v2's inference takes 002's cluster-params file)."""
        return None

    def task_options(self, task: str, args: Any) -> dict[str, Any]:
        """This network's own options from the parsed arguments; the stage hands them to
        the network's hooks as ``options`` (only when not empty)."""
        return {}

    # --- inference -------------------------------------------------------------------------
    @abc.abstractmethod
    def inference_writer(
        self,
        spec: NetworkSpec,
        output_dir: Path,
        *,
        label_dir: Path | None = None,
    ) -> InferenceWriter:
        """Where ``tlt <network> inference`` puts its results (SSD: annotated images in
        ``output_dir`` and KITTI labels in ``label_dir``; classification: a CSV)."""

    # --- export ----------------------------------------------------------------------------
    @abc.abstractmethod
    def onnx_postprocess(
        self, spec: NetworkSpec, network_onnx: Any, model: Any, *, variant: str
    ) -> Any:
        """The exported model: ``network_onnx`` (the Keras model as ONNX, raw outputs named
        `raw_output_names`) with the network's post-processing graph appended (SSD: decode
        + NMS; DetectNet_v2 / classification: the raw outputs as they are). ``variant`` is
        one of `export_variants`. Returns an ``onnx.ModelProto``."""

    def export_metadata(self, spec: NetworkSpec, model: Any, *, variant: str) -> dict[str, Any]:
        """The network's keys for the exported model's metadata (runners read them back)."""
        return {}

    def with_output_layout(self, exported: Any, layout: str) -> Any:
        """The exported ONNX model (from `onnx_postprocess`, in the first of
        `output_layouts`) with its outputs in ``layout``, another of `output_layouts`."""
        if layout != self.output_layouts[0]:
            raise ValueError(f"{self.name} exports have no output layout {layout!r}")
        return exported

    def layout_for_outputs(self, names: Sequence[str]) -> str | None:
        """The output layout whose outputs include ``names`` (``tlt-converter -o``), or
        None when none of `output_layouts` has them all."""
        return None

    def final_postprocessor(
        self, spec: NetworkSpec, info: ModelInfo, *, threshold: float | None = None
    ) -> Callable[[Mapping[str, Any], Sequence[tuple[int, int]]], list[Any]] | None:
        """Like `postprocessor`, from an exported model's final outputs (``{name: array}``,
        any of `output_layouts`) instead of its raw outputs: evaluates an engine built with
        only those (``tlt-converter -o``). None: the network's predictions need the raw
        outputs."""
        return None

    @abc.abstractmethod
    def deepstream_config(
        self,
        spec: NetworkSpec,
        *,
        model_file: Path,
        model_class_names: Sequence[str] | None,
        data_type: str,
        batch_size: int,
        engine_file: str | Path | None,
        cal_cache_file: str | Path | None,
    ) -> dict[str, str]:
        """DeepStream ``nvinfer`` files as ``{file name: text}`` (shared code writes them
        next to the model, atomically): ``labels.txt`` and the config with the network's
        output blob names and parser / cluster settings."""
