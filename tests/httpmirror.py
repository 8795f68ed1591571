"""A local HTTP server on 127.0.0.1 that plays FashionMNIST mirrors, good and bad.

Paths: /good/<file> serves the file; /corrupt/<file> serves other bytes (md5 mismatch);
/missing/<file> answers 404; /flaky/<file> answers 503 the first time for each file, then
serves it; /truncated/<file> promises the whole file but sends half and closes;
/slow/<file> waits longer than any test timeout before answering.
"""

from __future__ import annotations

import http.server
import threading
import time
from collections import Counter
from pathlib import Path


class Mirror:
    def __init__(self, files: dict[str, bytes]):
        self.files = files
        self.hits: Counter = Counter()
        mirror = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output quiet
                pass

            def do_GET(self):
                kind, _, name = self.path.strip("/").partition("/")
                mirror.hits[(kind, name)] += 1
                body = mirror.files.get(name)
                if body is None or kind == "missing":
                    self.send_error(404)
                    return
                if kind == "flaky" and mirror.hits[(kind, name)] == 1:
                    self.send_error(503)
                    return
                if kind == "slow":
                    time.sleep(3)
                if kind == "corrupt":
                    body = body[::-1]
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if kind == "truncated":
                    self.wfile.write(body[: len(body) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.wfile.write(body)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def url(self, kind: str) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/{kind}/"

    def __enter__(self) -> "Mirror":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()


def gz_files(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in Path(directory).glob("*.gz")}
