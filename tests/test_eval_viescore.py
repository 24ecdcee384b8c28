"""VIEScore: parsing judge replies, SC/PQ/O aggregation on replayed replies, request format, not-computed path."""

import json
import math
import urllib.error
from pathlib import Path

import pytest
import torch

from rl3dedit.chat import ChatClient, ChatEndpoint
from rl3dedit.eval.viescore import (
    DEFAULT_PROMPTS,
    JudgeAnswerError,
    VIEScoreJudge,
    judge_endpoint_from_env,
    judged_view_indices,
    load_viescore_prompts,
    parse_judge_answer,
)

RECORDED = json.loads((Path(__file__).parent / "fixtures" / "eval" / "viescore_recorded.json").read_text())


class ReplayTransport:
    """Returns the recorded replies in order and keeps every request for inspection."""

    def __init__(self, replies: list[dict]) -> None:
        self.replies = list(replies)
        self.requests: list[tuple[str, dict, dict, float]] = []

    def __call__(self, url: str, headers: dict, body: bytes, timeout: float) -> bytes:
        self.requests.append((url, headers, json.loads(body), timeout))
        return json.dumps(self.replies.pop(0)).encode()


def _views(n: int = 2) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return torch.rand(n, 3, 16, 24, generator=g), torch.rand(n, 3, 16, 24, generator=g)


def test_aggregation_matches_hand_computed_values():
    transport = ReplayTransport(RECORDED["replies"])
    endpoint = ChatEndpoint(base_url="http://judge.local/v1", model="gpt-4.1", api_key="sk-test")
    judge = VIEScoreJudge(ChatClient(endpoint, timeout_s=5, transport=transport, retries=0), image_size=32)
    source, edited = _views()
    result = judge.judge(source, edited, 'Give him "round" glasses', [0, 1])
    assert [v.sc for v in result.views] == [6.0, 3.0]
    assert [v.pq for v in result.views] == [7.0, 4.0]
    assert result.views[0].sc_scores == (8.0, 6.0) and result.views[1].pq_scores == (5.0, 4.0)
    assert result.sc == pytest.approx(4.5) and result.pq == pytest.approx(5.5)
    assert result.overall == pytest.approx((math.sqrt(42) + math.sqrt(12)) / 2)
    assert result.judge_model == "gpt-4.1" and result.not_computed is None and result.errors == []
    assert "hair colour" in result.views[0].sc_reasoning
    # Request format: chat completions, bearer key, the model, two images for SC and one for PQ.
    url, headers, body, timeout = transport.requests[0]
    assert url == "http://judge.local/v1/chat/completions" and timeout == 5
    assert headers["Authorization"] == "Bearer sk-test"
    assert body["model"] == "gpt-4.1" and body["temperature"] == 0
    content = body["messages"][0]["content"]
    assert [part["type"] for part in content] == ["text", "image_url", "image_url"]
    assert content[1]["image_url"]["url"].startswith("data:image/png;base64,")
    assert "round" in content[0]["text"]
    assert [p["type"] for p in transport.requests[1][2]["messages"][0]["content"]] == ["text", "image_url"]
    assert "sk-test" not in repr(endpoint)


@pytest.mark.parametrize("index", [0, 1, 2])
def test_malformed_replies_are_rejected(index):
    content = RECORDED["malformed"][index]["choices"][0]["message"]["content"]
    with pytest.raises(JudgeAnswerError):
        parse_judge_answer(content)


def test_parse_accepts_fenced_prose_and_string_scores():
    assert parse_judge_answer('```json\n{"score": [7, 9], "reasoning": "fine"}\n```').scores == (7.0, 9.0)
    assert parse_judge_answer('Result: {"Scores": ["6/10", 8.5]}').scores == (6.0, 8.5)
    assert parse_judge_answer('no json but score: [4, 5] here').scores == (4.0, 5.0)


def test_failed_views_are_dropped_and_all_failed_is_not_computed():
    bad = RECORDED["malformed"]
    endpoint = ChatEndpoint(base_url="http://judge.local/v1", model="m")
    source, edited = _views()
    # View 0 fails (an API error body), view 1 succeeds: the case keeps view 1 only.
    transport = ReplayTransport([bad[3], RECORDED["replies"][2], RECORDED["replies"][3]])
    judge = VIEScoreJudge(ChatClient(endpoint, transport=transport, retries=0), image_size=32)
    result = judge.judge(source, edited, "x", [0, 1])
    assert result.view_indices == [1] and result.overall == pytest.approx(math.sqrt(12))
    assert len(result.errors) == 1 and "view 0" in result.errors[0]
    transport = ReplayTransport([bad[0], bad[1]])
    judge = VIEScoreJudge(ChatClient(endpoint, transport=transport, retries=0), image_size=32)
    result = judge.judge(source, edited, "x", [0, 1])
    assert result.overall is None and result.sc is None
    assert result.not_computed.startswith("every judge request failed")


