"""The cascade in the worker, on the real broker: `model` and `decided_by` on the results topic and in
the store, and the daily cap crossed mid-stream with nothing lost."""

import json

from tests.conftest import message, produce, read_topic
from tests.fakes.openai_server import FakeOpenAI
from triage.settings import Price, Settings
from triage.store import Store
from triage.worker import Worker

URGENT = [
    f"Production is down for all our customers, checkout returns 500 errors (site {i})" for i in range(5)
]
ORDINARY = ["Thanks a lot, the problem is fixed now. Great support!", "Love the new dashboard, keep it up."]


def test_the_cascade_records_who_decided_and_the_cap_stops_the_llm_mid_stream(settings: Settings):
    with FakeOpenAI() as llm:
        llm.count_tokens = lambda _text: 1  # with this price: one dollar a call
        llm.answer_json.update(urgency="urgent", category="outage")
        settings.classifier.backend = "cascade"
        settings.worker.concurrency = 1
        settings.llm = settings.llm.model_copy(
            update={
                "base_url": llm.base_url,
                "api_key": "k",
                "model": "m",
                "prices": {"m": Price(input=0, output=1_000_000)},
                "daily_budget_usd": 2.0,
            }
        )
        ids = [f"c-{i}" for i in range(len(URGENT) + len(ORDINARY))]
        produce(settings.kafka, [message(i, body) for i, body in zip(ids, URGENT + ORDINARY, strict=True)])
        worker = Worker.from_settings(settings)
        stats = worker.run(until=lambda s: s.handled >= len(ids))
        notes = worker.readiness().notes()
    assert stats.handled == len(ids)
    records = {
        r["message_id"]: r
        for r in map(
            json.loads,
            (
                x.value
                for x in read_topic(settings.kafka.bootstrap_servers, settings.kafka.results_topic, len(ids))
            ),
        )
    }
    assert set(records) == set(ids)  # nothing lost
    urgent = [records[i] for i in ids[: len(URGENT)]]
    assert len(llm.requests) == 2  # the budget allowed two one-dollar calls
    assert sorted((r["decided_by"], r["model"], r["degraded"]) for r in urgent) == sorted(
        [("llm", "llm:m", False)] * 2 + [("embedded", "embedded:e5-small", True)] * 3
    )
    for i in ids[len(URGENT) :]:  # never asked: the embedded answer, not degraded
        assert (records[i]["decided_by"], records[i]["degraded"]) == ("embedded", False)
    store = Store(settings.database_url)
    stored = {row.id: result.decided_by for row, result in store.results(ids)}
    assert stored == {r["message_id"]: r["decided_by"] for r in records.values()}
    assert any("daily budget $2.00 reached" in note for note in notes)
