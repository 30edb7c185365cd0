"""The image classifier of the TLT v0.3 guide (002, chapters 4.1, 5.1, 6.1, 7.1, 8, 9, 11.1).

A directory-per-class dataset (``data``), the spec (``spec``), the model (``model``:
shared backbone + pooling + ``predictions`` softmax), its learning-rate schedules
(``schedule``), metrics (``metrics``) and the sample generator (``sample``).
"""
