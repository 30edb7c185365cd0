from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Iterable as _Iterable, Mapping as _Mapping, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Experiment(_message.Message):
    __slots__ = ("random_seed", "ssd_config", "training_config", "eval_config", "nms_config", "augmentation_config", "dataset_config")
    RANDOM_SEED_FIELD_NUMBER: _ClassVar[int]
    SSD_CONFIG_FIELD_NUMBER: _ClassVar[int]
    TRAINING_CONFIG_FIELD_NUMBER: _ClassVar[int]
    EVAL_CONFIG_FIELD_NUMBER: _ClassVar[int]
    NMS_CONFIG_FIELD_NUMBER: _ClassVar[int]
    AUGMENTATION_CONFIG_FIELD_NUMBER: _ClassVar[int]
    DATASET_CONFIG_FIELD_NUMBER: _ClassVar[int]
    random_seed: int
    ssd_config: SSDConfig
    training_config: TrainingConfig
    eval_config: EvalConfig
    nms_config: NMSConfig
    augmentation_config: AugmentationConfig
    dataset_config: DatasetConfig
    def __init__(self, random_seed: _Optional[int] = ..., ssd_config: _Optional[_Union[SSDConfig, _Mapping]] = ..., training_config: _Optional[_Union[TrainingConfig, _Mapping]] = ..., eval_config: _Optional[_Union[EvalConfig, _Mapping]] = ..., nms_config: _Optional[_Union[NMSConfig, _Mapping]] = ..., augmentation_config: _Optional[_Union[AugmentationConfig, _Mapping]] = ..., dataset_config: _Optional[_Union[DatasetConfig, _Mapping]] = ...) -> None: ...

class SSDConfig(_message.Message):
    __slots__ = ("aspect_ratios", "aspect_ratios_global", "scales", "min_scale", "max_scale", "two_boxes_for_ar1", "steps", "offsets", "variances", "clip_boxes", "arch", "nlayers", "freeze_bn", "freeze_blocks")
    ASPECT_RATIOS_FIELD_NUMBER: _ClassVar[int]
    ASPECT_RATIOS_GLOBAL_FIELD_NUMBER: _ClassVar[int]
    SCALES_FIELD_NUMBER: _ClassVar[int]
    MIN_SCALE_FIELD_NUMBER: _ClassVar[int]
    MAX_SCALE_FIELD_NUMBER: _ClassVar[int]
    TWO_BOXES_FOR_AR1_FIELD_NUMBER: _ClassVar[int]
    STEPS_FIELD_NUMBER: _ClassVar[int]
    OFFSETS_FIELD_NUMBER: _ClassVar[int]
    VARIANCES_FIELD_NUMBER: _ClassVar[int]
    CLIP_BOXES_FIELD_NUMBER: _ClassVar[int]
    ARCH_FIELD_NUMBER: _ClassVar[int]
    NLAYERS_FIELD_NUMBER: _ClassVar[int]
    FREEZE_BN_FIELD_NUMBER: _ClassVar[int]
    FREEZE_BLOCKS_FIELD_NUMBER: _ClassVar[int]
    aspect_ratios: str
    aspect_ratios_global: str
    scales: str
    min_scale: float
    max_scale: float
    two_boxes_for_ar1: bool
    steps: str
    offsets: str
    variances: str
    clip_boxes: bool
    arch: str
    nlayers: int
    freeze_bn: bool
    freeze_blocks: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, aspect_ratios: _Optional[str] = ..., aspect_ratios_global: _Optional[str] = ..., scales: _Optional[str] = ..., min_scale: _Optional[float] = ..., max_scale: _Optional[float] = ..., two_boxes_for_ar1: bool = ..., steps: _Optional[str] = ..., offsets: _Optional[str] = ..., variances: _Optional[str] = ..., clip_boxes: bool = ..., arch: _Optional[str] = ..., nlayers: _Optional[int] = ..., freeze_bn: bool = ..., freeze_blocks: _Optional[_Iterable[int]] = ...) -> None: ...

class SoftStartAnnealingSchedule(_message.Message):
    __slots__ = ("min_learning_rate", "max_learning_rate", "soft_start", "annealing")
    MIN_LEARNING_RATE_FIELD_NUMBER: _ClassVar[int]
    MAX_LEARNING_RATE_FIELD_NUMBER: _ClassVar[int]
    SOFT_START_FIELD_NUMBER: _ClassVar[int]
    ANNEALING_FIELD_NUMBER: _ClassVar[int]
    min_learning_rate: float
    max_learning_rate: float
    soft_start: float
    annealing: float
    def __init__(self, min_learning_rate: _Optional[float] = ..., max_learning_rate: _Optional[float] = ..., soft_start: _Optional[float] = ..., annealing: _Optional[float] = ...) -> None: ...

class LearningRateConfig(_message.Message):
    __slots__ = ("soft_start_annealing_schedule",)
    SOFT_START_ANNEALING_SCHEDULE_FIELD_NUMBER: _ClassVar[int]
    soft_start_annealing_schedule: SoftStartAnnealingSchedule
    def __init__(self, soft_start_annealing_schedule: _Optional[_Union[SoftStartAnnealingSchedule, _Mapping]] = ...) -> None: ...

