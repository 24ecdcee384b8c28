"""Ph-Loss: near zero on consistent renders of one scene, higher when a view is perturbed; VGGT depth is brought to
scene units so an up-to-scale prediction in VGGT's own frame scores like the true depth."""

import math

import pytest
import torch

from rl3dedit.eval.photometric import ph_loss_rendered_depth, ph_loss_vggt
from rl3dedit.geometry.vggt import VGGTOutput, extri_intri_to_pose_encoding
from rl3dedit.render import render
from rl3dedit.scene import Cameras, intrinsics_from_fov, look_at_viewmats
from rl3dedit.synthetic import SYNTHETIC_TARGET, make_synthetic_scene

SIZE = 56


@pytest.fixture(scope="module")
def arc():
    """Five renders (RGB + expected depth) along a 34-degree arc around the synthetic scene."""
    angles = torch.linspace(0.0, 0.6, 5)
    elevation = math.radians(30)
    eyes = torch.stack([
        2.7 * torch.cos(angles) * math.cos(elevation), 2.7 * torch.sin(angles) * math.cos(elevation),
        torch.full_like(angles, 2.7 * math.sin(elevation) + SYNTHETIC_TARGET[2]),
    ], dim=1)
    viewmats = look_at_viewmats(eyes, torch.tensor(SYNTHETIC_TARGET), torch.tensor([0.0, 0.0, 1.0]))
    cameras = Cameras(viewmats, intrinsics_from_fov(50.0, SIZE, SIZE).repeat(5, 1, 1), SIZE, SIZE)
    out = render(make_synthetic_scene(seed=0), cameras, mode="RGB+ED", background=(1.0, 1.0, 1.0))
    return out.rgb.clamp(0, 1), out.depth, cameras


def test_consistent_views_score_near_zero_and_a_perturbed_view_raises_it(arc):
    views, depth, cameras = arc
    clean = ph_loss_rendered_depth(views, depth, cameras, depth_rel_threshold=0.05)
    assert clean.per_pair.shape == (4,) and (clean.valid_fraction > 0.3).all()
    # Bilinear resampling of the textured synthetic scene leaves ~0.03 (mostly SSIM); real edits score ~0.08.
    assert clean.mean < 0.05
    shifted = views.clone()
    shifted[2] = torch.roll(views[2], shifts=4, dims=2)
    noisy = views.clone()
    noisy[2] = torch.rand(3, SIZE, SIZE, generator=torch.Generator().manual_seed(0))
    for perturbed in (shifted, noisy):
        result = ph_loss_rendered_depth(perturbed, depth, cameras, depth_rel_threshold=0.05)
        assert result.mean > 3 * clean.mean
        # Only the two pairs that contain view 2 change.
        torch.testing.assert_close(result.per_pair[[0, 3]], clean.per_pair[[0, 3]])
        assert (result.per_pair[1:3] > 3 * clean.per_pair[1:3]).all()


class _ScaledTruthVGGT(torch.nn.Module):
    """Returns the true depth and cameras in VGGT's conventions: world = camera 0, everything divided by 3."""

    def __init__(self, depth: torch.Tensor, cameras: Cameras) -> None:
        super().__init__()
        self.anchor = torch.nn.Parameter(torch.zeros(()))
        relative = cameras.viewmats @ torch.linalg.inv(cameras.viewmats[0])
        extrinsic = relative[:, :3, :].clone()
        extrinsic[:, :, 3] /= 3.0
        self.pose_enc = extri_intri_to_pose_encoding(extrinsic[None], cameras.Ks[None], (SIZE, SIZE))
        self.depth = depth[:, 0, :, :, None][None] / 3.0

    def forward(self, images: torch.Tensor) -> VGGTOutput:
        assert images.shape == (1, 5, 3, SIZE, SIZE)
        return VGGTOutput(pose_enc=self.pose_enc, depth=self.depth)


def test_vggt_depth_is_aligned_to_scene_units(arc):
    views, depth, cameras = arc
    truth = ph_loss_rendered_depth(views, depth, cameras, depth_rel_threshold=0.05)
    result = ph_loss_vggt(views, cameras, _ScaledTruthVGGT(depth, cameras), image_size=SIZE, depth_rel_threshold=0.05)
    assert result.depth_scale == pytest.approx(3.0, rel=1e-4)
    assert result.mean == pytest.approx(truth.mean, rel=1e-3)


def test_bad_inputs_are_named(arc):
    views, depth, cameras = arc
    with pytest.raises(ValueError, match="5 views but 4 cameras"):
        ph_loss_rendered_depth(views, depth, cameras[[0, 1, 2, 3]], depth_rel_threshold=0.05)
    with pytest.raises(ValueError, match="depth must be"):
        ph_loss_rendered_depth(views, depth[:, :, :8], cameras, depth_rel_threshold=0.05)
    with pytest.raises(ValueError, match="at least 2 views"):
        ph_loss_rendered_depth(views[:1], depth[:1], cameras[[0]], depth_rel_threshold=0.05)
