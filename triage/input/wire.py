"""The Confluent wire format: a zero magic byte, the schema's id (4 bytes, big-endian), then the payload.

Protobuf payloads start with the message's index path in the schema (which message of the file):
a zig-zag varint count, then that many zig-zag varints; the common path `[0]` is the single byte 0.
"""

from __future__ import annotations

import struct

MAGIC = 0
HEADER = 5


class Undecodable(ValueError):
    """The bytes do not decode with the schema their record names."""


def is_framed(value: bytes | None) -> bool:
    """A record that carries a schema id. Plain JSON never starts with a zero byte."""
    return bool(value) and len(value) >= HEADER and value[0] == MAGIC


def unframe(value: bytes) -> tuple[int, bytes]:
    """(schema id, payload) of a framed value."""
    (schema_id,) = struct.unpack(">I", value[1:HEADER])
    return schema_id, value[HEADER:]


def frame(schema_id: int, payload: bytes) -> bytes:
    return bytes([MAGIC]) + struct.pack(">I", schema_id) + payload


def _read_varint(data: bytes, position: int) -> tuple[int, int]:
    shift = result = 0
    while True:
        if position >= len(data):
            raise ValueError("truncated varint in the message index")
        byte = data[position]
        position += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            break
        shift += 7
        if shift > 63:
            raise ValueError("varint too long in the message index")
    return (result >> 1) ^ -(result & 1), position  # zig-zag


def _write_varint(number: int) -> bytes:
    value = (number << 1) ^ (number >> 63)  # zig-zag
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def split_message_indexes(payload: bytes) -> tuple[list[int], bytes]:
    """(index path, protobuf bytes) of a Protobuf payload."""
    count, position = _read_varint(payload, 0)
    if count == 0:
        return [0], payload[position:]
    if count < 0 or count > 100:
        raise ValueError(f"implausible message index count {count}")
    indexes = []
    for _ in range(count):
        index, position = _read_varint(payload, position)
        indexes.append(index)
    return indexes, payload[position:]


def join_message_indexes(indexes: list[int], message: bytes) -> bytes:
    if indexes == [0]:
        return b"\x00" + message
    return _write_varint(len(indexes)) + b"".join(_write_varint(i) for i in indexes) + message
