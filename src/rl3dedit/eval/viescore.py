"""VIEScore for text-guided editing with a vision-language judge (Ku et al., ACL 2024; field.md section 8.4).

Per judged view the judge answers twice on a 0-10 scale:
- semantic consistency, shown the source and the edited image and the instruction: [instruction following,
  absence of over-editing]; SC = min of the two;
- perceptual quality, shown the edited image only: [naturalness, absence of artifacts]; PQ = min of the two;
- overall O = sqrt(SC * PQ).
A case's SC, PQ and O are the means over its judged views (O averaged per view, not recomputed from the means).
RL3DEdit judges with GPT-4.1 (paper.md section 9).

The judge is any OpenAI-compatible chat-completions endpoint: `OPENAI_BASE_URL` (default https://api.openai.com/v1),
`OPENAI_API_KEY`, model `RL3DEDIT_JUDGE_MODEL` (default `eval.judge_model`, gpt-4.1). With neither variable set the
metric is *not computed* (a reason, never a number). Requests go through a `Transport` (urllib by default) so tests
replay recorded answers without network.
"""

from __future__ import annotations

import base64
import io
import json
import logging
import math
import os
import re
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from statistics import fmean

import torch
import torch.nn.functional as F

logger = logging.getLogger(__name__)

Transport = Callable[[str, dict[str, str], bytes, float], bytes]
"""transport(url, headers, body, timeout_s) -> response body; raises on HTTP or network errors."""

DEFAULT_BASE_URL = "https://api.openai.com/v1"

SC_PROMPT = """You judge an AI image edit. The first image is the original, the second is the edited result.
Editing instruction: "{instruction}"

Give two integer scores from 0 to 10:
1. Instruction following: 0 = the edit does not do what the instruction asks, 10 = it does it completely.
2. Over-editing: 0 = the edited image changes far more than the instruction asks (a different scene or subject),
   10 = everything the instruction does not mention is kept as it was.
Answer with JSON only: {{"reasoning": "<one or two sentences>", "score": [<instruction following>, <over-editing>]}}"""

PQ_PROMPT = """You judge the visual quality of an AI-generated image (a render of an edited 3D scene).

Give two integer scores from 0 to 10:
1. Naturalness: 0 = the image looks implausible or unnatural (wrong lighting, shapes or proportions),
   10 = it looks fully natural.
2. Artifacts: 0 = heavy blur, ghosting, distortion, noise or broken regions, 10 = no visible artifacts.
Answer with JSON only: {{"reasoning": "<one or two sentences>", "score": [<naturalness>, <artifacts>]}}"""


class JudgeAnswerError(ValueError):
    """The judge's reply holds no usable pair of 0-10 scores."""


@dataclass(frozen=True)
class JudgeEndpoint:
    """Where the judge lives. `api_key` is never printed or written to results."""

    base_url: str
    model: str
    api_key: str | None = field(default=None, repr=False)


def judge_endpoint_from_env(default_model: str, env: Mapping[str, str] | None = None) -> JudgeEndpoint | None:
    """The endpoint from `OPENAI_BASE_URL` / `OPENAI_API_KEY` / `RL3DEDIT_JUDGE_MODEL`, or None when unset."""
    env = os.environ if env is None else env
    base_url, api_key = env.get("OPENAI_BASE_URL", "").strip(), env.get("OPENAI_API_KEY", "").strip()
    if not base_url and not api_key:
        return None
    model = env.get("RL3DEDIT_JUDGE_MODEL", "").strip() or default_model
    return JudgeEndpoint(base_url=(base_url or DEFAULT_BASE_URL).rstrip("/"), model=model, api_key=api_key or None)


def urllib_transport(url: str, headers: dict[str, str], body: bytes, timeout_s: float) -> bytes:
    """POST `body` to `url` with the standard library (no extra dependency)."""
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    with urllib.request.urlopen(request, timeout=timeout_s) as response:
        return response.read()


@dataclass
class JudgeAnswer:
    """One parsed judge reply: two scores in [0, 10] and the judge's reasoning."""

    scores: tuple[float, float]
    reasoning: str


