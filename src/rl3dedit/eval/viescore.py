"""VIEScore for text-guided editing with a vision-language judge (Ku et al., ACL 2024,
https://github.com/TIGER-AI-Lab/VIEScore).

Per judged view the judge answers twice on a 0-10 scale:
- semantic consistency, shown the source and the edited image and the instruction: [instruction following,
  absence of over-editing]; SC = min of the two;
- perceptual quality, shown the edited image only: [naturalness, absence of artifacts]; PQ = min of the two;
- overall O = sqrt(SC * PQ).
A case's SC, PQ and O are the means over its judged views (O averaged per view, not recomputed from the means).
RL3DEdit judges with GPT-4.1.

Prompts: our own wording by default (`DEFAULT_PROMPTS`); `eval.judge_prompts: DIR` reads VIEScore's own prompt files
from a copy of the public repository (`load_viescore_prompts`), which published VIEScore numbers were computed with.
The judge is any OpenAI-compatible endpoint reached through `rl3dedit.chat` (environment rule there; model
`RL3DEDIT_JUDGE_MODEL`, default `eval.judge_model`). Without an endpoint the metric is *not computed* (a reason,
never a number).
"""

from __future__ import annotations

import base64
import io
import json
import logging
import math
import re
import urllib.error
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from statistics import fmean

import torch
import torch.nn.functional as F

from rl3dedit.chat import ChatClient, ChatEndpoint, ChatReplyError, endpoint_from_env

logger = logging.getLogger(__name__)

INSTRUCTION = "<instruction>"
"""The placeholder of the instruction in SC templates (VIEScore's own)."""


@dataclass(frozen=True)
class JudgePrompts:
    """The two judge prompt texts; `sc` holds the `<instruction>` placeholder. `source` says where they came from."""

    sc: str
    pq: str
    source: str = "rl3dedit"

    def sc_prompt(self, instruction: str) -> str:
        return self.sc.replace(INSTRUCTION, instruction)


DEFAULT_PROMPTS = JudgePrompts(
    sc="""You judge an AI image edit. The first image is the original, the second is the edited result.
Editing instruction: <instruction>

Give two integer scores from 0 to 10:
1. Instruction following: 0 = the edit does not do what the instruction asks, 10 = it does it completely.
2. Over-editing: 0 = the edited image changes far more than the instruction asks (a different scene or subject),
   10 = everything the instruction does not mention is kept as it was.
Answer with JSON only: {"reasoning": "<one or two sentences>", "score": [<instruction following>, <over-editing>]}""",
    pq="""You judge the visual quality of an AI-generated image.

Give two integer scores from 0 to 10:
1. Naturalness: 0 = the image looks implausible or unnatural (wrong lighting, shapes or proportions),
   10 = it looks fully natural.
2. Artifacts: 0 = heavy blur, ghosting, distortion, noise or broken regions, 10 = no visible artifacts.
Answer with JSON only: {"reasoning": "<one or two sentences>", "score": [<naturalness>, <artifacts>]}""",
)
"""Our own wording of VIEScore's text-guided-editing ("tie") rules; scores are not comparable with published ones."""

VIESCORE_FILES = {
    "context": "context_no_delimit.txt",
    "edit_rule": "prompts_0shot/two_image_edit_rule.txt",
    "sc_rule": "prompts_0shot/tie_rule_SC.txt",
    "pq_rule": "prompts_0shot/rule_PQ.txt",
}
"""VIEScore's 0-shot editing prompt files, relative to its `viescore/prompts_raw/` folder."""


def load_viescore_prompts(folder: str | Path) -> JudgePrompts:
    """The judge prompts of a copy of the VIEScore repository, assembled as VIEScore's `tie` task does.

    `folder` is the repository's `viescore/prompts_raw` folder, or a folder holding `prompts_raw/` (`viescore/`) or
    `viescore/prompts_raw/` (the repository root). SC = context + two-image edit rule + tie SC rule, PQ = context +
    PQ rule, joined by newlines; the SC text keeps VIEScore's `<instruction>` placeholder.
    """
    folder = Path(folder)
    candidates = [folder, folder / "prompts_raw", folder / "viescore" / "prompts_raw"]
    root = next((c for c in candidates if (c / VIESCORE_FILES["context"]).is_file()), None)
    if root is None:
        raise FileNotFoundError(
            f"eval.judge_prompts={folder}: no {VIESCORE_FILES['context']} in it, in prompts_raw/ or in "
            "viescore/prompts_raw/; point it at the prompts_raw folder of a copy of "
            "https://github.com/TIGER-AI-Lab/VIEScore")
    texts = {}
    for key, name in VIESCORE_FILES.items():
        path = root / name
        if not path.is_file():
            raise FileNotFoundError(f"eval.judge_prompts: {path} is missing (VIEScore's layout has it)")
        texts[key] = path.read_text(encoding="utf-8")
    sc = "\n".join([texts["context"], texts["edit_rule"], texts["sc_rule"]])
    if INSTRUCTION not in sc:
        raise ValueError(f"eval.judge_prompts: {root / VIESCORE_FILES['sc_rule']} has no {INSTRUCTION} placeholder")
    return JudgePrompts(sc=sc, pq="\n".join([texts["context"], texts["pq_rule"]]), source=str(root))


def judge_endpoint_from_env(default_model: str, env: Mapping[str, str] | None = None) -> ChatEndpoint | None:
    """The judge's endpoint (`rl3dedit.chat` rule; `RL3DEDIT_JUDGE_MODEL` overrides the model), or None."""
    return endpoint_from_env(default_model, model_var="RL3DEDIT_JUDGE_MODEL", env=env)


class JudgeAnswerError(ValueError):
    """The judge's reply holds no usable pair of 0-10 scores."""


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
    """Asks one OpenAI-compatible endpoint for VIEScore judgements (two requests per view).

    A reply without a usable pair of scores is asked again, up to `client.retries` times.
    """

    def __init__(self, client: ChatClient, *, image_size: int = 512, prompts: JudgePrompts = DEFAULT_PROMPTS) -> None:
        self.client = client
        self.image_size = image_size
        self.prompts = prompts

    def _ask(self, prompt: str, images: list[torch.Tensor]) -> JudgeAnswer:
        content = [{"type": "text", "text": prompt}] + [
            {"type": "image_url", "image_url": {"url": image_data_url(image, self.image_size)}} for image in images
        ]
        messages = [{"role": "user", "content": content}]
        for attempt in range(self.client.retries + 1):
            try:
                return parse_judge_answer(self.client.complete(messages, temperature=0))
            except (JudgeAnswerError, ChatReplyError) as exc:
                if attempt == self.client.retries:
                    raise JudgeAnswerError(str(exc)) from exc
                logger.info("judge reply unusable (%s); asking again", exc)
        raise AssertionError("unreachable")

    def judge_view(self, source: torch.Tensor, edited: torch.Tensor, instruction: str) -> ViewJudgement:
        """VIEScore of one view: `source`, `edited` (3, H, W) in [0, 1]."""
        sc = self._ask(self.prompts.sc_prompt(instruction), [source, edited])
        pq = self._ask(self.prompts.pq, [edited])
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
        model = self.client.model
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

