"""Taking a case acknowledges the PagerDuty alert it raised: the worker on the real broker, the
PagerDuty Events v2 stand-in, the take recorded as a Slack click or a helpdesk assignment records it."""

from __future__ import annotations

import threading

from tests.conftest import message, produce
from tests.fakes.pagerduty_server import FakePagerDuty
from tests.receivers.routed import wait_for
from tests.receivers.test_pagerduty import ROUTING
from triage.oncall import acks
from triage.settings import PagerDutySettings, Settings
from triage.worker import Worker


def test_a_taken_case_acknowledges_its_pagerduty_alert_once(settings: Settings, tmp_path, monkeypatch):
    with FakePagerDuty() as pd:
        monkeypatch.setenv("TEST_PD_ROUTING_KEY", next(iter(pd.routing_keys)))
        routing = tmp_path / "routing.yaml"
        routing.write_text(ROUTING)
        settings.routing_file = routing
        settings.pagerduty = PagerDutySettings(events_url=pd.events_url)
        produce(settings.kafka, [message("pd-1", "URGENT: our whole site is down, outage for all users")])
        worker = Worker.from_settings(settings)
        stop = threading.Event()
        thread = threading.Thread(target=worker.run, kwargs={"until": lambda _: stop.is_set()}, daemon=True)
        thread.start()
        try:
            wait_for(lambda: pd.open_alert("triage/case/pd-1") is not None, "the PagerDuty alert")
            assert acks.take(worker.store, acks.Target(message_id="pd-1"), "ana", "slack")
            assert not acks.take(worker.store, acks.Target(message_id="pd-1"), "ana", "slack")  # once
            wait_for(
                lambda: pd.alerts_for("triage/case/pd-1")[0]["status"] == "acknowledged", "the acknowledge"
            )
        finally:
            stop.set()
            thread.join(timeout=60)
        [alert] = pd.alerts_for("triage/case/pd-1")
        assert [event["event_action"] for event in alert["events"]] == ["trigger", "acknowledge"]
