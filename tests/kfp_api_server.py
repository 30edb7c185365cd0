"""A protocol-level FAKE of the Kubeflow Pipelines v2beta1 REST API, for tests.

This is not Kubeflow Pipelines: nothing is compiled, scheduled or run. It is a small real
HTTP server (``http.server`` in a thread, bound to 127.0.0.1 on a free port) that speaks the
part of the v2beta1 REST protocol ``kfp.Client`` (SDK 2.x, ``kfp_server_api``) uses to
create or look up an experiment, create a run from an inline pipeline spec and create a
recurring run:

    GET  /apis/v2beta1/healthz
    GET  /apis/v2beta1/experiments          (filter: display_name EQUALS; namespace)
    POST /apis/v2beta1/experiments
    POST /apis/v2beta1/runs
    POST /apis/v2beta1/recurringruns

It keeps what was created in memory, answers with the JSON the real API server returns for
these calls (snake_case field names, server-made ids, states and timestamps, gRPC-style
error bodies), applies a few input checks like the real server's (names, experiment ids,
pipeline source, trigger, concurrency; not a faithful copy of them), and records every
request (method, path, query, headers, raw and decoded body) so a test can assert exactly
what the client sent. ``fail(...)`` makes one endpoint answer an error, to test how a
client reports a broken server. Any other path answers 404.
"""

from __future__ import annotations

import json
import threading
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

API = "/apis/v2beta1"

# gRPC status codes the API server maps its errors to (grpc-gateway error bodies).
_GRPC_CODE = {
    HTTPStatus.BAD_REQUEST: 3,  # INVALID_ARGUMENT
    HTTPStatus.NOT_FOUND: 5,  # NOT_FOUND
    HTTPStatus.CONFLICT: 6,  # ALREADY_EXISTS
    HTTPStatus.INTERNAL_SERVER_ERROR: 13,  # INTERNAL
    HTTPStatus.SERVICE_UNAVAILABLE: 14,  # UNAVAILABLE
}


