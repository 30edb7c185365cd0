"""tlt_core: an open re-implementation of the NVIDIA Transfer Learning Toolkit SSD workflow."""

__version__ = "0.1.0"
