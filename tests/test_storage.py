"""tlt_core.storage against a real S3 server (SeaweedFS on 127.0.0.1, see tests/s3server.py)."""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import socket
import tempfile
import threading
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from s3server import free_ports

from tlt_core import storage
from tlt_core.errors import DataError, StorageError
from tlt_core.storage import PathResolver, RetryPolicy, S3Settings, S3Uri

FAST_RETRY = RetryPolicy(attempts=3, base_delay=0.01, max_delay=0.05)
MiB = 1024 * 1024


def _write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def _read_object(client, bucket: str, key: str) -> bytes:
    response = client.get_object(bucket, key)
    try:
        return response.read()
    finally:
        response.close()
        response.release_conn()


def _keys(client, bucket: str) -> list[str]:
    return sorted(obj.object_name for obj in client.list_objects(bucket, recursive=True))


@pytest.fixture
def s3_env(s3_server, monkeypatch):
    """Point tlt_core.storage at the test server through the environment, as the CLI is."""
    for name in (*storage.ENDPOINT_VARS, "AWS_SESSION_TOKEN", "S3_VERIFY_SSL"):
        monkeypatch.delenv(name, raising=False)
    for name, value in s3_server.env().items():
        monkeypatch.setenv(name, value)
    return s3_server


# ----------------------------------------------------------------------------------------
# URIs, settings, hashes: no server needed


def test_is_remote_and_uri_parts():
    assert storage.is_remote("s3://bucket/a/b")
    assert not storage.is_remote("/data/s3://x")
    assert not storage.is_remote(Path("s3:/bucket"))
    uri = S3Uri.parse("s3://my-bucket/data/images/")
    assert (uri.bucket, uri.key, uri.prefix, uri.name) == (
        "my-bucket",
        "data/images/",
        "data/images/",
        "images",
    )
    assert S3Uri.parse("s3://my-bucket").prefix == ""
    assert S3Uri.parse("s3://my-bucket").name == "my-bucket"
    assert str(S3Uri.parse("s3://b12/x").child("y/z.txt")) == "s3://b12/x/y/z.txt"


@pytest.mark.parametrize("bad", ["s3://", "s3://A_Upper/x", "s3://a/x", "s3:///key"])
def test_bad_bucket_names_are_one_line_errors(bad):
    with pytest.raises(StorageError, match=r"invalid bucket name") as info:
        S3Uri.parse(bad)
    assert "\n" not in str(info.value)


def test_settings_from_env_scheme_decides_tls(tmp_path):
    plain = S3Settings.from_env({"S3_ENDPOINT_URL": "http://minio.kubeflow:9000"})
    assert (plain.endpoint, plain.secure) == ("minio.kubeflow:9000", False)
    tls = S3Settings.from_env({"AWS_ENDPOINT_URL": "https://s3.example.com"})
    assert (tls.endpoint, tls.secure, tls.endpoint_url) == (
        "s3.example.com",
        True,
        "https://s3.example.com",
    )
    bare = S3Settings.from_env({"MINIO_ENDPOINT": "minio:9000"})
    assert (bare.endpoint, bare.secure) == ("minio:9000", True)
    aws = S3Settings.from_env({"AWS_DEFAULT_REGION": "eu-west-1"})
    assert (aws.endpoint, aws.secure, aws.region) == ("s3.amazonaws.com", True, "eu-west-1")
    # S3_ENDPOINT_URL wins over the others.
    first = S3Settings.from_env(
        {"S3_ENDPOINT_URL": "http://a:1", "AWS_ENDPOINT_URL": "http://b:2", "MINIO_ENDPOINT": "c"}
    )
    assert first.endpoint == "a:1"
    assert not S3Settings.from_env({"S3_VERIFY_SSL": "false"}).verify_ssl
    ca = _write(tmp_path / "ca.pem", b"-----BEGIN CERTIFICATE-----\n")
    with_ca = S3Settings.from_env({"S3_VERIFY_SSL": str(ca)})
    assert with_ca.verify_ssl and with_ca.ca_bundle == str(ca)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"S3_ENDPOINT_URL": "ftp://host:21"}, r"S3_ENDPOINT_URL=ftp://host:21: expected"),
        ({"S3_ENDPOINT_URL": "http://host:9000/bucket"}, r"an endpoint has no path"),
        ({"AWS_ACCESS_KEY_ID": "k"}, r"^AWS_SECRET_ACCESS_KEY: not set, but AWS_ACCESS_KEY_ID is"),
        ({"AWS_SECRET_ACCESS_KEY": "s"}, r"^AWS_ACCESS_KEY_ID: not set"),
        ({"S3_VERIFY_SSL": "/no/such/ca.pem"}, r"not a boolean nor a CA file"),
    ],
)
def test_bad_settings_are_one_line_errors(env, message):
    with pytest.raises(StorageError, match=message):
        S3Settings.from_env(env)


