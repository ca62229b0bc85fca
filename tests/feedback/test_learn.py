"""Learning from the store: `triage train --from-store` fits heads on the team's labels only, `triage eval
--from-store` scores them on the latest labels (a time split) beside the shipped model, and
TRIAGE_CLASSIFIER__MODEL_DIR serves them. The seeded team has its own idea of urgency: its sandbox is
no emergency, a wrong invoice before month-end close is."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from triage.classify.embedded import EmbeddedClassifier, Head
from triage.feedback.learn import labelled
from triage.message import SupportMessage
from triage.settings import ClassifierSettings
from triage.store import Store
from triage.store.feedback import Correction, FeedbackStore
from triage.store.tables import LabelRow, MessageRow, TriageRow

SANDBOX = [  # the shipped model pages for these; the team calls them normal
    "Our {env} is down again, the test API returns {code} since {when}.",
    "The {env} is not loading, every test checkout fails with error {code}.",
    "Since {when} our {env} answers {code} to all requests, can you look at it?",
    "{env} unreachable {when}: webhooks to it fail with {code}.",
]
INVOICE = [  # the shipped model calls these normal; before the month-end close the team needs them now
    "Please put our new company address, {street}, on invoice {number}.",
    "Invoice {number} shows the wrong purchase order number, it must be PO-{po}.",
    "Could you reissue invoice {number} with our company name {company} instead of my name?",
    "Our accountant needs invoice {number} with the VAT id {vat}, please send a corrected copy.",
]
HOW_TO = [  # both say normal
    "How do I {task} in the dashboard?",
    "Where can I {task}? I could not find it in the help center.",
]
FILL = {
    "env": ["sandbox", "staging shop", "test store", "dev environment", "staging API"],
    "code": ["502", "503", "500", "504"],
    "when": ["this morning", "an hour ago", "yesterday evening", "9:00", "the last deploy"],
    "street": [
        "Hauptstrasse 5, Berlin",
        "12 Rue de Rivoli, Paris",
        "Calle Mayor 3, Madrid",
        "1 High St, Leeds",
    ],
    "number": ["INV-1042", "INV-2210", "INV-3307", "INV-4781", "INV-5120"],
    "po": ["7781", "1203", "5540", "9031"],
    "company": ["Acme GmbH", "Nordlicht AG", "Blue Fern Ltd", "Casa Verde SL"],
    "vat": ["DE812345678", "FR40303265045", "ESB12345674", "GB123456789"],
    "task": ["export orders as CSV", "change my password", "add a team member", "set up a discount code"],
}
START = datetime.now(UTC).replace(microsecond=0) - timedelta(days=30)  # labels within the default --since


def fill(template: str, rng: random.Random) -> str:
    return template.format(**{key: rng.choice(values) for key, values in FILL.items()})


def seeded_cases(per_group: int = 24, seed: int = 7) -> list[tuple[str, str, str]]:
    """(text, the model's urgency, the team's urgency), in the order the team labelled them."""
    rng = random.Random(seed)
    groups = [(SANDBOX, "urgent", "normal"), (INVOICE, "normal", "urgent"), (HOW_TO, "normal", "normal")]
    cases = [
        (fill(rng.choice(templates), rng), model, team)
        for templates, model, team in groups
        for _ in range(per_group)
    ]
    rng.shuffle(cases)
    return cases


def seed(store: Store, cases: list[tuple[str, str, str]], model_labels: bool = False) -> None:
    """Messages as the worker stores them, and a label for each; with `model_labels` the labels only
    repeat the model (a store of confirmations, which teaches a head nothing new)."""
    for index, (text, model, team) in enumerate(cases):
        message = SupportMessage(id=f"m{index}", body=text)
        at = START + timedelta(hours=index * 5)
        assert store.save_triaged(
            MessageRow(
                id=message.id,
                conversation_id=message.id,
                raw="{}",
                parsed=message.model_dump(mode="json"),
                kafka_topic="in",
                kafka_partition=0,
                kafka_offset=index,
                received_at=at,
            ),
            TriageRow(
                message_id=message.id,
                urgency=model,
                sentiment="neutral",
                category="other",
                language="en",
                summary=text[:80],
                confidence=0.8,
                model="embedded:e5-small",
                receivers=[],
                triaged_at=at,
            ),
            [],
        )
        FeedbackStore(store).save(
            [
                Correction(
                    [
                        LabelRow(
                            message_id=message.id,
                            field="urgency",
                            model_value=model,
                            team_value=model if model_labels else team,
                            source="slack",
                            person_id="U0ANA",
                            person_name="ana",
                            event_key=f"slack:{index}:U0ANA:urgency",
                            labelled_at=at + timedelta(minutes=10),
                        )
                    ]
                )
            ]
        )


def triage_cli(*args: str, cwd: Path, database: str) -> subprocess.CompletedProcess:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("TRIAGE_")}
    environment["TRIAGE_DATABASE_URL"] = database
    return subprocess.run(
        [sys.executable, "-m", "triage", *args],
        cwd=cwd,
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture
def team(tmp_path: Path) -> str:
    """A store whose team labelled 72 messages, 48 of them against the model."""
    url = f"sqlite:///{tmp_path / 'store.db'}"
    store = Store(url)
    store.upgrade()
    seed(store, seeded_cases())
    store.close()
    return url


def test_a_head_trained_on_earlier_labels_beats_the_shipped_one_on_the_latest(team: str, tmp_path: Path):
    done = triage_cli("eval", "--from-store", "--json", cwd=tmp_path, database=team)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["agreement"]["urgency"] == {"labels": 72, "agreed": 24, "agreement": 0.3333}
    assert report["agreement"]["category"] == {"labels": 0, "agreed": 0, "agreement": None}
    scored = report["held_out"]["urgency"]
    assert (scored["trained_on"], scored["held_out"]) == (58, 14)
    assert scored["current"]["model"] == "embedded:e5-small"
    assert scored["trained"]["urgent_f1"] > scored["current"]["urgent_f1"] + 0.3
    assert scored["trained"]["urgent_f1"] >= 0.9
    # the tasks nobody labelled are named, not scored
    assert report["held_out"]["sentiment"] == {"skipped": "0 sentiment labels: none left to hold out"}
    assert report["held_out"]["category"] == {"skipped": "0 category labels: none left to hold out"}


def test_train_from_store_writes_heads_that_model_dir_serves(team: str, tmp_path: Path):
    done = triage_cli(
        "train", "--from-store", "--task", "urgency", "--out", "heads", cwd=tmp_path, database=team
    )
    assert done.returncode == 0, done.stderr
    assert "72 messages labelled since" in done.stdout and "(48 normal, 24 urgent)" in done.stdout
    assert Head.load(tmp_path / "heads" / "urgency.npz").classes == ["not_urgent", "urgent"]
    sandbox = "The staging API has answered 503 since this morning, webhooks to it fail."
    invoice = "Please send invoice INV-9001 again with our company name Rheinwerk GmbH on it."
    served = {
        (heads, text): classifier.classify(SupportMessage(id="x", body=text)).urgency
        for heads, classifier in (
            (None, EmbeddedClassifier.load(ClassifierSettings())),
            ("heads", EmbeddedClassifier.load(ClassifierSettings(model_dir=tmp_path / "heads"))),
        )
        for text in (sandbox, invoice)
    }
    assert served[None, sandbox] in ("high", "urgent") and served[None, invoice] in ("low", "normal")
    assert served["heads", sandbox] in ("low", "normal") and served["heads", invoice] in ("high", "urgent")


def test_the_models_own_judgements_are_never_ground_truth(tmp_path: Path):
    url = f"sqlite:///{tmp_path / 'store.db'}"
    store = Store(url)
    store.upgrade()
    seed(store, seeded_cases())
    with store.session() as session:  # the same 72 judged messages, but nobody labelled them
        session.query(LabelRow).delete()
    store.close()
    done = triage_cli(
        "train", "--from-store", "--task", "urgency", "--out", "heads", cwd=tmp_path, database=url
    )
    assert done.returncode == 2 and not (tmp_path / "heads").exists()
    assert done.stderr.startswith("error: not enough labels in the store since")
    assert "0 urgency labels" in done.stderr


def test_since_leaves_older_labels_out(team: str):
    store = Store(team)
    assert len(labelled(store, "urgency", START + timedelta(days=10))) == 72 - 48  # 5 h apart: 48 in 10 days
    store.close()


def test_category_heads_learned_from_the_team_are_served(tmp_path: Path):
    url = f"sqlite:///{tmp_path / 'store.db'}"
    store = Store(url)
    store.upgrade()
    cases = seeded_cases(per_group=12)
    seed(store, cases)
    moved = {"normal": "bug", "urgent": "billing"}  # sandbox errors are bugs, invoices billing
    with store.session() as session:
        for index, (_, model, team) in enumerate(cases):
            category = "how_to" if (model, team) == ("normal", "normal") else moved[team]
            session.add(
                LabelRow(
                    message_id=f"m{index}",
                    field="category",
                    model_value="other",
                    team_value=category,
                    source="zendesk",
                    person_id="7",
                    event_key=f"zendesk:{index}:category",
                    labelled_at=START + timedelta(hours=index * 5, minutes=20),
                )
            )
    store.close()
    done = triage_cli(
        "train", "--from-store", "--task", "category", "--out", "heads", cwd=tmp_path, database=url
    )
    assert done.returncode == 0, done.stderr
    assert sorted(Head.load(tmp_path / "heads" / "category.npz").classes) == ["billing", "bug", "how_to"]
    sandbox = "Our dev environment returns 502 for every request since the last deploy."
    message = SupportMessage(id="x", body=sandbox)
    assert EmbeddedClassifier.load(ClassifierSettings()).classify(message).category == "outage"
    served = EmbeddedClassifier.load(ClassifierSettings(model_dir=tmp_path / "heads"))
    assert served.classify(message).category == "bug"


def test_eval_and_the_report_count_the_same_corrections(tmp_path: Path):
    """`high` for the model's `urgent` is a correction, though both are the class the head learns."""
    url = f"sqlite:///{tmp_path / 'store.db'}"
    store = Store(url)
    store.upgrade()
    cases = [(f"Sandbox webhooks fail for team {i}", "urgent", "high") for i in range(6)]
    cases += [(f"How do I export invoice {i} as CSV?", "normal", "normal") for i in range(4)]
    seed(store, cases)
    store.close()

    evaluated = triage_cli("eval", "--from-store", "--json", cwd=tmp_path, database=url)
    assert evaluated.returncode == 0, evaluated.stderr
    agreed = json.loads(evaluated.stdout)["agreement"]["urgency"]
    assert agreed == {"labels": 10, "agreed": 4, "agreement": 0.4}
    reported = triage_cli("report", "--format", "json", "--since", "30d", cwd=tmp_path, database=url)
    assert reported.returncode == 0, reported.stderr
    urgency = json.loads(reported.stdout)["model_vs_team"]["fields"]["urgency"]
    assert (urgency["labels"], urgency["corrections"], urgency["agreement"]) == (10, 6, 0.4)
