"""Shared fixtures: one real Kafka-compatible broker per test process, real SQLite and PostgreSQL stores.

Broker, in order: TRIAGE_TEST_BOOTSTRAP if set; Apache Kafka in testcontainers when a Docker engine
answers; otherwise the embedded Tansu broker. PostgreSQL: TRIAGE_TEST_POSTGRES_URL, default the local
server. A missing component fails the run; no test is ever skipped for it.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from sqlalchemy import create_engine, text

from tests.fakes.slack_server import FakeSlack
from tests.fakes.zendesk_server import FakeZendesk
from triage import kafka as transport
from triage.broker import TANSU_HEARTBEAT_INTERVAL_MS, TANSU_SESSION_TIMEOUT_MS, EmbeddedBroker
from triage.settings import ClassifierSettings, KafkaSettings, Settings

POSTGRES_URL = os.environ.get("TRIAGE_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
REPO = Path(__file__).resolve().parent.parent


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """A skipped test is a failed run: CI must not go green because a component was missing."""
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None and reporter.stats.get("skipped") and exitstatus == 0:
        reporter.write_line("FAILED: tests were skipped; every component must be present", red=True)
        session.exitstatus = 1


def _docker_answers() -> bool:
    try:
        import docker

        docker.from_env(timeout=2).ping()
        return True
    except Exception:
        return False


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    if os.environ.get("TRIAGE_TEST_BOOTSTRAP"):
        yield os.environ["TRIAGE_TEST_BOOTSTRAP"]
    elif _docker_answers():
        from testcontainers.kafka import KafkaContainer

        with KafkaContainer("apache/kafka:3.9.0").with_kraft() as container:
            yield container.get_bootstrap_server()
    else:
        with EmbeddedBroker() as bootstrap:
            yield bootstrap


@pytest.fixture
def kafka_settings(kafka_bootstrap: str) -> KafkaSettings:
    """Topics and a group of this test's own, on the shared broker."""
    suffix = uuid.uuid4().hex[:8]
    return KafkaSettings(
        bootstrap_servers=kafka_bootstrap,
        group_id=f"triage-test-{suffix}",
        input_topic=f"in-{suffix}",
        results_topic=f"results-{suffix}",
        dlq_topic=f"dlq-{suffix}",
        session_timeout_ms=TANSU_SESSION_TIMEOUT_MS,
        heartbeat_interval_ms=TANSU_HEARTBEAT_INTERVAL_MS,
        partitions=3,
        poll_timeout_ms=200,
    )


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    with FakeSlack() as fake:
        yield fake


@pytest.fixture
def zendesk() -> Iterator[FakeZendesk]:
    with FakeZendesk() as fake:
        yield fake


@pytest.fixture(scope="session")
def postgres_server() -> str:
    engine = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except Exception as error:
        pytest.fail(f"PostgreSQL is required for the tests and is not reachable at {POSTGRES_URL}: {error}")
    finally:
        engine.dispose()
    return POSTGRES_URL


@pytest.fixture
def postgres_url(postgres_server: str) -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test."""
    name = f"triage_test_{uuid.uuid4().hex[:10]}"
    admin = create_engine(postgres_server, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    yield postgres_server.rsplit("/", 1)[0] + f"/{name}"
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'triage.db'}"
    return request.getfixturevalue("postgres_url")


@pytest.fixture
def settings(kafka_settings: KafkaSettings, tmp_path: Path) -> Settings:
    """The pipeline's mechanics with the fast keyword classifier; the embedded model has its own tests."""
    return Settings(
        kafka=kafka_settings,
        database_url=f"sqlite:///{tmp_path / 'triage.db'}",
        routing_file=REPO / "config" / "routing.yaml",
        classifier=ClassifierSettings(backend="rules"),
    )


def message(message_id: str, body: str = "Where is my order?", **fields: object) -> bytes:
    return json.dumps({"id": message_id, "body": body, **fields}).encode("utf-8")


def produce(kafka_settings: KafkaSettings, values: list[bytes], key: bytes | None = None) -> None:
    transport.ensure_topics(kafka_settings, [kafka_settings.input_topic])
    producer = KafkaProducer(bootstrap_servers=kafka_settings.bootstrap_servers, acks="all")
    for value in values:
        producer.send(kafka_settings.input_topic, key=key, value=value)
    producer.flush()
    producer.close()


def read_topic(
    bootstrap: str,
    topic: str,
    expected: int,
    timeout_s: float = 30.0,
    until: Callable[[list], bool] | None = None,
) -> list:
    """All records of a topic, once at least `expected` have arrived and `until(records)` holds (or the
    timeout passed). `until` matters where records may repeat (Kafka's tolerance after a kill -9)."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    deadline = time.monotonic() + timeout_s
    partitions = None
    while partitions is None and time.monotonic() < deadline:
        partitions = consumer.partitions_for_topic(topic)
        if partitions is None:
            time.sleep(0.1)
    records: list = []
    if partitions:
        consumer.assign([TopicPartition(topic, p) for p in partitions])
        consumer.seek_to_beginning()
        while (len(records) < expected or (until and not until(records))) and time.monotonic() < deadline:
            for batch in consumer.poll(timeout_ms=200).values():
                records.extend(batch)
        for batch in consumer.poll(timeout_ms=500).values():  # anything beyond what was expected
            records.extend(batch)
    consumer.close()
    return records
