"""Training that spans several pods: TF_CONFIG from a JobSet pod's environment
(``tf_config``), the TrainJob/TFJob/TrainingRuntime manifests (``manifests``), the worker
entry point (``worker``) and the launcher a KFP task runs (``launcher``).

Nothing here imports TensorFlow: the launcher pod only talks to the Kubernetes API.
"""
