"""Survey answers: the contract's `survey` checked against each scale, mapped, routed, and judged from
the score when there is no comment (never an empty text to the model)."""

from __future__ import annotations

import json

import pytest

from tests.conftest import produce, read_topic
from tests.fakes.openai_server import FakeOpenAI
from triage.classify.survey import judge_survey, sentiment_of
from triage.dlq import CONTENT_CODES
from triage.input.mapping import Mapping
from triage.message import InvalidMessage, Survey, message_from_document
from triage.routing import RoutingError
from triage.routing.tree import parse_routing
from triage.settings import Settings
from triage.store import Store
from triage.store.tables import MessageRow
from triage.worker import Worker


def parse(document: dict) -> object:
    return message_from_document(document, 64 * 1024)


@pytest.mark.parametrize(("survey", "low", "high"), [("csat", 1, 5), ("nps", 0, 10), ("ces", 1, 7)])
def test_each_scale_takes_its_scores_and_no_other(survey: str, low: int, high: int):
    for score in (low, high):
        message = parse({"id": "s", "survey": {"type": survey, "score": score}})
        assert message.survey == Survey(type=survey, score=score) and message.body == ""
    for score in (low - 1, high + 1):
        with pytest.raises(InvalidMessage) as raised:
            parse({"id": "s", "body": "ok", "survey": {"type": survey, "score": score}})
        assert raised.value.code == "invalid_schema" and raised.value.code in CONTENT_CODES
        assert (
            raised.value.detail == f"survey.score: {survey.upper()} scores are {low} to {high}, got {score}"
        )


@pytest.mark.parametrize(
    ("survey", "detail"),
    [
        ({"type": "xps", "score": 3}, "survey.type: Input should be 'csat', 'nps' or 'ces'"),
        ({"type": "nps"}, "survey.score: Field required"),
        (
            {"type": "csat", "score": 4.5},
            "survey.score: Input should be a valid integer, got a number with a fractional part",
        ),
        ({"type": "ces", "score": True}, "survey.score: a score is a whole number, got true"),
    ],
)
def test_a_bad_survey_is_named_alone(survey: dict, detail: str):
    """The empty body is allowed because a survey was given: the survey's problem is the one named."""
    with pytest.raises(InvalidMessage) as raised:
        parse({"id": "s", "body": "", "survey": survey})
    assert raised.value.detail == detail


def test_only_a_survey_answer_may_leave_the_body_empty():
    assert parse({"id": "s", "survey": {"type": "NPS", "score": "9"}}).survey == Survey(type="nps", score=9)
    with pytest.raises(InvalidMessage, match="body: body is empty"):
        parse({"id": "m", "body": "  ", "survey": None})
    with pytest.raises(InvalidMessage, match="body: Field required"):
        parse({"id": "m"})


def test_a_mapping_can_fill_the_survey_and_leave_the_comment_out():
    mapping = Mapping.parse(
        "id: response.id\nbody: response.comment\nsurvey.type: \"'nps'\"\nsurvey.score: response.score\n"
    )
    document = mapping.apply({"response": {"id": "r-1", "score": 4}})
    assert parse(document).survey == Survey(type="nps", score=4)


def test_an_answer_without_a_comment_is_judged_from_its_score():
    assert [sentiment_of(Survey(type="nps", score=s)) for s in (0, 6, 7, 8, 9, 10)] == [
        "negative", "negative", "neutral", "neutral", "positive", "positive"
    ]  # fmt: skip
    assert [sentiment_of(Survey(type="csat", score=s)) for s in range(1, 6)] == [
        "negative", "negative", "neutral", "positive", "positive"
    ]  # fmt: skip
    assert [sentiment_of(Survey(type="ces", score=s)) for s in range(1, 8)] == [
        "negative", "negative", "negative", "neutral", "positive", "positive", "positive"
    ]  # fmt: skip
    judged = judge_survey(Survey(type="nps", score=3), ["billing", "other"])
    assert (judged.urgency, judged.category, judged.summary) == (
        "normal",
        "other",
        "NPS 3 (detractor), no comment",
    )
    assert judge_survey(Survey(type="csat", score=5), ["billing", "refund"]).category == "refund"


ROUTES = """
receivers:
  - name: cx-team
    webhook: {url: 'https://cx.example.com/hook', secret: CX_SECRET}
  - name: helpdesk
    webhook: {url: 'https://helpdesk.example.com/hook', secret: HD_SECRET}
route:
  receiver: helpdesk
  routes:
    - receiver: cx-team
      matchers: ["survey.type = nps", "survey.score <= 6"]
"""


def test_a_route_on_detractors_fires_on_6_and_not_on_7():
    tree = parse_routing(ROUTES)
    assert tree.route({"survey.type": "nps", "survey.score": 6}) == ["cx-team"]
    assert tree.route({"survey.type": "nps", "survey.score": 7}) == ["helpdesk"]
    assert tree.route({"survey.type": "csat", "survey.score": 1}) == ["helpdesk"]
    assert tree.route({"survey": None}) == ["helpdesk"]  # not a survey answer


@pytest.mark.parametrize(
    ("matcher", "problem"),
    [
        ("survey.type = npx", "survey.type is one of csat, nps, ces, not 'npx'; did you mean nps?"),
        ("survey.score = 11", "survey.score is one of 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, not '11'"),
        ("survey.scor <= 6", "unknown field 'survey.scor'; did you mean survey.score?"),
        ("survey.score <= low", "<= compares numbers (or urgency levels), got 'low'"),
    ],
)
def test_survey_matchers_are_checked_like_every_matcher(matcher: str, problem: str):
    with pytest.raises(RoutingError) as raised:
        parse_routing(ROUTES.replace("survey.type = nps", matcher))
    assert problem in str(raised.value)


def test_the_worker_never_sends_an_empty_answer_to_the_model(settings: Settings, database_url: str):
    settings.database_url = database_url
    answers = [
        {"id": "sv-1", "channel": "survey", "customer": {"id": "c-1"}, "survey": {"type": "nps", "score": 2}},
        {"id": "sv-2", "body": "   ", "survey": {"type": "csat", "score": 5}},
        {"id": "sv-3", "body": "Support took a week to answer", "survey": {"type": "ces", "score": 2}},
    ]
    with FakeOpenAI() as llm:
        settings.classifier.backend = "llm"
        settings.llm = settings.llm.model_copy(update={"base_url": llm.base_url, "api_key": "k"})
        produce(settings.kafka, [json.dumps(answer).encode() for answer in answers])
        worker = Worker.from_settings(settings)
        worker.run(until=lambda stats: stats.handled >= 3)
    assert worker.stats.outcomes["processed"] == 3
    assert len(llm.requests) == 1 and "Support took a week" in json.dumps(llm.requests[0])
    results = read_topic(settings.kafka.bootstrap_servers, settings.kafka.results_topic, 3)
    by_id = {json.loads(r.value)["message_id"]: json.loads(r.value) for r in results}
    assert (by_id["sv-1"]["model"], by_id["sv-1"]["sentiment"]) == ("survey-score", "negative")
    assert (by_id["sv-2"]["model"], by_id["sv-2"]["sentiment"]) == ("survey-score", "positive")
    assert by_id["sv-3"]["model"] != "survey-score"
    store = Store(database_url)
    with store.session() as session:
        stored = {row.id: (row.survey_type, row.survey_score) for row in session.query(MessageRow)}
    store.close()
    assert stored == {"sv-1": ("nps", 2), "sv-2": ("csat", 5), "sv-3": ("ces", 2)}
