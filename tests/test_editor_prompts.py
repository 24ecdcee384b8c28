"""rl3dedit.editor.prompts: the grid template, the LLM rewrite with its fallback (no network), prompt and seed modes."""

from __future__ import annotations

import hashlib
import json
import urllib.error

import pytest

from rl3dedit.chat import ChatClient, ChatEndpoint, endpoint_from_env
from rl3dedit.editor import edit_prompt, edit_seed, enhance_instruction, grid_prompt

RELEASE_TEMPLATE = ("turn the bear into a panda in the 3x3 grid, maintaining consistent 3D positioning, orientation, "
                    "and scale across all nine views, while keeping the rest of the scene and background unchanged.")


def test_template_matches_release_and_adapts_to_grid():
    assert grid_prompt("turn the bear into a panda") == RELEASE_TEMPLATE
    assert grid_prompt("  turn the bear into a panda. ") == RELEASE_TEMPLATE
    assert "in the 2x3 grid" in grid_prompt("x", 2, 3) and "all six views" in grid_prompt("x", 2, 3)
    assert grid_prompt(RELEASE_TEMPLATE) == RELEASE_TEMPLATE  # idempotent: rewritten prompts pass through
    assert grid_prompt("Make it red in the 3X3 grid.") == "Make it red in the 3X3 grid."
    with pytest.raises(ValueError, match="instruction is empty"):
        grid_prompt("   ")


def test_no_endpoint_uses_template(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    assert enhance_instruction("turn the bear into a panda") == RELEASE_TEMPLATE


def _client(transport, **endpoint) -> ChatClient:
    defaults = {"base_url": "http://localhost:9999/v1", "model": "tiny-llm", "api_key": "sk-test"}
    return ChatClient(ChatEndpoint(**{**defaults, **endpoint}), timeout_s=0.1, transport=transport, retries=0)


def test_request_and_reply_through_the_shared_client(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    monkeypatch.setenv("OPENAI_BASE_URL", "http://localhost:9999/v1/")
    monkeypatch.setenv("RL3DEDIT_ENHANCE_MODEL", "tiny-llm")
    seen = {}

    def fake(url, headers, body, timeout):
        seen.update(url=url, timeout=timeout, auth=headers.get("Authorization"), body=json.loads(body))
        reply = {"choices": [{"message": {"content": ' "Make the bear a panda in the 3x3 grid, consistently." '}}]}
        return json.dumps(reply).encode()

    from rl3dedit.editor.prompts import enhance_client

    client = enhance_client()
    client.transport = fake
    out = enhance_instruction("make the bear a panda", client=client)
    assert out == "Make the bear a panda in the 3x3 grid, consistently."
    assert seen["url"] == "http://localhost:9999/v1/chat/completions" and seen["auth"] == "Bearer sk-test"
    assert seen["body"]["model"] == "tiny-llm" and seen["body"]["temperature"] == 0.3 and seen["timeout"] > 0
    assert seen["body"]["messages"][1] == {"role": "user", "content": "make the bear a panda"}
    assert "3x3 grid" in seen["body"]["messages"][0]["content"]


def test_one_environment_rule_for_enhance_and_judge():
    # no server: no endpoint; the default OpenAI server needs a key; an explicit base URL may go key-less
    assert endpoint_from_env("m", env={}) is None
    assert endpoint_from_env("m", env={"OPENAI_API_KEY": "k"}).base_url == "https://api.openai.com/v1"
    local = endpoint_from_env("m", model_var="RL3DEDIT_ENHANCE_MODEL",
                              env={"OPENAI_BASE_URL": "http://localhost:8000/v1/", "RL3DEDIT_ENHANCE_MODEL": "q"})
    assert local.api_key is None and local.base_url == "http://localhost:8000/v1" and local.model == "q"
    seen = {}

    def keyless(url, headers, body, timeout):
        seen["headers"] = headers
        return json.dumps({"choices": [{"message": {"content": "Make it red in the 3x3 grid."}}]}).encode()

    assert enhance_instruction("make it red", client=_client(keyless, api_key=None)) == "Make it red in the 3x3 grid."
    assert "Authorization" not in seen["headers"]


@pytest.mark.parametrize("failure", ["http", "timeout", "malformed", "empty"])
def test_any_failure_falls_back_to_template(failure):
    def fake(url, headers, body, timeout):
        if failure == "http":
            raise urllib.error.HTTPError(url, 500, "boom", {}, None)
        if failure == "timeout":
            raise TimeoutError("timed out")
        if failure == "malformed":
            return b"not json"
        return json.dumps({"choices": [{"message": {"content": "  "}}]}).encode()

    assert enhance_instruction("turn the bear into a panda", client=_client(fake)) == RELEASE_TEMPLATE


def test_prompt_modes():
    assert edit_prompt("  turn the bear into a panda ", "raw") == "turn the bear into a panda"
    assert edit_prompt("turn the bear into a panda", "template") == RELEASE_TEMPLATE

    def fake(url, headers, body, timeout):
        return json.dumps({"choices": [{"message": {"content": "Panda bear in the 3x3 grid."}}]}).encode()

    assert edit_prompt("turn the bear into a panda", "enhance", client=_client(fake)) == "Panda bear in the 3x3 grid."
    with pytest.raises(ValueError, match="instruction is empty"):
        edit_prompt(" ", "raw")


def test_release_seed_is_seed_xor_md5_of_the_instruction():
    instruction = "turn the bear into a panda"
    expected = 42 ^ int(hashlib.md5(instruction.encode()).hexdigest()[:8], 16)
    assert edit_seed(42, instruction, "release") == expected
    assert edit_seed(42, instruction, "release") != edit_seed(42, "turn the bear into a koala", "release")
    assert edit_seed(42, instruction, "fixed") == 42
