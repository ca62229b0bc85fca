"""`triage ingest` over real HTTP (httpx) against the real broker: what each request produces on the
input topic, and what it answers. Signatures are computed here from Zendesk's documented scheme,
base64(HMAC-SHA256(secret, timestamp + body)), not with the code under test."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from tests.conftest import read_topic
from tests.fakes.tcp_proxy import TCPProxy
from tests.test_cli import TRIAGE, triage_env, wait_for
from triage.broker import free_port, tansu_binary
from triage.ingest.service import IngestService
from triage.settings import ClassifierSettings, IngestSettings, KafkaSettings, Settings

SECRET = "dGhpc19zZWNyZXRfaXNfZm9yX3Rlc3Rpbmdfb25seQ=="
TOKEN = "s3cret-token-for-gorgias"


def ingest_settings(kafka: KafkaSettings, database_url: str, **ingest: object) -> Settings:
    return Settings(
        kafka=kafka,
        database_url=database_url,
        classifier=ClassifierSettings(backend="rules"),
        ingest=IngestSettings(port=0, token=TOKEN, zendesk_signing_secret=SECRET, **ingest),
    )


@contextmanager
def running(settings: Settings) -> Iterator[str]:
    """An ingest service on a free port; yields its base URL."""
    service = IngestService.from_settings(settings, host="127.0.0.1").start()
    try:
        yield f"http://127.0.0.1:{service.port}"
    finally:
        service.stop()


@pytest.fixture
def settings(kafka_settings: KafkaSettings, postgres_url: str) -> Settings:
    return ingest_settings(kafka_settings, postgres_url)


@pytest.fixture
def url(settings: Settings) -> Iterator[str]:
    with running(settings) as base:
        yield base


def message(message_id: str, conversation: str | None = "conv-1", **fields: object) -> bytes:
    document = {"id": message_id, "body": "My order never arrived", "conversation_id": conversation, **fields}
    return json.dumps(document).encode()


def zendesk_headers(body: bytes, secret: str = SECRET, at: datetime | None = None) -> dict[str, str]:
    stamp = (at or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")
    signature = base64.b64encode(hmac.new(secret.encode(), stamp.encode() + body, hashlib.sha256).digest())
    return {
        "Content-Type": "application/json",
        "X-Zendesk-Webhook-Signature": signature.decode(),
        "X-Zendesk-Webhook-Signature-Timestamp": stamp,
    }


def bearer(token: str = TOKEN) -> dict[str, str]:
    return {"Content-Type": "application/json", "Authorization": f"Bearer {token}"}


def post(base: str, body: bytes, headers: dict[str, str]) -> httpx.Response:
    return httpx.post(f"{base}/messages", content=body, headers=headers, timeout=30)


def records(kafka: KafkaSettings, expected: int) -> list:
    return read_topic(kafka.bootstrap_servers, kafka.input_topic, expected, timeout_s=20)


def test_a_signed_zendesk_webhook_and_a_bearer_one_each_produce_one_record_keyed_by_conversation(
    url: str, settings: Settings
):
    zendesk = message("zd-1001", conversation="zendesk-77", ticket={"system": "zendesk", "id": 77})
    gorgias = message("gorgias-55", conversation=None)  # a lone message is its own conversation

    first = post(url, zendesk, zendesk_headers(zendesk))
    second = post(url, gorgias, bearer())

    assert first.status_code == 202, first.text
    assert first.json()["message_id"] == "zd-1001"
    assert second.status_code == 202, second.text
    found = records(settings.kafka, 2)
    assert sorted((r.key, r.value) for r in found) == sorted(
        [(b"zendesk-77", zendesk), (b"gorgias-55", gorgias)]
    )
    acknowledged = {(r.partition, r.offset) for r in found}
    assert (first.json()["partition"], first.json()["offset"]) in acknowledged


def test_forged_stale_or_missing_credentials_are_401_and_produce_nothing(url: str, settings: Settings):
    body = message("forged-1")
    tampered = zendesk_headers(message("something-else"))  # a real signature, of another body
    stale = zendesk_headers(body, at=datetime.now(UTC) - timedelta(minutes=10))
    future = zendesk_headers(body, at=datetime.now(UTC) + timedelta(minutes=10))
    for headers in (
        zendesk_headers(body, secret="not-the-secret"),
        tampered,
        stale,
        future,
        bearer("wrong-token"),
        bearer(TOKEN + "x"),
        {"Content-Type": "application/json", "Authorization": f"Basic {TOKEN}"},
        {"Content-Type": "application/json"},
    ):
        answer = post(url, body, headers)
        assert answer.status_code == 401, (headers, answer.text)
        assert answer.json() == {"error": "unauthorized"}
    assert post(url, message("genuine-1"), bearer()).status_code == 202
    found = records(settings.kafka, 1)
    assert [json.loads(r.value)["id"] for r in found] == ["genuine-1"]


def test_a_message_the_worker_would_refuse_is_400_naming_the_field_and_too_large_is_413(
    url: str, settings: Settings
):
    cases = {
        b'{"id": "m-1", "body": ': "invalid_json",
        b'{"id": "m-2", "channel": "email"}': "body: Field required",
        b'{"body": "hello"}': "id: Field required",
        b'{"id": "m-3", "body": "   "}': "body: body is empty",
        b'["not", "an", "object"]': "not_an_object",
        b'{"id": "m-4", "body": "hi", "created_at": "yesterday"}': "created_at:",
    }
    for body, named in cases.items():
        answer = post(url, body, bearer())
        assert answer.status_code == 400, (body, answer.text)
        assert named in answer.json()["error"], (body, answer.text)

    huge_request = message("big-1", body="x" * 1_100_000)
    answer = post(url, huge_request, bearer())
    assert answer.status_code == 413 and "limit is 1000000" in answer.json()["error"]
    big_body = message("big-2", body="y" * (settings.worker.max_body_bytes + 1))
    answer = post(url, big_body, bearer())
    assert answer.status_code == 413 and answer.json()["error"].startswith("body_too_large")

    assert post(url, message("fine-1"), bearer()).status_code == 202
    assert [json.loads(r.value)["id"] for r in records(settings.kafka, 1)] == ["fine-1"]


def test_the_same_id_twice_is_one_record_across_restarts_and_two_ingest_processes(settings: Settings):
    body = message("dup-1")
    with running(settings) as first, running(settings) as second:
        assert post(first, body, zendesk_headers(body)).status_code == 202
        again = post(second, body, bearer())  # another process, the same store
        assert again.status_code == 200 and again.json() == {"status": "duplicate", "message_id": "dup-1"}
    with running(settings) as restarted:
        assert post(restarted, body, bearer()).status_code == 200
        assert post(restarted, message("dup-2"), bearer()).status_code == 202
    found = records(settings.kafka, 2)
    assert sorted(json.loads(r.value)["id"] for r in found) == ["dup-1", "dup-2"]


@contextmanager
def broker_behind_proxy() -> Iterator[tuple[str, TCPProxy]]:
    """A broker of its own that tells clients to connect through a proxy the test can cut: every
    connection, bootstrap and partition leader alike, goes through it."""
    port = free_port()
    with TCPProxy("127.0.0.1", port) as proxy:
        listener, advertised = f"tcp://127.0.0.1:{port}", f"tcp://127.0.0.1:{proxy.port}"
        command = ["broker", "--listener-url", listener, "--advertised-listener-url", advertised]
        process = subprocess.Popen(
            [str(tansu_binary()), *command],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            wait_for(lambda: _listens(port), 15, "the broker")
            yield f"127.0.0.1:{proxy.port}", proxy
        finally:
            process.terminate()
            process.wait(timeout=10)


def _listens(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
        return True
    except OSError:
        return False


def test_broker_down_is_503_with_retry_after_and_the_retries_produce_each_message_once(
    kafka_settings: KafkaSettings, postgres_url: str
):
    with broker_behind_proxy() as (bootstrap, proxy):
        kafka = kafka_settings.model_copy(update={"bootstrap_servers": bootstrap})
        settings = ingest_settings(kafka, postgres_url, ack_timeout_s=2.0, retry_after_s=3)
        bodies = [message(f"out-{i}", conversation=f"c{i % 3}") for i in range(6)]
        with running(settings) as url:
            assert post(url, bodies[0], bearer()).status_code == 202
            proxy.down()
            for body in bodies[1:]:
                answer = post(url, body, bearer())
                assert answer.status_code == 503, answer.text
                assert answer.headers["Retry-After"] == "3"
            proxy.up()
            for body in bodies:  # the helpdesk retries each, the first one too (its 202 was lost, say)
                deadline = time.monotonic() + 60
                while (answer := post(url, body, bearer())).status_code == 503:
                    assert time.monotonic() < deadline, answer.text
                    time.sleep(0.5)
                assert answer.status_code in (200, 202), answer.text
        found = records(kafka, 6)
    assert sorted(json.loads(r.value)["id"] for r in found) == [f"out-{i}" for i in range(6)]


def test_healthz_readyz_and_metrics(url: str):
    assert post(url, message("m-metrics"), bearer()).status_code == 202
    assert post(url, b"{}", bearer()).status_code == 400
    assert httpx.get(f"{url}/healthz").text == "ok\n"
    ready = httpx.get(f"{url}/readyz")
    assert (ready.status_code, ready.text) == (200, "ready\n")
    metrics = httpx.get(f"{url}/metrics").text
    assert 'triage_ingest_requests_total{outcome="accepted"}' in metrics
    assert 'triage_ingest_requests_total{outcome="invalid"}' in metrics
    assert "triage_ingest_seconds_bucket" in metrics
    assert httpx.get(f"{url}/messages").status_code == 405


def test_the_command_serves_until_sigterm_and_refuses_to_start_without_credentials(
    kafka_settings: KafkaSettings, postgres_url: str, tmp_path: Path
):
    port = free_port()
    env = triage_env(kafka_settings, postgres_url, TRIAGE_INGEST__PORT=str(port))
    refused = subprocess.run([*TRIAGE, "ingest"], env=env, cwd=tmp_path, capture_output=True, text=True)
    assert refused.returncode == 2
    assert "error: set TRIAGE_INGEST__TOKEN" in refused.stderr and "Traceback" not in refused.stderr

    env["TRIAGE_INGEST__TOKEN"] = TOKEN
    process = subprocess.Popen([*TRIAGE, "ingest"], env=env, cwd=tmp_path, stderr=subprocess.PIPE, text=True)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_for(lambda: _listens(port), 60, "ingest to listen")
        assert post(url, message("cli-1"), bearer()).status_code == 202
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=60)
    assert process.returncode == 0, stderr
    assert [json.loads(r.value)["id"] for r in records(kafka_settings, 1)] == ["cli-1"]


def test_the_same_id_at_once_on_two_processes_is_one_record(settings: Settings):
    body = message("race-1")
    with running(settings) as first, running(settings) as second, ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda i: post((first, second)[i % 2], body, bearer()), range(8)))
    statuses = sorted(answer.status_code for answer in answers)
    assert statuses.count(202) == 1 and set(statuses) <= {200, 202, 503}, statuses
    assert [json.loads(r.value)["id"] for r in records(settings.kafka, 1)] == ["race-1"]
