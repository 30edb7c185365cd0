"""The SSD experiment spec for the sample dataset (``tlt_core.data.sample``): what
``tlt sample-data`` writes as ``specs/ssd_train.txt`` and the local pipeline run trains."""

from __future__ import annotations

from pathlib import Path

# Tuned on this data (see tests/test_train_quality.py): resnet10 at 160x160 learns it from
# scratch in ~22 epochs of 480 images. Objects are 0.13-0.41 of the (resized) image side
# (sqrt of box area), so the scales start at 0.18, not SSD's 0.05-0.1, which matched only
# 20 % of the pedestrians at IoU 0.5; after the square resize pedestrians are about 0.27
# wide/high and cars 1.5, hence the 1/3 and 1/4 boxes. Zoom-out is capped at 1.5x and crops
# keep >= 0.6 of the side: SSD's 4x zoom-out shrinks these objects below the first layer's
# anchors at this input size.
EXPERIMENT_DEFAULTS: dict[str, object] = {
    "random_seed": 42,
    "arch": "resnet",
    "nlayers": 10,
    "output_width": 160,
    "output_height": 160,
    "batch_size": 16,
    "num_epochs": 22,
    "validation_period": 2,
    "min_learning_rate": "1e-4",
    "max_learning_rate": "2e-2",
    "scales": "[0.18, 0.25, 0.33, 0.45, 0.6, 0.75, 0.9]",
    "aspect_ratios": (
        "[[1.0, 2.0, 0.5, 1.0/3.0, 0.25], [1.0, 2.0, 0.5, 1.0/3.0, 0.25], "
        "[1.0, 2.0, 0.5, 1.0/3.0, 0.25], [1.0, 2.0, 0.5, 1.0/3.0], [1.0, 2.0, 0.5], "
        "[1.0, 2.0, 0.5]]"
    ),
    "confidence_threshold": 0.01,
    "soft_start": 0.1,
    "annealing": 0.8,
    # TLT's sample regulariser. Trained from scratch on this data NO_REG does better (the
    # L1 term of 3e-5 is larger than the detection loss); the quality run uses NO_REG.
    "regularizer_type": "L1",
    "regularizer_weight": "3e-5",
    "ap_mode": "SAMPLE",
    "random_crop_min_scale": 0.6,
    "random_crop_max_scale": 1.0,
    "zoom_out_min_scale": 1.0,
    "zoom_out_max_scale": 1.5,
}

_EXPERIMENT_TEMPLATE = """\
random_seed: {random_seed}
ssd_config {{
  aspect_ratios: "{aspect_ratios}"
  scales: "{scales}"
  two_boxes_for_ar1: true
  clip_boxes: false
  variances: "[0.1, 0.1, 0.2, 0.2]"
  arch: "{arch}"
  nlayers: {nlayers}
  freeze_bn: false
}}
training_config {{
  batch_size_per_gpu: {batch_size}
  num_epochs: {num_epochs}
  enable_qat: false
  learning_rate {{
    soft_start_annealing_schedule {{
      min_learning_rate: {min_learning_rate}
      max_learning_rate: {max_learning_rate}
      soft_start: {soft_start}
      annealing: {annealing}
    }}
  }}
  regularizer {{
    type: {regularizer_type}
    weight: {regularizer_weight}
  }}
}}
eval_config {{
  validation_period_during_training: {validation_period}
  average_precision_mode: {ap_mode}
  batch_size: {batch_size}
  matching_iou_threshold: 0.5
}}
nms_config {{
  confidence_threshold: {confidence_threshold}
  clustering_iou_threshold: 0.6
  top_k: 200
}}
augmentation_config {{
  output_width: {output_width}
  output_height: {output_height}
  output_channel: 3
  random_crop_min_scale: {random_crop_min_scale}
  random_crop_max_scale: {random_crop_max_scale}
  zoom_out_min_scale: {zoom_out_min_scale}
  zoom_out_max_scale: {zoom_out_max_scale}
  image_mean {{
    key: 'b'
    value: 103.9
  }}
  image_mean {{
    key: 'g'
    value: 116.8
  }}
  image_mean {{
    key: 'r'
    value: 123.7
  }}
}}
dataset_config {{
  data_sources: {{
    label_directory_path: "{train_labels}"
    image_directory_path: "{train_images}"
  }}
  include_difficult_in_training: true
  target_class_mapping {{
    key: "car"
    value: "car"
  }}
  target_class_mapping {{
    key: "pedestrian"
    value: "pedestrian"
  }}
  target_class_mapping {{
    key: "cyclist"
    value: "cyclist"
  }}
  target_class_mapping {{
    key: "van"
    value: "car"
  }}
  target_class_mapping {{
    key: "person_sitting"
    value: "pedestrian"
  }}
  validation_data_sources: {{
    label_directory_path: "{val_labels}"
    image_directory_path: "{val_images}"
  }}
}}
"""


# The sample spec (resnet10, 160x160) with a quarter of the quality run's image-steps (8
# epochs of 320 images, batch 8, vs 22 of 480): train and retrain each take a few minutes,
# so the local pipeline run (the whole DAG) fits 15 minutes on 2 CPU cores. No regulariser:
# trained from scratch on this data the sample's L1 term outweighs the detection loss.
FAST_OVERRIDES: dict[str, object] = {
    "batch_size": 8,
    "num_epochs": 8,
    "validation_period": 4,
    "regularizer_type": "NO_REG",
    "regularizer_weight": 0,
}


def sample_experiment_spec(data_dir: str | Path, **overrides: object) -> str:
    """The SSD experiment spec text for a dataset generated under ``data_dir``.

    ``overrides`` replace entries of :data:`EXPERIMENT_DEFAULTS` (e.g. ``num_epochs=2``,
    ``output_width=128``); an unknown name raises ``TypeError``.
    """
    unknown = set(overrides) - set(EXPERIMENT_DEFAULTS)
    if unknown:
        raise TypeError(f"unknown sample spec setting(s): {', '.join(sorted(unknown))}")
    root = Path(data_dir).resolve()
    values = {**EXPERIMENT_DEFAULTS, **overrides}
    return _EXPERIMENT_TEMPLATE.format(
        **values,
        train_images=root / "training" / "image_2",
        train_labels=root / "training" / "label_2",
        val_images=root / "val" / "image_2",
        val_labels=root / "val" / "label_2",
    )
