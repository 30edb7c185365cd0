from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Iterable as _Iterable, Mapping as _Mapping, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Experiment(_message.Message):
    __slots__ = ("random_seed", "model_config", "bbox_rasterizer_config", "cost_function_config", "training_config", "augmentation_config", "postprocessing_config", "dataset_config", "evaluation_config")
    RANDOM_SEED_FIELD_NUMBER: _ClassVar[int]
    MODEL_CONFIG_FIELD_NUMBER: _ClassVar[int]
    BBOX_RASTERIZER_CONFIG_FIELD_NUMBER: _ClassVar[int]
    COST_FUNCTION_CONFIG_FIELD_NUMBER: _ClassVar[int]
    TRAINING_CONFIG_FIELD_NUMBER: _ClassVar[int]
    AUGMENTATION_CONFIG_FIELD_NUMBER: _ClassVar[int]
    POSTPROCESSING_CONFIG_FIELD_NUMBER: _ClassVar[int]
    DATASET_CONFIG_FIELD_NUMBER: _ClassVar[int]
    EVALUATION_CONFIG_FIELD_NUMBER: _ClassVar[int]
    random_seed: int
    model_config: ModelConfig
    bbox_rasterizer_config: BboxRasterizerConfig
    cost_function_config: CostFunctionConfig
    training_config: TrainingConfig
    augmentation_config: AugmentationConfig
    postprocessing_config: PostProcessingConfig
    dataset_config: DatasetConfig
    evaluation_config: EvaluationConfig
    def __init__(self, random_seed: _Optional[int] = ..., model_config: _Optional[_Union[ModelConfig, _Mapping]] = ..., bbox_rasterizer_config: _Optional[_Union[BboxRasterizerConfig, _Mapping]] = ..., cost_function_config: _Optional[_Union[CostFunctionConfig, _Mapping]] = ..., training_config: _Optional[_Union[TrainingConfig, _Mapping]] = ..., augmentation_config: _Optional[_Union[AugmentationConfig, _Mapping]] = ..., postprocessing_config: _Optional[_Union[PostProcessingConfig, _Mapping]] = ..., dataset_config: _Optional[_Union[DatasetConfig, _Mapping]] = ..., evaluation_config: _Optional[_Union[EvaluationConfig, _Mapping]] = ...) -> None: ...

