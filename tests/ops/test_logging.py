import io
import json
import logging
import threading

import pytest

from triage.ops.logging import setup_logging, stop_logging


class StalledStream(io.StringIO):
    """A stderr that takes nothing until `flowing` is set, like a pipe nobody reads."""

    def __init__(self) -> None:
        super().__init__()
        self.flowing = threading.Event()

    def write(self, text: str) -> int:
        self.flowing.wait()
        return super().write(text)


def test_a_stalled_stderr_does_not_hold_up_the_threads_that_log(monkeypatch: pytest.MonkeyPatch) -> None:
    stalled = StalledStream()
    monkeypatch.setattr("sys.stderr", stalled)  # here, not in a fixture: pytest resets it between phases
    setup_logging("INFO", json_format=True)
    done = threading.Event()

    def log_from_a_worker_thread() -> None:
        for n in range(3):
            logging.getLogger("triage.pipeline").info("triaged", extra={"message_id": f"m-{n}"})
        done.set()

    try:
        threading.Thread(target=log_from_a_worker_thread, daemon=True).start()
        assert done.wait(5), "logging blocked on the stalled stream"
    finally:
        stalled.flowing.set()
        stop_logging()  # writes what was queued
        logging.getLogger().handlers.clear()
    lines = [json.loads(line) for line in stalled.getvalue().splitlines()]
    assert [line["message_id"] for line in lines] == ["m-0", "m-1", "m-2"]
    assert {line["msg"] for line in lines} == {"triaged"}


def test_the_text_format_keeps_the_ids_the_json_format_has(monkeypatch: pytest.MonkeyPatch) -> None:
    stream = io.StringIO()
    monkeypatch.setattr("sys.stderr", stream)
    setup_logging("INFO", json_format=False)
    try:
        logging.getLogger("triage.pipeline").info(
            "triaged", extra={"message_id": "m-1", "conversation_id": "c-9", "urgency": "high"}
        )
    finally:
        stop_logging()
        logging.getLogger().handlers.clear()
    [line] = stream.getvalue().splitlines()
    assert line.endswith(" info    triage.pipeline: triaged message_id=m-1 conversation_id=c-9 urgency=high")
