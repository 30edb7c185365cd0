"""The dataset-convert spec (002, 4.2.3): KITTI directories to TFRecord folds.

`load_convert_spec` returns a `ConvertSpec` with paths resolved (relative ones against
the spec file's directory; the ``*_dir_name`` / ``*_dir`` fields against the dataset
root) and the partition rules checked:
- ``partition_mode: "random"``: ``num_partitions`` is 2 (absent means 2) and
  ``val_split`` (percent of frames for fold 0, the validation fold) is required, 0..100.
- ``partition_mode: "sequence"``: ``kitti_sequence_to_frames_file`` and
  ``num_partitions`` (>= 1) are required; ``val_split`` does not apply.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

from tlt_core.errors import SpecError
from tlt_core.spec import dataset_convert_pb2 as pb
from tlt_core.spec.check import resolve_path
from tlt_core.spec.locate import SpecLocator
from tlt_core.spec.textparse import parse_message, read_spec_text, shortest_float32

PARTITION_MODES = ("random", "sequence")
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg")


@dataclass(frozen=True)
class ConvertSpec:
    path: str
    proto: pb.DatasetExportConfig = field(repr=False)
    root_directory: Path
    image_dir: Path  # root / image_dir_name
    label_dir: Path  # root / label_dir_name
    point_clouds_dir: Path | None
    calibrations_dir: Path | None
    sequence_to_frames_file: Path | None
    image_extension: str  # with the dot, as written: ".png"
    partition_mode: str  # "random" or "sequence"
    num_partitions: int
    val_split: float | None  # percent, random mode only
    num_shards: int
    image_directory_path: Path | None  # the top-level field, if given

    def with_root(self, root: str | Path) -> ConvertSpec:
        """The same spec reading the dataset at ``root`` (a downloaded or mounted copy):
        the folders under the old root move with it; ``image_directory_path``, when given,
        becomes ``root`` too."""
        root = Path(root)

        def moved(path: Path | None) -> Path | None:
            if path is None:
                return None
            try:
                return root / Path(path).relative_to(self.root_directory)
            except ValueError:  # an absolute folder outside the root stays where it is
                return path

        return dataclasses.replace(
            self,
            root_directory=root,
            image_dir=moved(self.image_dir),
            label_dir=moved(self.label_dir),
            point_clouds_dir=moved(self.point_clouds_dir),
            calibrations_dir=moved(self.calibrations_dir),
            sequence_to_frames_file=moved(self.sequence_to_frames_file),
            image_directory_path=root if self.image_directory_path is not None else None,
        )


def load_convert_spec(path: str | Path) -> ConvertSpec:
    """Read, parse and validate a dataset-convert spec file."""
    text = read_spec_text(path)
    return parse_convert_spec(text, path=str(path), base_dir=Path(path).absolute().parent)


def parse_convert_spec(
    text: str, path: str = "<string>", base_dir: str | Path | None = None
) -> ConvertSpec:
    proto = pb.DatasetExportConfig()
    locator = parse_message(text, proto, path)
    base = Path(base_dir) if base_dir is not None else Path.cwd()
    return _build(proto, path, locator, base)


def _build(
    proto: pb.DatasetExportConfig, path: str, locator: SpecLocator, base: Path
) -> ConvertSpec:
    def fail(field_path: str, message: str) -> SpecError:
        return SpecError(message, path, locator.line(field_path), field_path)

    if not proto.HasField("kitti_config"):
        raise fail("kitti_config", "required section is missing")
    kc = proto.kitti_config
    at = "kitti_config."
    for name in (
        "root_directory_path",
        "image_dir_name",
        "label_dir_name",
        "image_extension",
        "partition_mode",
    ):
        if not getattr(kc, name):
            raise fail(at + name, "required field is missing")

    extension = kc.image_extension
    if extension.lower() not in IMAGE_EXTENSIONS:
        raise fail(
            at + "image_extension",
            f"expected one of {', '.join(IMAGE_EXTENSIONS)}, got {extension!r}",
        )
    mode = kc.partition_mode
    if mode not in PARTITION_MODES:
        raise fail(at + "partition_mode", f'expected "random" or "sequence", got {mode!r}')

    if not kc.HasField("num_shards"):
        raise fail(at + "num_shards", "required field is missing")
    if kc.num_shards < 1:
        raise fail(at + "num_shards", f"must be at least 1, got {kc.num_shards}")

    val_split = None
    if mode == "random":
        num_partitions = kc.num_partitions if kc.HasField("num_partitions") else 2
        if num_partitions != 2:
            raise fail(
                at + "num_partitions",
                "random partitioning makes 2 partitions "
                f"(validation, training), got {num_partitions}",
            )
        if not kc.HasField("val_split"):
            raise fail(at + "val_split", 'required with partition_mode "random" (percent)')
        val_split = shortest_float32(kc.val_split)
        if not 0.0 <= val_split <= 100.0:
            raise fail(at + "val_split", f"must be a percentage in [0, 100], got {val_split:g}")
    else:
        if not kc.kitti_sequence_to_frames_file:
            raise fail(
                at + "kitti_sequence_to_frames_file", 'required with partition_mode "sequence"'
            )
        if not kc.HasField("num_partitions"):
            raise fail(at + "num_partitions", 'required with partition_mode "sequence"')
        num_partitions = kc.num_partitions
        if num_partitions < 1:
            raise fail(at + "num_partitions", f"must be at least 1, got {num_partitions}")
        if kc.HasField("val_split"):
            raise fail(
                at + "val_split",
                'applies to partition_mode "random" only; '
                "sequence mode splits into num_partitions folds",
            )

    paths = {
        "root_directory_path": kc.root_directory_path,
        "kitti_sequence_to_frames_file": kc.kitti_sequence_to_frames_file,
        "image_directory_path": proto.image_directory_path,
    }
    for name, raw in paths.items():
        if "://" in raw:
            at_name = name if name == "image_directory_path" else at + name
            raise fail(
                at_name, "must be a local path (the CLI fetches s3:// data before reading the spec)"
            )
    local = {name: resolve_path(raw, base) for name, raw in paths.items()}
    root = Path(local["root_directory_path"] or base)
    return ConvertSpec(
        path=path,
        proto=proto,
        root_directory=root,
        image_dir=root / kc.image_dir_name,
        label_dir=root / kc.label_dir_name,
        point_clouds_dir=root / kc.point_clouds_dir if kc.point_clouds_dir else None,
        calibrations_dir=root / kc.calibrations_dir if kc.calibrations_dir else None,
        sequence_to_frames_file=_as_path(local["kitti_sequence_to_frames_file"]),
        image_extension=extension,
        partition_mode=mode,
        num_partitions=num_partitions,
        val_split=val_split,
        num_shards=kc.num_shards,
        image_directory_path=_as_path(local["image_directory_path"]),
    )


def _as_path(resolved: str | None) -> Path | None:
    return Path(resolved) if resolved else None
