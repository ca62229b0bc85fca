"""E-mail alerts through SMTP: plain text plus HTML, one thread per conversation.

- The server is `TRIAGE_SMTP__*` (host, port, STARTTLS, login, From); the routing file only names the
  recipients. At start the worker connects, says EHLO, upgrades with STARTTLS and logs in, so a wrong
  host or password stops it with one line.
- One thread per conversation and receiver: the conversation's first alert opens it, every later one
  has `In-Reply-To` and `References` naming the first one's Message-ID and `Re:` its subject.
- Message-IDs come from the delivery (its id, with a digest of its message id and receiver), never
  from the attempt: a delivery in doubt after a crash (sent, not yet marked) is sent again with the
  same Message-ID, which mail clients and archives recognise as the same message.
- Customer text is HTML-escaped in the HTML part (no markup, no links from it); links come only from
  the ticket or source URL (http(s)). E-mail has no mentions to trigger. PII is masked upstream.
- A 4xx answer or a dropped connection goes back to the outbox (its back-off); a 5xx refusal of the
  message or its recipients is skipped with the server's reason.
"""

from __future__ import annotations

import hashlib
import html
import smtplib
import ssl
from collections.abc import Sequence
from email.message import EmailMessage
from email.utils import formatdate
from typing import Any

from sqlalchemy import select

from triage.receivers.base import DeliveryFailed, Outcome
from triage.receivers.layout import Alert, case_alert, headline
from triage.settings import SMTPSettings
from triage.store import Store
from triage.store.tables import DeliveryRow

TIMEOUT_S = 15.0


class EmailConfigError(Exception):
    """The SMTP server cannot be used as configured (unreachable, TLS, login); raised at start."""


def connect(settings: SMTPSettings) -> smtplib.SMTP:
    smtp = smtplib.SMTP(settings.host, settings.port, timeout=TIMEOUT_S)
    try:
        smtp.ehlo()
        if settings.starttls:
            smtp.starttls(context=ssl.create_default_context())
            smtp.ehlo()
        if settings.username:
            smtp.login(settings.username, settings.password)
    except BaseException:
        smtp.close()
        raise
    return smtp


def check_server(settings: SMTPSettings) -> None:
    """Connect, STARTTLS and log in, so a bad host or password stops the worker at start with one line."""
    where = f"the SMTP server at {settings.host}:{settings.port}"
    try:
        connect(settings).quit()
    except smtplib.SMTPAuthenticationError as error:
        raise EmailConfigError(
            f"{where} rejected TRIAGE_SMTP__USERNAME / TRIAGE_SMTP__PASSWORD: {error.smtp_code}"
        ) from None
    except smtplib.SMTPNotSupportedError as error:
        raise EmailConfigError(f"{where}: {error} (TRIAGE_SMTP__STARTTLS=false if it has no TLS)") from None
    except (smtplib.SMTPException, OSError) as error:
        raise EmailConfigError(f"cannot use {where}: {type(error).__name__}: {error}") from None


def message_id(delivery_id: int, message: str, receiver: str, sender: str) -> str:
    """`<triage.42.1f2e3d4c5b6a@example.com>`: the same for a delivery whatever its attempt."""
    digest = hashlib.sha256(f"{message}\n{receiver}".encode()).hexdigest()[:12]
    domain = sender.rpartition("@")[2] or "triage.local"
    return f"<triage.{delivery_id}.{digest}@{domain}>"


def compose(
    alert: Alert,
    delivery: DeliveryRow,
    to: Sequence[str],
    sender: str,
    thread: tuple[str, str] | None,
) -> EmailMessage:
    """The e-mail of one alert; `thread`: (Message-ID, subject) of the conversation's first alert."""
    mail = EmailMessage()
    mail["From"] = sender
    mail["To"] = ", ".join(to)
    mail["Date"] = formatdate(usegmt=True)
    mail["Message-ID"] = message_id(delivery.id, delivery.message_id, delivery.receiver, sender)
    if thread is None:
        mail["Subject"] = _one_line(f"[triage] {alert.headline}")
    else:
        root, subject = thread
        mail["Subject"] = _one_line(f"Re: {subject}")
        mail["In-Reply-To"] = root
        mail["References"] = root
    mail["X-Triage-Delivery"] = str(delivery.id)
    mail.set_content(plain(alert))
    mail.add_alternative(html_part(alert), subtype="html")
    return mail


