"""Kubeflow Pipelines DAGs: ``train_deploy`` and ``calibration_refresh``; files only wire."""
