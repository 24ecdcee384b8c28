"""VGGT preprocessing: upstream sizes for crop / pad, white padding, mixed sizes."""

from __future__ import annotations

import logging

import pytest
import torch

from rl3dedit.geometry.vggt import preprocess_images, preprocessed_size


@pytest.mark.parametrize(("hw", "mode", "expected"), [
    ((480, 640), "crop", (392, 518)),   # 4:3 landscape
    ((720, 1280), "crop", (294, 518)),  # 16:9
    ((640, 480), "crop", (518, 518)),   # portrait: centre crop
    ((640, 480), "pad", (518, 518)),
    ((512, 512), "crop", (518, 518)),
])
def test_output_sizes(hw: tuple[int, int], mode: str, expected: tuple[int, int]) -> None:
    out = preprocess_images(torch.rand(2, 3, *hw), mode=mode)  # type: ignore[arg-type]
    assert out.shape == (2, 3, *expected)
    assert 0.0 <= out.min() and out.max() <= 1.0


def test_pad_is_white_and_centred() -> None:
    out = preprocess_images(torch.zeros(1, 3, 64, 32), mode="pad", target_size=56)
    assert preprocessed_size(64, 32, "pad", 56) == (56, 28)
    assert out.shape == (1, 3, 56, 56)
    assert (out[..., :14] == 1).all() and (out[..., -14:] == 1).all() and (out[..., 14:42] == 0).all()


def test_constant_image_stays_constant_and_same_size_is_identity() -> None:
    torch.testing.assert_close(preprocess_images(torch.full((1, 3, 50, 70), 0.3), target_size=56),
                               torch.full((1, 3, 42, 56), 0.3))
    x = torch.rand(1, 3, 42, 56)
    assert torch.equal(preprocess_images(x, target_size=56), x)


def test_mixed_sizes_padded_to_largest(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        out = preprocess_images([torch.rand(3, 40, 56), torch.rand(3, 56, 56)], target_size=56)
    assert out.shape == (2, 3, 56, 56) and "different sizes" in caplog.text
    assert (out[0, :, :7] == 1).all()


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="multiple of 14"):
        preprocess_images(torch.rand(1, 3, 20, 20), target_size=500)
    with pytest.raises(ValueError, match="mode"):
        preprocess_images(torch.rand(1, 3, 20, 20), mode="stretch")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"\(3, H, W\)"):
        preprocess_images(torch.rand(1, 4, 20, 20))


@pytest.mark.parametrize("size", [(256, 192), (1024, 768)])
def test_resize_matches_pil_bicubic_to_a_few_8bit_steps(size: tuple[int, int]) -> None:
    """Upstream resizes 8-bit PIL images with BICUBIC; our float resize agrees up to PIL's 8-bit rounding of its
    intermediate passes (up- and downscaling a sharp random image)."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    small = Image.fromarray((rng.random((48, 64, 3)) * 255).astype(np.uint8))
    source = np.array(small.resize(size, Image.BICUBIC))
    reference = np.asarray(Image.fromarray(source).resize((518, 392), Image.BICUBIC)).astype(np.float32) / 255
    ours = preprocess_images(torch.from_numpy(source).permute(2, 0, 1).float()[None] / 255)[0]
    assert ours.shape == (3, 392, 518)
    diff = np.abs(ours.permute(1, 2, 0).numpy() - reference)
    assert diff.mean() < 0.5 / 255 and diff.max() < 5.0 / 255
