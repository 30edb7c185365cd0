"""A loopback fake of the Kubernetes API server, for the distributed-training launcher.

It answers as the API server does, over HTTP on 127.0.0.1, for what the launcher uses:

- custom objects (``/apis/{group}/{version}/namespaces/{ns}/{plural}[/{name}]``): create
  (201, or 409 AlreadyExists with a ``Status`` body), get (200 / 404 NotFound), delete
  (200 / 404), and ``?watch=true`` with ``fieldSelector=metadata.name=...`` and
  ``resourceVersion``: newline-delimited ``{"type", "object"}`` events after that version,
  until ``timeoutSeconds``; a version older than the server keeps gives one ``ERROR`` event
  with a 410 ``Expired`` Status, as an etcd compaction does;
- pods (``/api/v1/namespaces/{ns}/pods?labelSelector=k=v``) and a pod's log
  (``.../pods/{name}/log?follow=true``, streamed in chunks).

Tests play the controller: ``update_status`` / ``set_pods`` / ``append_log`` change the
state and bump resourceVersions, and ``expire_before`` forgets old events.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

HOST = "127.0.0.1"


def status_body(code: int, reason: str, message: str) -> dict[str, Any]:
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }


@dataclass
class FakeCluster:
    objects: dict[tuple[str, str, str], dict[str, Any]] = field(default_factory=dict)
    events: list[tuple[int, str, str, dict[str, Any]]] = field(default_factory=list)
    pods: dict[str, dict[str, Any]] = field(default_factory=dict)
    logs: dict[str, list[str]] = field(default_factory=dict)
    log_done: set[str] = field(default_factory=set)
    requests: list[tuple[str, str]] = field(default_factory=list)
    version: int = 100
    oldest_kept: int = 0
    expire_next_watch: bool = False
    lock: threading.Condition = field(default_factory=threading.Condition)

    # --- what the tests (the "controller") do --------------------------------------------------

    def _bump(self) -> str:
        self.version += 1
        return str(self.version)

    def _record(self, plural: str, kind: str, obj: dict[str, Any]) -> None:
        self.events.append((self.version, plural, kind, json.loads(json.dumps(obj))))
        self.lock.notify_all()

    def put(self, plural: str, obj: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            key = (plural, obj["metadata"]["namespace"], obj["metadata"]["name"])
            obj = json.loads(json.dumps(obj))
            obj["metadata"].setdefault("uid", str(uuid.uuid4()))
            obj["metadata"]["resourceVersion"] = self._bump()
            self.objects[key] = obj
            self._record(plural, "ADDED", obj)
            return obj

    def update_status(self, plural: str, namespace: str, name: str, status: dict) -> None:
        with self.lock:
            obj = self.objects[(plural, namespace, name)]
            obj["status"] = status
            obj["metadata"]["resourceVersion"] = self._bump()
            self._record(plural, "MODIFIED", obj)

    def remove(self, plural: str, namespace: str, name: str) -> dict[str, Any] | None:
        with self.lock:
            obj = self.objects.pop((plural, namespace, name), None)
            if obj is not None:
                obj["metadata"]["resourceVersion"] = self._bump()
                self._record(plural, "DELETED", obj)
            return obj

    def set_pods(self, pods: list[dict[str, Any]]) -> None:
        with self.lock:
            self.pods = {p["metadata"]["name"]: p for p in pods}

    def append_log(self, pod: str, *lines: str, done: bool = False) -> None:
        with self.lock:
            self.logs.setdefault(pod, []).extend(lines)
            if done:
                self.log_done.add(pod)
            self.lock.notify_all()

    def expire_before(self, version: int) -> None:
        with self.lock:
            self.oldest_kept = version

    def expire_once(self) -> None:
        """The next watch gets 410 Expired whatever its version (a compaction just then)."""
        with self.lock:
            self.expire_next_watch = True

    def wait_for(self, predicate, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        with self.lock:
            while not predicate():
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError("fake cluster: condition not reached")
                self.lock.wait(min(left, 0.05))  # requests are recorded without notify


def pod(name: str, phase: str, labels: dict[str, str], annotations=None, exit_code=None):
    status: dict[str, Any] = {"phase": phase}
    if exit_code is not None:
        status["containerStatuses"] = [
            {
                "name": "node",
                "ready": False,
                "restartCount": 0,
                "image": "tlt-core",
                "imageID": "",
                "state": {"terminated": {"exitCode": exit_code, "reason": "Error"}},
            }
        ]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": "team",
            "labels": labels,
            "annotations": annotations or {},
        },
        "spec": {"containers": [{"name": "node", "image": "tlt-core"}]},
        "status": status,
    }


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    cluster: FakeCluster

    def log_message(self, *args):  # quiet
        pass

    def _send(self, code: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _route(self):
        url = urlsplit(self.path)
        parts = [p for p in url.path.split("/") if p]
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        self.cluster.requests.append(
            (self.command, url.path + ("?" + url.query if url.query else ""))
        )
        return parts, query

    # --- verbs -----------------------------------------------------------------------------

    def do_POST(self):
        parts, _ = self._route()
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if len(parts) == 6 and parts[0] == "apis":
            _, group, _version, _, namespace, plural = parts
            name = body["metadata"]["name"]
            with self.cluster.lock:
                if (plural, namespace, name) in self.cluster.objects:
                    return self._send(
                        409,
                        status_body(
                            409, "AlreadyExists", f'{plural}.{group} "{name}" already exists'
                        ),
                    )
                body["metadata"]["namespace"] = namespace
                created = self.cluster.put(plural, body)
            return self._send(201, created)
        return self._send(404, status_body(404, "NotFound", "no such endpoint"))

    def do_DELETE(self):
        parts, _ = self._route()
        if len(parts) == 7 and parts[0] == "apis":
            _, group, _version, _, namespace, plural, name = parts
            removed = self.cluster.remove(plural, namespace, name)
            if removed is None:
                return self._send(
                    404, status_body(404, "NotFound", f'{plural}.{group} "{name}" not found')
                )
            return self._send(200, removed)
        return self._send(404, status_body(404, "NotFound", "no such endpoint"))

    def do_GET(self):
        parts, query = self._route()
        if parts[:1] == ["apis"] and len(parts) == 7:
            _, group, _version, _, namespace, plural, name = parts
            with self.cluster.lock:
                obj = self.cluster.objects.get((plural, namespace, name))
            if obj is None:
                return self._send(
                    404, status_body(404, "NotFound", f'{plural}.{group} "{name}" not found')
                )
            return self._send(200, obj)
        if parts[:1] == ["apis"] and len(parts) == 6 and query.get("watch") in ("true", "1"):
            return self._watch(parts[5], parts[4], query)
        if parts[:2] == ["api", "v1"] and len(parts) == 5 and parts[4] == "pods":
            return self._pods(query)
        if parts[:2] == ["api", "v1"] and len(parts) == 7 and parts[6] == "log":
            return self._log(parts[5])
        return self._send(404, status_body(404, "NotFound", "no such endpoint"))

    # --- streams ---------------------------------------------------------------------------

    def _chunk(self, data: bytes) -> None:
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()

    def _start_stream(self, content_type: str) -> None:
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()

    def _watch(self, plural: str, namespace: str, query: dict[str, str]) -> None:
        name = query.get("fieldSelector", "").removeprefix("metadata.name=")
        since = int(query.get("resourceVersion") or 0)
        deadline = time.monotonic() + float(query.get("timeoutSeconds", 5))
        self._start_stream("application/json")
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            with self.cluster.lock:
                expired = self.cluster.expire_next_watch or (
                    since and since < self.cluster.oldest_kept
                )
                self.cluster.expire_next_watch = False
            if expired:
                message = f"too old resource version: {since} ({self.cluster.oldest_kept})"
                event = {"type": "ERROR", "object": status_body(410, "Expired", message)}
                self._chunk(json.dumps(event).encode() + b"\n")
                self._chunk(b"")
                return
            sent = since
            while time.monotonic() < deadline:
                with self.cluster.lock:
                    pending = [
                        e
                        for e in self.cluster.events
                        if e[0] > sent
                        and e[1] == plural
                        and e[3]["metadata"]["name"] == name
                        and e[3]["metadata"].get("namespace") == namespace
                    ]
                    if not pending:
                        self.cluster.lock.wait(min(0.2, max(0.0, deadline - time.monotonic())))
                        continue
                for version, _, kind, obj in pending:
                    self._chunk(json.dumps({"type": kind, "object": obj}).encode() + b"\n")
                    sent = version
            self._chunk(b"")

    def _pods(self, query: dict[str, str]) -> None:
        key, _, value = query.get("labelSelector", "").partition("=")
        with self.cluster.lock:
            items = [
                p for p in self.cluster.pods.values() if p["metadata"]["labels"].get(key) == value
            ]
        self._send(
            200,
            {
                "kind": "PodList",
                "apiVersion": "v1",
                "metadata": {"resourceVersion": str(self.cluster.version)},
                "items": items,
            },
        )

    def _log(self, name: str) -> None:
        self._start_stream("text/plain")
        sent = 0
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            while True:
                with self.cluster.lock:
                    lines = self.cluster.logs.get(name, [])[sent:]
                    phase = self.cluster.pods.get(name, {}).get("status", {}).get("phase")
                    # A follow ends with the container: when told, or when the pod ended.
                    done = name in self.cluster.log_done or phase in ("Succeeded", "Failed")
                    if not lines and not done:
                        self.cluster.lock.wait(0.2)
                        continue
                if lines:
                    self._chunk("".join(line + "\n" for line in lines).encode())
                    sent += len(lines)
                if done and not lines:
                    self._chunk(b"")
                    return


@contextlib.contextmanager
def fake_api_server():
    """(cluster, kubernetes ApiClient) for a fake API server on a free loopback port."""
    from kubernetes import client

    cluster = FakeCluster()
    handler = type("BoundHandler", (Handler,), {"cluster": cluster})
    server = ThreadingHTTPServer((HOST, 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    config = client.Configuration()
    config.host = f"http://{HOST}:{server.server_address[1]}"
    api = client.ApiClient(config)
    try:
        yield cluster, api
    finally:
        server.shutdown()
        server.server_close()
        api.close()
