"""Logs: one JSON object per line for machines (a container, a pipe, a file), readable text for a
person at a terminal; TRIAGE_LOG__FORMAT decides when set. Both carry the message and conversation ids
when there are some.

Message text never goes into a log record at info level; pass ids through `extra=`.

Records are formatted by the thread that logs them and written by one listener thread, so a slow
stderr (a full pipe, a stalled log shipper) never holds up the threads that classify and store.
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import queue
import sys
from datetime import UTC, datetime
from logging.handlers import QueueHandler, QueueListener

CONTEXT_FIELDS = ("message_id", "conversation_id", "urgency", "receivers", "receiver", "partition", "offset")


class JSONFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        entry.update({name: getattr(record, name) for name in CONTEXT_FIELDS if hasattr(record, name)})
        if record.exc_info:
            entry["error"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    """`2026-12-05 09:31:02 info    triage.pipeline: triaged message_id=m-1 urgency=high`."""

    def format(self, record: logging.LogRecord) -> str:
        when = datetime.fromtimestamp(record.created).strftime("%Y-%m-%d %H:%M:%S")
        context = "".join(
            f" {name}={getattr(record, name)}" for name in CONTEXT_FIELDS if hasattr(record, name)
        )
        line = f"{when} {record.levelname.lower():<7} {record.name}: {record.getMessage()}{context}"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


def wants_json(setting: str | None) -> bool:
    """The log's format: the setting (TRIAGE_LOG__FORMAT) when set; else JSON unless standard error is
    a terminal, where a person reads it."""
    if setting in ("json", "text"):
        return setting == "json"
    return not sys.stderr.isatty()


def error_line(text: str) -> str:
    """The one line the worker writes when it cannot start, in the log's format: a JSON record among
    JSON records, `error: ...` for a person. Before the settings are loaded (or when they are what
    failed), the format is read from the environment."""
    as_json = _json_chosen
    if as_json is None:
        as_json = wants_json(os.environ.get("TRIAGE_LOG__FORMAT", "").strip().lower())
    if not as_json:
        return f"error: {text}"
    record = logging.LogRecord("triage", logging.ERROR, __file__, 0, text, None, None)
    return JSONFormatter().format(record)


_listener: QueueListener | None = None
_json_chosen: bool | None = None  # the worker's format, once setup_logging has chosen it


class BriefFormatter(logging.Formatter):
    """For commands a person runs: `connecting to ...`, `warning: ...`, `error: ...`."""

    def format(self, record: logging.LogRecord) -> str:
        text = record.getMessage()
        return text if record.levelno < logging.WARNING else f"{record.levelname.lower()}: {text}"


# What a person running `triage demo` or `triage produce` is told besides warnings: the waits.
BRIEF_INFO_LOGGERS = ("triage.kafka",)


def setup_logging(level: str = "INFO", json_format: bool = True, brief: bool = False) -> None:
    """JSON lines (or timestamped text) for the worker; `brief`: warnings and the lines of
    BRIEF_INFO_LOGGERS, as plain sentences, for commands a person runs at a terminal."""
    global _listener, _json_chosen
    stop_logging()
    _json_chosen = None if brief else json_format
    records: queue.SimpleQueue[logging.LogRecord] = queue.SimpleQueue()
    handler = QueueHandler(records)  # formats in the logging thread; the listener writes the line
    if brief:
        handler.setFormatter(BriefFormatter())
    elif json_format:
        handler.setFormatter(JSONFormatter())
    else:
        handler.setFormatter(TextFormatter())
    _listener = QueueListener(records, logging.StreamHandler(sys.stderr))
    _listener.start()
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel("WARNING" if brief else level.upper())
    for name in BRIEF_INFO_LOGGERS:
        logging.getLogger(name).setLevel(logging.INFO if brief else logging.NOTSET)
    # Libraries that log every request or step at info: only their warnings are worth a line.
    # (kafka-python's connection chatter is handled in triage/kafka.py.)
    for noisy in ("alembic", "httpx", "httpx2", "httpcore", "openai"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))


@atexit.register
def stop_logging() -> None:
    """Write what is queued and stop the listener thread."""
    global _listener
    if _listener is not None:
        _listener.stop()
        _listener = None
