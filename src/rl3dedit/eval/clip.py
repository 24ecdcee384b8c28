"""CLIP text-image similarity (CLIP-T) and CLIP directional similarity (CLIP-dir) on rendered views.

Definitions follow Instruct-NeRF2NeRF's metric script (https://github.com/ayaanzhaque/instruct-nerf2nerf,
`metrics/clip_metrics.py`), InstructPix2Pix and StyleGAN-NADA; RL3DEdit reports CLIP-dir on novel-view renders.
Embeddings come from transformers' `CLIPModel` (default backbone ViT-L/14, `openai/clip-vit-large-patch14`).
Images are preprocessed here in torch (torchvision is not used), one of two ways (`eval.clip_preprocess`): `crop`,
OpenAI CLIP's transform (bicubic resize of the shorter side, centre crop), or `squash`, IN2N's script (bicubic
resize of the whole image to size x size, so wide views keep their sides).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F

logger = logging.getLogger(__name__)

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
"""OpenAI CLIP's per-channel RGB mean (inputs in [0, 1])."""
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
"""OpenAI CLIP's per-channel RGB standard deviation."""
_EPS = 1e-8


ClipPreprocess = Literal["squash", "crop"]


def clip_preprocess(images: torch.Tensor, size: int, mode: ClipPreprocess = "crop") -> torch.Tensor:
    """Images (V, 3, H, W) in [0, 1] -> CLIP pixel values (V, 3, size, size), normalised with `CLIP_MEAN`/`CLIP_STD`.

    - `crop` (OpenAI CLIP): resize so the shorter side is `size` (bicubic, antialiased, clamped back to [0, 1] as an
      8-bit pipeline would), centre-crop to `size` x `size`;
    - `squash` (IN2N's metrics script): resize the whole image to `size` x `size` (bicubic, as that script calls
      `F.interpolate`), changing its aspect ratio instead of dropping its sides.
    """
    if images.ndim != 4 or images.shape[1] != 3:
        raise ValueError(f"images must be (V, 3, H, W), got {tuple(images.shape)}")
    if mode == "squash":
        cropped = F.interpolate(images.float(), size=(size, size), mode="bicubic", align_corners=False)
    elif mode == "crop":
        _, _, height, width = images.shape
        scale = size / min(height, width)
        new_h, new_w = max(size, round(height * scale)), max(size, round(width * scale))
        resized = F.interpolate(images.float(), size=(new_h, new_w), mode="bicubic", antialias=True,
                                align_corners=False)
        top, left = (new_h - size) // 2, (new_w - size) // 2
        cropped = resized[:, :, top : top + size, left : left + size].clamp(0, 1)
    else:
        raise ValueError(f"clip preprocess mode must be 'squash' or 'crop', got {mode!r}")
    mean = torch.tensor(CLIP_MEAN, device=images.device).view(1, 3, 1, 1)
    std = torch.tensor(CLIP_STD, device=images.device).view(1, 3, 1, 1)
    return (cropped - mean) / std


def _unit(x: torch.Tensor) -> torch.Tensor:
    return x / x.norm(dim=-1, keepdim=True).clamp_min(_EPS)


def clip_text_image_similarity(image_embeds: torch.Tensor, text_embed: torch.Tensor) -> torch.Tensor:
    """CLIP-T per view: cos(E_img(edited_v), E_txt(target caption)).

    Args:
        image_embeds: (V, D) image embeddings (any scale; normalised here).
        text_embed: (D,) text embedding of the target caption.
    Returns:
        (V,) cosine similarities in [-1, 1] (not multiplied by 100).
    """
    return (_unit(image_embeds) @ _unit(text_embed)).float()


