"""Detection metrics: average precision (``ap``) and its reports (``report``)."""
