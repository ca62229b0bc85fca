"""Bad and hostile records among good ones, as a new user's producers send them, through `triage run` on
the real broker: every valid message stored once, every bad record dead-lettered once with its reason,
across a kill -9; and with TRIAGE_STORE_ORIGINAL_TEXT=false, no personal data anywhere in the store."""

import json
import re
import signal
import subprocess
from collections import Counter
from pathlib import Path

from sqlalchemy import create_engine, inspect, text

from tests.conftest import read_topic
from tests.test_cli import TRIAGE, stored_count, triage_env, wait_for
from triage.settings import KafkaSettings

VALID = 1000


def valid(i: int) -> bytes:
    fields: dict = {
        "id": f"v-{i:04d}",
        "conversation_id": f"conv-{i % 89}",
        "body": f"Order {i}: where is it?",
    }
    if i % 50 == 0:  # producers that write absent fields as null (Debezium, Kafka Connect, ORMs)
        fields.update(subject=None, created_at=None, customer=None, ticket=None, metadata=None, channel=None)
    if i % 50 == 25:
        fields.update(customer={"id": "c1", "tier": None, "email": None}, ticket={"id": 7, "url": None})
    if i % 97 == 3:  # hostile but valid: processed, never pings anyone
        fields["body"] = f"<!channel> <@U123> order {i} is late"
    return json.dumps(fields).encode()


BAD_KINDS = [
    (b'{"id": "b-%d", "body": ', "invalid_json"),
    (b'["an", "array", %d]', "not_an_object"),
    (b'{"id": "b-%d"}', "invalid_schema"),
    (b'{"id": "b-%d", "body": 7}', "invalid_schema"),
    (b'{"id": "b-%d", "body": "hi", "customer": "Ana <ana@example.com>"}', "invalid_schema"),
    (b'{"id": "b-%d", "body": "App crashed again \\ud83d please fix"}', "invalid_unicode"),
    (b'{"id": "b-%d", "body": "ok", "metadata": {"note": "\\udc00"}}', "invalid_unicode"),
    (b'{"id": "b-%d", "body": "caf\xe9"}', "invalid_utf8"),
    (b'{"id": "b-%d", "body": "   "}', "invalid_schema"),
    (b'{"id": null, "body": "x %d"}', "invalid_schema"),
]


def bad(n: int) -> tuple[bytes, str]:
    template, code = BAD_KINDS[n % len(BAD_KINDS)]
    return template.replace(b"%d", str(n).encode()), code