class TrainingPrecision(_message.Message):
    __slots__ = ("backend_floatx",)
    class BackendFloatx(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        FLOAT32: _ClassVar[TrainingPrecision.BackendFloatx]
        FLOAT16: _ClassVar[TrainingPrecision.BackendFloatx]
        INVALID: _ClassVar[TrainingPrecision.BackendFloatx]
    FLOAT32: TrainingPrecision.BackendFloatx
    FLOAT16: TrainingPrecision.BackendFloatx
    INVALID: TrainingPrecision.BackendFloatx
    BACKEND_FLOATX_FIELD_NUMBER: _ClassVar[int]
    backend_floatx: TrainingPrecision.BackendFloatx
    def __init__(self, backend_floatx: _Optional[_Union[TrainingPrecision.BackendFloatx, str]] = ...) -> None: ...

class CovObjective(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class BboxObjective(_message.Message):
    __slots__ = ("scale", "offset")
    SCALE_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    scale: float
    offset: float
    def __init__(self, scale: _Optional[float] = ..., offset: _Optional[float] = ...) -> None: ...

class ObjectiveSet(_message.Message):
    __slots__ = ("cov", "bbox")
    COV_FIELD_NUMBER: _ClassVar[int]
    BBOX_FIELD_NUMBER: _ClassVar[int]
    cov: CovObjective
    bbox: BboxObjective
    def __init__(self, cov: _Optional[_Union[CovObjective, _Mapping]] = ..., bbox: _Optional[_Union[BboxObjective, _Mapping]] = ...) -> None: ...

class ModelConfig(_message.Message):
    __slots__ = ("template", "num_layers", "use_pooling", "use_batch_norm", "dropout_rate", "freeze_blocks", "freeze_bn", "pretrained_model_file", "load_graph", "training_precision", "objective_set", "arch")
    TEMPLATE_FIELD_NUMBER: _ClassVar[int]
    NUM_LAYERS_FIELD_NUMBER: _ClassVar[int]
    USE_POOLING_FIELD_NUMBER: _ClassVar[int]
    USE_BATCH_NORM_FIELD_NUMBER: _ClassVar[int]
    DROPOUT_RATE_FIELD_NUMBER: _ClassVar[int]
    FREEZE_BLOCKS_FIELD_NUMBER: _ClassVar[int]
    FREEZE_BN_FIELD_NUMBER: _ClassVar[int]
    PRETRAINED_MODEL_FILE_FIELD_NUMBER: _ClassVar[int]
    LOAD_GRAPH_FIELD_NUMBER: _ClassVar[int]
    TRAINING_PRECISION_FIELD_NUMBER: _ClassVar[int]
    OBJECTIVE_SET_FIELD_NUMBER: _ClassVar[int]
    ARCH_FIELD_NUMBER: _ClassVar[int]
    template: str
    num_layers: int
    use_pooling: bool
    use_batch_norm: bool
    dropout_rate: float
    freeze_blocks: _containers.RepeatedScalarFieldContainer[int]
    freeze_bn: bool
    pretrained_model_file: str
    load_graph: bool
    training_precision: TrainingPrecision
    objective_set: ObjectiveSet
    arch: str
    def __init__(self, template: _Optional[str] = ..., num_layers: _Optional[int] = ..., use_pooling: bool = ..., use_batch_norm: bool = ..., dropout_rate: _Optional[float] = ..., freeze_blocks: _Optional[_Iterable[int]] = ..., freeze_bn: bool = ..., pretrained_model_file: _Optional[str] = ..., load_graph: bool = ..., training_precision: _Optional[_Union[TrainingPrecision, _Mapping]] = ..., objective_set: _Optional[_Union[ObjectiveSet, _Mapping]] = ..., arch: _Optional[str] = ...) -> None: ...

class TargetClassRasterConfig(_message.Message):
    __slots__ = ("cov_center_x", "cov_center_y", "cov_radius_x", "cov_radius_y", "bbox_min_radius")
    COV_CENTER_X_FIELD_NUMBER: _ClassVar[int]
    COV_CENTER_Y_FIELD_NUMBER: _ClassVar[int]
    COV_RADIUS_X_FIELD_NUMBER: _ClassVar[int]
    COV_RADIUS_Y_FIELD_NUMBER: _ClassVar[int]
    BBOX_MIN_RADIUS_FIELD_NUMBER: _ClassVar[int]
    cov_center_x: float
    cov_center_y: float
    cov_radius_x: float
    cov_radius_y: float
    bbox_min_radius: float
    def __init__(self, cov_center_x: _Optional[float] = ..., cov_center_y: _Optional[float] = ..., cov_radius_x: _Optional[float] = ..., cov_radius_y: _Optional[float] = ..., bbox_min_radius: _Optional[float] = ...) -> None: ...

class BboxRasterizerConfig(_message.Message):
    __slots__ = ("target_class_config", "deadzone_radius")
    class TargetClassConfigEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: TargetClassRasterConfig
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[TargetClassRasterConfig, _Mapping]] = ...) -> None: ...
    TARGET_CLASS_CONFIG_FIELD_NUMBER: _ClassVar[int]
    DEADZONE_RADIUS_FIELD_NUMBER: _ClassVar[int]
    target_class_config: _containers.MessageMap[str, TargetClassRasterConfig]
    deadzone_radius: float
    def __init__(self, target_class_config: _Optional[_Mapping[str, TargetClassRasterConfig]] = ..., deadzone_radius: _Optional[float] = ...) -> None: ...

class CostObjective(_message.Message):
    __slots__ = ("name", "initial_weight", "weight_target")
    NAME_FIELD_NUMBER: _ClassVar[int]
    INITIAL_WEIGHT_FIELD_NUMBER: _ClassVar[int]
    WEIGHT_TARGET_FIELD_NUMBER: _ClassVar[int]
    name: str
    initial_weight: float
    weight_target: float
    def __init__(self, name: _Optional[str] = ..., initial_weight: _Optional[float] = ..., weight_target: _Optional[float] = ...) -> None: ...