def _first_json_object(text: str) -> dict | None:
    decoder = json.JSONDecoder()
    for match in re.finditer(r"\{", text):
        try:
            value, _ = decoder.raw_decode(text, match.start())
        except json.JSONDecodeError:
            continue
        if isinstance(value, dict):
            return value
    return None


def _as_score(value) -> float:
    if isinstance(value, str):
        match = re.match(r"\s*(-?\d+(?:\.\d+)?)", value)
        if not match:
            raise JudgeAnswerError(f"score {value!r} is not a number")
        value = match.group(1)
    try:
        score = float(value)
    except (TypeError, ValueError) as exc:
        raise JudgeAnswerError(f"score {value!r} is not a number") from exc
    if not math.isfinite(score) or not 0 <= score <= 10:
        raise JudgeAnswerError(f"score {score} is outside 0-10")
    return score


def parse_judge_answer(text: str) -> JudgeAnswer:
    """Two 0-10 scores from a judge reply: JSON (possibly in a code fence or surrounded by prose) with a
    `score` (or `scores`) list of two numbers; as a fallback, a `score: [a, b]` pattern anywhere in the text."""
    cleaned = re.sub(r"```(?:json)?", "", text or "", flags=re.IGNORECASE)
    obj = _first_json_object(cleaned)
    raw_scores, reasoning = None, ""
    if obj is not None:
        lowered = {str(k).lower(): v for k, v in obj.items()}
        raw_scores = lowered.get("score", lowered.get("scores"))
        reasoning = str(lowered.get("reasoning", lowered.get("reason", "")))
    if raw_scores is None:
        match = re.search(r"scores?\"?\s*[:=]\s*\[([^\]]*)\]", cleaned, flags=re.IGNORECASE)
        if match:
            raw_scores = [part for part in match.group(1).split(",") if part.strip()]
    if not isinstance(raw_scores, (list, tuple)) or len(raw_scores) != 2:
        raise JudgeAnswerError(f"expected a `score` list of two numbers, found {raw_scores!r} in {text[:200]!r}")
    return JudgeAnswer(scores=(_as_score(raw_scores[0]), _as_score(raw_scores[1])), reasoning=reasoning.strip())


def _message_text(response: bytes) -> str:
    """The assistant text of a chat-completions response body."""
    try:
        data = json.loads(response)
        content = data["choices"][0]["message"]["content"]
    except (ValueError, KeyError, IndexError, TypeError) as exc:
        raise JudgeAnswerError(f"not a chat-completions response: {response[:200]!r}") from exc
    if isinstance(content, list):
        content = "".join(part.get("text", "") for part in content if isinstance(part, dict))
    if not isinstance(content, str):
        raise JudgeAnswerError(f"unexpected message content {content!r}")
    return content


def image_data_url(image: torch.Tensor, max_side: int) -> str:
    """An image (3, H, W) in [0, 1] as a `data:image/png;base64,...` URL, resized so its longer side is `max_side`."""
    from PIL import Image

    _, height, width = image.shape
    scale = max_side / max(height, width)
    if scale != 1:
        size = (max(1, round(height * scale)), max(1, round(width * scale)))
        image = F.interpolate(image[None].float(), size=size, mode="bilinear", antialias=True, align_corners=False)[0]
    array = (image.clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).cpu().numpy()
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


@dataclass
class ViewJudgement:
    """VIEScore of one view: the four raw scores, SC, PQ, O and the judge's reasoning."""

    sc_scores: tuple[float, float]
    pq_scores: tuple[float, float]
    sc: float
    pq: float
    overall: float
    sc_reasoning: str = ""
    pq_reasoning: str = ""


def view_judgement(sc_answer: JudgeAnswer, pq_answer: JudgeAnswer) -> ViewJudgement:
    """SC = min(SC scores), PQ = min(PQ scores), O = sqrt(SC * PQ) (VIEScore)."""
    sc, pq = min(sc_answer.scores), min(pq_answer.scores)
    return ViewJudgement(
        sc_scores=sc_answer.scores, pq_scores=pq_answer.scores, sc=sc, pq=pq, overall=math.sqrt(sc * pq),
        sc_reasoning=sc_answer.reasoning, pq_reasoning=pq_answer.reasoning,
    )


