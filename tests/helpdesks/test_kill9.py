"""`triage run` killed with -9 while it writes to four helpdesks at once (stand-ins answering 429s):
after a restart every ticket has exactly one note from triage, in the helpdesk its message names."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path

from tests.fakes.freshdesk_server import FakeFreshdesk
from tests.fakes.gorgias_server import FakeGorgias
from tests.fakes.kustomer_server import FakeKustomer
from tests.fakes.zendesk_server import FakeZendesk
from tests.helpdesks.conftest import freshdesk_desk, gorgias_desk, kustomer_desk, zendesk_desk
from tests.test_cli import TRIAGE, stored_count, triage_env, wait_for

ROUTING = """
receivers:
  - {name: log, console: {}}
  - {name: desk, helpdesk: {tags: [ai_triaged]}}
route:
  receiver: desk
"""
PER_SYSTEM = 8
SYSTEMS = ("zendesk", "gorgias", "kustomer", "freshdesk")


def messages() -> list[dict]:
    return [
        {
            "id": f"{system}-{n}",
            "conversation_id": f"{system}-conv-{n}",
            "body": "Checkout is down for all of us, orders are lost"
            if n % 2
            else "How do I export invoices?",
            "ticket": {"system": system, "id": 500 + n},
        }
        for system in SYSTEMS
        for n in range(PER_SYSTEM)
    ]


def test_every_ticket_gets_one_write_back_per_system_across_kill_9(kafka_settings, tmp_path: Path):
    routing = tmp_path / "routing.yaml"
    routing.write_text(ROUTING)
    batch = messages()
    source = tmp_path / "messages.jsonl"
    source.write_text("\n".join(json.dumps(m) for m in batch) + "\n")
    database_url = f"sqlite:///{tmp_path / 'store.db'}"
    with (
        FakeZendesk() as zendesk,
        FakeGorgias() as gorgias,
        FakeKustomer() as kustomer,
        FakeFreshdesk() as freshdesk,
    ):
        desks = [
            zendesk_desk(zendesk),
            gorgias_desk(gorgias),
            kustomer_desk(kustomer),
            freshdesk_desk(freshdesk),
        ]
        for desk in desks:
            desk.fake.latency_s = 0.05  # each call takes a moment: the kill lands between calls
            desk.fake.fail_next(429, count=2, retry_after=1)  # a burst at the start
            desk.seed(500 + PER_SYSTEM - 1, 150)  # one ticket's note lands on its second page
        zendesk.rate_limit_per_s = 0.3  # and a steady limit on one of them

        def notes() -> int:
            return sum(
                len(desk.notes(500 + n)) for desk in desks for n in range(PER_SYSTEM) if desk.fake.tickets
            )

        env = triage_env(
            kafka_settings,
            database_url,
            TRIAGE_ROUTING_FILE=str(routing),
            TRIAGE_CLASSIFIER__BACKEND="rules",
            TRIAGE_WORKER__DELIVERY_LEASE_S="3",
            TRIAGE_FEEDBACK__ENABLED="false",
            **zendesk.env(),
            **gorgias.env(),
            **kustomer.env(),
            **freshdesk.env(),
        )
        produced = subprocess.run(
            [*TRIAGE, "produce", str(source)], env=env, capture_output=True, text=True, timeout=120
        )
        assert produced.returncode == 0, produced.stderr

        first = subprocess.Popen([*TRIAGE, "run"], env=env, cwd=tmp_path, stderr=subprocess.DEVNULL)
        try:
            wait_for(lambda: safe(notes) >= 6, 120, "the first notes")
        finally:
            first.send_signal(signal.SIGKILL)
            first.wait()
        assert safe(notes) < len(batch), "the kill came too late to test anything"

        log = (tmp_path / "second.log").open("w")
        second = subprocess.Popen([*TRIAGE, "run"], env=env, cwd=tmp_path, stderr=log)
        try:
            wait_for(lambda: stored_count(database_url) == len(batch), 120, "every message stored")
            wait_for(lambda: safe(notes) >= len(batch), 180, "a note on every ticket")
            time.sleep(4)  # a delivery in doubt is taken over after its 3 s lease: a duplicate would come now
        finally:
            second.send_signal(signal.SIGTERM)
            second.wait(timeout=60)
            log.close()
        assert second.returncode == 0

        for desk in desks:
            for n in range(PER_SYSTEM):
                written = desk.notes(500 + n)
                assert len(written) == 1, f"{desk.system} ticket {500 + n}: {len(written)} notes"
                assert "ai_triaged" in desk.tags(500 + n)
            markers = Counter(
                note.split("[triage delivery ")[1] for n in range(PER_SYSTEM) for note in desk.notes(500 + n)
            )
            assert len(markers) == PER_SYSTEM and max(markers.values()) == 1
            assert getattr(desk.fake, "early_retries", 0) == 0  # no call repeated before its Retry-After
        assert zendesk.rejected_429 > 0


def safe(count) -> int:
    """A count of the stand-ins' state, read while their threads write it."""
    try:
        return count()
    except (KeyError, RuntimeError):
        return 0