class RegularizerConfig(_message.Message):
    __slots__ = ("type", "weight")
    class RegularizationType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        NO_REG: _ClassVar[RegularizerConfig.RegularizationType]
        L1: _ClassVar[RegularizerConfig.RegularizationType]
        L2: _ClassVar[RegularizerConfig.RegularizationType]
    NO_REG: RegularizerConfig.RegularizationType
    L1: RegularizerConfig.RegularizationType
    L2: RegularizerConfig.RegularizationType
    TYPE_FIELD_NUMBER: _ClassVar[int]
    WEIGHT_FIELD_NUMBER: _ClassVar[int]
    type: RegularizerConfig.RegularizationType
    weight: float
    def __init__(self, type: _Optional[_Union[RegularizerConfig.RegularizationType, str]] = ..., weight: _Optional[float] = ...) -> None: ...

class TrainingConfig(_message.Message):
    __slots__ = ("batch_size_per_gpu", "num_epochs", "enable_qat", "learning_rate", "regularizer", "max_queue_size", "n_workers", "use_multiprocessing", "checkpoint_interval", "pretrain_model_path", "resume_model_path", "pruned_model_path")
    BATCH_SIZE_PER_GPU_FIELD_NUMBER: _ClassVar[int]
    NUM_EPOCHS_FIELD_NUMBER: _ClassVar[int]
    ENABLE_QAT_FIELD_NUMBER: _ClassVar[int]
    LEARNING_RATE_FIELD_NUMBER: _ClassVar[int]
    REGULARIZER_FIELD_NUMBER: _ClassVar[int]
    MAX_QUEUE_SIZE_FIELD_NUMBER: _ClassVar[int]
    N_WORKERS_FIELD_NUMBER: _ClassVar[int]
    USE_MULTIPROCESSING_FIELD_NUMBER: _ClassVar[int]
    CHECKPOINT_INTERVAL_FIELD_NUMBER: _ClassVar[int]
    PRETRAIN_MODEL_PATH_FIELD_NUMBER: _ClassVar[int]
    RESUME_MODEL_PATH_FIELD_NUMBER: _ClassVar[int]
    PRUNED_MODEL_PATH_FIELD_NUMBER: _ClassVar[int]
    batch_size_per_gpu: int
    num_epochs: int
    enable_qat: bool
    learning_rate: LearningRateConfig
    regularizer: RegularizerConfig
    max_queue_size: int
    n_workers: int
    use_multiprocessing: bool
    checkpoint_interval: int
    pretrain_model_path: str
    resume_model_path: str
    pruned_model_path: str
    def __init__(self, batch_size_per_gpu: _Optional[int] = ..., num_epochs: _Optional[int] = ..., enable_qat: bool = ..., learning_rate: _Optional[_Union[LearningRateConfig, _Mapping]] = ..., regularizer: _Optional[_Union[RegularizerConfig, _Mapping]] = ..., max_queue_size: _Optional[int] = ..., n_workers: _Optional[int] = ..., use_multiprocessing: bool = ..., checkpoint_interval: _Optional[int] = ..., pretrain_model_path: _Optional[str] = ..., resume_model_path: _Optional[str] = ..., pruned_model_path: _Optional[str] = ...) -> None: ...