def test_file_digest_single_part_is_md5(tmp_path):
    data = os.urandom(4097)
    digest = storage.file_digest(_write(tmp_path / "f", data), part_size=5 * MiB)
    assert digest.size == 4097
    assert digest.sha256 == hashlib.sha256(data).hexdigest() == storage.sha256_file(tmp_path / "f")
    assert digest.etag == hashlib.md5(data).hexdigest()
    empty = storage.file_digest(_write(tmp_path / "e", b""))
    assert (empty.size, empty.etag) == (0, hashlib.md5(b"").hexdigest())


@given(st.binary(max_size=300), st.integers(min_value=1, max_value=64))
def test_file_digest_multipart_etag_counts_parts(data, part_size):
    # The multipart ETag is md5(concatenated part md5s)-N with N = ceil(size / part_size);
    # that it equals what a real server computes is checked in test_multipart_round_trip.
    with tempfile.TemporaryDirectory() as tmp:
        digest = storage.file_digest(_write(Path(tmp) / "f", data), part_size)
    parts = max(1, -(-len(data) // part_size))
    if parts == 1:
        assert digest.etag == hashlib.md5(data).hexdigest()
    else:
        assert digest.etag.endswith(f"-{parts}")
    assert digest.size == len(data)


def test_retry_delay_is_bounded_exponential():
    policy = RetryPolicy(attempts=10, base_delay=0.5, max_delay=4.0)
    delays = [policy.delay(n) for n in range(1, 10)]
    assert all(0.25 <= d <= 4.0 for d in delays)
    assert delays[0] <= 0.5 and delays[-1] >= 2.0


def test_safe_relative_refuses_escaping_keys(tmp_path):
    assert storage._safe_relative(tmp_path, "a/b.txt", "s3://b/p") == tmp_path / "a" / "b.txt"
    for bad in ("../x", "a/../../x", "/etc/passwd", "./x", ""):
        with pytest.raises(StorageError, match="unsafe object name"):
            storage._safe_relative(tmp_path, bad, "s3://b/p")


def test_local_paths_pass_through(tmp_path):
    spec = _write(tmp_path / "spec.txt", b"x")
    with PathResolver() as paths:
        assert paths.input(str(spec)) == spec
        assert paths.output(str(tmp_path / "out" / "model.tlt")) == tmp_path / "out" / "model.tlt"
        with pytest.raises(DataError, match=r"missing\.txt: no such file or directory$"):
            paths.input(str(tmp_path / "missing.txt"))


# ----------------------------------------------------------------------------------------
# Against the real server


def test_file_round_trip_with_content_metadata(s3_env, s3_bucket, tmp_path):
    data = os.urandom(70_000)
    info = storage.upload_file(_write(tmp_path / "model.tlt", data), f"s3://{s3_bucket}/m/")
    assert info.key == "m/model.tlt"
    assert info.sha256 == hashlib.sha256(data).hexdigest()
    assert info.etag == hashlib.md5(data).hexdigest()
    stat = s3_env.client().stat_object(s3_bucket, "m/model.tlt")
    assert stat.metadata["x-amz-meta-sha256"] == info.sha256
    out = storage.download(f"s3://{s3_bucket}/m/model.tlt", tmp_path / "back" / "model.tlt")
    assert out.read_bytes() == data
    assert [p.name for p in out.parent.iterdir()] == ["model.tlt"]  # no temp file left


def test_multipart_round_trip(s3_env, s3_bucket, tmp_path):
    # 11 MiB in 5 MiB parts: 3 parts; the locally computed ETag must match the server's.
    data = os.urandom(11 * MiB + 3)
    src = _write(tmp_path / "big.bin", data)
    info = storage.upload_file(src, f"s3://{s3_bucket}/big.bin", part_size=5 * MiB)
    assert info.etag.endswith("-3")
    assert info.etag == storage.file_digest(src, 5 * MiB).etag
    back = storage.download(f"s3://{s3_bucket}/big.bin", tmp_path / "big.out")
    assert hashlib.sha256(back.read_bytes()).digest() == hashlib.sha256(data).digest()


def test_directory_round_trip_writes_manifest_last(s3_env, s3_bucket, tmp_path):
    src = tmp_path / "results"
    files = {"status.json": b"{}", "weights/model.tlt": os.urandom(3000), "logs/a/b.txt": b""}
    for rel, data in files.items():
        _write(src / rel, data)
    uploaded = storage.upload_dir(src, f"s3://{s3_bucket}/run1")
    assert uploaded[-1].key == "run1/_SUCCESS"
    client = s3_env.client()
    manifest = json.loads(_read_object(client, s3_bucket, "run1/_SUCCESS"))
    assert manifest["format"] == storage.MANIFEST_FORMAT
    assert {rel: entry["sha256"] for rel, entry in manifest["files"].items()} == {
        rel: hashlib.sha256(data).hexdigest() for rel, data in files.items()
    }
    # A stray object (say, from an older run) is not part of the manifested directory.
    client.put_object(s3_bucket, "run1/stale.txt", io.BytesIO(b"old"), 3)
    back = storage.download(f"s3://{s3_bucket}/run1/", tmp_path / "back")
    got = {p.relative_to(back).as_posix(): p.read_bytes() for p in back.rglob("*") if p.is_file()}
    assert got == files


def test_prefix_without_manifest_downloads_everything(s3_env, s3_bucket, tmp_path):
    client = s3_env.client()
    for key in ("images/000001.png", "images/000002.png", "labels/000001.txt"):
        client.put_object(s3_bucket, f"kitti/{key}", io.BytesIO(key.encode()), len(key))
    listed = storage.list_objects(f"s3://{s3_bucket}/kitti/images/")
    assert [(o.key, o.size) for o in listed] == [
        ("kitti/images/000001.png", 17),
        ("kitti/images/000002.png", 17),
    ]
    back = storage.download(f"s3://{s3_bucket}/kitti", tmp_path / "kitti")
    assert sorted(p.relative_to(back).as_posix() for p in back.rglob("*") if p.is_file()) == [
        "images/000001.png",
        "images/000002.png",
        "labels/000001.txt",
    ]
    assert (back / "images" / "000002.png").read_bytes() == b"images/000002.png"
    with pytest.raises(StorageError, match=r"s3://.*/kitti/: no _SUCCESS manifest"):
        storage.download(f"s3://{s3_bucket}/kitti", tmp_path / "k2", require_marker=True)
    assert not (tmp_path / "k2").exists()


def test_path_resolver_round_trip(s3_env, s3_bucket, tmp_path):
    client = s3_env.client()
    client.put_object(s3_bucket, "specs/ssd.txt", io.BytesIO(b"spec"), 4)
    client.put_object(s3_bucket, "data/train/a.txt", io.BytesIO(b"a"), 1)
    with PathResolver() as paths:
        spec = paths.input(f"s3://{s3_bucket}/specs/ssd.txt")
        data_dir = paths.input(f"s3://{s3_bucket}/data/train")
        model = paths.output(f"s3://{s3_bucket}/out/model.tlt")
        results = paths.output(f"s3://{s3_bucket}/out/results")
        assert spec.name == "ssd.txt" and spec.read_bytes() == b"spec"
        assert (data_dir / "a.txt").read_bytes() == b"a"
        assert not model.exists() and not results.exists()
        model.write_bytes(b"weights")
        (results / "sub").mkdir(parents=True)
        (results / "sub" / "log.txt").write_text("done")
        workdir = spec.parent.parent
        assert _keys(client, s3_bucket) == ["data/train/a.txt", "specs/ssd.txt"]  # not yet
    assert not workdir.exists()
    assert _read_object(client, s3_bucket, "out/model.tlt") == b"weights"
    assert _read_object(client, s3_bucket, "out/results/sub/log.txt") == b"done"
    assert "out/results/_SUCCESS" in _keys(client, s3_bucket)


def test_nothing_uploaded_when_the_command_fails(s3_env, s3_bucket):
    with pytest.raises(RuntimeError, match="training diverged"), PathResolver() as paths:
        model = paths.output(f"s3://{s3_bucket}/out/model.tlt")
        results = paths.output(f"s3://{s3_bucket}/out/results")
        model.write_bytes(b"half")
        results.mkdir()
        (results / "status.json").write_text("{}")
        workdir = model.parent.parent
        raise RuntimeError("training diverged")
    assert _keys(s3_env.client(), s3_bucket) == []
    assert not workdir.exists()


def test_missing_object_and_bucket_are_one_line_errors(s3_env, s3_bucket, tmp_path):
    with pytest.raises(StorageError) as info, PathResolver() as paths:
        paths.input(f"s3://{s3_bucket}/nope/spec.txt")
    assert str(info.value) == f"s3://{s3_bucket}/nope/spec.txt: no such object"
    with pytest.raises(StorageError) as info:
        storage.download("s3://no-such-bucket-here/x", tmp_path / "x")
    assert str(info.value) == "s3://no-such-bucket-here: no such bucket"


def test_wrong_credentials_are_one_line_errors(s3_env, s3_bucket, tmp_path, monkeypatch):
    src = _write(tmp_path / "f.txt", b"x")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret")
    with pytest.raises(StorageError) as info:
        storage.upload_file(src, f"s3://{s3_bucket}/f.txt")
    assert str(info.value).startswith(f"s3://{s3_bucket}: access denied (check AWS_")
    assert "\n" not in str(info.value)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "nobody")
    with pytest.raises(StorageError, match=r": access denied \(check AWS_ACCESS_KEY_ID"):
        storage.download(f"s3://{s3_bucket}/f.txt", tmp_path / "g.txt")
    # A read-only identity may read but not write.
    for name, value in s3_env.env(readonly=True).items():
        monkeypatch.setenv(name, value)
    with pytest.raises(StorageError, match=rf"^s3://{s3_bucket}: access denied"):
        storage.upload_file(src, f"s3://{s3_bucket}/f.txt")
    assert _keys(s3_env.client(), s3_bucket) == []


def test_unreachable_endpoint_gives_up_after_retries(s3_env, tmp_path, monkeypatch):
    (port,) = free_ports(1)  # nothing listens there
    monkeypatch.setenv("S3_ENDPOINT_URL", f"http://127.0.0.1:{port}")
    src = _write(tmp_path / "f.txt", b"x")
    with pytest.raises(StorageError) as info:
        storage.upload_file(src, "s3://bucket1/f.txt", retry=FAST_RETRY)
    assert str(info.value) == (
        f"s3://bucket1/f.txt: endpoint http://127.0.0.1:{port} unreachable "
        "(connection refused); upload gave up after 3 attempts"
    )


def test_local_copy_kept_when_upload_fails(s3_env, tmp_path, monkeypatch):
    (port,) = free_ports(1)
    monkeypatch.setenv("S3_ENDPOINT_URL", f"http://127.0.0.1:{port}")
    with (
        pytest.raises(StorageError, match=r"unreachable.*; local copy kept in (\S+)$") as info,
        PathResolver(retry=FAST_RETRY, workdir=tmp_path) as paths,
    ):
        paths.output("s3://bucket1/out/model.tlt").write_bytes(b"hours of training")
    kept = Path(str(info.value).rsplit(" ", 1)[1])
    assert (kept / "out1" / "model.tlt").read_bytes() == b"hours of training"


class FlakyProxy:
    """A TCP proxy on 127.0.0.1 that drops its first ``drop`` connections, then forwards."""

    def __init__(self, upstream: tuple[str, int], drop: int) -> None:
        self.upstream, self.drop, self.dropped = upstream, drop, 0
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self._closing = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._closing:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            if self.dropped < self.drop:
                self.dropped += 1
                conn.close()  # the client sees the connection reset / closed mid-request
                continue
            upstream = socket.create_connection(self.upstream)
            for a, b in ((conn, upstream), (upstream, conn)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        try:
            while chunk := src.recv(65536):
                dst.sendall(chunk)
        except OSError:
            pass
        finally:
            for sock in (src, dst):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self._closing = True
        self.listener.close()


def test_transient_network_failures_are_retried(s3_env, s3_bucket, tmp_path, monkeypatch, caplog):
    host, port = s3_env.host_port.split(":")
    proxy = FlakyProxy((host, int(port)), drop=2)
    endpoint = f"http://127.0.0.1:{proxy.port}"
    try:
        monkeypatch.setenv("S3_ENDPOINT_URL", endpoint)
        data = os.urandom(5000)
        src = _write(tmp_path / "f.bin", data)
        with caplog.at_level("WARNING", logger="tlt_core.storage"):
            storage.upload_file(src, f"s3://{s3_bucket}/f.bin", retry=FAST_RETRY)
        assert proxy.dropped == 2
        assert f"connection to {endpoint} lost" in caplog.text
        proxy.drop += 1
        back = storage.download(f"s3://{s3_bucket}/f.bin", tmp_path / "g.bin", retry=FAST_RETRY)
        assert back.read_bytes() == data and proxy.dropped == 3
        proxy.drop += 100  # a network that never recovers
        with pytest.raises(StorageError) as info:
            storage.upload_file(src, f"s3://{s3_bucket}/f2.bin", retry=FAST_RETRY)
        assert str(info.value).startswith(f"s3://{s3_bucket}/f2.bin: connection to {endpoint} lost")
        assert str(info.value).endswith("upload gave up after 3 attempts")
    finally:
        proxy.close()


class CorruptingClient:
    """A real minio client whose first ``corrupt_puts`` uploads store altered bytes and whose
    first ``corrupt_gets`` downloads deliver altered bytes, as a faulty network or disk would."""

    def __init__(self, wrapped, *, corrupt_puts: int = 0, corrupt_gets: int = 0) -> None:
        self.wrapped, self.corrupt_puts, self.corrupt_gets = wrapped, corrupt_puts, corrupt_gets
        self.puts = self.gets = 0

    def __getattr__(self, name):
        return getattr(self.wrapped, name)

    def put_object(self, bucket, key, data, length, **kwargs):
        self.puts += 1
        if self.puts <= self.corrupt_puts:
            body = bytearray(data.read())
            body[len(body) // 2] ^= 0xFF
            data = io.BytesIO(bytes(body))
        return self.wrapped.put_object(bucket, key, data, length, **kwargs)

    def get_object(self, bucket, key, **kwargs):
        self.gets += 1
        response = self.wrapped.get_object(bucket, key, **kwargs)
        if self.gets > self.corrupt_gets:
            return response
        return _TruncatedResponse(response)


class _TruncatedResponse:
    """Delivers all but the last byte of the body."""

    def __init__(self, response) -> None:
        self.response = response

    def stream(self, amt):
        body = b"".join(self.response.stream(amt))
        yield body[:-1]

    def close(self):
        self.response.close()

    def release_conn(self):
        self.response.release_conn()


def test_corrupted_upload_is_detected_and_retried(s3_env, s3_bucket, tmp_path):
    data = os.urandom(9000)
    src = _write(tmp_path / "f.bin", data)
    client = CorruptingClient(storage.make_client(), corrupt_puts=1)
    info = storage.upload_file(src, f"s3://{s3_bucket}/f.bin", client=client, retry=FAST_RETRY)
    assert client.puts == 2
    assert info.etag == hashlib.md5(data).hexdigest()
    assert _read_object(s3_env.client(), s3_bucket, "f.bin") == data


def test_upload_that_never_verifies_leaves_no_object(s3_env, s3_bucket, tmp_path):
    src = _write(tmp_path / "f.bin", os.urandom(9000))
    client = CorruptingClient(storage.make_client(), corrupt_puts=99)
    with pytest.raises(StorageError, match=r"content check failed: ETag .*removed$"):
        storage.upload_file(src, f"s3://{s3_bucket}/f.bin", client=client, retry=FAST_RETRY)
    assert client.puts == FAST_RETRY.attempts
    assert _keys(s3_env.client(), s3_bucket) == []


def test_corrupted_download_is_detected_and_retried(s3_env, s3_bucket, tmp_path):
    data = os.urandom(9000)
    storage.upload_file(_write(tmp_path / "f.bin", data), f"s3://{s3_bucket}/f.bin")
    client = CorruptingClient(storage.make_client(), corrupt_gets=1)
    back = storage.download(
        f"s3://{s3_bucket}/f.bin", tmp_path / "g.bin", client=client, retry=FAST_RETRY
    )
    assert back.read_bytes() == data and client.gets == 2
    always = CorruptingClient(storage.make_client(), corrupt_gets=99)
    with pytest.raises(StorageError, match=r"content check failed: got 8999 bytes"):
        storage.download(
            f"s3://{s3_bucket}/f.bin", tmp_path / "h.bin", client=always, retry=FAST_RETRY
        )
    assert not (tmp_path / "h.bin").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".h.bin")] == []