class CostTargetClass(_message.Message):
    __slots__ = ("name", "class_weight", "coverage_foreground_weight", "objectives")
    NAME_FIELD_NUMBER: _ClassVar[int]
    CLASS_WEIGHT_FIELD_NUMBER: _ClassVar[int]
    COVERAGE_FOREGROUND_WEIGHT_FIELD_NUMBER: _ClassVar[int]
    OBJECTIVES_FIELD_NUMBER: _ClassVar[int]
    name: str
    class_weight: float
    coverage_foreground_weight: float
    objectives: _containers.RepeatedCompositeFieldContainer[CostObjective]
    def __init__(self, name: _Optional[str] = ..., class_weight: _Optional[float] = ..., coverage_foreground_weight: _Optional[float] = ..., objectives: _Optional[_Iterable[_Union[CostObjective, _Mapping]]] = ...) -> None: ...

class CostFunctionConfig(_message.Message):
    __slots__ = ("target_classes", "enable_autoweighting", "max_objective_weight", "min_objective_weight")
    TARGET_CLASSES_FIELD_NUMBER: _ClassVar[int]
    ENABLE_AUTOWEIGHTING_FIELD_NUMBER: _ClassVar[int]
    MAX_OBJECTIVE_WEIGHT_FIELD_NUMBER: _ClassVar[int]
    MIN_OBJECTIVE_WEIGHT_FIELD_NUMBER: _ClassVar[int]
    target_classes: _containers.RepeatedCompositeFieldContainer[CostTargetClass]
    enable_autoweighting: bool
    max_objective_weight: float
    min_objective_weight: float
    def __init__(self, target_classes: _Optional[_Iterable[_Union[CostTargetClass, _Mapping]]] = ..., enable_autoweighting: bool = ..., max_objective_weight: _Optional[float] = ..., min_objective_weight: _Optional[float] = ...) -> None: ...

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

class AdamOptimizerConfig(_message.Message):
    __slots__ = ("epsilon", "beta1", "beta2")
    EPSILON_FIELD_NUMBER: _ClassVar[int]
    BETA1_FIELD_NUMBER: _ClassVar[int]
    BETA2_FIELD_NUMBER: _ClassVar[int]
    epsilon: float
    beta1: float
    beta2: float
    def __init__(self, epsilon: _Optional[float] = ..., beta1: _Optional[float] = ..., beta2: _Optional[float] = ...) -> None: ...

class OptimizerConfig(_message.Message):
    __slots__ = ("adam",)
    ADAM_FIELD_NUMBER: _ClassVar[int]
    adam: AdamOptimizerConfig
    def __init__(self, adam: _Optional[_Union[AdamOptimizerConfig, _Mapping]] = ...) -> None: ...

class CostScalingConfig(_message.Message):
    __slots__ = ("enabled", "initial_exponent", "increment", "decrement")
    ENABLED_FIELD_NUMBER: _ClassVar[int]
    INITIAL_EXPONENT_FIELD_NUMBER: _ClassVar[int]
    INCREMENT_FIELD_NUMBER: _ClassVar[int]
    DECREMENT_FIELD_NUMBER: _ClassVar[int]
    enabled: bool
    initial_exponent: float
    increment: float
    decrement: float
    def __init__(self, enabled: bool = ..., initial_exponent: _Optional[float] = ..., increment: _Optional[float] = ..., decrement: _Optional[float] = ...) -> None: ...

