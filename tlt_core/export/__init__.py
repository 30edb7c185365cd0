"""Export: ONNX (+ post-processing), INT8 calibration, TensorRT engines, DeepStream files."""
