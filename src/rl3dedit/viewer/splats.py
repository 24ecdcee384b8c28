"""Our Gaussians as the arrays viser's splat renderer takes."""

from __future__ import annotations

import numpy as np
import torch

from rl3dedit.scene import SH_C0, GaussianScene
from rl3dedit.scene.pose import quaternion_to_matrix


def splat_arrays(scene: GaussianScene) -> dict[str, np.ndarray]:
    """centers (N, 3), covariances (N, 3, 3) = R diag(s^2) R^T, rgbs (N, 3) in [0, 1], opacities (N, 1), float32.

    Colours are the view-independent degree-0 SH term (viser renders one colour per splat); quaternions are wxyz.
    """
    with torch.no_grad():
        rotation = quaternion_to_matrix(scene.quats.detach().float().cpu())
        scales = scene.log_scales.detach().float().cpu().exp()
        covariances = rotation @ torch.diag_embed(scales.square()) @ rotation.transpose(1, 2)
        rgbs = (scene.sh_dc.detach().float().cpu() * SH_C0 + 0.5).clamp(0, 1)
        opacities = torch.sigmoid(scene.opacity_logits.detach().float().cpu())[:, None]
    return {
        "centers": scene.means.detach().float().cpu().numpy(),
        "covariances": covariances.numpy(),
        "rgbs": rgbs.numpy(),
        "opacities": opacities.numpy(),
    }
