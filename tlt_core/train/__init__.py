"""Training: learning-rate schedule, the fit loop, checkpoints, status.json, SIGTERM."""