@dataclass
class VIEScoreResult:
    """VIEScore of one case.

    Fields:
        sc, pq, overall: means over the judged views, or None when not computed.
        views: per judged view (evaluation-view indices `view_indices`).
        judge_model: the model that judged (None when not computed).
        not_computed: the reason, when no score could be computed.
        errors: per-view failures (a case keeps the views that succeeded).
    """

    sc: float | None
    pq: float | None
    overall: float | None
    views: list[ViewJudgement]
    view_indices: list[int]
    judge_model: str | None
    not_computed: str | None = None
    errors: list[str] = field(default_factory=list)


class VIEScoreJudge:
    """Asks one OpenAI-compatible endpoint for VIEScore judgements (two requests per view)."""

    def __init__(
        self, endpoint: JudgeEndpoint, *, timeout_s: float = 60.0, image_size: int = 512,
        transport: Transport = urllib_transport, retries: int = 2,
    ) -> None:
        self.endpoint = endpoint
        self.timeout_s = timeout_s
        self.image_size = image_size
        self.transport = transport
        self.retries = retries

    def _ask(self, prompt: str, images: list[torch.Tensor]) -> JudgeAnswer:
        content = [{"type": "text", "text": prompt}] + [
            {"type": "image_url", "image_url": {"url": image_data_url(image, self.image_size)}} for image in images
        ]
        body = json.dumps(
            {"model": self.endpoint.model, "temperature": 0, "messages": [{"role": "user", "content": content}]}
        ).encode()
        headers = {"Content-Type": "application/json"}
        if self.endpoint.api_key:
            headers["Authorization"] = f"Bearer {self.endpoint.api_key}"
        url = f"{self.endpoint.base_url}/chat/completions"
        for attempt in range(self.retries + 1):
            try:
                return parse_judge_answer(_message_text(self.transport(url, headers, body, self.timeout_s)))
            except urllib.error.HTTPError as exc:
                # Rate limits and server errors are worth a retry; a 4xx request error is not.
                if exc.code not in (429, 500, 502, 503, 504) or attempt == self.retries:
                    raise
            except (urllib.error.URLError, TimeoutError, JudgeAnswerError) as exc:
                if attempt == self.retries:
                    raise
                logger.info("judge request failed (%s); retrying", exc)
            time.sleep(min(2.0**attempt, 8.0))
        raise AssertionError("unreachable")

    def judge_view(self, source: torch.Tensor, edited: torch.Tensor, instruction: str) -> ViewJudgement:
        """VIEScore of one view: `source`, `edited` (3, H, W) in [0, 1]."""
        sc = self._ask(SC_PROMPT.format(instruction=instruction.replace('"', "'")), [source, edited])
        pq = self._ask(PQ_PROMPT, [edited])
        return view_judgement(sc, pq)

    def judge(
        self, source_views: torch.Tensor, edited_views: torch.Tensor, instruction: str, view_indices: list[int]
    ) -> VIEScoreResult:
        """Judge the views `view_indices` of (V, 3, H, W) source / edited stacks; average SC, PQ and O."""
        views, kept, errors = [], [], []
        for index in view_indices:
            try:
                views.append(self.judge_view(source_views[index], edited_views[index], instruction))
                kept.append(index)
            except (OSError, JudgeAnswerError, urllib.error.URLError) as exc:
                errors.append(f"view {index}: {exc.__class__.__name__}: {exc}")
                logger.warning("VIEScore view %d failed: %s", index, exc)
        model = self.endpoint.model
        if not views:
            reason = "every judge request failed: " + "; ".join(errors)
            return VIEScoreResult(None, None, None, [], [], model, reason, errors)
        return VIEScoreResult(
            sc=fmean(v.sc for v in views), pq=fmean(v.pq for v in views), overall=fmean(v.overall for v in views),
            views=views, view_indices=kept, judge_model=model, errors=errors,
        )


def judged_view_indices(num_views: int, count: int) -> list[int]:
    """`count` evaluation views spread evenly over `num_views` (all of them when fewer)."""
    if count >= num_views:
        return list(range(num_views))
    if count == 1:
        return [num_views // 2]
    return [round(i * (num_views - 1) / (count - 1)) for i in range(count)]

