"""What the running worker watches: the outbox backlog (gauges, /readyz "degraded" lines) read from
a real store, and the broker's reachability, said once per change."""

import logging
import re
import signal
import socket
import subprocess
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import update

from tests.conftest import message, produce
from tests.ops.test_http import get
from tests.receivers.conftest import store_case
from tests.test_cli import TRIAGE, triage_env, wait_for
from triage.broker import free_port
from triage.ops.health import BrokerWatch, OutboxWatch
from triage.ops.http import OpsServer, Readiness
from triage.store import DeliveryUpdate, Store
from triage.store.tables import DeliveryRow


@pytest.fixture
def store(database_url: str) -> Store:
    store = Store(database_url)
    store.upgrade()
    yield store
    store.close()


def gauge(body: str, name: str, receiver: str) -> float:
    found = re.search(rf'^{name}{{receiver="{receiver}"}} (\S+)$', body, re.MULTILINE)
    assert found, f"{name} for {receiver} not in /metrics"
    return float(found[1])


def backdate(store: Store, delivery_id: int, **values) -> None:
    with store.session() as session:
        session.execute(update(DeliveryRow).where(DeliveryRow.id == delivery_id).values(**values))


def test_waiting_deliveries_are_counted_per_receiver_and_a_stuck_one_degrades_readyz(store: Store):
    now = datetime.now(UTC)
    stuck = store_case(store, "oncall-bl", conversation="a")
    backdate(store, stuck.id, created_at=now - timedelta(minutes=5, seconds=10))
    failing = store_case(store, "oncall-bl", conversation="b")  # failed once, waits for its retry
    backdate(store, failing.id, attempts=1, not_before=now + timedelta(minutes=1))
    held = store_case(store, "oncall-bl", conversation="c")  # quiet hours: not due yet, not counted
    backdate(store, held.id, not_before=now + timedelta(hours=8), created_at=now - timedelta(hours=1))
    released = store_case(store, "leads-bl", conversation="d")  # quiet hours ended 30 s ago
    backdate(store, released.id, not_before=now - timedelta(seconds=30), created_at=now - timedelta(hours=9))
    sent = store_case(store, "leads-bl", conversation="e")
    store.finish_deliveries([DeliveryUpdate(sent.id, "sent")])

    watch = OutboxWatch(store)
    watch.refresh()
    server = OpsServer(0, lambda: True, Readiness({}, notes=watch.degraded), host="127.0.0.1").start()
    try:
        assert get(server.port, "/readyz") == (200, "degraded: 2 deliveries to oncall-bl waiting for 5 min\n")
        body = get(server.port, "/metrics")[1]
        assert gauge(body, "triage_outbox_pending", "oncall-bl") == 2
        assert 310 <= gauge(body, "triage_outbox_oldest_pending_age_seconds", "oncall-bl") < 400
        assert gauge(body, "triage_outbox_pending", "leads-bl") == 1
        assert 30 <= gauge(body, "triage_outbox_oldest_pending_age_seconds", "leads-bl") < 120

        store.finish_deliveries([DeliveryUpdate(d.id, "sent") for d in (stuck, failing, released)])
        watch.refresh()
        assert get(server.port, "/readyz") == (200, "ready\n")
        body = get(server.port, "/metrics")[1]
        assert gauge(body, "triage_outbox_pending", "oncall-bl") == 0  # the held one is not due yet
        assert gauge(body, "triage_outbox_oldest_pending_age_seconds", "leads-bl") == 0
    finally:
        server.stop()


def test_readyz_lists_failures_and_degraded_lines_with_503():
    readiness = Readiness({"broker": lambda: "broker unreachable at x:1"}, notes=lambda: ["degraded: y"])
    server = OpsServer(0, lambda: True, readiness, host="127.0.0.1").start()
    try:
        assert get(server.port, "/readyz") == (503, "broker unreachable at x:1\ndegraded: y\n")
    finally:
        server.stop()


def test_the_broker_watch_says_each_change_once(caplog: pytest.LogCaptureFixture):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    address = f"127.0.0.1:{listener.getsockname()[1]}"
    watch = BrokerWatch(address)
    with caplog.at_level(logging.INFO, logger="triage.ops.health"):
        watch.check()
        listener.close()
        for _ in range(3):
            watch.check()
        assert watch.problem == f"broker unreachable at {address}"
        with socket.socket() as again:
            again.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            again.bind(("127.0.0.1", int(address.rsplit(":", 1)[1])))
            again.listen()
            for _ in range(3):
                watch.check()
    assert watch.problem is None
    assert [record.getMessage().split(" after ")[0] for record in caplog.records] == [
        f"broker unreachable at {address}: consuming waits until it is back; nothing is lost",
        f"broker back at {address}",
    ]


def test_a_running_worker_shows_deliveries_it_cannot_make_in_metrics(kafka_settings, slack, tmp_path):
    slack.fail_next(500, count=1000)  # Slack answers, then fails every post: alerts wait in the outbox
    port = free_port()
    env = triage_env(
        kafka_settings,
        f"sqlite:///{tmp_path / 's.db'}",
        TRIAGE_HTTP__PORT=str(port),
        **slack.env(),
    )
    produce(kafka_settings, [message("m-1", "Our checkout is down for everyone, urgent!")])
    worker = subprocess.Popen([*TRIAGE, "run"], env=env, cwd=tmp_path, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: metric_or_none(port, "triage_outbox_pending", "oncall") == 1, 60, "the gauge")
        assert get(port, "/readyz") == (200, "ready\n")  # waiting for seconds, not minutes: not degraded
        assert metric_or_none(port, "triage_outbox_pending", "_results") == 0  # the results went out
        assert 0 <= metric_or_none(port, "triage_outbox_oldest_pending_age_seconds", "oncall") < 60
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=60)


def metric_or_none(port: int, name: str, receiver: str) -> float | None:
    try:
        return gauge(get(port, "/metrics")[1], name, receiver)
    except (OSError, AssertionError):
        return None  # not serving yet, or not measured yet
