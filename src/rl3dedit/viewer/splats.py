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
        scene = scene.to("cpu")
        rotation = quaternion_to_matrix(scene.quats.float())
        covariances = rotation @ torch.diag_embed(scene.scales.float().square()) @ rotation.transpose(1, 2)
        rgbs = (scene.sh_dc.float() * SH_C0 + 0.5).clamp(0, 1)
        opacities = scene.opacities.float()[:, None]
    return {
        "centers": scene.means.detach().float().numpy(),
        "covariances": covariances.numpy(),
        "rgbs": rgbs.numpy(),
        "opacities": opacities.numpy(),
    }
