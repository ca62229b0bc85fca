"""E-mail receivers end to end: routed cases through the outbox to a local SMTP server (aiosmtpd)."""

import subprocess

import pytest

from tests.fakes.smtp_server import FakeSMTP
from tests.receivers.routed import crash_after_send, outbox, route_case, statuses, tree_of, wait_for
from tests.test_cli import TRIAGE, triage_env
from triage.receivers.email import EmailConfigError, check_server
from triage.settings import SMTPSettings, load_settings

ROUTING = """
receivers:
  - {name: log, console: {}}
  - {name: mail, email: {to: [oncall@example.com, lead@example.com]}}
route:
  receiver: log
  routes:
    - {matchers: ['urgency >= high'], receiver: mail}
"""
MENTIONS = "<at>CEO</at> @channel <!here> <@U123> <script>alert(1)</script> <a href='https://evil'>x</a>"


@pytest.fixture
def smtp(monkeypatch):
    with FakeSMTP(username="triage", password="s3cret") as fake:
        for name, value in fake.env().items():
            monkeypatch.setenv(name, value)
        yield fake


@pytest.fixture
def settings(smtp, tmp_path, monkeypatch):
    monkeypatch.setenv("TRIAGE_DATABASE_URL", f"sqlite:///{tmp_path / 'x.db'}")
    return load_settings()


def parts(mail) -> tuple[str, str]:
    return mail.get_body(("plain",)).get_content(), mail.get_body(("html",)).get_content()


def test_a_conversation_is_one_thread_in_plain_text_and_html(smtp, settings, store):
    tree = tree_of(ROUTING)
    with outbox(settings, store, tree):
        [first] = route_case(
            store,
            tree,
            "Checkout returns 503 for everyone",
            customer={"name": "Dana", "tier": "enterprise"},
            ticket={"id": 48211, "url": "https://acme.zendesk.com/agent/tickets/48211"},
        )
        wait_for(lambda: len(smtp.messages) == 1, "the first e-mail")
        route_case(store, tree, "Still down, any news?")
        wait_for(lambda: len(smtp.messages) == 2, "the follow-up")
    opening, reply = smtp.messages
    assert smtp.envelopes[0] == ("triage@example.com", ["oncall@example.com", "lead@example.com"])
    assert opening["Subject"] == "[triage] URGENT · outage · Dana (enterprise)"
    assert opening["Message-ID"].startswith(f"<triage.{first.id}.") and opening["In-Reply-To"] is None
    assert reply["In-Reply-To"] == reply["References"] == opening["Message-ID"]
    assert reply["Subject"] == f"Re: {opening['Subject']}"
    text, html = parts(opening)
    assert "Checkout returns 503 for everyone" in text and "Ticket: https://acme.zendesk.com" in text
    assert "Why you got this: urgency >= high (route.routes[0] in the routing file)" in text
    assert '<a href="https://acme.zendesk.com/agent/tickets/48211">Ticket 48211</a>' in html
    assert text.startswith("URGENT · outage") and "Follow-up: URGENT" in parts(reply)[0]


def test_customer_text_is_escaped_and_mentions_no_one(smtp, settings, store):
    tree = tree_of(ROUTING)
    route_case(
        store, tree, f"Help {MENTIONS}", subject=f"Down {MENTIONS}", customer={"name": "<at>Boss</at>"}
    )
    with outbox(settings, store, tree):
        wait_for(lambda: smtp.messages, "the e-mail")
    _, html = parts(smtp.messages[0])
    for live in ("<at>", "<script>", "<a href='https://evil'>", "<!here>", "<@U123>"):
        assert live not in html
    assert "&lt;at&gt;CEO&lt;/at&gt;" in html and "&lt;script&gt;" in html
    assert html.count("<a ") == 0  # no link from customer text


def test_a_resend_after_a_crash_has_the_same_message_id(smtp, settings, store):
    tree = tree_of(ROUTING)
    route_case(store, tree, "Checkout is down")
    with outbox(settings, store, tree):
        wait_for(lambda: statuses(store) == [("mail", "sent", 1)], "the first e-mail")
    crash_after_send(store)
    with outbox(settings, store, tree):
        wait_for(lambda: statuses(store) == [("mail", "sent", 2)], "the resend")
    first, again = smtp.messages
    assert first["Message-ID"] == again["Message-ID"]  # recognisably the same message


def test_a_server_saying_try_later_gets_the_e_mail_once(smtp, settings, store):
    smtp.fail_next(451)
    tree = tree_of(ROUTING)
    route_case(store, tree, "Checkout is down")
    with outbox(settings, store, tree):
        wait_for(lambda: statuses(store) == [("mail", "sent", 2)], "the send after the 451", timeout_s=60)
    assert len(smtp.messages) == 1


def test_a_wrong_password_stops_the_start_with_one_line(smtp):
    env = smtp.env()
    bad = SMTPSettings(host="127.0.0.1", port=smtp.port, username="triage", password="wrong", starttls=False)
    with pytest.raises(EmailConfigError) as error:
        check_server(bad)
    assert str(error.value) == (
        f"the SMTP server at 127.0.0.1:{env['TRIAGE_SMTP__PORT']} rejected TRIAGE_SMTP__USERNAME / "
        "TRIAGE_SMTP__PASSWORD: 535"
    )
    check_server(
        SMTPSettings(host="127.0.0.1", port=smtp.port, username="triage", password="s3cret", starttls=False)
    )


def test_triage_run_with_a_wrong_smtp_password_stops_with_one_line(smtp, kafka_settings, tmp_path):
    routing = tmp_path / "routing.yaml"
    routing.write_text(ROUTING)
    env = triage_env(
        kafka_settings,
        f"sqlite:///{tmp_path / 'store.db'}",
        TRIAGE_ROUTING_FILE=str(routing),
        TRIAGE_LOG__FORMAT="text",  # the start-up error as a person at a terminal reads it
        **{**smtp.env(), "TRIAGE_SMTP__PASSWORD": "wrong"},
    )
    run = subprocess.run([*TRIAGE, "run"], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=180)
    assert run.returncode == 2
    assert run.stderr.strip().splitlines()[-1] == (
        f"error: the SMTP server at 127.0.0.1:{smtp.port} rejected TRIAGE_SMTP__USERNAME / "
        "TRIAGE_SMTP__PASSWORD: 535"
    )