@dataclass(frozen=True)
class RecordedRequest:
    """One HTTP request as it reached the server."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    raw_body: bytes
    body: dict | None  # the decoded JSON body, None when there was none


class ApiError(Exception):
    """An error answer: HTTP status plus the gRPC-style JSON body."""

    def __init__(self, status: HTTPStatus, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class FakeKfpApi:
    """The fake server's state; ``start()`` serves it on 127.0.0.1, ``stop()`` shuts it.

    ``multi_user`` is what healthz reports (the SDK then reads the pod's namespace file).
    """

    multi_user: bool = False
    requests: list[RecordedRequest] = field(default_factory=list)
    experiments: dict[str, dict] = field(default_factory=dict)
    runs: dict[str, dict] = field(default_factory=dict)
    recurring_runs: dict[str, dict] = field(default_factory=dict)
    _failures: dict[tuple[str, str], tuple[HTTPStatus, str]] = field(default_factory=dict)
    _server: ThreadingHTTPServer | None = None
    _thread: threading.Thread | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> FakeKfpApi:
        handler = type("Handler", (_Handler,), {"api": self})
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="fake-kfp-api", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join(timeout=5)
            self._server = None

    def __enter__(self) -> FakeKfpApi:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    # -- test controls ---------------------------------------------------------------------
    def fail(self, method: str, path: str, status: int, message: str) -> None:
        """Make ``method path`` answer ``status`` with ``message`` from now on."""
        self._failures[(method.upper(), path)] = (HTTPStatus(status), message)

    def find(self, method: str, path: str) -> list[RecordedRequest]:
        """The recorded requests to ``method path`` (path without the query), in order."""
        return [r for r in self.requests if r.method == method.upper() and r.path == path]

    # -- the protocol ----------------------------------------------------------------------
    def handle(self, request: RecordedRequest) -> dict:
        """Answer one request: the JSON body of a 200 reply, or raise ApiError."""
        with self._lock:
            self.requests.append(request)
            failure = self._failures.get((request.method, request.path))
            if failure is not None:
                raise ApiError(*failure)
            route = {
                ("GET", f"{API}/healthz"): self._healthz,
                ("GET", f"{API}/experiments"): self._list_experiments,
                ("POST", f"{API}/experiments"): self._create_experiment,
                ("POST", f"{API}/runs"): self._create_run,
                ("POST", f"{API}/recurringruns"): self._create_recurring_run,
            }.get((request.method, request.path))
            if route is None:
                raise ApiError(HTTPStatus.NOT_FOUND, "Not Found")
            return route(request)

    def _healthz(self, request: RecordedRequest) -> dict:
        return {"multi_user": self.multi_user, "pipeline_store": "database"}

    def _list_experiments(self, request: RecordedRequest) -> dict:
        namespace = request.query.get("namespace", [""])[0]
        if self.multi_user and not namespace:
            raise ApiError(HTTPStatus.BAD_REQUEST, "Invalid input error: namespace is empty")
        matches = [e for e in self.experiments.values() if e["namespace"] == namespace]
        for predicate in _predicates(request.query.get("filter", [""])[0]):
            key, value = predicate.get("key"), predicate.get("stringValue")
            if predicate.get("operation") not in (1, "EQUALS") or key != "display_name":
                raise ApiError(
                    HTTPStatus.BAD_REQUEST, f"Invalid input error: unsupported filter {predicate}"
                )
            matches = [e for e in matches if e["display_name"] == value]
        return {"experiments": matches, "total_size": len(matches), "next_page_token": ""}

    def _create_experiment(self, request: RecordedRequest) -> dict:
        body = request.body or {}
        name = body.get("display_name") or ""
        namespace = body.get("namespace") or ""
        if not name.strip():
            raise ApiError(HTTPStatus.BAD_REQUEST, "Invalid input error: experiment name is empty")
        if self.multi_user and not namespace:
            raise ApiError(HTTPStatus.BAD_REQUEST, "Invalid input error: namespace is empty")
        if any(
            e["display_name"] == name and e["namespace"] == namespace
            for e in self.experiments.values()
        ):
            raise ApiError(
                HTTPStatus.CONFLICT,
                f"Already exist error: experiment {name!r} already exists in namespace "
                f"{namespace!r}",
            )
        experiment = {
            "experiment_id": str(uuid.uuid4()),
            "display_name": name,
            "description": body.get("description") or "",
            "created_at": _now(),
            "namespace": namespace,
            "storage_state": "AVAILABLE",
        }
        self.experiments[experiment["experiment_id"]] = experiment
        return experiment

    def _experiment_of(self, body: dict) -> dict:
        experiment_id = body.get("experiment_id") or ""
        if experiment_id not in self.experiments:
            raise ApiError(
                HTTPStatus.NOT_FOUND, f"Experiment {experiment_id!r} not found (ResourceNotFound)"
            )
        return self.experiments[experiment_id]

    @staticmethod
    def _check_pipeline_source(body: dict) -> None:
        has_spec = bool(body.get("pipeline_spec"))
        has_reference = bool(body.get("pipeline_version_reference"))
        if has_spec == has_reference:
            raise ApiError(
                HTTPStatus.BAD_REQUEST,
                "Invalid input error: exactly one of pipeline_spec and "
                "pipeline_version_reference must be set",
            )
        if not (body.get("display_name") or "").strip():
            raise ApiError(HTTPStatus.BAD_REQUEST, "Invalid input error: display_name is empty")

    def _create_run(self, request: RecordedRequest) -> dict:
        body = request.body or {}
        experiment = self._experiment_of(body)
        self._check_pipeline_source(body)
        now = _now()
        run = {
            **body,
            "run_id": str(uuid.uuid4()),
            "experiment_id": experiment["experiment_id"],
            "storage_state": "AVAILABLE",
            "created_at": now,
            "scheduled_at": now,
            "finished_at": "1970-01-01T00:00:00Z",
            "state": "PENDING",
            "state_history": [{"update_time": now, "state": "PENDING"}],
        }
        self.runs[run["run_id"]] = run
        return run

    def _create_recurring_run(self, request: RecordedRequest) -> dict:
        body = request.body or {}
        experiment = self._experiment_of(body)
        self._check_pipeline_source(body)
        trigger = body.get("trigger") or {}
        if bool(trigger.get("cron_schedule")) == bool(trigger.get("periodic_schedule")):
            raise ApiError(
                HTTPStatus.BAD_REQUEST,
                "Invalid input error: a recurring run needs exactly one of cron_schedule and "
                "periodic_schedule",
            )
        cron = (trigger.get("cron_schedule") or {}).get("cron", "")
        if cron and not cron.startswith("@") and len(cron.split()) != 6:
            raise ApiError(
                HTTPStatus.BAD_REQUEST, "Invalid input error: cron expression needs 6 fields"
            )
        concurrency = int(body.get("max_concurrency") or 0)
        if not 1 <= concurrency <= 10:
            raise ApiError(
                HTTPStatus.BAD_REQUEST,
                "Invalid input error: max concurrency of a recurring run must be in [1, 10]",
            )
        now = _now()
        recurring_run = {
            **body,
            "recurring_run_id": str(uuid.uuid4()),
            "experiment_id": experiment["experiment_id"],
            "namespace": experiment["namespace"],
            "max_concurrency": str(concurrency),  # int64 fields are JSON strings
            "created_at": now,
            "updated_at": now,
            "status": "ENABLED" if body.get("mode", "ENABLE") == "ENABLE" else "DISABLED",
        }
        self.recurring_runs[recurring_run["recurring_run_id"]] = recurring_run
        return recurring_run


def _predicates(filter_json: str) -> list[dict]:
    if not filter_json:
        return []
    try:
        return json.loads(filter_json).get("predicates", [])
    except (ValueError, AttributeError):
        raise ApiError(HTTPStatus.BAD_REQUEST, "Invalid input error: filter is not JSON") from None


class _Handler(BaseHTTPRequestHandler):
    api: FakeKfpApi  # set on the subclass made by FakeKfpApi.start
    protocol_version = "HTTP/1.1"

    def _serve(self) -> None:
        url = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            try:
                body = json.loads(raw) if raw else None
            except ValueError:
                raise ApiError(HTTPStatus.BAD_REQUEST, "request body is not JSON") from None
            request = RecordedRequest(
                method=self.command,
                path=url.path,
                query=parse_qs(url.query),
                headers={k.lower(): v for k, v in self.headers.items()},
                raw_body=raw,
                body=body,
            )
            status, reply = HTTPStatus.OK, self.api.handle(request)
        except ApiError as error:
            status = error.status
            reply = {
                "code": _GRPC_CODE.get(error.status, 2),
                "message": error.message,
                "details": [],
            }
        payload = json.dumps(reply).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = do_DELETE = do_PATCH = _serve

    def log_message(self, format: str, *args) -> None:  # keep test output clean
        pass
