"""The operator's HTTP endpoints on TRIAGE_HTTP__PORT: /healthz, /readyz and /metrics.

- /healthz: the process is alive and its loop is turning (200), for a liveness probe or HEALTHCHECK.
- /readyz: the broker and the store answer and a routing tree is loaded (200), else 503 with the
  reasons, one per line. Checks are cached for a second so probes never load the services. While
  ready, what people should know (deliveries stuck for a receiver) follows as "degraded: ..." lines,
  still with 200: the worker is consuming, and a restart would not help.
- /metrics: prometheus_client's exposition of triage/ops/metrics.py.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Callable, Iterable
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import make_wsgi_app

log = logging.getLogger(__name__)
Check = Callable[[], str | None]  # None when fine, else the reason
Notes = Callable[[], list[str]]  # "degraded: ..." lines, none when all is well
CACHE_S = 1.0


class OpsPortError(Exception):
    """The port for the endpoints cannot be used (taken, not allowed)."""


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True
    request_queue_size = 128  # listen backlog: a burst of webhooks must not wait for SYN retries


class _QuietHandler(WSGIRequestHandler):
    disable_nagle_algorithm = True  # the status line, headers and body go out as separate writes

    def log_message(self, *_args: Any) -> None:  # probes every few seconds would flood the log
        pass


def broker_check(bootstrap_servers: str, timeout_s: float = 1.0) -> Check:
    """Reachable when any bootstrap server accepts a TCP connection."""
    servers = [s.strip() for s in bootstrap_servers.split(",") if s.strip()]

    def check() -> str | None:
        for server in servers:
            host, _, port = server.rpartition(":")
            try:
                socket.create_connection((host, int(port)), timeout=timeout_s).close()
                return None
            except (OSError, ValueError):
                continue
        return f"broker unreachable at {bootstrap_servers}"

    return check


class Readiness:
    """Named checks, run at most once per CACHE_S; the answer is the list of failures."""

    def __init__(self, checks: dict[str, Check], notes: Notes = list) -> None:
        self.checks = checks
        self.notes = notes
        self._lock = threading.Lock()
        self._at = 0.0
        self._failures: list[str] = []

    def failures(self) -> list[str]:
        with self._lock:
            if time.monotonic() - self._at >= CACHE_S:
                self._failures = [
                    reason for reason in (self._run(n, c) for n, c in self.checks.items()) if reason
                ]
                self._at = time.monotonic()
            return list(self._failures)

    @staticmethod
    def _run(name: str, check: Check) -> str | None:
        try:
            return check()
        except Exception as error:  # a check that breaks is a failure, not a crash of the endpoint
            return f"{name}: {type(error).__name__}: {error}"


App = Callable[..., Iterable[bytes]]


def make_app(alive: Callable[[], bool], readiness: Readiness, routes: dict[str, App] | None = None) -> App:
    """The three endpoints, and `routes` (path: WSGI app) of a command that serves more on its port."""
    metrics_app = make_wsgi_app()
    routes = routes or {}

    def text(start_response: Callable, status: str, body: str) -> list[bytes]:
        start_response(status, [("Content-Type", "text/plain; charset=utf-8")])
        return [body.encode()]

    def app(environ: dict[str, Any], start_response: Callable) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path in routes:
            return routes[path](environ, start_response)
        if path == "/healthz":
            return text(
                start_response, *(("200 OK", "ok\n") if alive() else ("503 Service Unavailable", "stuck\n"))
            )
        if path == "/readyz":
            failures, notes = readiness.failures(), readiness.notes()
            if failures:
                body = "".join(f"{line}\n" for line in failures + notes)
                return text(start_response, "503 Service Unavailable", body)
            return text(start_response, "200 OK", "".join(f"{line}\n" for line in notes or ["ready"]))
        if path == "/metrics":
            return metrics_app(environ, start_response)
        return text(start_response, "404 Not Found", "try /healthz, /readyz or /metrics\n")

    return app


class OpsServer:
    """The endpoints in a daemon thread; port 0 picks a free port (see .port)."""

    def __init__(
        self,
        port: int,
        alive: Callable[[], bool],
        readiness: Readiness,
        host: str = "0.0.0.0",
        routes: dict[str, App] | None = None,
        setting: str = "TRIAGE_HTTP__PORT",
    ) -> None:
        try:
            self._server = make_server(
                host,
                port,
                make_app(alive, readiness, routes),
                server_class=_Server,
                handler_class=_QuietHandler,
            )
        except OSError as error:
            raise OpsPortError(f"cannot serve /healthz and /metrics on {setting}={port}: {error}") from None
        self.port = self._server.server_port
        self._thread = threading.Thread(target=self._server.serve_forever, name="ops-http", daemon=True)

    def start(self) -> OpsServer:
        self._thread.start()
        log.info("serving /healthz, /readyz and /metrics on port %d", self.port)
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
