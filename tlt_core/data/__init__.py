"""Data: KITTI labels (kitti), the TFRecord layout (tfrecord), dataset conversion (convert),
the input pipeline (pipeline, augment) and the sample-data generator (sample).

Import the submodules directly; this package imports nothing heavy.
"""
