"""The operator endpoints over real HTTP: liveness, readiness with reasons, Prometheus metrics."""

import json
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
import uuid

import pytest

from tests.test_cli import TRIAGE, triage_env, wait_for
from triage.broker import EmbeddedBroker, free_port
from triage.ops import metrics
from triage.ops.http import OpsPortError, OpsServer, Readiness, broker_check
from triage.settings import KafkaSettings


def get(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


@pytest.fixture
def serve():
    servers = []

    def start(alive=lambda: True, checks=None) -> int:
        server = OpsServer(0, alive, Readiness(checks or {}), host="127.0.0.1").start()
        servers.append(server)
        return server.port

    yield start
    for server in servers:
        server.stop()


def test_ready_when_every_check_passes_and_503_with_each_reason_when_not(serve, kafka_bootstrap):
    down = f"127.0.0.1:{free_port()}"
    assert get(serve(checks={"broker": broker_check(kafka_bootstrap)}), "/readyz") == (200, "ready\n")
    status, body = get(
        serve(checks={"broker": broker_check(down), "store": lambda: "database x: connection refused"}),
        "/readyz",
    )
    assert status == 503
    assert body.splitlines() == [f"broker unreachable at {down}", "database x: connection refused"]


def test_a_check_that_raises_is_a_reason_not_a_crash(serve):
    def broken() -> str | None:
        raise RuntimeError("boom")

    assert get(serve(checks={"store": broken}), "/readyz") == (503, "store: RuntimeError: boom\n")


def test_healthz_follows_the_loop_and_metrics_speak_prometheus(serve):
    metrics.MESSAGES_DEAD_LETTERED.labels("invalid_json").inc()
    assert get(serve(), "/healthz") == (200, "ok\n")
    assert get(serve(alive=lambda: False), "/healthz")[0] == 503
    status, body = get(serve(), "/metrics")
    assert status == 200
    assert 'triage_messages_dead_lettered_total{reason="invalid_json"}' in body
    assert "triage_classification_seconds_bucket" in body or "triage_in_flight" in body
    assert get(serve(), "/nothing")[0] == 404


def test_a_taken_port_is_one_clear_error():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(OpsPortError, match=f"TRIAGE_HTTP__PORT={port}"):
            OpsServer(port, lambda: True, Readiness({}), host="127.0.0.1")


def test_readyz_flips_to_503_during_a_broker_outage_and_back_and_sigterm_exits_0(tmp_path):
    broker = EmbeddedBroker()
    broker.start()
    try:
        suffix = uuid.uuid4().hex[:8]
        kafka = KafkaSettings(
            bootstrap_servers=broker.bootstrap,
            group_id=f"ops-{suffix}",
            input_topic=f"in-{suffix}",
            results_topic=f"results-{suffix}",
            dlq_topic=f"dlq-{suffix}",
        )
        port = free_port()
        env = triage_env(kafka, f"sqlite:///{tmp_path / 's.db'}", TRIAGE_HTTP__PORT=str(port))
        log = tmp_path / "worker.log"
        with log.open("w") as stderr:
            worker = subprocess.Popen([*TRIAGE, "run"], env=env, cwd=tmp_path, stderr=stderr)
        try:
            wait_for(lambda: get_or_none(port, "/readyz") == (200, "ready\n"), 60, "ready")
            broker.stop()
            wait_for(
                lambda: get_or_none(port, "/readyz") == (503, f"broker unreachable at {broker.bootstrap}\n"),
                30,
                "503",
            )
            assert get(port, "/healthz") == (200, "ok\n")  # alive all along: no restart needed
            time.sleep(10)  # a while of outage: the Kafka client retries (and used to log) all along
            broker.start()
            wait_for(lambda: get_or_none(port, "/readyz") == (200, "ready\n"), 30, "ready again")
        finally:
            worker.send_signal(signal.SIGTERM)
            worker.wait(timeout=60)
        assert worker.returncode == 0
    finally:
        broker.stop()
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    said = [line["msg"] for line in lines]
    down = said.index(
        f"broker unreachable at {broker.bootstrap}: consuming waits until it is back; nothing is lost"
    )
    back = next(i for i, msg in enumerate(said) if msg.startswith(f"broker back at {broker.bootstrap} after"))
    # Nothing else said while the broker was away, one line per change; the group's rebalance as the
    # broker comes back (partitions revoked, then assigned) is news and may come before "back".
    rebalance = ("partitions revoked: ", "partitions assigned: ")
    between = [msg for msg in said[down + 1 : back] if not msg.startswith(rebalance)]
    assert back > down and not between, said[down:]
    assert not [line for line in lines if line["logger"].startswith("kafka")]


def get_or_none(port: int, path: str) -> tuple[int, str] | None:
    try:
        return get(port, path)
    except OSError:
        return None  # not listening yet