def plain(alert: Alert) -> str:
    lines = [alert.headline, ""]
    if alert.correction:
        lines += [alert.correction, ""]
    if alert.summary:
        lines += [alert.summary, ""]
    if alert.subject:
        lines.append(f"Subject: {alert.subject}")
    if alert.excerpt:
        lines += [f"> {alert.excerpt}", ""]
    lines += [f"{name}: {value}" for name, value in alert.facts.items()]
    lines += [f"{link.name}: {link.url}" for link in alert.links]
    if alert.why:
        lines += ["", f"Why you got this: {alert.why}"]
    lines += ["", " · ".join(alert.small_print)]
    return "\n".join(lines) + "\n"


def html_part(alert: Alert) -> str:
    """The same in HTML; every text escaped, links only from http(s) URLs."""
    e = html.escape
    parts = [f"<h2>{e(alert.headline)}</h2>"]
    if alert.correction:
        parts.append(f"<p><em>{e(alert.correction)}</em></p>")
    if alert.summary:
        parts.append(f"<p><strong>{e(alert.summary)}</strong></p>")
    if alert.subject:
        parts.append(f"<p>{e(alert.subject)}</p>")
    if alert.excerpt:
        parts.append(f"<blockquote>{e(alert.excerpt)}</blockquote>")
    rows = [f"<tr><th align='left'>{e(n)}</th><td>{e(v)}</td></tr>" for n, v in alert.facts.items()]
    rows += [
        f"<tr><th align='left'>{e(link.name)}</th><td><a href=\"{e(link.url)}\">{e(link.label)}</a></td></tr>"
        for link in alert.links
    ]
    parts.append(f"<table>{''.join(rows)}</table>")
    if alert.why:
        parts.append(f"<p>Why you got this: {e(alert.why)}</p>")
    parts.append(f"<p><small>{e(' · '.join(alert.small_print))}</small></p>")
    return "<html><body>" + "\n".join(parts) + "</body></html>\n"


def _one_line(text: str) -> str:
    return " ".join(text.split())[:200]


class EmailSender:
    batch_size = 1  # one claim per e-mail: a crash can leave at most one in doubt

    def __init__(self, settings: SMTPSettings, receiver: str, to: Sequence[str], store: Store) -> None:
        self.settings = settings
        self.receiver = receiver
        self.to = list(to)
        self.store = store

    def send_batch(self, deliveries: Sequence[DeliveryRow]) -> list[Outcome | DeliveryFailed]:
        return [self._send(delivery) for delivery in deliveries]

    def _send(self, delivery: DeliveryRow) -> Outcome | DeliveryFailed:
        first = self._first_of_conversation(delivery)
        thread = None
        if first is not None and first[0] != delivery.id:
            first_id, first_message, first_case = first
            root = message_id(first_id, first_message, self.receiver, self.settings.from_)
            thread = (root, f"[triage] {headline(first_case)}")
        alert = case_alert(delivery.payload, "new" if thread is None else "follow_up")
        mail = compose(alert, delivery, self.to, self.settings.from_, thread)
        what = f"e-mail {self.receiver}"
        try:
            with connect(self.settings) as smtp:
                smtp.send_message(mail)
        except smtplib.SMTPRecipientsRefused as error:
            return Outcome("skipped", f"{what}: recipients refused: {_reasons(error.recipients)}")
        except smtplib.SMTPResponseException as error:
            if error.smtp_code >= 500:
                return Outcome("skipped", f"{what}: {error.smtp_code} {_text(error.smtp_error)}")
            return DeliveryFailed(f"{what}: {error.smtp_code} {_text(error.smtp_error)}")
        except (smtplib.SMTPException, OSError) as error:
            return DeliveryFailed(f"{what}: {type(error).__name__}: {error}")
        return Outcome("sent", f"{mail['Message-ID']}")

    def _first_of_conversation(self, delivery: DeliveryRow) -> tuple[int, str, dict[str, Any]] | None:
        """The conversation's first delivery to this receiver (this one, or one sent before): the
        thread's root."""
        with self.store.session(read_only=True) as session:
            row = session.execute(
                select(DeliveryRow.id, DeliveryRow.message_id, DeliveryRow.payload)
                .where(
                    (DeliveryRow.conversation_id == delivery.conversation_id)
                    & (DeliveryRow.receiver == delivery.receiver)
                    & (DeliveryRow.status != "skipped")  # never sent: no thread to join
                )
                .order_by(DeliveryRow.id)
                .limit(1)
            ).first()
        return (row[0], row[1], row[2]) if row else None


def _text(value: Any) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


def _reasons(recipients: dict[str, tuple[int, bytes]]) -> str:
    return ", ".join(f"{address} {code} {_text(reason)}" for address, (code, reason) in recipients.items())
