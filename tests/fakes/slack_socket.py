"""A local stand-in for the WebSocket end of Slack's Socket Mode, for slack_sdk's SocketModeClient.

With `FakeSlack.socket_mode` set to one, `apps.connections.open` (called with an app-level token)
answers this server's `ws://` URL with a one-time ticket. On connect the server says `hello`;
`send_interactive(payload)` pushes an envelope `{envelope_id, type: "interactive", payload,
accepts_response_payload}` to the connected client, whose acknowledgements `{envelope_id}` are kept
in `acks`; `disconnect()` sends `{"type": "disconnect", "reason": "refresh_requested"}`, after which
the client asks apps.connections.open for a new URL and connects again.

`block_actions()` builds the payload Slack sends when someone uses an alert's button or menu: only
controls and options the posted message really has can be clicked.
"""

from __future__ import annotations

import copy
import json
import threading
import time
import uuid
from collections import Counter
from typing import Any, Self
from urllib.parse import parse_qs, urlsplit

from websockets.exceptions import ConnectionClosed
from websockets.sync.server import ServerConnection, serve

Json = dict[str, Any]
APP_ID = "A0TRIAGE"


class FakeSocketMode:
    def __init__(self) -> None:
        self.acks: Counter[str] = Counter()  # envelope id -> acknowledgements received
        self.connections = 0  # WebSocket connections accepted (a reconnect adds one)
        self.refused = 0  # connections with an unknown or used ticket
        self._tickets: set[str] = set()
        self._current: ServerConnection | None = None
        self._changed = threading.Condition()
        self._server = serve(self._serve, "127.0.0.1", 0)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._server.shutdown()

    def new_url(self) -> str:
        """What apps.connections.open answers: this server, with a ticket good for one connection."""
        ticket = uuid.uuid4().hex
        with self._changed:
            self._tickets.add(ticket)
        port = self._server.socket.getsockname()[1]
        return f"ws://127.0.0.1:{port}/link/?ticket={ticket}&app_id={APP_ID}"

    def _serve(self, connection: ServerConnection) -> None:
        ticket = parse_qs(urlsplit(connection.request.path).query).get("ticket", [""])[0]
        with self._changed:
            known = ticket in self._tickets
            self._tickets.discard(ticket)
            if not known:
                self.refused += 1
        if not known:
            connection.close(code=1008, reason="invalid ticket")
            return
        connection.send(
            json.dumps(
                {
                    "type": "hello",
                    "num_connections": 1,
                    "debug_info": {"host": "fake-socket-mode", "approximate_connection_time": 3600},
                    "connection_info": {"app_id": APP_ID},
                }
            )
        )
        with self._changed:
            self._current = connection
            self.connections += 1
            self._changed.notify_all()
        try:
            for raw in connection:
                try:
                    message = json.loads(raw)
                except (TypeError, ValueError):
                    continue
                if isinstance(message, dict) and isinstance(message.get("envelope_id"), str):
                    with self._changed:
                        self.acks[message["envelope_id"]] += 1
                        self._changed.notify_all()
        except ConnectionClosed:
            pass
        finally:
            with self._changed:
                if self._current is connection:
                    self._current = None
                self._changed.notify_all()

    def wait_connected(self, timeout_s: float = 10.0, connections: int = 1) -> None:
        with self._changed:
            if not self._changed.wait_for(
                lambda: self._current is not None and self.connections >= connections, timeout_s
            ):
                raise TimeoutError(f"no Socket Mode client connected ({self.connections} connections so far)")

    def send(self, envelope: Json | str) -> None:
        self.wait_connected()
        assert self._current is not None
        self._current.send(envelope if isinstance(envelope, str) else json.dumps(envelope))

    def send_interactive(self, payload: Any, envelope_id: str | None = None) -> str:
        """Push one interactive envelope; returns its id."""
        envelope_id = envelope_id or str(uuid.uuid4())
        self.send(
            {
                "envelope_id": envelope_id,
                "type": "interactive",
                "payload": payload,
                "accepts_response_payload": False,
            }
        )
        return envelope_id

    def wait_ack(self, envelope_id: str, count: int = 1, timeout_s: float = 10.0) -> bool:
        with self._changed:
            return self._changed.wait_for(lambda: self.acks[envelope_id] >= count, timeout_s)

    def disconnect(self) -> None:
        """Slack's notice that this connection will close: the client must open a new one."""
        self.send({"type": "disconnect", "reason": "refresh_requested", "debug_info": {"host": "fake"}})


def block_actions(
    message: Json, action_id: str, user: Json, value: str | None = None, channel: str | None = None
) -> Json:
    """The block_actions payload for using `action_id` of a posted message (choosing `value` from a
    menu): as Slack sends it, with the message's channel and ts unless `channel` says otherwise."""
    found = [
        (block, element)
        for block in message.get("blocks") or []
        if block.get("type") == "actions"
        for element in block["elements"]
        if element.get("action_id") == action_id
    ]
    assert found, f"the message has no control {action_id!r}"
    [(block, element)] = found
    action_ts = f"{time.time():.6f}"
    action: Json = {
        "type": element["type"],
        "action_id": action_id,
        "block_id": block["block_id"],
        "action_ts": action_ts,
    }
    if element["type"] == "button":
        action.update(text=copy.deepcopy(element["text"]), value=element.get("value"))
    else:
        [option] = [o for o in element["options"] if o["value"] == value] or [None]
        assert option is not None, f"the menu {action_id!r} offers no {value!r}"
        action["selected_option"] = copy.deepcopy(option)
    channel_id = channel or message["channel"]
    return {
        "type": "block_actions",
        "user": {"id": user["id"], "username": user["name"], "name": user["name"], "team_id": "T0TEST"},
        "api_app_id": APP_ID,
        "token": "verification-token-unused-in-socket-mode",
        "container": {
            "type": "message",
            "message_ts": message["ts"],
            "channel_id": channel_id,
            "is_ephemeral": False,
        },
        "trigger_id": f"{uuid.uuid4().int % 10**12}.{uuid.uuid4().hex[:16]}",
        "team": {"id": "T0TEST", "domain": "example"},
        "channel": {"id": channel_id, "name": channel_id.lstrip("#")},
        "message": {
            "type": "message",
            "ts": message["ts"],
            "text": message["text"],
            "blocks": copy.deepcopy(message["blocks"]),
        },
        "response_url": "https://hooks.slack.com/actions/T0TEST/1/unused",
        "actions": [action],
    }