def test_interleaved_bad_records_are_dead_lettered_exactly_once_across_kill_9(
    kafka_settings: KafkaSettings, tmp_path: Path
):
    database_url = f"sqlite:///{tmp_path / 'store.db'}"
    # A dead letter the killed worker had claimed is taken over at once by the restarted one (same host).
    env = triage_env(kafka_settings, database_url, TRIAGE_WORKER__DELIVERY_LEASE_S="3")
    records, expected_codes = [], {}
    for i in range(VALID):
        records.append(valid(i))
        if i % 25 == 12:  # 40 bad records spread through the stream
            value, code = bad(len(expected_codes))
            records.append(value)
            expected_codes[value] = code
    source = tmp_path / "messages.jsonl"
    source.write_bytes(b"\n".join(records) + b"\n")
    produced = subprocess.run(
        [*TRIAGE, "produce", "--raw", str(source)],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert produced.returncode == 0, produced.stderr
    assert f"sent {VALID + 40} records" in produced.stdout

    first = subprocess.Popen([*TRIAGE, "run"], env=env, cwd=tmp_path, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: stored_count(database_url) >= 0.4 * VALID, 120, "the first worker to store 40%")
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
    assert stored_count(database_url) < VALID, "the kill came too late to test anything"

    log_path = tmp_path / "second.log"
    with log_path.open("w") as log:
        second = subprocess.Popen([*TRIAGE, "run"], env=env, cwd=tmp_path, stderr=log)
        try:
            wait_for(lambda: stored_count(database_url) == VALID, 180, "every valid message to be stored")
            dead = read_topic(kafka_settings.bootstrap_servers, kafka_settings.dlq_topic, 40, timeout_s=60)
        finally:
            second.send_signal(signal.SIGTERM)
            second.wait(timeout=60)
    assert second.returncode == 0, log_path.read_text()[-2000:]

    copies = Counter(record.value for record in dead)
    assert set(copies) == set(expected_codes), "a bad record is missing from the dead-letter topic"
    assert max(copies.values()) == 1, [value for value, count in copies.items() if count > 1]
    codes = {record.value: dict(record.headers)["triage.error.code"].decode() for record in dead}
    assert codes == expected_codes

    engine = create_engine(database_url)
    with engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM triage_results")).scalar_one() == VALID
        assert (
            connection.execute(text("SELECT count(*) FROM dead_letters WHERE status = 'sent'")).scalar_one()
            == 40
        )
    engine.dispose()


PII = {
    "card": "4111 1111 1111 1111",
    "email": "ana.lopez@example.com",
    "phone": "+34 612 345 678",
    "iban": "DE89 3704 0044 0532 0130 00",
    "secret": "sk-live-abcdefghijklmnop1234",
    "customer email": "ana.private@example.org",
    "name email": "ana.name@example.net",
    "metadata phone": "+1 415 555 0134",
}


GROUPED_ON_PERSONAL_FIELDS = """
receivers:
  - {name: log, console: {}}
  - {name: oncall, slack: {channel: "#oncall"}}
route:
  receiver: log
  routes:
    - receiver: oncall
      group_by: [customer.name, customer.email, subject, metadata.callback, category]
"""


def test_with_store_original_text_false_no_personal_data_reaches_the_store(
    kafka_settings: KafkaSettings, tmp_path: Path
):
    database_url = f"sqlite:///{tmp_path / 'store.db'}"
    routing = tmp_path / "routing.yaml"  # group keys are stored: grouping on personal fields too
    routing.write_text(GROUPED_ON_PERSONAL_FIELDS)
    env = triage_env(
        kafka_settings, database_url, TRIAGE_STORE_ORIGINAL_TEXT="false", TRIAGE_ROUTING_FILE=str(routing)
    )
    messages = [
        {  # the first sentence (the summary of the keyword and embedded models) quotes every kind
            "id": "pii-1",
            "conversation_id": "c-pii",
            "subject": f"Card {PII['card']} charged twice, call {PII['phone']}",
            "body": (
                f"My card {PII['card']} was charged twice, write to {PII['email']} or call {PII['phone']}, "
                f"IBAN {PII['iban']}, key {PII['secret']}. Please refund."
            ),
            "customer": {
                "id": "cust-1",
                "name": f"Ana <{PII['name email']}>",
                "email": PII["customer email"],
            },
            "metadata": {"callback": PII["metadata phone"], "nested": [{"mail": PII["email"]}]},
            "ticket": {"id": 4242, "url": "https://help.example.com/tickets/4242"},
        },
        {"id": "pii-2", "body": f"{PII['email']} cannot log in. Help!", "customer": {"tier": "pro"}},
    ]
    bad_with_pii = json.dumps({"id": "pii-bad", "body": 5, "customer": {"email": PII["email"]}})
    source = tmp_path / "messages.jsonl"
    source.write_text("\n".join([*map(json.dumps, messages), bad_with_pii]) + "\n")
    produced = subprocess.run(
        [*TRIAGE, "produce", str(source)], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert produced.returncode == 0, produced.stderr
    worker = subprocess.Popen([*TRIAGE, "run"], env=env, cwd=tmp_path, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: stored_count(database_url) == 2, 120, "both messages to be stored")
        read_topic(kafka_settings.bootstrap_servers, kafka_settings.dlq_topic, 1)
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=60)

    engine = create_engine(database_url)
    dump = []
    with engine.connect() as connection:
        for table in inspect(engine).get_table_names():
            for row in connection.execute(text(f'SELECT * FROM "{table}"')):
                dump.append(f"{table}: {tuple(row)}")
        summary = connection.execute(text("SELECT summary FROM triage_results WHERE message_id = 'pii-1'"))
        assert "[CARD]" in summary.scalar_one()  # redacted, not dropped
        assert connection.execute(text("SELECT count(*) FROM dead_letters")).scalar_one() == 1
        keys = connection.execute(
            text("SELECT group_key FROM deliveries WHERE message_id = 'pii-1' AND receiver = 'oncall'")
        )
        key = json.loads(keys.scalar_one().split(" ", 1)[1])  # grouped on digests of the personal values
        personal = ("customer.name", "customer.email", "subject", "metadata.callback")
        assert key["category"] and all(re.fullmatch(r"sha256:[0-9a-f]{16}", key[n]) for n in personal), key
    engine.dispose()
    everything = "\n".join(dump)
    assert "pii-1" in everything and "deliveries" in everything  # the dump is not empty
    for kind, value in PII.items():
        assert value not in everything, f"{kind} {value!r} is in the store"
