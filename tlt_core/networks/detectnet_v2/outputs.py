"""Names of DetectNet_v2's two heads: Keras layers / output keys and exported graph nodes.

``output_cov/Sigmoid`` and ``output_bbox/BiasAdd`` are the names 002 (``tlt-export -O``,
``tlt-infer --output_cov/--output_bbox``, ``tlt-converter -O``) and DeepStream's built-in
DetectNet_v2 parser use. A light module: the network table imports it without Keras.
"""

COV_OUTPUT = "output_cov"
BBOX_OUTPUT = "output_bbox"
COV_NODE = "output_cov/Sigmoid"
BBOX_NODE = "output_bbox/BiasAdd"
HEAD_LAYERS = (COV_OUTPUT, BBOX_OUTPUT)
