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
