"""Protobuf values in the Confluent wire format.

The registry holds a schema as `.proto` text; it is compiled once per schema id with protoc (the
`grpcio-tools` package carries it, `pip install triage[protobuf]`), and the record's message index path
picks the message type within the file. Values become dicts with the proto's own field names.
"""

from __future__ import annotations

import tempfile
import threading
from pathlib import Path
from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, json_format, message_factory

from triage.input.wire import Undecodable, join_message_indexes, split_message_indexes

_lock = threading.Lock()
_files: dict[str, Any] = {}  # .proto text -> its FileDescriptor, in a pool of its own


class ProtoSchemaError(ValueError):
    """The .proto text does not compile."""


def compile_file(proto_text: str, dependencies: dict[str, str] | None = None) -> Any:
    """The FileDescriptor of a .proto text (with the files it imports, by name)."""
    with _lock:
        if proto_text in _files:
            return _files[proto_text]
        try:
            from grpc_tools import protoc
        except ModuleNotFoundError:
            raise ProtoSchemaError(
                "Protobuf values need protoc: pip install 'triage[protobuf]' (grpcio-tools)"
            ) from None
        import grpc_tools

        includes = str(Path(grpc_tools.__file__).parent / "_proto")  # google/protobuf/*.proto
        with tempfile.TemporaryDirectory() as folder:
            root = Path(folder)
            for name, text in (dependencies or {}).items():
                (root / name).parent.mkdir(parents=True, exist_ok=True)
                (root / name).write_text(text)
            (root / "schema.proto").write_text(proto_text)
            out = root / "set.pb"
            status = protoc.main(
                ["protoc", f"-I{root}", f"-I{includes}", "--include_imports",
                 f"--descriptor_set_out={out}", "schema.proto"]
            )  # fmt: skip
            if status != 0:
                raise ProtoSchemaError("the .proto schema does not compile (protoc's message is above)")
            files = descriptor_pb2.FileDescriptorSet.FromString(out.read_bytes())
        pool = descriptor_pool.DescriptorPool()
        for proto in files.file:
            pool.Add(proto)
        descriptor = pool.FindFileByName("schema.proto")
        _files[proto_text] = descriptor
        return descriptor


def message_type(file: Any, indexes: list[int]) -> Any:
    """The message descriptor at an index path: [1, 0] is the first nested type of the second message."""
    try:
        found = file.message_types_by_name[list(file.message_types_by_name)[indexes[0]]]
        for index in indexes[1:]:
            found = found.nested_types[index]
    except IndexError:
        raise Undecodable(f"Protobuf: no message at index path {indexes} in the schema") from None
    return found


def decode(proto_text: str, payload: bytes, dependencies: dict[str, str] | None = None) -> Any:
    try:
        indexes, body = split_message_indexes(payload)
    except ValueError as error:
        raise Undecodable(f"Protobuf: {error}") from None
    descriptor = message_type(compile_file(proto_text, dependencies), indexes)
    message = message_factory.GetMessageClass(descriptor)()
    try:
        message.ParseFromString(body)
    except Exception as error:  # google.protobuf.message.DecodeError and kin
        raise Undecodable(f"Protobuf {descriptor.full_name}: {error}") from None
    return json_format.MessageToDict(message, preserving_proto_field_name=True)


def encode(proto_text: str, value: dict[str, Any], indexes: list[int] | None = None) -> bytes:
    descriptor = message_type(compile_file(proto_text), indexes or [0])
    message = message_factory.GetMessageClass(descriptor)()
    json_format.ParseDict(value, message, ignore_unknown_fields=True)
    return join_message_indexes(indexes or [0], message.SerializeToString())
