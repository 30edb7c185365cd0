from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Iterable as _Iterable, Mapping as _Mapping, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Experiment(_message.Message):
    __slots__ = ("model_config", "train_config", "eval_config")
    MODEL_CONFIG_FIELD_NUMBER: _ClassVar[int]
    TRAIN_CONFIG_FIELD_NUMBER: _ClassVar[int]
    EVAL_CONFIG_FIELD_NUMBER: _ClassVar[int]
    model_config: ModelConfig
    train_config: TrainConfig
    eval_config: EvalConfig
    def __init__(self, model_config: _Optional[_Union[ModelConfig, _Mapping]] = ..., train_config: _Optional[_Union[TrainConfig, _Mapping]] = ..., eval_config: _Optional[_Union[EvalConfig, _Mapping]] = ...) -> None: ...

class ModelConfig(_message.Message):
    __slots__ = ("arch", "n_layers", "input_image_size", "use_bias", "use_batch_norm", "all_projections", "freeze_blocks", "freeze_bn", "dropout")
    ARCH_FIELD_NUMBER: _ClassVar[int]
    N_LAYERS_FIELD_NUMBER: _ClassVar[int]
    INPUT_IMAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    USE_BIAS_FIELD_NUMBER: _ClassVar[int]
    USE_BATCH_NORM_FIELD_NUMBER: _ClassVar[int]
    ALL_PROJECTIONS_FIELD_NUMBER: _ClassVar[int]
    FREEZE_BLOCKS_FIELD_NUMBER: _ClassVar[int]
    FREEZE_BN_FIELD_NUMBER: _ClassVar[int]
    DROPOUT_FIELD_NUMBER: _ClassVar[int]
    arch: str
    n_layers: int
    input_image_size: str
    use_bias: bool
    use_batch_norm: bool
    all_projections: bool
    freeze_blocks: _containers.RepeatedScalarFieldContainer[int]
    freeze_bn: bool
    dropout: float
    def __init__(self, arch: _Optional[str] = ..., n_layers: _Optional[int] = ..., input_image_size: _Optional[str] = ..., use_bias: bool = ..., use_batch_norm: bool = ..., all_projections: bool = ..., freeze_blocks: _Optional[_Iterable[int]] = ..., freeze_bn: bool = ..., dropout: _Optional[float] = ...) -> None: ...

class RegConfig(_message.Message):
    __slots__ = ("type", "scope", "weight_decay")
    TYPE_FIELD_NUMBER: _ClassVar[int]
    SCOPE_FIELD_NUMBER: _ClassVar[int]
    WEIGHT_DECAY_FIELD_NUMBER: _ClassVar[int]
    type: str
    scope: str
    weight_decay: float
    def __init__(self, type: _Optional[str] = ..., scope: _Optional[str] = ..., weight_decay: _Optional[float] = ...) -> None: ...

class StepLrConfig(_message.Message):
    __slots__ = ("learning_rate", "step_size", "gamma")
    LEARNING_RATE_FIELD_NUMBER: _ClassVar[int]
    STEP_SIZE_FIELD_NUMBER: _ClassVar[int]
    GAMMA_FIELD_NUMBER: _ClassVar[int]
    learning_rate: float
    step_size: int
    gamma: float
    def __init__(self, learning_rate: _Optional[float] = ..., step_size: _Optional[int] = ..., gamma: _Optional[float] = ...) -> None: ...

class SoftAnnealLrConfig(_message.Message):
    __slots__ = ("learning_rate", "soft_start", "annealing_points", "annealing_divider")
    LEARNING_RATE_FIELD_NUMBER: _ClassVar[int]
    SOFT_START_FIELD_NUMBER: _ClassVar[int]
    ANNEALING_POINTS_FIELD_NUMBER: _ClassVar[int]
    ANNEALING_DIVIDER_FIELD_NUMBER: _ClassVar[int]
    learning_rate: float
    soft_start: float
    annealing_points: str
    annealing_divider: float
    def __init__(self, learning_rate: _Optional[float] = ..., soft_start: _Optional[float] = ..., annealing_points: _Optional[str] = ..., annealing_divider: _Optional[float] = ...) -> None: ...

class CosineLrConfig(_message.Message):
    __slots__ = ("learning_rate", "min_lr_ratio", "soft_start")
    LEARNING_RATE_FIELD_NUMBER: _ClassVar[int]
    MIN_LR_RATIO_FIELD_NUMBER: _ClassVar[int]
    SOFT_START_FIELD_NUMBER: _ClassVar[int]
    learning_rate: float
    min_lr_ratio: float
    soft_start: float
    def __init__(self, learning_rate: _Optional[float] = ..., min_lr_ratio: _Optional[float] = ..., soft_start: _Optional[float] = ...) -> None: ...

