"""Write-back to each helpdesk's stand-in through the real HTTP client and the real outbox: priority on
the vendor's scale, tags added (the agent's kept), one internal note found again after a crash on any
page of the ticket's history, 429s waited out, 404/403 failed for good with the reason, a ticket whose
helpdesk is not configured skipped and counted, bad credentials one line per helpdesk."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import select, update

from tests.helpdesks.conftest import URGENT, Desk
from tests.receivers.conftest import claim_one, store_case
from triage.helpdesks.base import HelpdeskConfigError
from triage.receivers.helpdesk import HelpdeskSender, check_all
from triage.receivers.outbox import Outbox
from triage.routing.tree import HelpdeskReceiver
from triage.store.feedback import FeedbackStore
from triage.store.incidents import Incidents
from triage.store.tables import DeliveryRow, ReceiptRow

CONFIG = HelpdeskReceiver(tags=["ai_triaged"])
LEASE = timedelta(seconds=60)


def sender(store, *desks: Desk) -> HelpdeskSender:
    helpdesks = {d.system: d.helpdesk() for d in desks}
    return HelpdeskSender(helpdesks, CONFIG, Incidents(store), FeedbackStore(store))


def stored(store, ticket: int, desk: Desk, **fields) -> DeliveryRow:
    return store_case(store, "desk", ticket={"system": desk.system, "id": ticket}, **fields)


def delivery(store, delivery_id: int) -> DeliveryRow:
    with store.session() as session:
        return session.get(DeliveryRow, delivery_id)


def test_priority_on_its_scale_tags_added_and_one_internal_note(desk, store):
    desk.agent_tag(48211, "vip")  # the agent's own tag, there before triage
    row = stored(store, 48211, desk, urgency="urgent")
    [outcome] = sender(store, desk).send_batch([claim_one(store, "desk")])

    assert outcome.status == "sent"
    assert desk.priority(48211) == URGENT[desk.system]
    assert set(desk.tags(48211)) == {
        "vip",
        "ai_triaged",
        "triage_urgent",
        "sentiment_negative",
        "category_outage",
    }
    [note] = desk.notes(48211)
    assert "Checkout fails for everyone" in note and f"[triage delivery {row.id}]" in note
    assert "Why: urgency >= high" in note
    with store.session() as session:
        [receipt] = session.scalars(select(ReceiptRow)).all()
    assert (receipt.system, receipt.place) == (desk.system, "48211")


@pytest.mark.parametrize("urgency", ["low", "normal", "high"])
def test_each_urgency_has_its_place_on_the_scale(desk, store, urgency):
    stored(store, 5, desk, urgency=urgency)
    sender(store, desk).send_batch([claim_one(store, "desk")])
    scale = {
        "zendesk": {"low": "low", "normal": "normal", "high": "high"},
        "gorgias": {"low": "low", "normal": "normal", "high": "high"},
        "kustomer": {"low": 2, "normal": 3, "high": 4},
        "freshdesk": {"low": 1, "normal": 2, "high": 3},
    }
    assert desk.priority(5) == scale[desk.system][urgency]


def test_a_delivery_in_doubt_finds_its_note_on_a_later_page_and_writes_nothing(desk, store):
    desk.seed(77, 230)  # a long history: triage's note lands on the third page
    stored(store, 77, desk)
    first = sender(store, desk)
    assert first.send_batch([claim_one(store, "desk")])[0].status == "sent"
    with store.session() as session:  # the crash: sent, but the store never heard
        session.execute(update(DeliveryRow).values(status="sending"))
    writes = len(desk.fake.writes()) if hasattr(desk.fake, "writes") else None
    [again] = store.claim_deliveries("desk", "restarted", 1, timedelta(seconds=-1))
    assert again.attempts == 2

    [outcome] = sender(store, desk).send_batch([again])

    assert outcome.detail == "found the note after a retry"
    assert len(desk.notes(77)) == 1
    if writes is not None:
        assert len(desk.fake.writes()) == writes  # not even the priority was set again
    pages = [
        r
        for r in desk.fake.requests
        if r["method"] == "GET"
        and (
            "comments" in r["path"]
            or "notes" in r["path"]
            or "messages" in r["path"]
            or "conversations" in r["path"]
        )
    ]
    assert len(pages) >= 3  # it read on past the first page


def test_a_429_burst_is_waited_out_and_never_repeated_early(desk, store):
    desk.fake.fail_next(429, count=2, retry_after=1)
    stored(store, 9, desk)
    started = time.monotonic()
    [outcome] = sender(store, desk).send_batch([claim_one(store, "desk")])
    assert outcome.status == "sent" and len(desk.notes(9)) == 1
    assert time.monotonic() - started >= 2.0  # both Retry-Afters waited
    if hasattr(desk.fake, "early_retries"):
        assert desk.fake.early_retries == 0


def test_a_long_retry_after_hands_the_delivery_back_until_it_has_passed(desk, store):
    desk.fake.fail_next(429, count=1, retry_after=120)
    row = stored(store, 9, desk)
    outbox = Outbox(store, {"desk": sender(store, desk)}, "lane", LEASE)
    assert outbox.send_once("desk") == 1
    again = delivery(store, row.id)
    assert again.status == "pending" and desk.notes(9) == []
    not_before = again.not_before if again.not_before.tzinfo else again.not_before.replace(tzinfo=UTC)
    assert not_before >= datetime.now(UTC) + timedelta(seconds=100)
    assert outbox.send_once("desk") == 0  # not before the Retry-After


@pytest.mark.parametrize("refusal", ["gone", "forbidden"])
def test_a_ticket_gone_or_forbidden_is_a_failed_delivery_with_its_reason(desk, store, refusal, caplog):
    if refusal == "gone":
        desk.fake.strict_ids = True
    else:
        desk.fake.forbidden.add(31 if desk.system == "zendesk" else "31")
    row = stored(store, 31, desk)
    outbox = Outbox(store, {"desk": sender(store, desk)}, "lane", LEASE)
    assert outbox.send_once("desk") == 1

    failed = delivery(store, row.id)
    code = "404" if refusal == "gone" else "403"
    assert failed.status == "failed" and code in failed.detail and desk.system in failed.detail
    assert code in caplog.text and "for good" in caplog.text
    assert outbox.send_once("desk") == 0  # never tried again
    assert store.count_due("desk") == 0


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_a_ticket_whose_helpdesk_is_not_configured_is_skipped_and_counted(desk, store):
    other = "freshdesk" if desk.system != "freshdesk" else "gorgias"
    before = sample("triage_helpdesk_not_configured_total", system=other)
    store_case(store, "desk", ticket={"system": other, "id": 3})
    [outcome] = sender(store, desk).send_batch([claim_one(store, "desk")])
    assert outcome.status == "skipped"
    assert outcome.detail == f"helpdesk '{other}' is not configured (no TRIAGE_{other.upper()}__BASE_URL)"
    assert sample("triage_helpdesk_not_configured_total", system=other) == before + 1
    assert desk.fake.requests == []


def test_a_message_without_a_system_goes_to_the_only_helpdesk(desk, store):
    store_case(store, "desk", ticket={"id": 12})
    [outcome] = sender(store, desk).send_batch([claim_one(store, "desk")])
    assert outcome.status == "sent" and len(desk.notes(12)) == 1


def test_bad_credentials_stop_the_start_with_one_line_per_helpdesk(desk):
    check_all({desk.system: desk.helpdesk()})  # the right ones pass
    wrong = {name: "wrong" for name in desk.fake.env() if name.endswith(("API_KEY", "API_TOKEN"))}
    with pytest.raises(HelpdeskConfigError) as refused:
        check_all({desk.system: desk.helpdesk(**wrong)})
    [line] = str(refused.value).splitlines()
    assert "rejected TRIAGE_" in line and "(HTTP 401)" in line
