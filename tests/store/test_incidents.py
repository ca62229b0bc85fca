"""Incident membership in the store, on SQLite and PostgreSQL: every case in exactly one incident, even
when several lanes (or workers) assign cases of one group at the same moment."""

import threading
from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update

from triage.store import Store
from triage.store.incidents import Incidents, aware
from triage.store.tables import DeliveryRow, IncidentRow, MessageRow, TriageRow

KEY = 'route.routes[1] {"category": "outage"}'
LEASE = timedelta(seconds=60)


def grouped(store: Store, n: int, urgency: str = "high", wait_s: float = 10, idle_s: float = 600, **group):
    """A stored case whose delivery to oncall is grouped by the route, as the pipeline writes it."""
    message_id = f"m{n}"
    payload = {
        "message_id": message_id,
        "conversation_id": f"c{n}",
        "urgency": urgency,
        "category": "outage",
        "customer_id": f"cust-{n}",
        "group": {
            "wait_s": wait_s,
            "interval_s": 60,
            "idle_s": idle_s,
            "similarity": 0.3,
            "mode": "alert",
            **group,
        },
    }
    store.save_triaged(
        MessageRow(
            id=message_id, conversation_id=f"c{n}", raw="{}", parsed={}, kafka_topic="in", kafka_partition=0,
            kafka_offset=n,
        ),
        TriageRow(
            message_id=message_id, urgency=urgency, sentiment="negative", category="outage", language="en",
            summary="s", confidence=0.9, model="test", receivers=["oncall"],
        ),
        [DeliveryRow(message_id=message_id, conversation_id=f"c{n}", receiver="oncall", payload=payload,
                     group_key=KEY)],
    )  # fmt: skip


def claim_and_assign(store: Store, claimer: str) -> list[str]:
    incidents = Incidents(store)
    return [incidents.assign(row) for row in store.claim_deliveries("oncall", claimer, 1, LEASE)]


def statuses(store: Store) -> list[tuple[str, str, int | None, int | None]]:
    with store.session() as session:
        rows = session.execute(
            select(
                DeliveryRow.message_id, DeliveryRow.status, DeliveryRow.incident_id, DeliveryRow.incident_seq
            ).order_by(DeliveryRow.id)
        )
        return [tuple(row) for row in rows]


def test_the_first_case_holds_the_alert_and_later_ones_join(database_url):
    store = Store(database_url)
    store.upgrade()
    for n in range(3):
        grouped(store, n)
    assert claim_and_assign(store, "lane") == ["held"]  # back in the queue for group_wait
    assert claim_and_assign(store, "lane") == ["grouped"]
    assert claim_and_assign(store, "lane") == ["grouped"]
    assert statuses(store) == [("m0", "pending", 1, 1), ("m1", "grouped", 1, 2), ("m2", "grouped", 1, 3)]
    with store.session() as session:
        [incident] = session.scalars(select(IncidentRow)).all()
        assert (incident.case_count, incident.top_urgency, incident.opener_id) == (3, "high", 1)
        held = session.get(DeliveryRow, 1)  # the alert: due group_wait after its case, not a try
        assert held.attempts == 0 and held.not_before is not None
    assert store.claim_deliveries("oncall", "lane", 1, LEASE) == []  # not due yet


def test_group_wait_runs_from_the_arrival_at_the_broker(database_url):
    """A case that waited in Kafka while no worker ran (a restart after kill -9) is held only for a
    moment, to gather the backlog read with it, not for group_wait again."""
    store = Store(database_url)
    store.upgrade()
    long_ago = (datetime.now(UTC) - timedelta(seconds=12)).isoformat()
    grouped(store, 0, wait_s=10, idle_s=0, arrived_at=long_ago)  # idle_s=0: its incident closes at once
    grouped(store, 1, wait_s=10, arrived_at=datetime.now(UTC).isoformat())
    assert claim_and_assign(store, "lane") == ["held"]
    assert claim_and_assign(store, "lane") == ["held"]
    with store.session() as session:
        waited, fresh = (session.get(DeliveryRow, n).not_before for n in (1, 2))
    now = datetime.now(UTC)
    assert aware(waited) - now < timedelta(seconds=3)  # 2 s after it was stored
    assert aware(fresh) - now > timedelta(seconds=8)  # group_wait after its arrival


def test_a_more_urgent_case_is_an_escalation_once_the_alert_is_out(database_url):
    store = Store(database_url)
    store.upgrade()
    grouped(store, 0, wait_s=0)
    assert claim_and_assign(store, "lane") == ["send"]  # no group_wait: the alert goes at once
    incidents = Incidents(store)
    incidents.begin_alert(1)
    incidents.alert_posted(1, "#c", "1.0", counted=1)
    grouped(store, 1, urgency="urgent")
    grouped(store, 2, urgency="urgent")
    assert claim_and_assign(store, "lane") == ["send"]  # more urgent than anything posted: escalation
    assert claim_and_assign(store, "lane") == ["grouped"]  # urgent was posted by then
    incident = incidents.get(1)
    assert (incident.alerted_urgency, incident.top_urgency, incident.case_count) == ("urgent", "urgent", 3)
    assert incident.next_update_at is not None  # the grouped case will be counted by an update


def test_an_idle_incident_is_closed_and_the_next_case_opens_another(database_url):
    store = Store(database_url)
    store.upgrade()
    grouped(store, 0, idle_s=60)
    claim_and_assign(store, "lane")
    with store.session() as session:
        session.execute(update(IncidentRow).values(closes_at=datetime.now(UTC) - timedelta(seconds=1)))
    grouped(store, 1, idle_s=60)
    assert claim_and_assign(store, "lane") == ["held"]
    assert [row[2] for row in statuses(store)] == [1, 2]


def test_similar_cases_join_the_closest_incident_and_others_open_their_own(database_url):
    store = Store(database_url)
    store.upgrade()
    for n, vector in enumerate(([1.0, 0.0], [0.0, 1.0], [0.9, 0.436], [0.2, 0.98])):
        grouped(store, n, vector=vector, similarity=0.8)
    for _ in range(4):
        claim_and_assign(store, "lane")
    assert [row[2] for row in statuses(store)] == [1, 2, 1, 2]


def test_lanes_assigning_one_group_at_once_make_one_incident(database_url):
    store = Store(database_url)
    store.upgrade()
    for n in range(24):
        grouped(store, n)
    results: list[str] = []

    def lane(name: str) -> None:
        while got := claim_and_assign(store, name):
            results.extend(got)

    threads = [threading.Thread(target=lane, args=(f"lane-{i}",)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(results) == ["grouped"] * 23 + ["held"]
    rows = statuses(store)
    assert {row[2] for row in rows} == {1}
    assert sorted(row[3] for row in rows) == list(range(1, 25))  # each case numbered once
    assert Incidents(store).get(1).case_count == 24
