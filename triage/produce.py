"""What `triage produce` sends: JSON Lines checked before anything is sent, and fresh ids on request.

A file that is not JSON Lines (a README, a pretty-printed array) is refused at its first bad line,
before the first record goes out, rather than sent whole to be dead-lettered; `--raw` sends lines as
they are, to try the dead-letter path on purpose.

`--new-ids` gives every message a fresh id and conversation id, so that the samples can be sent again
after a routing change (the same ids again are duplicates, with no effect). The new ids are the old
ones with `-r<N>` appended; N is `--run N`, or by default the topic's end offset (summed over its
partitions; on Kafka, the number of records it has had), which grows with every record sent: each run
differs from the last, and the same command on the same topic gives the same ids.
"""

from __future__ import annotations

import json
from pathlib import Path

from kafka import KafkaConsumer
from kafka.structs import TopicPartition

from triage import kafka
from triage.settings import KafkaSettings


class ProduceError(Exception):
    """A line that is not a JSON object (`FILE:LINE: what is wrong`), or options that contradict."""


def read_lines(path: Path, raw: bool = False) -> list[bytes]:
    """The non-blank lines of a file; unless `raw`, each must be a JSON object (else ProduceError)."""
    numbered = [(n, line) for n, line in enumerate(path.read_bytes().splitlines(), 1) if line.strip()]
    if not raw:
        bad = [(n, problem) for n, line in numbered if (problem := _not_an_object(line))]
        if bad:
            n, problem = bad[0]
            raise ProduceError(
                f"{path}:{n}: {problem}; {len(bad)} of {len(numbered)} lines are not JSON objects, "
                "nothing was sent (--raw sends lines as they are)"
            )
    return [line for _, line in numbered]


def _not_an_object(line: bytes) -> str | None:
    try:
        document = json.loads(line.decode("utf-8"))
    except UnicodeDecodeError as error:
        return f"not UTF-8 (byte 0x{line[error.start]:02x} at column {error.start + 1})"
    except json.JSONDecodeError as error:
        return f"not JSON ({error.msg} at column {error.colno})"
    if not isinstance(document, dict):
        return f"a JSON {_json_kind(document)}, not an object"
    return None


def _json_kind(value: object) -> str:
    kinds = {list: "array", str: "string", bool: "boolean", type(None): "null"}
    return kinds.get(type(value), "number")


def end_offset(settings: KafkaSettings, topic: str) -> int:
    """The sum of the topic's partitions' end offsets; 0 if it does not exist yet."""
    with kafka.reaching(settings):
        consumer = KafkaConsumer(**kafka.client_config(settings), group_id=None, enable_auto_commit=False)
    try:
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        return sum(consumer.end_offsets(partitions).values()) if partitions else 0
    finally:
        consumer.close()


def with_new_ids(lines: list[bytes], run: int) -> list[bytes]:
    """Each JSON object with `-r<run>` appended to its id and conversation_id (where it has them)."""
    renamed = []
    for line in lines:
        document = json.loads(line)
        for field in ("id", "conversation_id"):
            if document.get(field) is not None:
                document[field] = f"{document[field]}-r{run}"
        renamed.append(json.dumps(document, ensure_ascii=False).encode("utf-8"))
    return renamed
