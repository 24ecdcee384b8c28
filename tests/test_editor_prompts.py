"""rl3dedit.editor.prompts: the grid template and the LLM rewrite with its fallback (no network)."""

from __future__ import annotations

import io
import json
import urllib.error

import pytest

from rl3dedit.editor import EnhanceSettings, enhance_instruction, grid_prompt
from rl3dedit.editor.prompts import build_request

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


def test_no_api_key_uses_template(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)

    def never(*_args, **_kwargs):
        raise AssertionError("no request without a key")

    assert enhance_instruction("turn the bear into a panda", opener=never) == RELEASE_TEMPLATE


def test_request_building_and_reply(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    monkeypatch.setenv("OPENAI_BASE_URL", "http://localhost:9999/v1/")
    monkeypatch.setenv("RL3DEDIT_ENHANCE_MODEL", "tiny-llm")
    seen = {}

    def fake_open(request, timeout):
        seen.update(url=request.full_url, timeout=timeout, auth=request.get_header("Authorization"),
                    body=json.loads(request.data))
        reply = {"choices": [{"message": {"content": ' "Make the bear a panda in the 3x3 grid, consistently." '}}]}
        return io.BytesIO(json.dumps(reply).encode())

    out = enhance_instruction("make the bear a panda", opener=fake_open)
    assert out == "Make the bear a panda in the 3x3 grid, consistently."
    assert seen["url"] == "http://localhost:9999/v1/chat/completions" and seen["auth"] == "Bearer sk-test"
    assert seen["body"]["model"] == "tiny-llm" and seen["body"]["temperature"] == 0.3 and seen["timeout"] > 0
    assert seen["body"]["messages"][1] == {"role": "user", "content": "make the bear a panda"}
    assert "3x3 grid" in seen["body"]["messages"][0]["content"]


@pytest.mark.parametrize("failure", ["http", "timeout", "malformed", "empty"])
def test_any_failure_falls_back_to_template(failure):
    settings = EnhanceSettings(api_key="sk-test", base_url="http://localhost:1/v1", timeout_s=0.1)

    def fake_open(request, timeout):
        if failure == "http":
            raise urllib.error.HTTPError(request.full_url, 500, "boom", {}, None)
        if failure == "timeout":
            raise TimeoutError("timed out")
        if failure == "malformed":
            return io.BytesIO(b"not json")
        return io.BytesIO(json.dumps({"choices": [{"message": {"content": "  "}}]}).encode())

    assert enhance_instruction("turn the bear into a panda", settings=settings, opener=fake_open) == RELEASE_TEMPLATE


def test_build_request_is_a_post_with_json():
    request = build_request("x", 3, 3, EnhanceSettings(api_key="k"))
    assert request.get_method() == "POST" and request.get_header("Content-type") == "application/json"
    assert request.full_url == "https://api.openai.com/v1/chat/completions"