class TrainingConfig(_message.Message):
    __slots__ = ("batch_size_per_gpu", "num_epochs", "learning_rate", "regularizer", "optimizer", "cost_scaling", "checkpoint_interval", "resume_model_path", "pruned_model_path")
    BATCH_SIZE_PER_GPU_FIELD_NUMBER: _ClassVar[int]
    NUM_EPOCHS_FIELD_NUMBER: _ClassVar[int]
    LEARNING_RATE_FIELD_NUMBER: _ClassVar[int]
    REGULARIZER_FIELD_NUMBER: _ClassVar[int]
    OPTIMIZER_FIELD_NUMBER: _ClassVar[int]
    COST_SCALING_FIELD_NUMBER: _ClassVar[int]
    CHECKPOINT_INTERVAL_FIELD_NUMBER: _ClassVar[int]
    RESUME_MODEL_PATH_FIELD_NUMBER: _ClassVar[int]
    PRUNED_MODEL_PATH_FIELD_NUMBER: _ClassVar[int]
    batch_size_per_gpu: int
    num_epochs: int
    learning_rate: LearningRateConfig
    regularizer: RegularizerConfig
    optimizer: OptimizerConfig
    cost_scaling: CostScalingConfig
    checkpoint_interval: int
    resume_model_path: str
    pruned_model_path: str
    def __init__(self, batch_size_per_gpu: _Optional[int] = ..., num_epochs: _Optional[int] = ..., learning_rate: _Optional[_Union[LearningRateConfig, _Mapping]] = ..., regularizer: _Optional[_Union[RegularizerConfig, _Mapping]] = ..., optimizer: _Optional[_Union[OptimizerConfig, _Mapping]] = ..., cost_scaling: _Optional[_Union[CostScalingConfig, _Mapping]] = ..., checkpoint_interval: _Optional[int] = ..., resume_model_path: _Optional[str] = ..., pruned_model_path: _Optional[str] = ...) -> None: ...

class Preprocessing(_message.Message):
    __slots__ = ("output_image_width", "output_image_height", "output_image_channel", "min_bbox_width", "min_bbox_height", "crop_left", "crop_top", "crop_right", "crop_bottom", "scale_width", "scale_height")
    OUTPUT_IMAGE_WIDTH_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_IMAGE_HEIGHT_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_IMAGE_CHANNEL_FIELD_NUMBER: _ClassVar[int]
    MIN_BBOX_WIDTH_FIELD_NUMBER: _ClassVar[int]
    MIN_BBOX_HEIGHT_FIELD_NUMBER: _ClassVar[int]
    CROP_LEFT_FIELD_NUMBER: _ClassVar[int]
    CROP_TOP_FIELD_NUMBER: _ClassVar[int]
    CROP_RIGHT_FIELD_NUMBER: _ClassVar[int]
    CROP_BOTTOM_FIELD_NUMBER: _ClassVar[int]
    SCALE_WIDTH_FIELD_NUMBER: _ClassVar[int]
    SCALE_HEIGHT_FIELD_NUMBER: _ClassVar[int]
    output_image_width: int
    output_image_height: int
    output_image_channel: int
    min_bbox_width: float
    min_bbox_height: float
    crop_left: int
    crop_top: int
    crop_right: int
    crop_bottom: int
    scale_width: float
    scale_height: float
    def __init__(self, output_image_width: _Optional[int] = ..., output_image_height: _Optional[int] = ..., output_image_channel: _Optional[int] = ..., min_bbox_width: _Optional[float] = ..., min_bbox_height: _Optional[float] = ..., crop_left: _Optional[int] = ..., crop_top: _Optional[int] = ..., crop_right: _Optional[int] = ..., crop_bottom: _Optional[int] = ..., scale_width: _Optional[float] = ..., scale_height: _Optional[float] = ...) -> None: ...

class SpatialAugmentation(_message.Message):
    __slots__ = ("hflip_probability", "vflip_probability", "zoom_min", "zoom_max", "translate_max_x", "translate_max_y", "rotate_rad_max")
    HFLIP_PROBABILITY_FIELD_NUMBER: _ClassVar[int]
    VFLIP_PROBABILITY_FIELD_NUMBER: _ClassVar[int]
    ZOOM_MIN_FIELD_NUMBER: _ClassVar[int]
    ZOOM_MAX_FIELD_NUMBER: _ClassVar[int]
    TRANSLATE_MAX_X_FIELD_NUMBER: _ClassVar[int]
    TRANSLATE_MAX_Y_FIELD_NUMBER: _ClassVar[int]
    ROTATE_RAD_MAX_FIELD_NUMBER: _ClassVar[int]
    hflip_probability: float
    vflip_probability: float
    zoom_min: float
    zoom_max: float
    translate_max_x: float
    translate_max_y: float
    rotate_rad_max: float
    def __init__(self, hflip_probability: _Optional[float] = ..., vflip_probability: _Optional[float] = ..., zoom_min: _Optional[float] = ..., zoom_max: _Optional[float] = ..., translate_max_x: _Optional[float] = ..., translate_max_y: _Optional[float] = ..., rotate_rad_max: _Optional[float] = ...) -> None: ...

