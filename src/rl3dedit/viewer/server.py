"""`SceneViewer`: a viser web viewer of a splat scene and its edit, served on localhost.

viser (https://viser.studio) is the web viewer of the nerfstudio/gsplat ecosystem: a Python server pushes the scene
to a three.js client in the browser over a websocket. The viewer shows the source splats or the edited ones (a
before/after toggle in the panel, or `show()` from Python), the edited views' cameras as frustums textured with
their source or edited image (following the toggle), and the turntable path as a curve with small frustums.
"""

from __future__ import annotations

import contextlib
import io
import logging
import socket
from dataclasses import dataclass

import numpy as np
import torch

from rl3dedit.scene import Cameras, GaussianScene
from rl3dedit.scene.pose import matrix_to_quaternion
from rl3dedit.viewer.run_folder import EditedViews
from rl3dedit.viewer.splats import splat_arrays

logger = logging.getLogger(__name__)

HOST = "127.0.0.1"
"""The only address the viewer binds: scenes and images stay on this machine."""
STATES = ("before", "after")


def free_port(host: str = HOST) -> int:
    """A TCP port the OS reports free on `host` (bound and released; the server binds it right after)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


@dataclass
class _Pose:
    """A camera in viser's terms: camera-to-world rotation (wxyz) and position; viser frustums use OpenCV axes."""

    wxyz: np.ndarray
    position: np.ndarray


def _c2w(cameras: Cameras) -> torch.Tensor:
    """(V, 4, 4) float64 camera-to-world matrices on the host."""
    return cameras.c2w.detach().to("cpu", torch.float64)


def _poses(cameras: Cameras) -> list[_Pose]:
    c2w = _c2w(cameras)
    wxyz = matrix_to_quaternion(c2w[:, :3, :3]).numpy()
    return [_Pose(q, m[:3, 3]) for q, m in zip(wxyz, c2w.numpy())]


def _vertical_fov(cameras: Cameras) -> float:
    return float(2 * np.arctan(cameras.height / 2 / float(cameras.Ks[0, 1, 1])))


def _camera_ring_radius(cameras: Cameras, fallback: float) -> float:
    """Median distance of the camera centres from their mean (the size of the capture's camera ring)."""
    centres = _c2w(cameras)[:, :3, 3]
    ring = float((centres - centres.mean(0)).norm(dim=1).median()) if len(cameras) > 1 else 0.0
    return ring if ring > 1e-6 else fallback