def clip_directional_similarity(
    source_image_embeds: torch.Tensor,
    edited_image_embeds: torch.Tensor,
    source_text_embed: torch.Tensor,
    target_text_embed: torch.Tensor,
) -> torch.Tensor:
    """CLIP-dir per view: cos(dI_v, dT) with dI_v = e(edited_v) - e(source_v), dT = e(target) - e(source caption).

    Every embedding e(.) is L2-normalised first (as Instruct-NeRF2NeRF's `clip_metrics.py` does), so the score
    ignores each embedding's scale; swapping the two captions flips its sign.

    Args:
        source_image_embeds, edited_image_embeds: (V, D) embeddings of the same V novel views before and after.
        source_text_embed, target_text_embed: (D,) caption embeddings.
    Returns:
        (V,) cosines in [-1, 1]; 0 for a view whose edited image embeds exactly like its source (no direction).
    """
    if source_image_embeds.shape != edited_image_embeds.shape:
        raise ValueError(
            f"source and edited image embeddings differ in shape: {tuple(source_image_embeds.shape)} "
            f"vs {tuple(edited_image_embeds.shape)}"
        )
    delta_image = _unit(edited_image_embeds) - _unit(source_image_embeds)
    delta_text = _unit(target_text_embed) - _unit(source_text_embed)
    return (_unit(delta_image) @ _unit(delta_text)).float()


def clip_direction_consistency(source_image_embeds: torch.Tensor, edited_image_embeds: torch.Tensor) -> torch.Tensor:
    """CLIP direction consistency along a view path (Instruct-NeRF2NeRF appendix), per step:
    cos(e(edited_{v+1}) - e(edited_v), e(source_{v+1}) - e(source_v)) with L2-normalised embeddings e(.).

    Args:
        source_image_embeds, edited_image_embeds: (V, D) embeddings of consecutive views, V >= 2.
    Returns:
        (V-1,) cosines in [-1, 1]; high when the edited views change from view to view as the source views do.
    """
    if source_image_embeds.shape != edited_image_embeds.shape or source_image_embeds.shape[0] < 2:
        raise ValueError(
            f"need two (V >= 2, D) embedding stacks of one shape, got {tuple(source_image_embeds.shape)} and "
            f"{tuple(edited_image_embeds.shape)}"
        )
    source, edited = _unit(source_image_embeds), _unit(edited_image_embeds)
    return (_unit(edited[1:] - edited[:-1]) * _unit(source[1:] - source[:-1])).sum(-1).float()


@dataclass
class ClipScores:
    """CLIP metrics of one case, per novel view.

    Fields:
        clip_t: (V,) cos(edited view, target caption).
        clip_t_source: (V,) cos(source view, target caption), the same score before the edit (for reference).
        clip_dir: (V,) directional similarity, `clip_directional_similarity`.
        clip_image: (V,) cos(edited view, source view), how much of the image the edit kept.
        clip_consistency: (V-1,) `clip_direction_consistency` between consecutive views (empty when V = 1).
    """

    clip_t: torch.Tensor
    clip_t_source: torch.Tensor
    clip_dir: torch.Tensor
    clip_image: torch.Tensor
    clip_consistency: torch.Tensor


class ClipScorer:
    """A CLIP model and tokenizer that embed views and captions (no gradients, float32); `preprocess` is how views
    become CLIP's square input (`clip_preprocess`)."""

    def __init__(self, model, tokenizer, *, name: str, preprocess: ClipPreprocess = "crop") -> None:
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.name = name
        self.preprocess = preprocess
        self.image_size = int(model.config.vision_config.image_size)
        self.max_length = int(model.config.text_config.max_position_embeddings)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @torch.no_grad()
    def embed_images(self, images: torch.Tensor) -> torch.Tensor:
        """Images (V, 3, H, W) in [0, 1] -> L2-normalised embeddings (V, D)."""
        pixels = clip_preprocess(images.to(self.device), self.image_size, self.preprocess)
        out = self.model.get_image_features(pixel_values=pixels)
        features = out if isinstance(out, torch.Tensor) else out.pooler_output
        return _unit(features.float())

    @torch.no_grad()
    def embed_texts(self, texts: list[str]) -> torch.Tensor:
        """Captions -> L2-normalised embeddings (T, D); longer captions are truncated to the model's context."""
        tokens = self.tokenizer(
            texts, padding="max_length", truncation=True, max_length=self.max_length, return_tensors="pt"
        )
        out = self.model.get_text_features(
            input_ids=tokens["input_ids"].to(self.device), attention_mask=tokens["attention_mask"].to(self.device)
        )
        features = out if isinstance(out, torch.Tensor) else out.pooler_output
        return _unit(features.float())

    def score(
        self, source_views: torch.Tensor, edited_views: torch.Tensor, *, source_caption: str, target_caption: str
    ) -> ClipScores:
        """All CLIP metrics for V novel views rendered before (source) and after (edited) the edit, (V, 3, H, W)."""
        if source_views.shape != edited_views.shape:
            raise ValueError(
                f"source and edited views differ in shape: {tuple(source_views.shape)} vs {tuple(edited_views.shape)}"
            )
        source_img = self.embed_images(source_views)
        edited_img = self.embed_images(edited_views)
        source_txt, target_txt = self.embed_texts([source_caption, target_caption])
        return ClipScores(
            clip_t=clip_text_image_similarity(edited_img, target_txt).cpu(),
            clip_t_source=clip_text_image_similarity(source_img, target_txt).cpu(),
            clip_dir=clip_directional_similarity(source_img, edited_img, source_txt, target_txt).cpu(),
            clip_image=(edited_img * source_img).sum(-1).float().cpu(),
            clip_consistency=(
                clip_direction_consistency(source_img, edited_img).cpu() if len(source_img) > 1 else torch.zeros(0)
            ),
        )


