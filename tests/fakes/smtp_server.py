"""A local SMTP server (aiosmtpd) that keeps the messages it accepts, parsed.

With `username`/`password` set it requires AUTH (PLAIN or LOGIN) before MAIL, and refuses a wrong login
with 535, as a submission server does; STARTTLS is not offered (tests set TRIAGE_SMTP__STARTTLS=false).
`fail_next(code)` answers the next DATA with that code (451: try later; 554: refused).
"""

from __future__ import annotations

import socket
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any, Self

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class FakeSMTP:
    def __init__(self, username: str = "", password: str = "") -> None:
        self.username, self.password = username, password
        self.messages: list[EmailMessage] = []
        self.envelopes: list[tuple[str, list[str]]] = []
        self.failures: list[int] = []
        self.port = free_port()
        auth = {
            "authenticator": self._authenticate,
            "auth_require_tls": False,
            "auth_required": True,
        }
        self._controller = Controller(
            self, hostname="127.0.0.1", port=self.port, **(auth if username else {})
        )

    def env(self) -> dict[str, str]:
        return {
            "TRIAGE_SMTP__HOST": "127.0.0.1",
            "TRIAGE_SMTP__PORT": str(self.port),
            "TRIAGE_SMTP__USERNAME": self.username,
            "TRIAGE_SMTP__PASSWORD": self.password,
            "TRIAGE_SMTP__STARTTLS": "false",
            "TRIAGE_SMTP__FROM": "triage@example.com",
        }

    def fail_next(self, code: int) -> None:
        self.failures.append(code)

    def __enter__(self) -> Self:
        self._controller.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._controller.stop()

    def _authenticate(
        self, _server: Any, _session: Any, _envelope: Any, _mechanism: str, data: Any
    ) -> AuthResult:
        ok = (
            isinstance(data, LoginPassword)
            and data.login.decode() == self.username
            and data.password.decode() == self.password
        )
        return AuthResult(success=ok, handled=False)  # handled=False: aiosmtpd answers 235 or 535

    async def handle_DATA(self, _server: Any, _session: Any, envelope: Any) -> str:
        if self.failures:
            code = self.failures.pop(0)
            return f"{code} {'try again later' if code < 500 else 'message refused'}"
        self.messages.append(message_from_bytes(envelope.content, policy=policy.default))  # type: ignore[arg-type]
        self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        return "250 OK queued"
