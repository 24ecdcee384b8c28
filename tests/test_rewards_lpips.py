"""Our LPIPS: metric properties, and loading from torchvision + lpips files or one combined file."""

from __future__ import annotations

import pytest
import torch

from rl3dedit.rewards import LPIPS, load_lpips, save_lpips


@pytest.fixture(scope="module")
def lpips() -> LPIPS:
    return load_lpips(seed=0)


def images(seed: int, n: int = 2, size: int = 64) -> torch.Tensor:
    base = torch.rand(n, 3, size // 8, size // 8, generator=torch.Generator().manual_seed(seed))
    return torch.nn.functional.interpolate(base, size=(size, size), mode="bilinear", align_corners=False)


def test_zero_for_identical_and_symmetric(lpips):
    x, y = images(0), images(1)
    assert lpips(x, x).abs().max() == 0
    torch.testing.assert_close(lpips(x, y), lpips(y, x))
    assert (lpips(x, y) > 0).all()


def test_grows_with_distortion(lpips):
    x = images(2, n=1)
    noise = torch.randn(x.shape, generator=torch.Generator().manual_seed(3))
    distances = [float(lpips(x, (x + s * noise).clamp(0, 1))) for s in (0.0, 0.02, 0.05, 0.1, 0.2, 0.4)]
    assert distances[0] == 0
    assert all(a < b for a, b in zip(distances, distances[1:])), distances


def test_combined_file_round_trip(lpips, tmp_path):
    path = tmp_path / "lpips_alex.safetensors"
    save_lpips(lpips, path)
    loaded = load_lpips(path)
    x, y = images(4), images(5)
    torch.testing.assert_close(loaded(x, y), lpips(x, y))
    assert not list(tmp_path.glob(".*tmp"))


def test_torchvision_backbone_plus_lpips_lin_files(lpips, tmp_path):
    state = lpips.state_dict()
    backbone = {k: v for k, v in state.items() if k.startswith("features.")}
    backbone["classifier.1.weight"] = torch.zeros(4, 4)  # torchvision's classifier keys are ignored
    torch.save(backbone, tmp_path / "alexnet.pth")
    torch.save({k: v for k, v in state.items() if k.startswith("lin")}, tmp_path / "alex.pth")
    loaded = load_lpips(tmp_path / "alex.pth", tmp_path / "alexnet.pth")
    x, y = images(6), images(7)
    torch.testing.assert_close(loaded(x, y), lpips(x, y))
    with pytest.raises(ValueError, match="backbone_weights"):
        load_lpips(tmp_path / "alex.pth")


def test_bad_files_are_refused(lpips, tmp_path):
    state = dict(lpips.state_dict())
    state.pop("features.10.bias")
    torch.save(state, tmp_path / "missing.pth")
    with pytest.raises(ValueError, match=r"missing keys \['features.10.bias'\]"):
        load_lpips(tmp_path / "missing.pth")
    state = dict(lpips.state_dict())
    state["lin2.model.1.weight"] = -state["lin2.model.1.weight"]
    torch.save(state, tmp_path / "negative.pth")
    with pytest.raises(ValueError, match="non-negative"):
        load_lpips(tmp_path / "negative.pth")
    with pytest.raises(FileNotFoundError, match="nowhere.pth"):
        load_lpips(tmp_path / "nowhere.pth")
    with pytest.raises(ValueError, match="equal"):
        lpips(images(0), images(0, size=32))
