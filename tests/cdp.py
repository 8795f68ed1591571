"""A small Chrome DevTools Protocol client for the browser test: standard library only.

:class:`Browser` starts headless Chromium with ``--remote-debugging-port=0`` and a fresh
profile, reads the port from the profile's ``DevToolsActivePort`` file, and talks to the page
over a minimal RFC 6455 websocket. Every session (the page, and any out-of-process frame,
auto-attached with ``flatten``) has Runtime, Log, Page and Network enabled, so console
messages, uncaught exceptions, browser log entries (failed loads, CSP violations...) and every
network request are recorded in :attr:`Browser.events`.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import socket
import struct
import subprocess
import time
import urllib.request
from pathlib import Path

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-default-apps", "--disable-extensions", "--hide-scrollbars",
         "--mute-audio", "--window-size=1400,1000"]
CANDIDATES = ["chromium", "chromium-browser", "google-chrome", "google-chrome-stable"]


class CDPError(RuntimeError):
    pass


def find_chromium() -> str | None:
    """$SPEEDLIMIT_CHROMIUM, else the first Chromium/Chrome on PATH."""
    explicit = os.environ.get("SPEEDLIMIT_CHROMIUM")
    if explicit:
        return explicit if shutil.which(explicit) else None
    for name in CANDIDATES:
        path = shutil.which(name)
        if path:
            return path
    return None


class WebSocket:
    """Just enough of RFC 6455 for CDP: text frames, masking, fragmentation, ping/close."""

    def __init__(self, url: str, timeout: float = 30):
        assert url.startswith("ws://"), url
        hostport, _, path = url[5:].partition("/")
        host, _, port = hostport.partition(":")
        self.sock = socket.create_connection((host, int(port)), timeout=timeout)
        key = base64.b64encode(os.urandom(16)).decode()
        request = (f"GET /{path} HTTP/1.1\r\nHost: {hostport}\r\nUpgrade: websocket\r\n"
                   f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                   "Sec-WebSocket-Version: 13\r\n\r\n")
        self.sock.sendall(request.encode())
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise CDPError("websocket handshake: connection closed")
            head += chunk
        status, _, rest = head.partition(b"\r\n\r\n")
        if b" 101 " not in status.split(b"\r\n")[0]:
            raise CDPError(f"websocket handshake refused: {status[:200]!r}")
        self.buffer = rest

    def _read(self, n: int) -> bytes:
        while len(self.buffer) < n:
            chunk = self.sock.recv(max(65536, n - len(self.buffer)))
            if not chunk:
                raise CDPError("websocket closed by the browser")
            self.buffer += chunk
        data, self.buffer = self.buffer[:n], self.buffer[n:]
        return data

    def _send_frame(self, opcode: int, payload: bytes) -> None:
        header = bytes([0x80 | opcode])
        n = len(payload)
        if n < 126:
            header += bytes([0x80 | n])
        elif n < 1 << 16:
            header += bytes([0x80 | 126]) + struct.pack(">H", n)
        else:
            header += bytes([0x80 | 127]) + struct.pack(">Q", n)
        mask = os.urandom(4)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.sock.sendall(header + mask + masked)

    def send(self, text: str) -> None:
        self._send_frame(0x1, text.encode())

    def recv(self) -> str:
        message = b""
        while True:
            b0, b1 = self._read(2)
            opcode, n = b0 & 0x0F, b1 & 0x7F
            if n == 126:
                n = struct.unpack(">H", self._read(2))[0]
            elif n == 127:
                n = struct.unpack(">Q", self._read(8))[0]
            mask = self._read(4) if b1 & 0x80 else None
            payload = self._read(n)
            if mask:
                payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
            if opcode == 0x9:  # ping
                self._send_frame(0xA, payload)
                continue
            if opcode == 0x8:
                raise CDPError("websocket closed by the browser")
            if opcode in (0x0, 0x1, 0x2):
                message += payload
                if b0 & 0x80:
                    return message.decode()

    def close(self) -> None:
        try:
            self._send_frame(0x8, b"")
        except OSError:
            pass
        self.sock.close()


class Browser:
    """Headless Chromium driven over CDP. Use as a context manager."""

    def __init__(self, executable: str, workdir: Path, timeout: float = 60):
        self.workdir = Path(workdir)
        self.profile = self.workdir / "chromium-profile"
        self.profile.mkdir(parents=True, exist_ok=True)
        (self.profile / "DevToolsActivePort").unlink(missing_ok=True)  # a previous run's
        self.log_path = self.workdir / "chromium.log"
        self.timeout = timeout
        self.events: list[dict] = []
        self.contexts: dict[int, dict] = {}  # execution context id -> {frameId, session}
        self._next = 0
        self._pending_sessions: list[str] = []
        self._log = open(self.log_path, "w")
        self.proc = subprocess.Popen(
            [executable, *FLAGS, f"--user-data-dir={self.profile}", "--remote-debugging-port=0",
             "about:blank"], stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True)
        self.ws = None
        try:
            port = self._wait_port()
            targets = json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list",
                                                       timeout=10))
            pages = [t for t in targets if t.get("type") == "page"]
            if not pages:
                raise CDPError(f"no page target in {targets}")
            self.ws = WebSocket(pages[0]["webSocketDebuggerUrl"], timeout=timeout)
            self._enable(None)
            self.send("Target.setAutoAttach", {"autoAttach": True, "flatten": True,
                                               "waitForDebuggerOnStart": False})
        except BaseException:
            self.close()
            raise

    def _wait_port(self) -> int:
        marker = self.profile / "DevToolsActivePort"
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise CDPError(f"chromium exited with {self.proc.returncode}: "
                               + self.log_path.read_text()[-2000:])
            if marker.exists():
                lines = marker.read_text().split()
                if lines:
                    return int(lines[0])
            time.sleep(0.1)
        raise CDPError("chromium did not open its DevTools port in time: "
                       + self.log_path.read_text()[-2000:])

    def _enable(self, session: str | None) -> None:
        for domain in ("Runtime", "Log", "Page", "Network"):
            self.send(f"{domain}.enable", session=session)

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        if self.ws is not None:
            self.ws.close()
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self._log.close()

    # --- messages ------------------------------------------------------------------------

    def _dispatch(self, message: dict) -> None:
        self.events.append(message)
        method, params = message.get("method"), message.get("params", {})
        if method == "Runtime.executionContextCreated":
            ctx = params["context"]
            self.contexts[ctx["id"]] = {"frameId": ctx.get("auxData", {}).get("frameId"),
                                        "default": ctx.get("auxData", {}).get("isDefault"),
                                        "session": message.get("sessionId"),
                                        "origin": ctx.get("origin")}
        elif method == "Runtime.executionContextDestroyed":
            self.contexts.pop(params.get("executionContextId"), None)
        elif method == "Runtime.executionContextsCleared":
            session = message.get("sessionId")
            self.contexts = {k: v for k, v in self.contexts.items() if v["session"] != session}
        elif method == "Target.attachedToTarget":
            self._pending_sessions.append(params["sessionId"])

    def send(self, method: str, params: dict | None = None, session: str | None = None,
             timeout: float | None = None) -> dict:
        self._next += 1
        ident = self._next
        message = {"id": ident, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        self.ws.send(json.dumps(message))
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            if time.monotonic() > deadline:
                raise CDPError(f"{method}: no answer in time")
            reply = json.loads(self.ws.recv())
            if reply.get("id") == ident:
                if "error" in reply:
                    raise CDPError(f"{method}: {reply['error']}")
                self._attach_pending()
                return reply.get("result", {})
            self._dispatch(reply)

    def _attach_pending(self) -> None:
        while self._pending_sessions:
            session = self._pending_sessions.pop()
            self._enable(session)
            self.send("Runtime.runIfWaitingForDebugger", session=session)

    def pump(self, seconds: float) -> None:
        """Let events arrive for a while (a round trip per 50 ms)."""
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self.send("Runtime.evaluate", {"expression": "1"})
            time.sleep(0.05)

    # --- page helpers --------------------------------------------------------------------

    def navigate(self, url: str) -> None:
        self.send("Page.navigate", {"url": url})
        self.wait_for("document.readyState === 'complete'")

    def evaluate(self, expression: str, context: int | None = None,
                 session: str | None = None):
        params = {"expression": expression, "returnByValue": True, "awaitPromise": True}
        if context is not None:
            params["contextId"] = context
        result = self.send("Runtime.evaluate", params, session=session)
        if "exceptionDetails" in result:
            raise CDPError(f"{expression[:80]}...: {result['exceptionDetails']}")
        return result["result"].get("value")

    def wait_for(self, expression: str, timeout: float = 30, context: int | None = None,
                 session: str | None = None):
        deadline = time.monotonic() + timeout
        while True:
            try:
                value = self.evaluate(expression, context, session)
            except CDPError:
                value = None
            if value:
                return value
            if time.monotonic() > deadline:
                raise CDPError(f"timed out waiting for: {expression}")
            time.sleep(0.1)

    def frame_context(self, url_prefix: str, timeout: float = 20) -> tuple[int, str | None]:
        """(execution context id, session) of the main world of the frame whose URL starts
        with ``url_prefix`` (e.g. an iframe showing a data: URL)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            sessions = {None} | {c["session"] for c in self.contexts.values()}
            for session in sessions:
                tree = self.send("Page.getFrameTree", session=session)["frameTree"]
                for frame in _frames(tree):
                    if frame["url"].startswith(url_prefix):
                        for ctx_id, ctx in self.contexts.items():
                            if ctx["frameId"] == frame["id"] and ctx["default"]:
                                return ctx_id, ctx["session"]
            self.pump(0.2)
        raise CDPError(f"no frame with a URL starting {url_prefix[:60]!r}")

    def screenshot(self, path: Path) -> Path:
        data = self.send("Page.captureScreenshot", {"format": "png"})["data"]
        path.write_bytes(base64.b64decode(data))
        return path

    # --- what went wrong -----------------------------------------------------------------

    def console_errors(self) -> list[str]:
        """Console errors and assertions, uncaught exceptions and error log entries."""
        out = []
        for event in self.events:
            method, p = event.get("method"), event.get("params", {})
            if method == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
                out.append("console." + p["type"] + ": " + " ".join(
                    str(a.get("value", a.get("description", ""))) for a in p.get("args", [])))
            elif method == "Runtime.exceptionThrown":
                d = p.get("exceptionDetails", {})
                out.append("exception: " + str(d.get("exception", {}).get("description")
                                               or d.get("text")))
            elif method == "Log.entryAdded" and p.get("entry", {}).get("level") == "error":
                entry = p["entry"]
                out.append(f"log ({entry.get('source')}): {entry.get('text')} {entry.get('url', '')}")
            elif method == "Network.loadingFailed" and not p.get("canceled"):
                out.append(f"network: {p.get('errorText')} ({p.get('type')})")
        return out

    def requested_urls(self) -> list[str]:
        return [e["params"]["request"]["url"] for e in self.events
                if e.get("method") == "Network.requestWillBeSent"]


def _frames(tree: dict):
    yield tree["frame"]
    for child in tree.get("childFrames", []):
        yield from _frames(child)
