"""The dedup memory of `triage ingest` on real SQLite and PostgreSQL: claims, their lease, the window."""

from datetime import UTC, datetime, timedelta

from sqlalchemy import insert, select

from triage.store import Store
from triage.store.ingested import IngestedStore
from triage.store.tables import IngestedRow


def dedup(database_url: str, window_s: float = 86_400, lease_s: float = 15) -> IngestedStore:
    store = Store(database_url)
    store.upgrade()
    return IngestedStore(store, window_s, lease_s)


def left_behind(ingested: IngestedStore, message_id: str, claimed_ago_s: float, produced: bool) -> None:
    """A row as an earlier request left it, `claimed_ago_s` seconds ago."""
    at = datetime.now(UTC) - timedelta(seconds=claimed_ago_s)
    with ingested.store.session() as session:
        session.execute(
            insert(IngestedRow).values(
                message_id=message_id, claimed_at=at, produced_at=at if produced else None
            )
        )


def claim(ingested: IngestedStore, message_id: str) -> str:
    return ingested.apply(claims=[message_id])[message_id]


def test_a_claim_is_busy_until_produced_then_a_duplicate(database_url: str):
    ingested = dedup(database_url)
    assert claim(ingested, "m-1") == "claimed"
    assert claim(ingested, "m-1") == "busy"  # another request is producing it
    ingested.apply(produced=["m-1"])
    assert claim(ingested, "m-1") == "duplicate"
    assert claim(ingested, "m-2") == "claimed"
    ingested.apply(released=["m-2"])  # the broker did not acknowledge: the retry may claim at once
    assert claim(ingested, "m-2") == "claimed"


def test_one_batch_marks_before_it_claims_and_claims_an_id_once(database_url: str):
    ingested = dedup(database_url)
    assert ingested.apply(claims=["a", "b", "c"]) == {"a": "claimed", "b": "claimed", "c": "claimed"}
    found = ingested.apply(produced=["a"], released=["b"], claims=["a", "b", "c", "d", "d"])
    assert found == {"a": "duplicate", "b": "claimed", "c": "busy", "d": "claimed"}


def test_a_dead_claim_is_taken_over_after_its_lease_and_an_old_id_after_the_window(database_url: str):
    ingested = dedup(database_url, window_s=3600, lease_s=15)
    left_behind(ingested, "died-recently", claimed_ago_s=5, produced=False)
    left_behind(ingested, "died-long-ago", claimed_ago_s=60, produced=False)
    left_behind(ingested, "produced-today", claimed_ago_s=1800, produced=True)
    left_behind(ingested, "produced-yesterday", claimed_ago_s=7200, produced=True)
    found = ingested.apply(claims=["died-recently", "died-long-ago", "produced-today", "produced-yesterday"])
    assert found == {
        "died-recently": "busy",
        "died-long-ago": "claimed",
        "produced-today": "duplicate",
        "produced-yesterday": "claimed",
    }


def test_purge_forgets_only_what_is_past_the_window_and_a_lease(database_url: str):
    ingested = dedup(database_url, window_s=3600, lease_s=15)
    left_behind(ingested, "old", claimed_ago_s=3700, produced=True)
    left_behind(ingested, "recent", claimed_ago_s=3500, produced=True)
    assert ingested.purge() == 1
    with ingested.store.session() as session:
        assert list(session.scalars(select(IngestedRow.message_id))) == ["recent"]
