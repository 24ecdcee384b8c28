"""Instruction rewriting for grid edits: the release's template, and an optional LLM rewrite (paper.md §13.6).

The LLM rewrite talks to any OpenAI-compatible chat endpoint configured from the environment (`OPENAI_API_KEY`,
optional `OPENAI_BASE_URL`, model `RL3DEDIT_ENHANCE_MODEL`, default gpt-4o-mini) with plain `urllib`, a timeout, and
a fallback to the template on any failure, so editing never depends on the network.
"""

from __future__ import annotations

import json
import logging
import os
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass

logger = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://api.openai.com/v1"
DEFAULT_ENHANCE_MODEL = "gpt-4o-mini"
_NUMBER_WORDS = {1: "one", 2: "two", 3: "three", 4: "four", 5: "five", 6: "six", 7: "seven", 8: "eight", 9: "nine",
                 10: "ten", 12: "twelve", 16: "sixteen"}


def _count_words(count: int) -> str:
    return _NUMBER_WORDS.get(count, str(count))


def grid_phrase(rows: int, cols: int) -> tuple[str, str]:
    """("3x3", "all nine views") for a rows x cols grid."""
    if rows < 1 or cols < 1:
        raise ValueError(f"grid must have rows, cols >= 1, got {rows}x{cols}")
    return f"{rows}x{cols}", f"all {_count_words(rows * cols)} views"


def grid_prompt(instruction: str, rows: int = 3, cols: int = 3) -> str:
    """The release's template (paper.md §13.6), adapted to a rows x cols grid:

    "{instr} in the 3x3 grid, maintaining consistent 3D positioning, orientation, and scale across all nine views,
    while keeping the rest of the scene and background unchanged."

    An instruction that already names the grid ("... in the 3x3 grid ...", e.g. an `enhance_instruction` rewrite) is
    returned unchanged, so applying the template twice is harmless.
    """
    text = instruction.strip()
    if not text:
        raise ValueError("the instruction is empty")
    grid, views = grid_phrase(rows, cols)
    if f"{grid} grid" in text.lower():
        return text
    text = text.rstrip(".")
    return (f"{text} in the {grid} grid, maintaining consistent 3D positioning, orientation, and scale across "
            f"{views}, while keeping the rest of the scene and background unchanged.")


def system_prompt(rows: int, cols: int) -> str:
    """The rewrite instructions for the LLM (paper.md §13.6, adapted to the grid size)."""
    grid, views = grid_phrase(rows, cols)
    return (
        "You rewrite short image-editing instructions for a model that edits a "
        f"{grid} grid of views of one 3D scene. Reply with exactly one English sentence that keeps the user's "
        f"intent, mentions the {grid} grid, requires the edit to stay 3D-consistent (position, orientation and "
        f"scale) across {views}, keeps the rest of the scene unchanged, and invents no new edits. The user may "
        "write in English or Chinese."
    )


@dataclass(frozen=True)
class EnhanceSettings:
    """Endpoint settings, read from the environment by `from_env`; `api_key=None` means "no LLM available"."""

    api_key: str | None
    base_url: str = DEFAULT_BASE_URL
    model: str = DEFAULT_ENHANCE_MODEL
    temperature: float = 0.3
    timeout_s: float = 20.0

    @classmethod
    def from_env(cls) -> EnhanceSettings:
        return cls(
            api_key=os.environ.get("OPENAI_API_KEY") or None,
            base_url=(os.environ.get("OPENAI_BASE_URL") or DEFAULT_BASE_URL).rstrip("/"),
            model=os.environ.get("RL3DEDIT_ENHANCE_MODEL") or DEFAULT_ENHANCE_MODEL,
        )


def build_request(instruction: str, rows: int, cols: int, settings: EnhanceSettings) -> urllib.request.Request:
    """The chat-completions POST request (`{base_url}/chat/completions`, bearer auth, JSON body)."""
    body = {
        "model": settings.model,
        "temperature": settings.temperature,
        "messages": [
            {"role": "system", "content": system_prompt(rows, cols)},
            {"role": "user", "content": instruction.strip()},
        ],
    }
    return urllib.request.Request(
        f"{settings.base_url}/chat/completions",
        data=json.dumps(body).encode("utf-8"),
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {settings.api_key}"},
        method="POST",
    )


def _reply_text(payload: bytes) -> str:
    data = json.loads(payload.decode("utf-8"))
    text = data["choices"][0]["message"]["content"]
    if not isinstance(text, str) or not text.strip():
        raise ValueError("empty reply")
    return " ".join(text.strip().strip('"').split())


Opener = Callable[..., object]


def enhance_instruction(instruction: str, rows: int = 3, cols: int = 3, *, settings: EnhanceSettings | None = None,
                        opener: Opener | None = None) -> str:
    """The full prompt for a grid edit: the LLM rewrite when an endpoint is configured and answers, else the template.

    `opener(request, timeout=...)` returns a response with `.read()` (default `urllib.request.urlopen`); tests pass
    a fake. Any failure (no key, network, HTTP error, malformed reply, timeout) logs a warning and falls back to
    `grid_prompt`.
    """
    fallback = grid_prompt(instruction, rows, cols)
    settings = settings or EnhanceSettings.from_env()
    if not settings.api_key:
        logger.info("OPENAI_API_KEY is not set; using the grid template")
        return fallback
    opener = opener or urllib.request.urlopen
    try:
        request = build_request(instruction, rows, cols, settings)
        response = opener(request, timeout=settings.timeout_s)
        try:
            payload = response.read()
        finally:
            close = getattr(response, "close", None)
            if close is not None:
                close()
        return _reply_text(payload)
    except Exception as exc:  # any endpoint failure must not stop an edit; the template is always valid
        logger.warning("instruction rewrite via %s failed (%s: %s); using the grid template", settings.base_url,
                       type(exc).__name__, exc)
        return fallback
