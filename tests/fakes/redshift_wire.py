"""PostgreSQL as Redshift's wire for redshift_connector: a TCP forwarder that drops the start-up
parameters only Redshift knows.

redshift_connector's start-up packet carries `client_protocol_version`, `driver_version`, `os_version`
and `driver_discovery_version`; Redshift reads them, PostgreSQL refuses the connection with
`unrecognized configuration parameter "client_protocol_version"`. This forwarder removes those four
from the first packet; and as the driver parses the server's `server_version` with `packaging`, which
cannot read a distribution's "15.20 (Debian 15.20-0+deb12u1)", that one start-up message is cut to
"15.20". Every other byte passes through unchanged, so the queries, the extended protocol and the
errors are PostgreSQL's own. Like TCPProxy, it can be cut (`down()`) and restored.
"""

from __future__ import annotations

import socket
import struct

from tests.fakes.tcp_proxy import TCPProxy

REDSHIFT_ONLY = {b"client_protocol_version", b"driver_version", b"os_version", b"driver_discovery_version"}
SSL_REQUEST = 80877103


class RedshiftWire(TCPProxy):
    def __init__(self, host: str = "127.0.0.1", port: int = 5432) -> None:
        super().__init__(host, port)
        self.dropped: list[bytes] = []  # the parameter names removed, for tests to see

    def _pipe(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            if source.getsockname()[1] == self.port:  # the client's side: its first packet is the start-up
                self._start_up(source, sink)
            else:
                _server_start_up(source, sink)
        except OSError:
            pass
        super()._pipe(source, sink)

    def _start_up(self, client: socket.socket, server: socket.socket) -> None:
        packet = _read_packet(client)
        if struct.unpack("!I", packet[4:8])[0] == SSL_REQUEST:
            client.sendall(b"N")  # no TLS through the stand-in; the client goes on in clear
            packet = _read_packet(client)
        version, body = packet[4:8], packet[8:]
        fields = body.split(b"\0")
        kept = []
        for name, value in zip(fields[0::2], fields[1::2], strict=False):
            if not name:
                break
            if name in REDSHIFT_ONLY:
                self.dropped.append(name)
                continue
            kept += [name, value]
        rewritten = version + b"\0".join(kept) + b"\0\0"
        server.sendall(struct.pack("!I", len(rewritten) + 4) + rewritten)


def _server_start_up(server: socket.socket, client: socket.socket) -> None:
    """Pass the server's messages through up to ReadyForQuery, with server_version's number only."""
    while True:
        kind = _read(server, 1)
        length = _read(server, 4)
        body = _read(server, struct.unpack("!I", length)[0] - 4)
        if kind == b"S" and body.startswith(b"server_version\0"):
            number = body.split(b"\0")[1].split(b" ")[0]
            body = b"server_version\0" + number + b"\0"
            length = struct.pack("!I", len(body) + 4)
        client.sendall(kind + length + body)
        if kind in (b"Z", b"E"):
            return


def _read_packet(sock: socket.socket) -> bytes:
    head = _read(sock, 4)
    return head + _read(sock, struct.unpack("!I", head)[0] - 4)


def _read(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise ConnectionError("the client left during start-up")
        data += chunk
    return data
