"""A page loaded in a real headless Chromium, driven through the DevTools protocol over a pipe.

Used by tests/test_report.py (the report loads with no console error and no network request, every chart
is drawn, the print view works) and tools/report_screenshot.py (the screenshot in docs/reporting.md).

The protocol runs over `--remote-debugging-pipe` (file descriptors 3 and 4, messages ended by a NUL byte:
what Puppeteer's `pipe: true` uses) rather than a WebSocket on a port: no port to find or to collide,
nothing listening on the machine, and no client library beyond the standard library.
"""

from __future__ import annotations

import base64
import json
import os
import re
import select
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
FLAGS = [
    "--headless=new",
    "--remote-debugging-pipe",
    # a local file of our own in a throwaway profile; containers running CI as root have no sandbox to use
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-extensions",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    "--font-render-hinting=none",
]


def find_chromium() -> str | None:
    """The Chromium executable: $EWASTE_CHROMIUM, else the first of NAMES on PATH; None if absent."""
    given = os.environ.get("EWASTE_CHROMIUM")
    if given:
        return given
    return next((path for path in map(shutil.which, NAMES) if path), None)


class Chromium:
    """A headless Chromium with one page; `call` sends a DevTools command to the page and returns its
    result, keeping the page's events in `events`. Use as a context manager."""

    def __init__(self, executable: str, width: int = 1200, height: int = 900, timeout: float = 60.0):
        self.timeout = timeout
        self.events: list[dict] = []
        self._profile = tempfile.mkdtemp(prefix="ewaste-chromium-")
        to_browser, self._send = os.pipe()
        self._receive, from_browser = os.pipe()

        def on_fds_3_and_4() -> None:  # in the child: the pipe ends where Chromium looks for them
            a, b = os.dup(to_browser), os.dup(from_browser)
            os.dup2(a, 3)
            os.dup2(b, 4)

        self.proc = subprocess.Popen(
            [executable, *FLAGS, f"--user-data-dir={self._profile}", f"--window-size={width},{height}", "about:blank"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            close_fds=False,  # Python's own descriptors are not inheritable (PEP 446); 3 and 4 must be
            preexec_fn=on_fds_3_and_4,
        )
        os.close(to_browser)
        os.close(from_browser)
        self._buffer = b""
        self._id = 0
        self.session: str | None = None
        target = self.call("Target.createTarget", {"url": "about:blank"}, page=False)["targetId"]
        self.session = self.call("Target.attachToTarget", {"targetId": target, "flatten": True}, page=False)[
            "sessionId"
        ]
        for domain in ("Page", "Runtime", "Log", "Network"):
            self.call(f"{domain}.enable")
        self.call(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False},
        )

    def __enter__(self) -> Chromium:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the browser (politely, then by force) and remove its profile."""
        try:
            if self.proc.poll() is None:
                self.call("Browser.close", page=False)
                self.proc.wait(timeout=10)
        except (OSError, RuntimeError, TimeoutError, subprocess.TimeoutExpired):
            self.proc.kill()
            self.proc.wait()
        finally:
            for fd in (self._send, self._receive):
                try:
                    os.close(fd)
                except OSError:
                    pass
            shutil.rmtree(self._profile, ignore_errors=True)

    def call(self, method: str, params: dict | None = None, page: bool = True) -> dict:
        """Send one command (to the page's session, or to the browser) and wait for its result.

        Raises RuntimeError if Chromium answers with an error or exits, TimeoutError after `timeout`."""
        self._id += 1
        message = {"id": self._id, "method": method, "params": params or {}}
        if page and self.session:
            message["sessionId"] = self.session
        os.write(self._send, json.dumps(message).encode() + b"\0")
        while True:
            reply = self._next()
            if reply.get("id") == self._id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            if "method" in reply:
                self.events.append(reply)

    def wait_for(self, event: str, timeout: float | None = None) -> dict:
        """The first event named `event` (already received, or the next to come)."""
        for e in self.events:
            if e.get("method") == event:
                return e
        deadline = time.monotonic() + (timeout or self.timeout)
        while time.monotonic() < deadline:
            reply = self._next(deadline - time.monotonic())
            if "method" in reply:
                self.events.append(reply)
                if reply["method"] == event:
                    return reply
        raise TimeoutError(event)

    def settle(self, seconds: float) -> None:
        """Keep collecting events for `seconds` (requests a page makes after its load event)."""
        deadline = time.monotonic() + seconds
        try:
            while True:
                reply = self._next(max(deadline - time.monotonic(), 0.0))
                if "method" in reply:
                    self.events.append(reply)
        except TimeoutError:
            return

    def _next(self, timeout: float | None = None) -> dict:
        """The next message from Chromium."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            ready, _, _ = select.select([self._receive], [], [], max(left, 0.0))
            if not ready:
                raise TimeoutError("no message from Chromium")
            chunk = os.read(self._receive, 1 << 20)
            if not chunk:
                raise RuntimeError(f"Chromium exited (code {self.proc.poll()})")
            self._buffer += chunk
        raw, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(raw)

    def open(self, path: Path) -> None:
        """Load a local file and wait for its load event."""
        self.events.clear()
        self.call("Page.navigate", {"url": Path(path).resolve().as_uri()})
        self.wait_for("Page.loadEventFired")

    def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page (JSON-serialisable)."""
        result = self.call("Runtime.evaluate", {"expression": expression, "returnByValue": True})
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def screenshot(self) -> bytes:
        """A PNG of the whole page, at one device pixel per CSS pixel."""
        size = self.call("Page.getLayoutMetrics")["cssContentSize"]
        clip = {"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1}
        shot = self.call("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True, "clip": clip})
        return base64.b64decode(shot["data"])

    def pdf(self) -> bytes:
        """The page printed to PDF (its print style sheet and @page size)."""
        printed = self.call("Page.printToPDF", {"printBackground": True, "preferCSSPageSize": True})
        return base64.b64decode(printed["data"])


def pdf_pages(pdf: bytes) -> int:
    """The number of page objects in a PDF (Chromium writes them uncompressed)."""
    return len(re.findall(rb"/Type\s*/Page(?![a-zA-Z])", pdf))


def problems(events: list[dict], document: str) -> dict[str, list[str]]:
    """What went wrong while a page loaded: console errors, uncaught exceptions, failed loads, and every
    network request but the document itself (data: URLs are inline, not requests)."""
    out: dict[str, list[str]] = {"console errors": [], "exceptions": [], "requests": [], "failed loads": []}
    for e in events:
        method, p = e.get("method"), e.get("params", {})
        if method == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
            out["console errors"].append(json.dumps(p.get("args", []))[:300])
        elif method == "Log.entryAdded" and p.get("entry", {}).get("level") == "error":
            out["console errors"].append(p["entry"].get("text", "")[:300])
        elif method == "Runtime.exceptionThrown":
            out["exceptions"].append(json.dumps(p.get("exceptionDetails", {}))[:300])
        elif method == "Network.requestWillBeSent":
            url = p.get("request", {}).get("url", "")
            if url != document and not url.startswith("data:"):
                out["requests"].append(url)
        elif method == "Network.loadingFailed":
            out["failed loads"].append(p.get("errorText", ""))
    return out
