"""The four helpdesk stand-ins, each with what a test reads back from its state: a ticket's priority on
the vendor's scale, its tag names, and triage's notes on it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests.fakes.freshdesk_server import FakeFreshdesk
from tests.fakes.gorgias_server import FakeGorgias
from tests.fakes.helpdesk_base import FakeHelpdesk
from tests.fakes.kustomer_server import FakeKustomer
from tests.fakes.zendesk_server import FakeZendesk
from triage.helpdesks import configured
from triage.helpdesks.base import Helpdesk
from triage.settings import Settings
from triage.store import Store

SYSTEMS = ("zendesk", "gorgias", "kustomer", "freshdesk")
# what triage's `urgent` is on each scale
URGENT = {"zendesk": "urgent", "gorgias": "critical", "kustomer": 5, "freshdesk": 4}


@dataclass
class Desk:
    """A stand-in and how a test reads its state."""

    system: str
    fake: FakeHelpdesk | FakeZendesk
    priority: Callable[[Any], Any]
    tags: Callable[[Any], list[str]]
    notes: Callable[[Any], list[str]]  # the text of triage's notes (internal/private) on a ticket
    seed: Callable[[Any, int], None]  # a long history: that many earlier messages/notes
    agent_tag: Callable[[Any, str], None]  # an agent's tag, there before triage writes

    def helpdesk(self, **env: str) -> Helpdesk:
        return configured(settings_for(self.fake.env() | env))[self.system]


def settings_for(env: dict[str, str]) -> Settings:
    """Settings from TRIAGE_* variables, as a worker reads them."""
    sections: dict[str, dict[str, str]] = {}
    for name, value in env.items():
        section, field = name.removeprefix("TRIAGE_").lower().split("__")
        sections.setdefault(section, {})[field] = value
    return Settings(**sections)  # type: ignore[arg-type]


def zendesk_desk(fake: FakeZendesk) -> Desk:
    def tag(ticket: Any, name: str) -> None:
        fake.agent_change(int(ticket), add_tags=(name,))

    return Desk(
        "zendesk",
        fake,
        lambda t: fake.tickets[int(t)]["priority"],
        lambda t: fake.tickets[int(t)]["tags"],
        lambda t: [c["body"] for c in fake.comments.get(int(t), []) if c["public"] is False],
        fake.seed_comments,
        tag,
    )


def gorgias_desk(fake: FakeGorgias) -> Desk:
    return Desk(
        "gorgias",
        fake,
        lambda t: fake.tickets[str(t)]["priority"],
        fake.tag_names,
        lambda t: [m["body_text"] for m in fake.internal_notes(t)],
        fake.seed_messages,
        lambda t, name: fake.agent_change(int(t), add_tags=(name,)),
    )


def kustomer_desk(fake: FakeKustomer) -> Desk:
    def seed(ticket: Any, count: int) -> None:
        fake.seed_notes(str(ticket), count)

    def tag(ticket: Any, name: str) -> None:
        with fake._lock:
            fake.ticket(str(ticket))
            fake._append_tags(fake.tickets[str(ticket)], [name], by="agent-7")

    return Desk(
        "kustomer",
        fake,
        fake.priority,
        fake.tag_names,
        lambda t: [n["attributes"]["body"] for n in fake.notes.get(str(t), []) if n["id"].startswith("note")],
        seed,
        tag,
    )


def freshdesk_desk(fake: FakeFreshdesk) -> Desk:
    return Desk(
        "freshdesk",
        fake,
        lambda t: fake.tickets[str(t)]["priority"],
        lambda t: fake.tickets[str(t)]["tags"],
        lambda t: [n["body_text"] for n in fake.notes.get(str(t), []) if n.get("user_id") and n["private"]],
        fake.seed_conversations,
        lambda t, name: fake.agent_change(int(t), add_tags=(name,)),
    )


MAKERS = {
    "zendesk": (FakeZendesk, zendesk_desk),
    "gorgias": (FakeGorgias, gorgias_desk),
    "kustomer": (FakeKustomer, kustomer_desk),
    "freshdesk": (FakeFreshdesk, freshdesk_desk),
}


@pytest.fixture(params=SYSTEMS)
def desk(request: pytest.FixtureRequest) -> Iterator[Desk]:
    fake_type, make = MAKERS[request.param]
    with fake_type() as fake:
        yield make(fake)


@pytest.fixture
def store(tmp_path) -> Store:
    store = Store(f"sqlite:///{tmp_path / 'store.db'}")
    store.upgrade()
    return store
