"""The view set every job edits, trains on or scores around: which cameras, at what size, rendered how.

One function decides it (`prepare_view_set`), so the edit job, `prepare` (training data) and `eval` agree: the same
scene, cameras and settings give the same indices, the same rescaled cameras and the same images.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from rl3dedit.render import render_images
from rl3dedit.render.config import RenderConfig
from rl3dedit.scene import Cameras, GaussianScene
from rl3dedit.views.config import ViewsConfig


@dataclass
class ViewSet:
    """M views of a scene, in grid (row-major) order.

    Fields:
        indices: (M) indices into the scene's cameras.
        cameras: (M) cameras rescaled to the rendered view size (w2c OpenCV viewmats, pixel Ks).
        images: (M, 3, H, W) renders in [0, 1] on the scene's device; None when only cameras were planned.
    """

    indices: list[int]
    cameras: Cameras
    images: torch.Tensor | None = None


def render_size(cameras: Cameras, longer_side: int, align: int = 1) -> tuple[int, int]:
    """(width, height) with the longer side `longer_side` px, the aspect ratio kept, both rounded to `align` px."""
    scale = longer_side / max(cameras.width, cameras.height)
    width = max(align, int(round(cameras.width * scale / align)) * align)
    height = max(align, int(round(cameras.height * scale / align)) * align)
    return width, height


def view_alignment(views: ViewsConfig) -> int:
    """Pixel multiple of the edited views: 16 (one FLUX token) for the `aligned` layout; 2 for `release`, whose
    grid is resized to a Kontext bucket anyway, so only even sizes are kept (video encoders need them)."""
    return 16 if views.layout == "aligned" else 2


def view_indices(cameras: Cameras, views: ViewsConfig) -> list[int]:
    """The `views.num_views` cameras the editor sees (`views.select_views`: spread out, overlapping)."""
    from rl3dedit.views import select_views

    return [int(i) for i in select_views(cameras, views.num_views)]


def plan_view_set(cameras: Cameras, views: ViewsConfig, indices: list[int] | None = None) -> ViewSet:
    """The view set's indices and rescaled cameras, without rendering (`indices` default: `view_indices`)."""
    if indices is None:
        indices = view_indices(cameras, views)
    width, height = render_size(cameras, views.view_size, view_alignment(views))
    return ViewSet([int(i) for i in indices], cameras[list(indices)].rescaled(width, height))


def render_view_set(scene: GaussianScene, planned: ViewSet, render: RenderConfig) -> ViewSet:
    """`planned` rendered from `scene` with `render` (background, backend, chunk size); cameras move to the scene's
    device."""
    cameras = planned.cameras.to(scene.means.device)
    images = render_images(scene, cameras, tuple(render.background), backend=render.backend,
                           chunk_size=render.chunk_size)
    return ViewSet(list(planned.indices), cameras, images)


def prepare_view_set(scene: GaussianScene, cameras: Cameras, views: ViewsConfig, render: RenderConfig,
                     indices: list[int] | None = None) -> ViewSet:
    """Choose (or take `indices`), size and render the views of `scene` the editor sees.

    Size: longer side `views.view_size`, aspect kept, multiples of `view_alignment(views)`. Renders use
    `render.background` and `render.backend`; images are (M, 3, H, W) in [0, 1] on the scene's device.
    """
    return render_view_set(scene, plan_view_set(cameras, views, indices), render)
