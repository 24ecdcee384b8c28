"""rl3dedit.render: differentiable 3DGS rasterization (gsplat on CUDA, our pure-PyTorch rasterizer elsewhere).

`render(scene, cameras, mode)` is the scene-level entry point returning (V, C, H, W) tensors; `rasterize(...)`
is gsplat's `rasterization()` contract on plain tensors (channels-last output).
"""

from rl3dedit.render._contract import RenderMode, RenderOutput, rasterize, render, render_images
from rl3dedit.render._gsplat_backend import GsplatStatus, gsplat_status

__all__ = ["render", "render_images", "rasterize", "RenderOutput", "RenderMode", "gsplat_status", "GsplatStatus"]
