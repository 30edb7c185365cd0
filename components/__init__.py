"""KFP v2 components: one per stage, each a thin wrapper over one ``tlt_core`` stage function.

Every component runs in the tlt-core image (``TLT_CORE_IMAGE``) without installing the kfp
package at run time (``install_kfp_package=False``: cluster nodes may have no package index;
the image ships kfp). Secrets never travel as parameters: the model key arrives as the
environment variable ``TLT_MODEL_KEY`` and S3 credentials as ``AWS_ACCESS_KEY_ID`` /
``AWS_SECRET_ACCESS_KEY`` (see ``components.secrets``), set from Kubernetes Secrets.
"""

TLT_CORE_IMAGE = "ghcr.io/tlt-pipelines/tlt-core:0.1.0"
