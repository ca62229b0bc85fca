"""CPU per record of reading the input: plain JSON against Avro from a schema registry with a mapping
file, the decoder alone (the rest of the worker's path is the same for both).

    python benchmarks/input_decode.py [--records 20000]

The registry is the local stand-in of the tests; each schema is fetched once and cached, so the
figure is the steady state. Prints CPU microseconds per record for each and the difference.
"""

from __future__ import annotations

import argparse
import io
import json
import struct
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import fastavro

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.fakes.schema_registry import FakeSchemaRegistry  # noqa: E402
from triage.input.decoder import Decoder  # noqa: E402
from triage.input.mapping import Mapping  # noqa: E402
from triage.input.registry import RegistryClient  # noqa: E402
from triage.settings import SchemaRegistrySettings, Settings  # noqa: E402

SCHEMA = {
    "type": "record",
    "name": "Ticket",
    "fields": [
        {"name": "ticket_id", "type": "long"},
        {"name": "text", "type": "string"},
        {"name": "subject", "type": ["null", "string"], "default": None},
        {"name": "requester", "type": {"type": "record", "name": "Requester", "fields": [
            {"name": "email", "type": "string"}, {"name": "tier", "type": "string"}]}},
        {"name": "opened_at", "type": {"type": "long", "logicalType": "timestamp-millis"}},
    ],
}  # fmt: skip
MAPPING = """\
id: to_string(ticket_id)
conversation_id: to_string(ticket_id)
body: text
subject: subject
channel: "'email'"
created_at: opened_at
customer.email: requester.email
customer.tier: requester.tier
"""
BODY = "Since 09:40 UTC every checkout on our store fails with a 503. We are losing orders every minute."


def cpu_us_per_record(decoder: Decoder, values: list[bytes]) -> float:
    started = time.process_time()
    for value in values:
        decoder.decode(value)
    return (time.process_time() - started) / len(values) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--records", type=int, default=20_000)
    args = parser.parse_args()
    opened = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
    plain = [
        json.dumps(
            {"id": str(i), "conversation_id": str(i), "body": BODY, "subject": "Checkout down",
             "channel": "email", "created_at": opened.isoformat(),
             "customer": {"email": "dana@acme.com", "tier": "enterprise"}}
        ).encode()
        for i in range(args.records)
    ]  # fmt: skip
    with FakeSchemaRegistry() as registry:
        schema_id = registry.register("support-value", SCHEMA)
        parsed = fastavro.parse_schema(SCHEMA)
        avro = []
        for i in range(args.records):
            out = io.BytesIO()
            record = {"ticket_id": i, "text": BODY, "subject": "Checkout down", "opened_at": opened,
                      "requester": {"email": "dana@acme.com", "tier": "enterprise"}}  # fmt: skip
            fastavro.schemaless_writer(out, parsed, record)
            avro.append(b"\x00" + struct.pack(">I", schema_id) + out.getvalue())
        settings = Settings()
        client = RegistryClient(SchemaRegistrySettings(url=registry.address))
        with_mapping = Decoder(settings, Mapping.parse(MAPPING), client)
        with_mapping.decode(avro[0])  # the schema fetched once
        json_us = cpu_us_per_record(Decoder(settings), plain)
        avro_us = cpu_us_per_record(with_mapping, avro)
    print(f"records: {args.records}")
    print(f"plain JSON:         {json_us:7.1f} µs CPU per record")
    print(f"Avro + mapping:     {avro_us:7.1f} µs CPU per record")
    print(f"added by Avro+map:  {avro_us - json_us:7.1f} µs ({(avro_us - json_us) / 1000:.3f} ms)")


if __name__ == "__main__":
    main()
