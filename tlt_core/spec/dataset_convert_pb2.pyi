from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Mapping as _Mapping, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class KittiConfig(_message.Message):
    __slots__ = ("root_directory_path", "image_dir_name", "label_dir_name", "point_clouds_dir", "calibrations_dir", "kitti_sequence_to_frames_file", "image_extension", "partition_mode", "num_partitions", "val_split", "num_shards")
    ROOT_DIRECTORY_PATH_FIELD_NUMBER: _ClassVar[int]
    IMAGE_DIR_NAME_FIELD_NUMBER: _ClassVar[int]
    LABEL_DIR_NAME_FIELD_NUMBER: _ClassVar[int]
    POINT_CLOUDS_DIR_FIELD_NUMBER: _ClassVar[int]
    CALIBRATIONS_DIR_FIELD_NUMBER: _ClassVar[int]
    KITTI_SEQUENCE_TO_FRAMES_FILE_FIELD_NUMBER: _ClassVar[int]
    IMAGE_EXTENSION_FIELD_NUMBER: _ClassVar[int]
    PARTITION_MODE_FIELD_NUMBER: _ClassVar[int]
    NUM_PARTITIONS_FIELD_NUMBER: _ClassVar[int]
    VAL_SPLIT_FIELD_NUMBER: _ClassVar[int]
    NUM_SHARDS_FIELD_NUMBER: _ClassVar[int]
    root_directory_path: str
    image_dir_name: str
    label_dir_name: str
    point_clouds_dir: str
    calibrations_dir: str
    kitti_sequence_to_frames_file: str
    image_extension: str
    partition_mode: str
    num_partitions: int
    val_split: float
    num_shards: int
    def __init__(self, root_directory_path: _Optional[str] = ..., image_dir_name: _Optional[str] = ..., label_dir_name: _Optional[str] = ..., point_clouds_dir: _Optional[str] = ..., calibrations_dir: _Optional[str] = ..., kitti_sequence_to_frames_file: _Optional[str] = ..., image_extension: _Optional[str] = ..., partition_mode: _Optional[str] = ..., num_partitions: _Optional[int] = ..., val_split: _Optional[float] = ..., num_shards: _Optional[int] = ...) -> None: ...

class DatasetExportConfig(_message.Message):
    __slots__ = ("kitti_config", "image_directory_path")
    KITTI_CONFIG_FIELD_NUMBER: _ClassVar[int]
    IMAGE_DIRECTORY_PATH_FIELD_NUMBER: _ClassVar[int]
    kitti_config: KittiConfig
    image_directory_path: str
    def __init__(self, kitti_config: _Optional[_Union[KittiConfig, _Mapping]] = ..., image_directory_path: _Optional[str] = ...) -> None: ...
