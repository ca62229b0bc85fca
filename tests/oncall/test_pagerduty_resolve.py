"""A ticket solved in Zendesk resolves the PagerDuty alert its case raised: the worker on the real
broker reads the Zendesk stand-in's ticket events and sends `resolve` with the case's dedup key to the
PagerDuty Events v2 stand-in; a ticket that is only re-prioritised resolves nothing."""

from __future__ import annotations

import threading
import time

from tests.conftest import message, produce
from tests.fakes.pagerduty_server import FakePagerDuty
from tests.fakes.zendesk_server import FakeZendesk
from tests.receivers.routed import wait_for
from tests.receivers.test_pagerduty import ROUTING
from triage.settings import FeedbackSettings, HelpdeskSettings, PagerDutySettings, Settings
from triage.worker import Worker

OUTAGE = "URGENT: our whole site is down, outage for all users"


def test_solving_the_ticket_resolves_the_case_alert_with_its_dedup_key(
    settings: Settings, tmp_path, monkeypatch
):
    with FakePagerDuty() as pd, FakeZendesk() as zendesk:
        monkeypatch.setenv("TEST_PD_ROUTING_KEY", next(iter(pd.routing_keys)))
        routing = tmp_path / "routing.yaml"
        routing.write_text(ROUTING)
        settings.routing_file = routing
        settings.pagerduty = PagerDutySettings(events_url=pd.events_url)
        settings.helpdesk = HelpdeskSettings(base_url=zendesk.base_url, email=zendesk.email,
            api_token=zendesk.api_token)  # fmt: skip
        settings.feedback = FeedbackSettings(zendesk_poll_s=1)
        ticket = {"system": "zendesk", "id": 48211}
        other = {"system": "zendesk", "id": 48212}
        produce(
            settings.kafka,
            [message("pd-solved", OUTAGE, ticket=ticket), message("pd-open", OUTAGE, ticket=other)],
        )
        worker = Worker.from_settings(settings)
        stop = threading.Event()
        thread = threading.Thread(target=worker.run, kwargs={"until": lambda _: stop.is_set()}, daemon=True)
        thread.start()
        try:
            for case in ("pd-solved", "pd-open"):
                wait_for(lambda case=case: pd.open_alert(f"triage/case/{case}") is not None, "the alerts")
            zendesk.agent_change(48212, agent=7, priority="urgent")  # not solved: resolves nothing
            zendesk.agent_change(48211, agent=7, status="solved")
            zendesk.agent_change(48211, agent=7, status="closed")  # solved, then closed: one resolve
            wait_for(lambda: pd.alerts_for("triage/case/pd-solved")[0]["status"] == "resolved", "the resolve")
            time.sleep(2)  # another read of the events, which must add nothing
        finally:
            stop.set()
            thread.join(timeout=60)
        [solved] = pd.alerts_for("triage/case/pd-solved")
        assert [event["event_action"] for event in solved["events"]] == ["trigger", "resolve"]
        assert {event["dedup_key"] for event in solved["events"]} == {"triage/case/pd-solved"}
        [still_open] = pd.alerts_for("triage/case/pd-open")
        assert still_open["status"] == "triggered"
        assert [event["event_action"] for event in still_open["events"]] == ["trigger"]
