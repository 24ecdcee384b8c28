"""The prompt and seed of a grid edit: the release's template, an optional LLM rewrite (both from the released
inference code, https://github.com/AMAP-ML/RL3DEdit, `rl3dedit/prompt_enhance.py`), the prompt modes and the
release's seed rule.

Prompt modes (`editor.prompt_mode`): `raw` sends the instruction as given (the released inference script without
`--enhance`), `template` wraps it in the grid template, `enhance` asks an LLM for the rewrite and falls back to the
template. The LLM is any OpenAI-compatible endpoint (`rl3dedit.chat`; model `RL3DEDIT_ENHANCE_MODEL`, default
gpt-4o-mini), with a timeout and a fallback on any failure, so editing never depends on the network.

Seed modes (`editor.seed_mode`): `fixed` uses `editor.seed`; `release` uses seed XOR int(md5(instruction)[:8], 16),
as the released inference script seeds its CPU generator, so every instruction gets its own reproducible noise.
"""

from __future__ import annotations

import hashlib
import logging

from rl3dedit.chat import ChatClient, endpoint_from_env
from rl3dedit.editor.config import PromptMode, SeedMode

logger = logging.getLogger(__name__)

DEFAULT_ENHANCE_MODEL = "gpt-4o-mini"
ENHANCE_TIMEOUT_S = 20.0
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
    """The release's template (`rl3dedit/prompt_enhance.py` of the released code), adapted to a rows x cols grid:

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
    """The rewrite instructions for the LLM (the release's, in our words, adapted to the grid size)."""
    grid, views = grid_phrase(rows, cols)
    return (
        "You rewrite short image-editing instructions for a model that edits a "
        f"{grid} grid of views of one 3D scene. Reply with exactly one English sentence that keeps the user's "
        f"intent, mentions the {grid} grid, requires the edit to stay 3D-consistent (position, orientation and "
        f"scale) across {views}, keeps the rest of the scene unchanged, and invents no new edits. The user may "
        "write in English or Chinese."
    )


def enhance_client() -> ChatClient | None:
    """The rewrite's client from the environment (`rl3dedit.chat` rule), or None when no endpoint is configured."""
    endpoint = endpoint_from_env(DEFAULT_ENHANCE_MODEL, model_var="RL3DEDIT_ENHANCE_MODEL")
    return None if endpoint is None else ChatClient(endpoint, timeout_s=ENHANCE_TIMEOUT_S, retries=0)


def _clean_reply(text: str) -> str:
    text = " ".join(text.strip().strip('"').split())
    if not text:
        raise ValueError("empty reply")
    return text


def enhance_instruction(instruction: str, rows: int = 3, cols: int = 3, *, client: ChatClient | None = None) -> str:
    """The full prompt for a grid edit: the LLM rewrite when an endpoint is configured and answers, else the template.

    `client` defaults to `enhance_client()`; tests pass one with a fake transport. Any failure (no endpoint,
    network, HTTP error, malformed or empty reply, timeout) logs a warning and falls back to `grid_prompt`.
    """
    fallback = grid_prompt(instruction, rows, cols)
    client = client if client is not None else enhance_client()
    if client is None:
        logger.info("no LLM endpoint (OPENAI_API_KEY / OPENAI_BASE_URL unset); using the grid template")
        return fallback
    messages = [{"role": "system", "content": system_prompt(rows, cols)},
                {"role": "user", "content": instruction.strip()}]
    try:
        return _clean_reply(client.complete(messages, temperature=0.3))
    except Exception as exc:  # any endpoint failure must not stop an edit; the template is always valid
        logger.warning("instruction rewrite via %s failed (%s: %s); using the grid template",
                       client.endpoint.base_url, type(exc).__name__, exc)
        return fallback


def edit_prompt(instruction: str, mode: PromptMode, rows: int = 3, cols: int = 3, *,
                client: ChatClient | None = None) -> str:
    """The prompt sent to the editor for `instruction` under `editor.prompt_mode` (see the module docstring)."""
    text = instruction.strip()
    if not text:
        raise ValueError("the instruction is empty")
    if mode == "raw":
        return text
    if mode == "template":
        return grid_prompt(text, rows, cols)
    if mode == "enhance":
        return enhance_instruction(text, rows, cols, client=client)
    raise ValueError(f"prompt mode must be raw, template or enhance, got {mode!r}")


def release_seed(seed: int, instruction: str) -> int:
    """seed XOR int(md5(instruction)[:8], 16): the released inference script's per-instruction seed."""
    return int(seed) ^ int(hashlib.md5(instruction.encode("utf-8")).hexdigest()[:8], 16)


def edit_seed(seed: int, instruction: str, mode: SeedMode) -> int:
    """The generator seed of an edit under `editor.seed_mode`; `release` hashes the user's instruction as given
    (before any prompt rewrite), `fixed` returns `seed`."""
    if mode == "fixed":
        return int(seed)
    if mode == "release":
        return release_seed(seed, instruction)
    raise ValueError(f"seed mode must be release or fixed, got {mode!r}")