class EvalConfig(_message.Message):
    __slots__ = ("validation_period_during_training", "average_precision_mode", "batch_size", "matching_iou_threshold")
    class AP_MODE(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        SAMPLE: _ClassVar[EvalConfig.AP_MODE]
        INTEGRATE: _ClassVar[EvalConfig.AP_MODE]
    SAMPLE: EvalConfig.AP_MODE
    INTEGRATE: EvalConfig.AP_MODE
    VALIDATION_PERIOD_DURING_TRAINING_FIELD_NUMBER: _ClassVar[int]
    AVERAGE_PRECISION_MODE_FIELD_NUMBER: _ClassVar[int]
    BATCH_SIZE_FIELD_NUMBER: _ClassVar[int]
    MATCHING_IOU_THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    validation_period_during_training: int
    average_precision_mode: EvalConfig.AP_MODE
    batch_size: int
    matching_iou_threshold: float
    def __init__(self, validation_period_during_training: _Optional[int] = ..., average_precision_mode: _Optional[_Union[EvalConfig.AP_MODE, str]] = ..., batch_size: _Optional[int] = ..., matching_iou_threshold: _Optional[float] = ...) -> None: ...

class NMSConfig(_message.Message):
    __slots__ = ("confidence_threshold", "clustering_iou_threshold", "top_k", "infer_nms_score_bits", "cluster_iou_threshold")
    CONFIDENCE_THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    CLUSTERING_IOU_THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    TOP_K_FIELD_NUMBER: _ClassVar[int]
    INFER_NMS_SCORE_BITS_FIELD_NUMBER: _ClassVar[int]
    CLUSTER_IOU_THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    confidence_threshold: float
    clustering_iou_threshold: float
    top_k: int
    infer_nms_score_bits: int
    cluster_iou_threshold: float
    def __init__(self, confidence_threshold: _Optional[float] = ..., clustering_iou_threshold: _Optional[float] = ..., top_k: _Optional[int] = ..., infer_nms_score_bits: _Optional[int] = ..., cluster_iou_threshold: _Optional[float] = ...) -> None: ...

class AugmentationConfig(_message.Message):
    __slots__ = ("output_width", "output_height", "output_channel", "random_crop_min_scale", "random_crop_max_scale", "random_crop_min_ar", "random_crop_max_ar", "zoom_out_min_scale", "zoom_out_max_scale", "brightness", "contrast", "saturation", "hue", "random_flip", "image_mean")
    class ImageMeanEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    OUTPUT_WIDTH_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_HEIGHT_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_CHANNEL_FIELD_NUMBER: _ClassVar[int]
    RANDOM_CROP_MIN_SCALE_FIELD_NUMBER: _ClassVar[int]
    RANDOM_CROP_MAX_SCALE_FIELD_NUMBER: _ClassVar[int]
    RANDOM_CROP_MIN_AR_FIELD_NUMBER: _ClassVar[int]
    RANDOM_CROP_MAX_AR_FIELD_NUMBER: _ClassVar[int]
    ZOOM_OUT_MIN_SCALE_FIELD_NUMBER: _ClassVar[int]
    ZOOM_OUT_MAX_SCALE_FIELD_NUMBER: _ClassVar[int]
    BRIGHTNESS_FIELD_NUMBER: _ClassVar[int]
    CONTRAST_FIELD_NUMBER: _ClassVar[int]
    SATURATION_FIELD_NUMBER: _ClassVar[int]
    HUE_FIELD_NUMBER: _ClassVar[int]
    RANDOM_FLIP_FIELD_NUMBER: _ClassVar[int]
    IMAGE_MEAN_FIELD_NUMBER: _ClassVar[int]
    output_width: int
    output_height: int
    output_channel: int
    random_crop_min_scale: float
    random_crop_max_scale: float
    random_crop_min_ar: float
    random_crop_max_ar: float
    zoom_out_min_scale: float
    zoom_out_max_scale: float
    brightness: int
    contrast: float
    saturation: float
    hue: int
    random_flip: float
    image_mean: _containers.ScalarMap[str, float]
    def __init__(self, output_width: _Optional[int] = ..., output_height: _Optional[int] = ..., output_channel: _Optional[int] = ..., random_crop_min_scale: _Optional[float] = ..., random_crop_max_scale: _Optional[float] = ..., random_crop_min_ar: _Optional[float] = ..., random_crop_max_ar: _Optional[float] = ..., zoom_out_min_scale: _Optional[float] = ..., zoom_out_max_scale: _Optional[float] = ..., brightness: _Optional[int] = ..., contrast: _Optional[float] = ..., saturation: _Optional[float] = ..., hue: _Optional[int] = ..., random_flip: _Optional[float] = ..., image_mean: _Optional[_Mapping[str, float]] = ...) -> None: ...

class DataSource(_message.Message):
    __slots__ = ("label_directory_path", "image_directory_path", "tfrecords_path")
    LABEL_DIRECTORY_PATH_FIELD_NUMBER: _ClassVar[int]
    IMAGE_DIRECTORY_PATH_FIELD_NUMBER: _ClassVar[int]
    TFRECORDS_PATH_FIELD_NUMBER: _ClassVar[int]
    label_directory_path: str
    image_directory_path: str
    tfrecords_path: str
    def __init__(self, label_directory_path: _Optional[str] = ..., image_directory_path: _Optional[str] = ..., tfrecords_path: _Optional[str] = ...) -> None: ...

class DatasetConfig(_message.Message):
    __slots__ = ("data_sources", "include_difficult_in_training", "target_class_mapping", "validation_data_sources")
    class TargetClassMappingEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    DATA_SOURCES_FIELD_NUMBER: _ClassVar[int]
    INCLUDE_DIFFICULT_IN_TRAINING_FIELD_NUMBER: _ClassVar[int]
    TARGET_CLASS_MAPPING_FIELD_NUMBER: _ClassVar[int]
    VALIDATION_DATA_SOURCES_FIELD_NUMBER: _ClassVar[int]
    data_sources: _containers.RepeatedCompositeFieldContainer[DataSource]
    include_difficult_in_training: bool
    target_class_mapping: _containers.ScalarMap[str, str]
    validation_data_sources: _containers.RepeatedCompositeFieldContainer[DataSource]
    def __init__(self, data_sources: _Optional[_Iterable[_Union[DataSource, _Mapping]]] = ..., include_difficult_in_training: bool = ..., target_class_mapping: _Optional[_Mapping[str, str]] = ..., validation_data_sources: _Optional[_Iterable[_Union[DataSource, _Mapping]]] = ...) -> None: ...
