"""Fault drills on the real broker: the store unreachable for a while, Slack failing with 500s.
After each, once the fault is gone: everything stored, every delivery made once, the worker running."""

import json
import threading
import time

from prometheus_client import REGISTRY
from sqlalchemy import create_engine, text

from tests.conftest import message, produce, read_topic
from tests.fakes.tcp_proxy import TCPProxy
from triage.settings import Settings
from triage.worker import Worker


def stored(url: str) -> int:
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            return connection.execute(text("SELECT count(*) FROM messages")).scalar_one()
    finally:
        engine.dispose()


def wait_for(condition, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def store_retries() -> float:
    return REGISTRY.get_sample_value("triage_processing_retries_total", {"cause": "store"}) or 0.0


def test_the_database_unreachable_for_a_while_loses_nothing(settings: Settings, postgres_url: str):
    host_port = postgres_url.split("@", 1)[1].split("/", 1)[0]
    with TCPProxy(host_port.split(":")[0], int(host_port.split(":")[1])) as proxy:
        via_proxy = postgres_url.replace(host_port, f"127.0.0.1:{proxy.port}")
        settings.database_url = via_proxy
        settings.worker.retry_backoff_max_s = 1.0
        produce(settings.kafka, [message(f"db-{i:02d}", conversation_id=f"c{i % 5}") for i in range(20)])
        worker = Worker.from_settings(settings)
        thread = threading.Thread(target=worker.run, daemon=True)
        thread.start()
        wait_for(lambda: stored(postgres_url) >= 20, 60, "the first 20 stored")

        retries_before = store_retries()
        proxy.down()
        produce(settings.kafka, [message(f"db-{i:02d}", conversation_id=f"c{i % 5}") for i in range(20, 40)])
        wait_for(lambda: store_retries() > retries_before, 30, "the worker to notice the outage")
        assert any("database" in reason for reason in worker.readiness().failures())
        assert stored(postgres_url) == 20

        proxy.up()
        wait_for(lambda: stored(postgres_url) == 40, 60, "everything stored after the outage")
        assert thread.is_alive()
        worker.stop()
        thread.join(timeout=60)

    results = read_topic(settings.kafka.bootstrap_servers, settings.kafka.results_topic, 40)
    ids = [json.loads(r.value)["message_id"] for r in results]
    assert sorted(ids) == [f"db-{i:02d}" for i in range(40)]  # each once