class ColorAugmentation(_message.Message):
    __slots__ = ("color_shift_stddev", "hue_rotation_max", "saturation_shift_max", "contrast_scale_max", "contrast_center")
    COLOR_SHIFT_STDDEV_FIELD_NUMBER: _ClassVar[int]
    HUE_ROTATION_MAX_FIELD_NUMBER: _ClassVar[int]
    SATURATION_SHIFT_MAX_FIELD_NUMBER: _ClassVar[int]
    CONTRAST_SCALE_MAX_FIELD_NUMBER: _ClassVar[int]
    CONTRAST_CENTER_FIELD_NUMBER: _ClassVar[int]
    color_shift_stddev: float
    hue_rotation_max: float
    saturation_shift_max: float
    contrast_scale_max: float
    contrast_center: float
    def __init__(self, color_shift_stddev: _Optional[float] = ..., hue_rotation_max: _Optional[float] = ..., saturation_shift_max: _Optional[float] = ..., contrast_scale_max: _Optional[float] = ..., contrast_center: _Optional[float] = ...) -> None: ...

class AugmentationConfig(_message.Message):
    __slots__ = ("preprocessing", "spatial_augmentation", "color_augmentation")
    PREPROCESSING_FIELD_NUMBER: _ClassVar[int]
    SPATIAL_AUGMENTATION_FIELD_NUMBER: _ClassVar[int]
    COLOR_AUGMENTATION_FIELD_NUMBER: _ClassVar[int]
    preprocessing: Preprocessing
    spatial_augmentation: SpatialAugmentation
    color_augmentation: ColorAugmentation
    def __init__(self, preprocessing: _Optional[_Union[Preprocessing, _Mapping]] = ..., spatial_augmentation: _Optional[_Union[SpatialAugmentation, _Mapping]] = ..., color_augmentation: _Optional[_Union[ColorAugmentation, _Mapping]] = ...) -> None: ...

class ClusteringConfig(_message.Message):
    __slots__ = ("coverage_threshold", "dbscan_eps", "dbscan_min_samples", "minimum_bounding_box_height")
    COVERAGE_THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    DBSCAN_EPS_FIELD_NUMBER: _ClassVar[int]
    DBSCAN_MIN_SAMPLES_FIELD_NUMBER: _ClassVar[int]
    MINIMUM_BOUNDING_BOX_HEIGHT_FIELD_NUMBER: _ClassVar[int]
    coverage_threshold: float
    dbscan_eps: float
    dbscan_min_samples: float
    minimum_bounding_box_height: int
    def __init__(self, coverage_threshold: _Optional[float] = ..., dbscan_eps: _Optional[float] = ..., dbscan_min_samples: _Optional[float] = ..., minimum_bounding_box_height: _Optional[int] = ...) -> None: ...

class PostProcessingClassConfig(_message.Message):
    __slots__ = ("clustering_config",)
    CLUSTERING_CONFIG_FIELD_NUMBER: _ClassVar[int]
    clustering_config: ClusteringConfig
    def __init__(self, clustering_config: _Optional[_Union[ClusteringConfig, _Mapping]] = ...) -> None: ...

class PostProcessingConfig(_message.Message):
    __slots__ = ("target_class_config",)
    class TargetClassConfigEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: PostProcessingClassConfig
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[PostProcessingClassConfig, _Mapping]] = ...) -> None: ...
    TARGET_CLASS_CONFIG_FIELD_NUMBER: _ClassVar[int]
    target_class_config: _containers.MessageMap[str, PostProcessingClassConfig]
    def __init__(self, target_class_config: _Optional[_Mapping[str, PostProcessingClassConfig]] = ...) -> None: ...

