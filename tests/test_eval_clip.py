"""CLIP-T and CLIP-dir: definitions on controlled embeddings, preprocessing, and the tiny offline CLIP end to end."""

import pytest
import torch

from rl3dedit.eval.clip import (
    CLIP_MEAN,
    CLIP_STD,
    build_tiny_clip,
    clip_direction_consistency,
    clip_directional_similarity,
    clip_preprocess,
    clip_text_image_similarity,
    load_clip,
)


def _embeds(seed: int = 0, v: int = 5, d: int = 16):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(v, d, generator=g), torch.randn(v, d, generator=g), torch.randn(d, generator=g),
            torch.randn(d, generator=g))


def test_clip_dir_is_scale_invariant_and_flips_with_swapped_captions():
    src_img, edit_img, src_txt, tgt_txt = _embeds()
    base = clip_directional_similarity(src_img, edit_img, src_txt, tgt_txt)
    scales = torch.linspace(0.5, 3.0, src_img.shape[0])[:, None]
    scaled = clip_directional_similarity(src_img * scales, edit_img * 7.0, src_txt * 0.1, tgt_txt * 4.0)
    torch.testing.assert_close(scaled, base, atol=1e-5, rtol=1e-5)
    swapped = clip_directional_similarity(src_img, edit_img, tgt_txt, src_txt)
    torch.testing.assert_close(swapped, -base)
    assert base.shape == (5,) and (base.abs() <= 1 + 1e-6).all()


def test_clip_dir_is_one_when_image_moves_along_the_text_direction():
    d = 8
    src_txt, tgt_txt = torch.eye(d)[0], torch.eye(d)[1]
    src_img = torch.eye(d)[0][None].repeat(3, 1)
    edit_img = torch.eye(d)[1][None].repeat(3, 1)
    torch.testing.assert_close(clip_directional_similarity(src_img, edit_img, src_txt, tgt_txt), torch.ones(3))
    # No change in the image: no direction, score 0 (not NaN).
    assert clip_directional_similarity(src_img, src_img, src_txt, tgt_txt).eq(0).all()


def test_direction_consistency_rewards_edits_that_move_like_the_source():
    src_img = torch.eye(4)[:3] * 2.0  # three views whose embeddings step along different axes
    edited_same = src_img + torch.tensor([0.0, 0.0, 0.0, 0.3])  # a constant shift: steps keep their directions
    consistency = clip_direction_consistency(src_img, edited_same)
    assert consistency.shape == (2,) and (consistency > 0.8).all()
    flickering = torch.stack([src_img[0], src_img[2], src_img[1]])  # the edited path jumps the other way
    assert (clip_direction_consistency(src_img, flickering) < consistency).all()
    with pytest.raises(ValueError, match="V >= 2"):
        clip_direction_consistency(src_img[:1], src_img[:1])


def test_clip_t_is_cosine():
    img = torch.tensor([[3.0, 0.0], [1.0, 1.0], [0.0, -2.0]])
    txt = torch.tensor([2.0, 0.0])
    torch.testing.assert_close(clip_text_image_similarity(img, txt), torch.tensor([1.0, 2**-0.5, 0.0]))


def test_preprocess_resizes_crops_and_normalises():
    images = torch.zeros(2, 3, 40, 80)
    images[:, :, :, 20:60] = 1.0  # the centre square is white, the sides black
    out = clip_preprocess(images, 16)
    assert out.shape == (2, 3, 16, 16)
    white = (1 - torch.tensor(CLIP_MEAN)) / torch.tensor(CLIP_STD)
    torch.testing.assert_close(out[0, :, 8, 8], white, atol=1e-4, rtol=0)
    with pytest.raises(ValueError, match=r"\(V, 3, H, W\)"):
        clip_preprocess(torch.zeros(3, 8, 8), 16)


def test_tiny_clip_scores_offline_and_reproducibly():
    scorer = build_tiny_clip(seed=0)
    g = torch.Generator().manual_seed(1)
    source, edited = torch.rand(3, 3, 24, 24, generator=g), torch.rand(3, 3, 24, 24, generator=g)
    a = scorer.score(source, edited, source_caption="a red cube", target_caption="a blue cube")
    b = build_tiny_clip(seed=0).score(source, edited, source_caption="a red cube", target_caption="a blue cube")
    torch.testing.assert_close(a.clip_dir, b.clip_dir)
    assert a.clip_t.shape == a.clip_dir.shape == a.clip_image.shape == (3,)
    swapped = scorer.score(source, edited, source_caption="a blue cube", target_caption="a red cube")
    torch.testing.assert_close(swapped.clip_dir, -a.clip_dir, atol=1e-5, rtol=1e-5)
    texts = scorer.embed_texts(["a red cube", "a blue cube"])
    assert texts.shape[0] == 2 and not torch.allclose(texts[0], texts[1])
    torch.testing.assert_close(texts.norm(dim=-1), torch.ones(2))


def test_missing_clip_weights_fail_fast_naming_the_setting(tmp_path):
    with pytest.raises(FileNotFoundError, match="eval.clip_model"):
        load_clip(str(tmp_path / "no-such-clip"))
    assert load_clip("tiny").name == "tiny"


def test_squash_keeps_the_sides_of_a_wide_view_and_crop_drops_them():
    images = torch.zeros(1, 3, 40, 80)
    images[:, :, :, :10] = 1.0  # a white band on the far left, outside the centre square
    black = (0 - torch.tensor(CLIP_MEAN)) / torch.tensor(CLIP_STD)
    white = (1 - torch.tensor(CLIP_MEAN)) / torch.tensor(CLIP_STD)
    crop = clip_preprocess(images, 16, "crop")
    squash = clip_preprocess(images, 16, "squash")
    torch.testing.assert_close(crop[0, :, 8, 0], black, atol=1e-4, rtol=0)  # the band was cropped away
    torch.testing.assert_close(squash[0, :, 8, 0], white, atol=1e-4, rtol=0)  # squashed in, 80 px -> 16 px
    # squash equals IN2N's bicubic F.interpolate of the whole image to size x size, then the CLIP normalisation
    expected = torch.nn.functional.interpolate(images, size=16, mode="bicubic", align_corners=False)
    mean, std = torch.tensor(CLIP_MEAN).view(1, 3, 1, 1), torch.tensor(CLIP_STD).view(1, 3, 1, 1)
    torch.testing.assert_close(squash, (expected - mean) / std)
    with pytest.raises(ValueError, match="squash"):
        clip_preprocess(images, 16, "pad")


def test_eval_clip_preprocess_setting_reaches_the_scorer():
    from rl3dedit.config import load_config
    from rl3dedit.eval.scoring import load_metric_models

    cfg = load_config("tiny")
    for mode in ("squash", "crop"):
        eval_cfg = cfg.eval.model_copy(update={"metrics": ["clip"], "clip_preprocess": mode})
        models = load_metric_models(cfg.model_copy(update={"eval": eval_cfg}), torch.device("cpu"), env={})
        assert models.clip.preprocess == mode
    assert load_config("paper").eval.clip_preprocess == "squash"