class LrConfig(_message.Message):
    __slots__ = ("scheduler", "learning_rate", "step_size", "gamma", "soft_start", "annealing_points", "annealing_divider", "min_lr_ratio", "step", "soft_anneal", "cosine")
    SCHEDULER_FIELD_NUMBER: _ClassVar[int]
    LEARNING_RATE_FIELD_NUMBER: _ClassVar[int]
    STEP_SIZE_FIELD_NUMBER: _ClassVar[int]
    GAMMA_FIELD_NUMBER: _ClassVar[int]
    SOFT_START_FIELD_NUMBER: _ClassVar[int]
    ANNEALING_POINTS_FIELD_NUMBER: _ClassVar[int]
    ANNEALING_DIVIDER_FIELD_NUMBER: _ClassVar[int]
    MIN_LR_RATIO_FIELD_NUMBER: _ClassVar[int]
    STEP_FIELD_NUMBER: _ClassVar[int]
    SOFT_ANNEAL_FIELD_NUMBER: _ClassVar[int]
    COSINE_FIELD_NUMBER: _ClassVar[int]
    scheduler: str
    learning_rate: float
    step_size: int
    gamma: float
    soft_start: float
    annealing_points: str
    annealing_divider: float
    min_lr_ratio: float
    step: StepLrConfig
    soft_anneal: SoftAnnealLrConfig
    cosine: CosineLrConfig
    def __init__(self, scheduler: _Optional[str] = ..., learning_rate: _Optional[float] = ..., step_size: _Optional[int] = ..., gamma: _Optional[float] = ..., soft_start: _Optional[float] = ..., annealing_points: _Optional[str] = ..., annealing_divider: _Optional[float] = ..., min_lr_ratio: _Optional[float] = ..., step: _Optional[_Union[StepLrConfig, _Mapping]] = ..., soft_anneal: _Optional[_Union[SoftAnnealLrConfig, _Mapping]] = ..., cosine: _Optional[_Union[CosineLrConfig, _Mapping]] = ...) -> None: ...

class TrainConfig(_message.Message):
    __slots__ = ("train_dataset_path", "val_dataset_path", "pretrained_model_path", "optimizer", "momentum", "nesterov", "batch_size_per_gpu", "n_epochs", "n_workers", "reg_config", "lr_config", "random_seed", "enable_random_crop", "enable_center_crop", "enable_color_augmentation", "label_smoothing", "mixup_alpha", "preprocess_mode", "checkpoint_interval", "validation_period")
    TRAIN_DATASET_PATH_FIELD_NUMBER: _ClassVar[int]
    VAL_DATASET_PATH_FIELD_NUMBER: _ClassVar[int]
    PRETRAINED_MODEL_PATH_FIELD_NUMBER: _ClassVar[int]
    OPTIMIZER_FIELD_NUMBER: _ClassVar[int]
    MOMENTUM_FIELD_NUMBER: _ClassVar[int]
    NESTEROV_FIELD_NUMBER: _ClassVar[int]
    BATCH_SIZE_PER_GPU_FIELD_NUMBER: _ClassVar[int]
    N_EPOCHS_FIELD_NUMBER: _ClassVar[int]
    N_WORKERS_FIELD_NUMBER: _ClassVar[int]
    REG_CONFIG_FIELD_NUMBER: _ClassVar[int]
    LR_CONFIG_FIELD_NUMBER: _ClassVar[int]
    RANDOM_SEED_FIELD_NUMBER: _ClassVar[int]
    ENABLE_RANDOM_CROP_FIELD_NUMBER: _ClassVar[int]
    ENABLE_CENTER_CROP_FIELD_NUMBER: _ClassVar[int]
    ENABLE_COLOR_AUGMENTATION_FIELD_NUMBER: _ClassVar[int]
    LABEL_SMOOTHING_FIELD_NUMBER: _ClassVar[int]
    MIXUP_ALPHA_FIELD_NUMBER: _ClassVar[int]
    PREPROCESS_MODE_FIELD_NUMBER: _ClassVar[int]
    CHECKPOINT_INTERVAL_FIELD_NUMBER: _ClassVar[int]
    VALIDATION_PERIOD_FIELD_NUMBER: _ClassVar[int]
    train_dataset_path: str
    val_dataset_path: str
    pretrained_model_path: str
    optimizer: str
    momentum: float
    nesterov: bool
    batch_size_per_gpu: int
    n_epochs: int
    n_workers: int
    reg_config: RegConfig
    lr_config: LrConfig
    random_seed: int
    enable_random_crop: bool
    enable_center_crop: bool
    enable_color_augmentation: bool
    label_smoothing: float
    mixup_alpha: float
    preprocess_mode: str
    checkpoint_interval: int
    validation_period: int
    def __init__(self, train_dataset_path: _Optional[str] = ..., val_dataset_path: _Optional[str] = ..., pretrained_model_path: _Optional[str] = ..., optimizer: _Optional[str] = ..., momentum: _Optional[float] = ..., nesterov: bool = ..., batch_size_per_gpu: _Optional[int] = ..., n_epochs: _Optional[int] = ..., n_workers: _Optional[int] = ..., reg_config: _Optional[_Union[RegConfig, _Mapping]] = ..., lr_config: _Optional[_Union[LrConfig, _Mapping]] = ..., random_seed: _Optional[int] = ..., enable_random_crop: bool = ..., enable_center_crop: bool = ..., enable_color_augmentation: bool = ..., label_smoothing: _Optional[float] = ..., mixup_alpha: _Optional[float] = ..., preprocess_mode: _Optional[str] = ..., checkpoint_interval: _Optional[int] = ..., validation_period: _Optional[int] = ...) -> None: ...

class EvalConfig(_message.Message):
    __slots__ = ("eval_dataset_path", "model_path", "top_k", "batch_size", "n_workers", "enable_center_crop")
    EVAL_DATASET_PATH_FIELD_NUMBER: _ClassVar[int]
    MODEL_PATH_FIELD_NUMBER: _ClassVar[int]
    TOP_K_FIELD_NUMBER: _ClassVar[int]
    BATCH_SIZE_FIELD_NUMBER: _ClassVar[int]
    N_WORKERS_FIELD_NUMBER: _ClassVar[int]
    ENABLE_CENTER_CROP_FIELD_NUMBER: _ClassVar[int]
    eval_dataset_path: str
    model_path: str
    top_k: int
    batch_size: int
    n_workers: int
    enable_center_crop: bool
    def __init__(self, eval_dataset_path: _Optional[str] = ..., model_path: _Optional[str] = ..., top_k: _Optional[int] = ..., batch_size: _Optional[int] = ..., n_workers: _Optional[int] = ..., enable_center_crop: bool = ...) -> None: ...
