"""A local Teams Workflows incoming webhook: keeps the Adaptive Cards posted to it, checking their shape.

As a "Send webhook alerts to a channel" workflow: `POST /workflows/<id>` with `{"type": "message",
"attachments": [{"contentType": "application/vnd.microsoft.card.adaptive", "content": <card>}]}`,
answered 202; an AdaptiveCard needs `type`, a `version` and a `body` of elements (TextBlock with a
`text`, FactSet with `facts` of title and value, ...). A wrong shape is 400 with the reason, an unknown
workflow 404. `mentions()` lists what Teams would notify: `<at>name</at>` in a text that is also an
entity of type `mention` in `msteams.entities`.
"""

from __future__ import annotations

import json
import re
from typing import Any

from tests.fakes.local_server import Answer, LocalJSONServer

CARD = "application/vnd.microsoft.card.adaptive"
ELEMENTS = {"TextBlock", "FactSet", "Container", "ColumnSet", "Image", "RichTextBlock"}
AT = re.compile(r"<at>(.*?)</at>", re.IGNORECASE)


class FakeTeams(LocalJSONServer):
    def __init__(self, workflow: str = "wf-0123") -> None:
        super().__init__()
        self.workflow = workflow
        self.cards: list[dict[str, Any]] = []  # the AdaptiveCards accepted, in order

    @property
    def webhook_url(self) -> str:
        return f"{self.address}/workflows/{self.workflow}/triggers/manual/paths/invoke?sig=s3cret"

    def answer(self, method: str, path: str, headers: dict[str, str], raw: bytes) -> Answer:
        if (
            method != "POST"
            or not path.startswith(f"/workflows/{self.workflow}/")
            or "sig=s3cret" not in path
        ):
            return 404, {}, {"error": {"code": "WorkflowNotFound"}}
        with self._lock:
            failure = self._scripted_failure()
            if failure:
                return failure[0], failure[1], {"error": {"code": "TooManyRequests"}}
            try:
                message = json.loads(raw)
            except ValueError:
                return 400, {}, {"error": {"code": "InvalidRequestContent", "message": "not JSON"}}
            problem = shape_problem(message)
            if problem:
                return 400, {}, {"error": {"code": "InvalidRequestContent", "message": problem}}
            self.cards.extend(a["content"] for a in message["attachments"])
            return 202, {}, None

    def texts(self, card: dict[str, Any]) -> list[str]:
        """Every text a card shows."""
        found = []
        for element in card["body"]:
            if element["type"] == "TextBlock":
                found.append(element["text"])
            elif element["type"] == "FactSet":
                found += [f"{fact['title']}: {fact['value']}" for fact in element["facts"]]
        found += [action.get("title", "") for action in card.get("actions", [])]
        return found

    def mentions(self, card: dict[str, Any]) -> list[str]:
        """Who Teams would notify: an `<at>` tag backed by a mention entity."""
        entities = (card.get("msteams") or {}).get("entities") or []
        tagged = {m for text in self.texts(card) for m in AT.findall(text)}
        return [
            e.get("text", "")
            for e in entities
            if e.get("type") == "mention" and AT.sub(r"\1", e.get("text", "")) in tagged
        ]


def shape_problem(message: Any) -> str | None:
    if not isinstance(message, dict) or message.get("type") != "message":
        return "the body must be an object with type 'message'"
    attachments = message.get("attachments")
    if not isinstance(attachments, list) or not attachments:
        return "attachments must be a non-empty list"
    for attachment in attachments:
        if attachment.get("contentType") != CARD:
            return f"contentType must be {CARD}"
        card = attachment.get("content")
        if not isinstance(card, dict) or card.get("type") != "AdaptiveCard" or not card.get("version"):
            return "content must be an AdaptiveCard with a version"
        if not isinstance(card.get("body"), list):
            return "the card's body must be a list"
        for element in card["body"]:
            if element.get("type") not in ELEMENTS:
                return f"unknown element {element.get('type')!r}"
            if element["type"] == "TextBlock" and not isinstance(element.get("text"), str):
                return "a TextBlock needs a text"
            if element["type"] == "FactSet" and not all(
                isinstance(f.get("title"), str) and isinstance(f.get("value"), str)
                for f in element.get("facts", [])
            ):
                return "a FactSet's facts need a title and a value"
        for action in card.get("actions", []):
            if action.get("type") == "Action.OpenUrl" and not str(action.get("url", "")).startswith("http"):
                return "Action.OpenUrl needs an http(s) url"
    return None