def build_tiny_clip(seed: int = 0) -> ClipScorer:
    """A small random `CLIPModel` (2 layers, 32-px images) with the editor's offline CLIP tokenizer, for tests."""
    from transformers import CLIPConfig, CLIPModel

    from rl3dedit.editor import build_tiny_clip_tokenizer

    tokenizer = build_tiny_clip_tokenizer()
    text = dict(
        vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
        max_position_embeddings=int(tokenizer.model_max_length) if tokenizer.model_max_length < 10_000 else 77,
        eos_token_id=tokenizer.eos_token_id, bos_token_id=tokenizer.bos_token_id,
        pad_token_id=tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id,
    )
    vision = dict(
        image_size=32, patch_size=8, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2
    )
    config = CLIPConfig(text_config=text, vision_config=vision, projection_dim=16)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = CLIPModel(config)
    return ClipScorer(model, tokenizer, name="tiny")


def load_clip(name: str, device: torch.device | str = "cpu", preprocess: ClipPreprocess = "crop") -> ClipScorer:
    """`tiny` (offline random CLIP) or a hub id / local folder of a transformers CLIP checkpoint, preprocessing
    views with `preprocess` (`eval.clip_preprocess`).

    Raises FileNotFoundError naming `eval.clip_model` when the weights cannot be loaded (e.g. offline, not cached).
    """
    if name == "tiny":
        scorer = build_tiny_clip()
        scorer.preprocess = preprocess
        return _moved(scorer, device)
    from transformers import AutoTokenizer, CLIPModel

    from rl3dedit.hub import looks_like_repo_id, resolve

    local_only = False
    if looks_like_repo_id(name):  # fail within the hub deadline with the true reason, not after minutes of retries
        local_only = resolve(name, "config.json", what="CLIP model", hint="set eval.clip_model (--clip-model) to a "
                             "local transformers CLIP folder, or to `tiny` for pipeline checks").local_only
    try:
        model = CLIPModel.from_pretrained(name, dtype=torch.float32, local_files_only=local_only)
        tokenizer = AutoTokenizer.from_pretrained(name, local_files_only=local_only)
    except (OSError, ValueError) as exc:
        raise FileNotFoundError(
            f"CLIP model {name!r} could not be loaded ({exc.__class__.__name__}: {exc}). Set eval.clip_model "
            "(or --clip-model) to a local transformers CLIP folder or a cached hub id such as "
            "openai/clip-vit-large-patch14, or to `tiny` for pipeline checks; or drop `clip` from eval.metrics."
        ) from exc
    logger.info("CLIP metrics with %s", name)
    return _moved(ClipScorer(model, tokenizer, name=name, preprocess=preprocess), device)


def _moved(scorer: ClipScorer, device: torch.device | str) -> ClipScorer:
    scorer.model.to(device)
    return scorer
