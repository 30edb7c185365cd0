"""tlt_core: an open re-implementation of the NVIDIA Transfer Learning Toolkit workflows (one shared
set of stages; the networks are in ``tlt_core.networks``)."""

__version__ = "0.1.0"