class DataSource(_message.Message):
    __slots__ = ("tfrecords_path", "image_directory_path", "label_directory_path")
    TFRECORDS_PATH_FIELD_NUMBER: _ClassVar[int]
    IMAGE_DIRECTORY_PATH_FIELD_NUMBER: _ClassVar[int]
    LABEL_DIRECTORY_PATH_FIELD_NUMBER: _ClassVar[int]
    tfrecords_path: str
    image_directory_path: str
    label_directory_path: str
    def __init__(self, tfrecords_path: _Optional[str] = ..., image_directory_path: _Optional[str] = ..., label_directory_path: _Optional[str] = ...) -> None: ...

class DatasetConfig(_message.Message):
    __slots__ = ("data_sources", "image_extension", "target_class_mapping", "validation_fold", "validation_data_source")
    class TargetClassMappingEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    DATA_SOURCES_FIELD_NUMBER: _ClassVar[int]
    IMAGE_EXTENSION_FIELD_NUMBER: _ClassVar[int]
    TARGET_CLASS_MAPPING_FIELD_NUMBER: _ClassVar[int]
    VALIDATION_FOLD_FIELD_NUMBER: _ClassVar[int]
    VALIDATION_DATA_SOURCE_FIELD_NUMBER: _ClassVar[int]
    data_sources: _containers.RepeatedCompositeFieldContainer[DataSource]
    image_extension: str
    target_class_mapping: _containers.ScalarMap[str, str]
    validation_fold: int
    validation_data_source: DataSource
    def __init__(self, data_sources: _Optional[_Iterable[_Union[DataSource, _Mapping]]] = ..., image_extension: _Optional[str] = ..., target_class_mapping: _Optional[_Mapping[str, str]] = ..., validation_fold: _Optional[int] = ..., validation_data_source: _Optional[_Union[DataSource, _Mapping]] = ...) -> None: ...

class Truncation(_message.Message):
    __slots__ = ("minimum", "maximum")
    MINIMUM_FIELD_NUMBER: _ClassVar[int]
    MAXIMUM_FIELD_NUMBER: _ClassVar[int]
    minimum: float
    maximum: float
    def __init__(self, minimum: _Optional[float] = ..., maximum: _Optional[float] = ...) -> None: ...

class EvaluationBoxConfig(_message.Message):
    __slots__ = ("minimum_height", "maximum_height", "minimum_occlusion", "maximum_occlusion", "truncation")
    MINIMUM_HEIGHT_FIELD_NUMBER: _ClassVar[int]
    MAXIMUM_HEIGHT_FIELD_NUMBER: _ClassVar[int]
    MINIMUM_OCCLUSION_FIELD_NUMBER: _ClassVar[int]
    MAXIMUM_OCCLUSION_FIELD_NUMBER: _ClassVar[int]
    TRUNCATION_FIELD_NUMBER: _ClassVar[int]
    minimum_height: int
    maximum_height: int
    minimum_occlusion: int
    maximum_occlusion: int
    truncation: Truncation
    def __init__(self, minimum_height: _Optional[int] = ..., maximum_height: _Optional[int] = ..., minimum_occlusion: _Optional[int] = ..., maximum_occlusion: _Optional[int] = ..., truncation: _Optional[_Union[Truncation, _Mapping]] = ...) -> None: ...

class WeightHeight(_message.Message):
    __slots__ = ("minimum_height", "maximum_height", "weight")
    MINIMUM_HEIGHT_FIELD_NUMBER: _ClassVar[int]
    MAXIMUM_HEIGHT_FIELD_NUMBER: _ClassVar[int]
    WEIGHT_FIELD_NUMBER: _ClassVar[int]
    minimum_height: float
    maximum_height: float
    weight: float
    def __init__(self, minimum_height: _Optional[float] = ..., maximum_height: _Optional[float] = ..., weight: _Optional[float] = ...) -> None: ...

