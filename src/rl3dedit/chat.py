"""One OpenAI-compatible chat-completions client for every language-model call: the `--enhance` instruction
rewrite (`editor.prompts`) and the VIEScore judge (`eval.viescore`).

One environment rule for both:
- `OPENAI_API_KEY` is the bearer key; `OPENAI_BASE_URL` the server (default https://api.openai.com/v1).
- The default (OpenAI) server needs a key. A key-less endpoint is allowed when `OPENAI_BASE_URL` is set explicitly,
  e.g. a local vLLM or Ollama server.
- With neither variable set there is no endpoint: callers fall back (the grid template) or report "not computed".
The model comes from the caller's own variable (`RL3DEDIT_ENHANCE_MODEL`, `RL3DEDIT_JUDGE_MODEL`) or its default.
Requests go through a `Transport` (the standard library's urllib by default) so tests replay recorded answers.
"""

from __future__ import annotations

import json
import logging
import os
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

logger = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://api.openai.com/v1"

Transport = Callable[[str, dict[str, str], bytes, float], bytes]
"""transport(url, headers, body, timeout_s) -> response body; raises on HTTP or network errors."""

_RETRYABLE_HTTP = (429, 500, 502, 503, 504)


class ChatReplyError(ValueError):
    """The server answered, but not with a chat-completions message."""


def urllib_transport(url: str, headers: dict[str, str], body: bytes, timeout_s: float) -> bytes:
    """POST `body` to `url` with the standard library (no extra dependency)."""
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    with urllib.request.urlopen(request, timeout=timeout_s) as response:
        return response.read()


@dataclass(frozen=True)
class ChatEndpoint:
    """Where the model lives. `api_key` is never printed or written to results."""

    base_url: str
    model: str
    api_key: str | None = field(default=None, repr=False)


def endpoint_from_env(default_model: str, *, model_var: str | None = None,
                      env: Mapping[str, str] | None = None) -> ChatEndpoint | None:
    """The endpoint by the module's environment rule, or None when no server is configured.

    `model_var` names the environment variable that overrides `default_model`.
    """
    env = os.environ if env is None else env
    base_url, api_key = env.get("OPENAI_BASE_URL", "").strip(), env.get("OPENAI_API_KEY", "").strip()
    if not base_url and not api_key:
        return None
    model = (env.get(model_var, "").strip() if model_var else "") or default_model
    return ChatEndpoint(base_url=(base_url or DEFAULT_BASE_URL).rstrip("/"), model=model, api_key=api_key or None)


def message_text(response: bytes) -> str:
    """The assistant text of a chat-completions response body."""
    try:
        data = json.loads(response)
        content = data["choices"][0]["message"]["content"]
    except (ValueError, KeyError, IndexError, TypeError) as exc:
        raise ChatReplyError(f"not a chat-completions response: {response[:200]!r}") from exc
    if isinstance(content, list):
        content = "".join(part.get("text", "") for part in content if isinstance(part, dict))
    if not isinstance(content, str):
        raise ChatReplyError(f"unexpected message content {content!r}")
    return content


class ChatClient:
    """Sends chat-completions requests to one endpoint, retrying rate limits, server errors and timeouts.

    Args:
        endpoint: the server, model and key.
        timeout_s: HTTP timeout of one request.
        transport: how bytes are sent (`urllib_transport`; tests pass a fake).
        retries: extra attempts after a retryable failure (HTTP 429/5xx, network error, timeout); a 4xx request
            error is never retried. Waits 1, 2, 4, 8 s between attempts.
    """

    def __init__(self, endpoint: ChatEndpoint, *, timeout_s: float = 60.0, transport: Transport = urllib_transport,
                 retries: int = 2) -> None:
        if retries < 0 or timeout_s <= 0:
            raise ValueError(f"need retries >= 0 and timeout_s > 0, got {retries}, {timeout_s}")
        self.endpoint, self.timeout_s, self.transport, self.retries = endpoint, timeout_s, transport, retries

    @property
    def model(self) -> str:
        return self.endpoint.model

    def complete(self, messages: list[dict], *, temperature: float = 0.0) -> str:
        """The assistant's reply text to `messages` (OpenAI chat format; content may hold image_url parts)."""
        body = json.dumps({"model": self.endpoint.model, "temperature": temperature, "messages": messages}).encode()
        headers = {"Content-Type": "application/json"}
        if self.endpoint.api_key:
            headers["Authorization"] = f"Bearer {self.endpoint.api_key}"
        url = f"{self.endpoint.base_url}/chat/completions"
        for attempt in range(self.retries + 1):
            try:
                return message_text(self.transport(url, headers, body, self.timeout_s))
            except urllib.error.HTTPError as exc:
                if exc.code not in _RETRYABLE_HTTP or attempt == self.retries:
                    raise
                logger.info("chat request to %s failed (HTTP %d); retrying", self.endpoint.base_url, exc.code)
            except (urllib.error.URLError, TimeoutError) as exc:
                if attempt == self.retries:
                    raise
                logger.info("chat request to %s failed (%s); retrying", self.endpoint.base_url, exc)
            time.sleep(min(2.0**attempt, 8.0))
        raise AssertionError("unreachable")
