"""A local server speaking OpenAI's chat-completions wire format, for the real `openai` client.

It records every request and answers from a script (status, headers, content, delay) or, when the
script is empty, with `answer_json` (or what `responder` computes), as the assistant's JSON content.
"""

from __future__ import annotations

import json
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tests.fakes.local_server import Answer, LocalJSONServer

DEFAULT_ANSWER = {
    "urgency": "high",
    "sentiment": "negative",
    "category": "billing",
    "language": "en",
    "summary": "Customer was charged twice and wants a refund.",
    "confidence": 0.9,
}


@dataclass
class Reply:
    status: int = 200
    content: str | None = None  # the assistant message; None: json.dumps(server.answer_json)
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0


class FakeOpenAI(LocalJSONServer):
    def __init__(self) -> None:
        super().__init__()
        self.requests: list[dict[str, Any]] = []
        self.script: deque[Reply] = deque()
        self.answer_json: dict[str, Any] = dict(DEFAULT_ANSWER)
        # Optional: compute the answer from the request (e.g. from the fenced message) instead.
        self.responder: Callable[[dict[str, Any]], dict[str, Any]] | None = None
        self.valid_keys: set[str] | None = None  # when set, other keys get a 401, as OpenAI answers
        # How prompt and completion text become token counts (default: words); a benchmark may pass a
        # closer estimate, e.g. about 4 characters a token.
        self.count_tokens: Callable[[str], int] = lambda text: len(text.split())
        # Prompt caching as OpenAI documents it: a prompt of 1024 tokens or more has its longest prefix
        # already seen in an earlier request counted as cached, in blocks of 128 tokens.
        self.prompt_cache = False
        self._prefixes: set[tuple[str, ...]] = set()
        self.active = 0  # requests being answered right now
        self.peak_active = 0  # the most answered at once: how concurrent the client really was

    @property
    def base_url(self) -> str:
        return f"{self.address}/v1"

    def push(self, *replies: Reply) -> None:
        self.script.extend(replies)

    def answer(self, method: str, path: str, headers: dict[str, str], raw: bytes) -> Answer:
        key = {k.lower(): v for k, v in headers.items()}.get("authorization", "").removeprefix("Bearer ")
        if self.valid_keys is not None and key not in self.valid_keys:
            return (
                401,
                {},
                {"error": {"message": "Incorrect API key provided", "type": "invalid_request_error"}},
            )
        if method == "GET" and path.endswith("/models"):
            return (
                200,
                {},
                {"object": "list", "data": [{"id": "stand-in", "object": "model", "owned_by": "test"}]},
            )
        with self._lock:
            self.active += 1
            self.peak_active = max(self.peak_active, self.active)
        try:
            return self._answer(json.loads(raw or b"{}"))
        finally:
            with self._lock:
                self.active -= 1

    def _answer(self, request: dict[str, Any]) -> Answer:
        with self._lock:
            self.requests.append(request)
            reply = self.script.popleft() if self.script else Reply()
        if reply.delay_s:
            time.sleep(reply.delay_s)
        if reply.status != 200:
            return (
                reply.status,
                reply.headers,
                {"error": {"message": f"status {reply.status}", "type": "server_error"}},
            )
        answer = self.responder(request) if self.responder else self.answer_json
        content = reply.content if reply.content is not None else json.dumps(answer)
        body = completion(request, content, self.count_tokens)
        if self.prompt_cache:
            body["usage"]["prompt_tokens_details"]["cached_tokens"] = self._cached(request)
        return 200, reply.headers, body

    def _cached(self, request: dict[str, Any]) -> int:
        """Tokens of this prompt's longest prefix (whole messages, then blocks of 128 tokens of the
        next) seen before; 0 under 1024 tokens. Whole-message granularity is enough for our prompts."""
        messages = [str(m.get("content", "")) for m in request.get("messages", [])]
        total = sum(self.count_tokens(text) for text in messages)
        cached = 0
        with self._lock:
            for end in range(1, len(messages) + 1):
                prefix = tuple(messages[:end])
                if prefix in self._prefixes:
                    cached = sum(self.count_tokens(text) for text in prefix)
                self._prefixes.add(prefix)
        if total < 1024:
            return 0
        return cached // 128 * 128


def completion(
    request: dict[str, Any], content: str, count: Callable[[str], int] = lambda text: len(text.split())
) -> dict[str, Any]:
    prompt_tokens = sum(count(str(m.get("content", ""))) for m in request.get("messages", []))
    completion_tokens = count(content)
    return {
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": request.get("model", "test-model"),
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}
        ],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
            "prompt_tokens_details": {"cached_tokens": 0},
        },
    }