def _uint8(image: torch.Tensor) -> np.ndarray:
    """(3, H, W) in [0, 1] -> (H, W, 3) uint8."""
    return (image.detach().float().cpu().clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()


class SceneViewer:
    """A running viser server showing `source` (and `edited`, when given) with a before/after toggle.

    Args:
        source: the scene before the edit. edited: the scene after it (None: no toggle).
        views: the edited views (cameras + source/edited images) shown as frustums, or None.
        turntable: the turntable camera path, or None (then an orbit around the scene is drawn).
        port: TCP port on 127.0.0.1 (None: a free one).
    The server runs in background threads until `close()`; `url` is where a browser opens it.
    """

    def __init__(
        self,
        source: GaussianScene,
        edited: GaussianScene | None = None,
        *,
        views: EditedViews | None = None,
        turntable: Cameras | None = None,
        port: int | None = None,
    ) -> None:
        try:
            import viser
        except ImportError as exc:
            raise ImportError("the viewer needs viser: pip install 'rl3dedit[view]'") from exc

        with contextlib.redirect_stdout(io.StringIO()):  # viser prints its own URL banner; the caller prints `url`
            self._server = viser.ViserServer(host=HOST, port=port or free_port(), verbose=False)
        self._scenes = {"before": source, "after": edited} if edited is not None else {"before": source}
        self._splats = {
            state: self._server.scene.add_gaussian_splats(f"/splats/{state}", **splat_arrays(scene), visible=False)
            for state, scene in self._scenes.items()
        }
        centre, radius = self._bounds(source)
        path = turntable if turntable is not None else self._orbit(source, views)
        # Frustum sizes follow the cameras' own spread: splat clouds of real captures reach far into the background.
        ring = _camera_ring_radius(views.cameras if views is not None else path, fallback=radius)
        self._frustums: dict[str, list] = {state: [] for state in STATES}
        if views is not None:
            self._add_views(views, ring)
        self._add_turntable(path, ring)
        self._set_initial_camera(path, centre)
        self._toggle = None
        if edited is not None:
            self._toggle = self._server.gui.add_button_group("show", list(STATES))
            self._toggle.on_click(lambda event: self.show(event.target.value))
        self._server.gui.add_markdown(self._legend(views, edited is not None))
        self.state = "before"
        self.show("after" if edited is not None else "before")

    @property
    def port(self) -> int:
        return int(self._server.get_port())

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def show(self, state: str) -> None:
        """Show the scene `before` or `after` the edit (the frustum images follow)."""
        if state not in self._scenes:
            raise ValueError(f"cannot show {state!r}: the viewer has {', '.join(self._scenes)}")
        with self._server.atomic():
            for name, handle in self._splats.items():
                handle.visible = name == state
            for name, handles in self._frustums.items():
                for handle in handles:
                    handle.visible = name == state
        self.state = state

    def num_clients(self) -> int:
        return len(self._server.get_clients())

    def close(self) -> None:
        self._server.stop()

    def __enter__(self) -> "SceneViewer":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @staticmethod
    def _bounds(scene: GaussianScene) -> tuple[np.ndarray, float]:
        """Centre and a robust radius (90th percentile distance) of the splat centres."""
        means = scene.means.detach().float().cpu()
        centre = means.median(dim=0).values
        radius = float(torch.quantile((means - centre).norm(dim=1), 0.9)) if means.shape[0] else 1.0
        return centre.numpy(), max(radius, 1e-3)

    def _add_views(self, views: EditedViews, radius: float) -> None:
        fov, aspect = _vertical_fov(views.cameras), views.cameras.width / views.cameras.height
        for i, pose in enumerate(_poses(views.cameras)):
            for state, images, color in (("before", views.source, (60, 60, 200)), ("after", views.edited, (200, 90, 20))):
                self._frustums[state].append(self._server.scene.add_camera_frustum(
                    f"/views/{state}/{i:02d}", fov=fov, aspect=aspect, scale=0.12 * radius, color=color,
                    thickness=2.0, thickness_units="screen",
                    image=_uint8(images[i]) if images.shape[0] else None, wxyz=pose.wxyz, position=pose.position,
                    visible=False,
                ))

    @staticmethod
    def _orbit(scene: GaussianScene, views: EditedViews | None) -> Cameras:
        from rl3dedit.views import turntable_path

        if views is not None:
            return turntable_path(views.cameras, 36)
        means = scene.means.detach().float().cpu()
        bounds = torch.stack([torch.quantile(means, 0.05, dim=0), torch.quantile(means, 0.95, dim=0)])
        return turntable_path(bounds, 36)

    def _add_turntable(self, path: Cameras, radius: float) -> None:
        poses = _poses(path)
        points = np.stack([pose.position for pose in poses])
        # Centripetal Catmull-Rom divides by segment lengths: repeated points (a closed orbit's last frame, the ends of
        # a sweep-and-back path) would put NaN into the client's geometry.
        keep = np.r_[True, np.linalg.norm(np.diff(points, axis=0), axis=1) > 1e-6 * radius]
        points = points[keep]
        closed = len(points) > 2 and np.linalg.norm(points[-1] - points[0]) < 1e-6 * radius
        if closed:
            points = points[:-1]
        if len(points) >= 2:
            self._server.scene.add_spline_catmull_rom(
                "/turntable/path", points, closed=closed, thickness=2.0, thickness_units="screen", color=(230, 180, 0),
            )
        fov, aspect = _vertical_fov(path), path.width / path.height
        step = max(1, len(poses) // 12)
        for i in range(step // 2, len(poses), step):  # none at frame 0, where the initial view sits
            self._server.scene.add_camera_frustum(
                f"/turntable/camera_{i:03d}", fov=fov, aspect=aspect, scale=0.05 * radius, color=(230, 180, 0),
                thickness=1.5, thickness_units="screen", wxyz=poses[i].wxyz, position=poses[i].position,
            )

    def _set_initial_camera(self, path: Cameras, centre: np.ndarray) -> None:
        """Start behind the turntable's first camera (so the path shows), looking at the splats' median centre."""
        c2w = _c2w(path).numpy()
        up = -c2w[:, :3, 1].mean(axis=0)  # OpenCV y points down
        up /= np.linalg.norm(up) + 1e-12
        self._server.scene.set_up_direction(tuple(up))
        camera = self._server.initial_camera
        camera.position = tuple(centre + 1.4 * (c2w[0, :3, 3] - centre))
        camera.look_at = tuple(centre)
        camera.up = tuple(up)
        camera.fov = _vertical_fov(path)

    @staticmethod
    def _legend(views: EditedViews | None, has_edit: bool) -> str:
        lines = ["**rl3dedit viewer**"]
        if has_edit:
            lines.append("`show`: the scene before or after the edit.")
        if views is not None:
            lines.append(f"Frustums: the {len(views.cameras)} edited views (blue: source image, orange: edited).")
        lines.append("Yellow: the turntable path.")
        return "\n\n".join(lines)
