"""The loopback worker launcher retries a start whose gRPC server found its port taken."""

from __future__ import annotations

import os
import socket
import sys

from loopback_workers import pick_ports, run_workers

# A worker that only starts its TensorFlow gRPC server on its TF_CONFIG address.
_SERVER = """
import json, os
import tensorflow as tf
config = json.loads(os.environ["TF_CONFIG"])
tf.distribute.Server(
    tf.train.ClusterSpec(config["cluster"]), job_name="worker",
    task_index=config["task"]["index"], protocol="grpc", start=True,
)
print("server started")
"""


def test_ports_of_one_cluster_are_distinct():
    for _ in range(20):
        ports = pick_ports(4)
        assert len(set(ports)) == 4


def test_start_on_a_taken_port_is_retried_on_fresh_ports():
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()  # someone else took the port between the pick and the worker's bind
    picks = iter([[taken.getsockname()[1]]])

    def ports(count):
        return next(picks, None) or pick_ports(count)

    try:
        codes, outputs, starts = run_workers(
            lambda index: [sys.executable, "-c", _SERVER],
            1,
            env=dict(os.environ, CUDA_VISIBLE_DEVICES="", TF_CPP_MIN_LOG_LEVEL="2"),
            timeout=300,
            ports=ports,
        )
    finally:
        taken.close()
    assert starts == 2, outputs
    assert codes == [0] and "server started" in outputs[0]
