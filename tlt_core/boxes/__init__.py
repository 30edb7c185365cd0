"""Box geometry for SSD: anchors, IoU, box coding (match/encode/decode) and NMS.

Boxes at module edges are pixel corners ``[x1, y1, x2, y2]`` (continuous: width = x2 - x1);
normalised centre-size ``(cx, cy, w, h)`` appears only for anchors and inside
:mod:`tlt_core.networks.ssd.box_coding`.
"""