def test_http_errors_retry_then_record(monkeypatch):
    monkeypatch.setattr("rl3dedit.chat.time.sleep", lambda s: None)
    calls = []

    def flaky(url, headers, body, timeout):
        calls.append(url)
        if len(calls) == 1:
            raise urllib.error.HTTPError(url, 429, "rate limited", {}, None)
        return json.dumps(RECORDED["replies"][len(calls) - 2]).encode()

    endpoint = ChatEndpoint(base_url="http://judge.local/v1", model="m")
    judge = VIEScoreJudge(ChatClient(endpoint, transport=flaky, retries=1), image_size=32)
    view = judge.judge_view(*[v[0] for v in _views()], "x")
    assert len(calls) == 3 and view.sc == 6.0 and view.pq == 7.0


def test_endpoint_from_env():
    assert judge_endpoint_from_env("gpt-4.1", {}) is None
    ep = judge_endpoint_from_env("gpt-4.1", {"OPENAI_API_KEY": "k"})
    assert ep.base_url == "https://api.openai.com/v1" and ep.model == "gpt-4.1" and ep.api_key == "k"
    ep = judge_endpoint_from_env(
        "gpt-4.1", {"OPENAI_BASE_URL": "http://localhost:8000/v1/", "RL3DEDIT_JUDGE_MODEL": "qwen2.5-vl"}
    )
    assert ep.base_url == "http://localhost:8000/v1" and ep.model == "qwen2.5-vl" and ep.api_key is None


def test_judged_view_indices_spread():
    assert judged_view_indices(9, 3) == [0, 4, 8]
    assert judged_view_indices(2, 3) == [0, 1]
    assert judged_view_indices(5, 1) == [2]


def test_default_pq_prompt_does_not_tell_the_judge_it_sees_a_3d_render():
    assert "3D" not in DEFAULT_PROMPTS.pq and "render" not in DEFAULT_PROMPTS.pq


def _viescore_copy(root: Path) -> Path:
    """A folder in the public VIEScore repository's layout (viescore/prompts_raw/...), with marker texts."""
    raw = root / "viescore" / "prompts_raw"
    (raw / "prompts_0shot").mkdir(parents=True)
    (raw / "context_no_delimit.txt").write_text("CONTEXT-MARK")
    (raw / "prompts_0shot" / "two_image_edit_rule.txt").write_text("EDIT-RULE-MARK")
    (raw / "prompts_0shot" / "tie_rule_SC.txt").write_text("SC-RULE-MARK\nEditing instruction: <instruction>\n")
    (raw / "prompts_0shot" / "rule_PQ.txt").write_text("PQ-RULE-MARK")
    return raw


def test_judge_prompts_folder_in_viescore_layout_reaches_the_requests(tmp_path):
    raw = _viescore_copy(tmp_path)
    for folder in (raw, raw.parent, tmp_path):  # prompts_raw, viescore/ or the repository root
        assert load_viescore_prompts(folder).source == str(raw)
    prompts = load_viescore_prompts(tmp_path)
    assert prompts.sc == "CONTEXT-MARK\nEDIT-RULE-MARK\nSC-RULE-MARK\nEditing instruction: <instruction>\n"
    assert prompts.pq == "CONTEXT-MARK\nPQ-RULE-MARK"
    transport = ReplayTransport(RECORDED["replies"][:2])
    judge = VIEScoreJudge(ChatClient(ChatEndpoint("http://judge.local/v1", "m"), transport=transport, retries=0),
                          image_size=32, prompts=prompts)
    judge.judge_view(*[v[0] for v in _views()], "give him a hat")
    sc_text = transport.requests[0][2]["messages"][0]["content"][0]["text"]
    pq_text = transport.requests[1][2]["messages"][0]["content"][0]["text"]
    assert sc_text == "CONTEXT-MARK\nEDIT-RULE-MARK\nSC-RULE-MARK\nEditing instruction: give him a hat\n"
    assert pq_text == "CONTEXT-MARK\nPQ-RULE-MARK"


def test_judge_prompts_folder_errors_name_the_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="prompts_raw"):
        load_viescore_prompts(tmp_path)
    raw = _viescore_copy(tmp_path)
    (raw / "prompts_0shot" / "rule_PQ.txt").unlink()
    with pytest.raises(FileNotFoundError, match="rule_PQ.txt"):
        load_viescore_prompts(tmp_path)


def test_eval_config_judge_prompts_reach_the_metric_models(tmp_path):
    from rl3dedit.config import load_config
    from rl3dedit.eval.scoring import load_metric_models

    cfg = load_config("tiny")
    cfg = cfg.model_copy(update={"eval": cfg.eval.model_copy(update={
        "metrics": ["viescore"], "judge_prompts": str(_viescore_copy(tmp_path))})})
    models = load_metric_models(cfg, torch.device("cpu"), env={"OPENAI_BASE_URL": "http://localhost:1/v1"})
    assert models.judge.prompts.pq == "CONTEXT-MARK\nPQ-RULE-MARK"
    assert models.judge.client.endpoint.api_key is None  # key-less against an explicit (local) base URL
