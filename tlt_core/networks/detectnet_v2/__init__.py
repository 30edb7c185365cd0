"""DetectNet_v2 (TLT v0.3 guide, 002): spec, model, rasteriser, cost, clustering, metrics.

A grid detector: a shared backbone to stride 16, a coverage head (``output_cov``, sigmoid)
and a box head (``output_bbox``) per class; training targets are rasterised coverage
ellipses (`rasterizer`), boxes are coded per cell (`coding`), detections come from DBSCAN
clustering of the per-cell boxes (`clustering`), and AP is reported combined and per
difficulty bucket (`metrics`).
"""
