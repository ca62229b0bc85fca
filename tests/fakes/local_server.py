"""What every stand-in server shares: a JSON-over-HTTP server on a free local port, in a daemon thread.

Subclasses implement `answer(method, path, headers, raw_body)` and return (status, headers, json).
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self

Answer = tuple[int, dict[str, str], Any]


class LocalJSONServer:
    def __init__(self) -> None:
        self.latency_s = 0.0
        self.rejected_429 = 0
        self._failures: deque[tuple[int, int | None]] = deque()
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)

    @property
    def address(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def fail_next(self, status: int, count: int = 1, retry_after: int | None = None) -> None:
        """The next `count` failable calls answer `status` (with Retry-After when given)."""
        with self._lock:
            self._failures.extend([(status, retry_after)] * count)

    def _scripted_failure(self) -> tuple[int, dict[str, str]] | None:
        """Pop a failure queued by fail_next (call with the lock held); 429s are counted."""
        if not self._failures:
            return None
        status, retry_after = self._failures.popleft()
        if status == 429:
            self.rejected_429 += 1
        return status, ({"Retry-After": str(retry_after)} if retry_after is not None else {})

    def answer(self, method: str, path: str, headers: dict[str, str], raw: bytes) -> Answer:
        raise NotImplementedError

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as the real services: no connection per call
            disable_nagle_algorithm = True  # headers and body go out at once, not 40 ms apart

            def log_message(self, *_args: object) -> None:
                pass

            def serve(self) -> None:
                raw = self.rfile.read(int(self.headers.get("content-length", 0)))
                if server.latency_s:
                    time.sleep(server.latency_s)
                status, headers, answer = server.answer(
                    self.command, self.path, dict(self.headers.items()), raw
                )
                body = json.dumps(answer).encode()
                try:
                    self.send_response(status)
                    self.send_header("content-type", "application/json; charset=utf-8")
                    self.send_header("content-length", str(len(body)))
                    for name, value in headers.items():
                        self.send_header(name, value)
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client timed out and left

            do_GET = do_PUT = do_POST = do_PATCH = do_DELETE = serve

        return Handler
