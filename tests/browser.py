"""Headless Chromium driven over the DevTools protocol on a pipe (``--remote-debugging-pipe``):
load a local page, collect console errors and network requests, check its images decode,
count elements, take a full-page screenshot. No network port, no extra package.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "chrome")


def find_chromium() -> str | None:
    explicit = os.environ.get("CHROMIUM")
    if explicit:
        return explicit if Path(explicit).exists() else None
    for name in CHROMIUM_NAMES:
        path = shutil.which(name)
        if path:
            return path
    return None


@dataclass
class PageCheck:
    """What a page did when loaded."""

    console_errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)  # URLs the page asked for
    images: list[dict] = field(default_factory=list)  # per <img>: decoded, width, height
    counts: dict[str, int] = field(default_factory=dict)  # CSS selector -> elements
    screenshot: Path | None = None


class Chromium:
    """One headless browser; ``check(page, ...)`` per page. Use as a context manager."""

    def __init__(self, executable: str, timeout: float = 60.0) -> None:
        self.timeout = timeout
        self._profile = tempfile.mkdtemp(prefix="tlt-chromium-")
        while not _fds_open(3, 4):  # pass_fds needs them open here; the child rewires them
            os.open(os.devnull, os.O_RDONLY)
        to_browser_r, self._to_browser = os.pipe()
        self._from_browser, from_browser_w = os.pipe()

        def wire_pipe_fds() -> None:  # the browser reads fd 3 and writes fd 4
            read_end, write_end = os.dup(to_browser_r), os.dup(from_browser_w)
            os.dup2(read_end, 3)
            os.dup2(write_end, 4)

        self._process = subprocess.Popen(
            [
                executable,
                "--headless=new",
                "--no-sandbox",  # tests may run as root in a container
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--no-first-run",
                "--no-default-browser-check",
                "--hide-scrollbars",
                "--remote-debugging-pipe",
                f"--user-data-dir={self._profile}",
                "about:blank",
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=wire_pipe_fds,
            pass_fds=(3, 4),  # kept open in the child: wire_pipe_fds points them at the pipes
        )
        os.close(to_browser_r)
        os.close(from_browser_w)
        self._buffer = b""
        self._next_id = 0
        self._events: list[dict] = []

    def __enter__(self) -> Chromium:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        with contextlib.suppress(Exception):  # the browser may be gone already
            self._send("Browser.close")
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        for fd in (self._to_browser, self._from_browser):
            with contextlib.suppress(OSError):
                os.close(fd)
        shutil.rmtree(self._profile, ignore_errors=True)

    # --- protocol ---------------------------------------------------------------------

    def _read_message(self, deadline: float) -> dict:
        import select

        while b"\0" not in self._buffer:
            left = deadline - time.time()
            if left <= 0:
                raise TimeoutError("no answer from Chromium")
            ready, _, _ = select.select([self._from_browser], [], [], left)
            if ready:
                chunk = os.read(self._from_browser, 1 << 20)
                if not chunk:
                    raise RuntimeError("Chromium closed the DevTools pipe")
                self._buffer += chunk
        message, _, self._buffer = self._buffer.partition(b"\0")
        return json.loads(message)

    def _send(self, method: str, params: dict | None = None, session: str | None = None) -> dict:
        self._next_id += 1
        message: dict = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self._to_browser, json.dumps(message).encode() + b"\0")
        deadline = time.time() + self.timeout
        while True:
            reply = self._read_message(deadline)
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            if "method" in reply:
                self._events.append(reply)

    def _wait_event(self, method: str, session: str) -> dict:
        deadline = time.time() + self.timeout
        while True:
            for index, event in enumerate(self._events):
                if event["method"] == method and event.get("sessionId") == session:
                    return self._events.pop(index)
            event = self._read_message(deadline)
            if "method" in event:
                self._events.append(event)

    # --- a page -----------------------------------------------------------------------

    def check(
        self,
        page: Path,
        *,
        selectors: tuple[str, ...] = (),
        screenshot: Path | None = None,
        width: int = 1280,
    ) -> PageCheck:
        """Load ``page`` in a fresh tab; report console errors, requests, images, counts."""
        target = self._send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self._send("Target.attachToTarget", {"targetId": target, "flatten": True})[
            "sessionId"
        ]
        for domain in ("Page", "Runtime", "Log", "Network"):
            self._send(f"{domain}.enable", session=session)
        self._send(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": 900, "deviceScaleFactor": 1, "mobile": False},
            session=session,
        )
        self._events.clear()
        self._send("Page.navigate", {"url": Path(page).absolute().as_uri()}, session=session)
        self._wait_event("Page.loadEventFired", session)

        result = PageCheck()
        decoded = self._evaluate(
            session,
            "Promise.all([...document.images].map(i => i.decode().then("
            "() => ({ok: true, width: i.naturalWidth, height: i.naturalHeight}),"
            "() => ({ok: false, width: i.naturalWidth, height: i.naturalHeight}))))",
        )
        result.images = list(decoded or [])
        for selector in selectors:
            result.counts[selector] = int(
                self._evaluate(session, f"document.querySelectorAll({json.dumps(selector)}).length")
            )
        self._send("Runtime.runIfWaitingForDebugger", session=session)
        for event in self._events:
            if event.get("sessionId") != session:
                continue
            params = event.get("params", {})
            if event["method"] == "Runtime.consoleAPICalled" and params.get("type") in (
                "error",
                "assert",
            ):
                result.console_errors.append(
                    " ".join(str(a.get("value", a.get("description", ""))) for a in params["args"])
                )
            elif event["method"] == "Runtime.exceptionThrown":
                details = params.get("exceptionDetails", {})
                result.console_errors.append(details.get("text", "exception"))
            elif event["method"] == "Log.entryAdded" and params["entry"]["level"] == "error":
                result.console_errors.append(params["entry"].get("text", ""))
            elif event["method"] == "Network.requestWillBeSent":
                result.requests.append(params["request"]["url"])
        if screenshot is not None:
            metrics = self._send("Page.getLayoutMetrics", session=session)
            height = int(metrics["cssContentSize"]["height"]) + 1
            self._send(
                "Emulation.setDeviceMetricsOverride",
                {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False},
                session=session,
            )
            shot = self._send(
                "Page.captureScreenshot",
                {"format": "png", "captureBeyondViewport": True},
                session=session,
            )
            screenshot.parent.mkdir(parents=True, exist_ok=True)
            screenshot.write_bytes(base64.b64decode(shot["data"]))
            result.screenshot = screenshot
        self._send("Target.closeTarget", {"targetId": target})
        return result

    def _evaluate(self, session: str, expression: str):
        reply = self._send(
            "Runtime.evaluate",
            {"expression": expression, "awaitPromise": True, "returnByValue": True},
            session=session,
        )
        if "exceptionDetails" in reply:
            raise RuntimeError(f"page script failed: {reply['exceptionDetails'].get('text')}")
        return reply["result"].get("value")


def _fds_open(*fds: int) -> bool:
    for fd in fds:
        try:
            os.fstat(fd)
        except OSError:
            return False
    return True
