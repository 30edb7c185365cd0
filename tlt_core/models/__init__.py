"""SSD model: backbones (``tlt_core.models.backbones``), builder (``ssd``), loss (``loss``)."""