class ImportanceWeights(_message.Message):
    __slots__ = ("weight_camera", "weight_cvip", "weight_detection_in_path", "weight_height", "weight_occlusion")
    class WeightCameraEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    class WeightCvipEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: bool
        value: float
        def __init__(self, key: bool = ..., value: _Optional[float] = ...) -> None: ...
    class WeightDetectionInPathEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: bool
        value: float
        def __init__(self, key: bool = ..., value: _Optional[float] = ...) -> None: ...
    class WeightOcclusionEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: int
        value: float
        def __init__(self, key: _Optional[int] = ..., value: _Optional[float] = ...) -> None: ...
    WEIGHT_CAMERA_FIELD_NUMBER: _ClassVar[int]
    WEIGHT_CVIP_FIELD_NUMBER: _ClassVar[int]
    WEIGHT_DETECTION_IN_PATH_FIELD_NUMBER: _ClassVar[int]
    WEIGHT_HEIGHT_FIELD_NUMBER: _ClassVar[int]
    WEIGHT_OCCLUSION_FIELD_NUMBER: _ClassVar[int]
    weight_camera: _containers.ScalarMap[str, float]
    weight_cvip: _containers.ScalarMap[bool, float]
    weight_detection_in_path: _containers.ScalarMap[bool, float]
    weight_height: _containers.RepeatedCompositeFieldContainer[WeightHeight]
    weight_occlusion: _containers.ScalarMap[int, float]
    def __init__(self, weight_camera: _Optional[_Mapping[str, float]] = ..., weight_cvip: _Optional[_Mapping[bool, float]] = ..., weight_detection_in_path: _Optional[_Mapping[bool, float]] = ..., weight_height: _Optional[_Iterable[_Union[WeightHeight, _Mapping]]] = ..., weight_occlusion: _Optional[_Mapping[int, float]] = ...) -> None: ...

class EvaluationConfig(_message.Message):
    __slots__ = ("validation_period_during_training", "first_validation_epoch", "minimum_detection_ground_truth_overlap", "evaluation_bucket_config", "importance_weights", "average_precision_mode", "batch_size")
    class AP_MODE(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        SAMPLE: _ClassVar[EvaluationConfig.AP_MODE]
        INTEGRATE: _ClassVar[EvaluationConfig.AP_MODE]
    SAMPLE: EvaluationConfig.AP_MODE
    INTEGRATE: EvaluationConfig.AP_MODE
    class MinimumDetectionGroundTruthOverlapEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    class EvaluationBucketConfigEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: EvaluationBoxConfig
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[EvaluationBoxConfig, _Mapping]] = ...) -> None: ...
    VALIDATION_PERIOD_DURING_TRAINING_FIELD_NUMBER: _ClassVar[int]
    FIRST_VALIDATION_EPOCH_FIELD_NUMBER: _ClassVar[int]
    MINIMUM_DETECTION_GROUND_TRUTH_OVERLAP_FIELD_NUMBER: _ClassVar[int]
    EVALUATION_BUCKET_CONFIG_FIELD_NUMBER: _ClassVar[int]
    IMPORTANCE_WEIGHTS_FIELD_NUMBER: _ClassVar[int]
    AVERAGE_PRECISION_MODE_FIELD_NUMBER: _ClassVar[int]
    BATCH_SIZE_FIELD_NUMBER: _ClassVar[int]
    validation_period_during_training: int
    first_validation_epoch: int
    minimum_detection_ground_truth_overlap: _containers.ScalarMap[str, float]
    evaluation_bucket_config: _containers.MessageMap[str, EvaluationBoxConfig]
    importance_weights: ImportanceWeights
    average_precision_mode: EvaluationConfig.AP_MODE
    batch_size: int
    def __init__(self, validation_period_during_training: _Optional[int] = ..., first_validation_epoch: _Optional[int] = ..., minimum_detection_ground_truth_overlap: _Optional[_Mapping[str, float]] = ..., evaluation_bucket_config: _Optional[_Mapping[str, EvaluationBoxConfig]] = ..., importance_weights: _Optional[_Union[ImportanceWeights, _Mapping]] = ..., average_precision_mode: _Optional[_Union[EvaluationConfig.AP_MODE, str]] = ..., batch_size: _Optional[int] = ...) -> None: ...
