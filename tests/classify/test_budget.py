"""The daily spending cap: past it the embedded model answers (degraded) until the next UTC day, with
a settable clock; the spend is read from the store, so it survives a restart and counts every worker."""

import logging
from datetime import UTC, datetime, timedelta

import pytest
from prometheus_client import REGISTRY

from tests.fakes.openai_server import FakeOpenAI
from triage.classify.budget import DailyBudget, classifier_notes
from triage.classify.cascade import AskRule, CascadeClassifier
from triage.classify.categories import load_categories
from triage.classify.embedded import EmbeddedClassifier
from triage.classify.fallback import CircuitBreaker, FallbackClassifier
from triage.classify.llm import LLMClassifier
from triage.message import SupportMessage
from triage.settings import ClassifierSettings, LLMSettings, Price
from triage.store import Store
from triage.store.tables import MessageRow, TriageRow

DOLLAR_A_CALL = {"m": Price(input=0, output=1_000_000)}  # the stand-in counts 1 token per text


@pytest.fixture(scope="module")
def embedded() -> EmbeddedClassifier:
    return EmbeddedClassifier.load(ClassifierSettings())


@pytest.fixture
def server():
    with FakeOpenAI() as fake:
        fake.count_tokens = lambda _text: 1
        yield fake


@pytest.fixture
def store(tmp_path):
    store = Store(f"sqlite:///{tmp_path / 'triage.db'}")
    store.upgrade()
    yield store
    store.close()


class Clock:
    def __init__(self, at: datetime) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at


def cascade(embedded, server: FakeOpenAI, budget: DailyBudget) -> CascadeClassifier:
    settings = LLMSettings(base_url=server.base_url, api_key="k", model="m", prices=DOLLAR_A_CALL)
    guarded = FallbackClassifier(
        LLMClassifier(settings, load_categories(ClassifierSettings())),
        embedded,
        CircuitBreaker(failures=5, cooldown_s=30),
        budget,
    )
    return CascadeClassifier(embedded, guarded, AskRule(ask_below=1.0, category_below=0.0))  # asks always


def stored_cost(store: Store, message_id: str, cost: float, at: datetime) -> None:
    store.save_triaged(
        MessageRow(
            id=message_id,
            conversation_id=message_id,
            raw="{}",
            parsed={},
            kafka_topic="in",
            kafka_partition=0,
            kafka_offset=0,
        ),
        TriageRow(
            message_id=message_id,
            urgency="normal",
            sentiment="neutral",
            category="other",
            language="en",
            summary="s",
            confidence=0.7,
            model="llm:m",
            decided_by="llm",
            cost_usd=cost,
            receivers=[],
            triaged_at=at,
        ),
        [],
    )


def fallbacks(reason: str) -> float:
    return REGISTRY.get_sample_value("triage_classifier_fallbacks_total", {"reason": reason}) or 0.0


def test_the_cap_switches_to_the_embedded_model_and_back_the_next_day(embedded, server, caplog):
    clock = Clock(datetime(2026, 12, 5, 23, 0, tzinfo=UTC))
    budget = DailyBudget(3.0, now=clock)
    classifier = cascade(embedded, server, budget)
    messages = [SupportMessage(id=f"m{i}", body=f"Login fails for our team, attempt {i}") for i in range(8)]
    before = fallbacks("budget")

    with caplog.at_level(logging.WARNING, logger="triage.classify.budget"):
        results = [classifier.classify(message) for message in messages[:6]]
    assert [r.decided_by for r in results] == ["llm"] * 3 + ["embedded"] * 3
    assert [r.degraded for r in results] == [False] * 3 + [True] * 3
    assert len(server.requests) == 3 and budget.spent_today() == 3.0
    assert fallbacks("budget") - before == 3
    said = [r for r in caplog.records if "daily budget reached" in r.getMessage()]
    assert len(said) == 1  # once, not once per message
    assert classifier_notes(classifier) and "daily budget $3.00 reached" in classifier_notes(classifier)[0]
    assert REGISTRY.get_sample_value("triage_llm_spend_today_usd") == 3.0
    assert REGISTRY.get_sample_value("triage_llm_daily_budget_usd") == 3.0

    clock.at += timedelta(hours=1, seconds=1)  # 00:00:01 UTC the next day
    results += [classifier.classify(message) for message in messages[6:]]
    assert [r.decided_by for r in results[6:]] == ["llm", "llm"] and len(server.requests) == 5
    assert classifier_notes(classifier) == [] and budget.spent_today() == 2.0
    assert len(results) == len(messages)  # every message answered: nothing lost


def test_the_spend_is_read_from_the_store_so_it_survives_a_restart_and_counts_every_worker(store):
    now = datetime.now(UTC)
    stored_cost(store, "yesterday", 50.0, now - timedelta(days=1))
    stored_cost(store, "a", 1.5, now)
    stored_cost(store, "b", 2.0, now)  # another worker's
    budget = DailyBudget(4.0, store)  # a worker starting now
    assert budget.spent_today() == 3.5 and budget.allow()
    budget.spend(1.0)  # its own call, not stored yet (the batch writer holds it)
    assert budget.spent_today() == 4.5 and not budget.allow()


def test_own_spend_counts_before_the_store_has_it(store):
    budget = DailyBudget(2.0, store, read_s=0)
    budget.spend(1.0)
    budget.spend(1.0)
    assert not budget.allow()  # two dollars spent though the store has none of it yet
