"""3D data in and out: Gaussian scenes, cameras, captures and their file formats."""

from rl3dedit.scene.cameras import Cameras
from rl3dedit.scene.gaussians import SH_C0, GaussianScene, rgb_to_sh_dc, sh_degree_from_rest

__all__ = ["Cameras", "GaussianScene", "SH_C0", "rgb_to_sh_dc", "sh_degree_from_rest"]
