"""INRIA 3DGS `.ply` files and SfM point-cloud `.ply` files (INRIA 3DGS, docs/references.md §5).

Splat files hold one `vertex` element, binary little-endian, every property float32, in the order
``x y z nx ny nz f_dc_0..2 f_rest_0..(3K-1) opacity scale_0..2 rot_0..3`` (K = (degree + 1)^2 - 1). Values are stored
pre-activation; `rot_*` is a wxyz quaternion; `f_rest` is channel-major (all R coefficients, then G, then B), so it
is reshaped to (N, 3, K) and transposed to our (N, K, 3). nx ny nz are written as zeros (viewers expect them).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from plyfile import PlyData, PlyElement, PlyListProperty, PlyParseError

from rl3dedit.errors import InputError
from rl3dedit.files import atomic_path
from rl3dedit.scene.gaussians import GaussianScene

logger = logging.getLogger(__name__)

_BASE_PROPERTIES = ("x", "y", "z", "nx", "ny", "nz", "f_dc_0", "f_dc_1", "f_dc_2")
_TAIL_PROPERTIES = ("opacity", "scale_0", "scale_1", "scale_2", "rot_0", "rot_1", "rot_2", "rot_3")
_REQUIRED = tuple(p for p in _BASE_PROPERTIES + _TAIL_PROPERTIES if p not in ("nx", "ny", "nz"))
_VALID_REST_COUNTS = {0: 0, 9: 1, 24: 2, 45: 3}


@dataclass
class PointCloud:
    """Coloured SfM points.

    Fields:
        points: (P, 3) float32 world positions.
        colors: (P, 3) float32 RGB in [0, 1].
    """

    points: torch.Tensor
    colors: torch.Tensor


def splat_property_names(sh_degree: int) -> list[str]:
    """The INRIA property names, in file order, for SH degree 0..3."""
    num_rest = 3 * ((sh_degree + 1) ** 2 - 1)
    return [*_BASE_PROPERTIES, *(f"f_rest_{i}" for i in range(num_rest)), *_TAIL_PROPERTIES]


def _read_plydata(path: Path) -> PlyData:
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such PLY file")
    with path.open("rb") as f:
        magic = f.read(4)
    if magic not in (b"ply\n", b"ply\r"):
        raise ValueError(f"{path}: not a PLY file (expected the header to start with 'ply', found {magic!r})")
    try:
        data = PlyData.read(str(path))
    except PlyParseError as exc:
        if "end-of-file" in str(exc):
            raise InputError(f"{path}: truncated PLY data (the header promises more rows than the file holds): {exc}") from exc
        raise InputError(f"{path}: corrupt PLY header or data: {exc}") from exc
    except (ValueError, TypeError, KeyError, IndexError, UnicodeDecodeError, MemoryError, OverflowError) as exc:
        # plyfile lets numpy/struct errors of a garbage header (bad type names, absurd counts) escape as-is
        raise InputError(f"{path}: corrupt PLY header or data: {type(exc).__name__}: {exc}") from exc
    if not data.text:
        _check_no_trailing_bytes(path, data)
    return data


def _check_no_trailing_bytes(path: Path, data: PlyData) -> None:
    """Binary files whose size exceeds header + rows mean the element count in the header is wrong."""
    if any(isinstance(p, PlyListProperty) for e in data.elements for p in e.properties):
        return  # list rows have variable size; plyfile's own parse is the check
    with path.open("rb") as f:
        header_len = 0
        for line in f:
            header_len += len(line)
            if line.strip() == b"end_header":
                break
    body = sum(e.count * e.data.dtype.itemsize for e in data.elements)
    extra = path.stat().st_size - header_len - body
    if extra > 0:
        counts = ", ".join(f"{e.name}={e.count}" for e in data.elements)
        raise ValueError(
            f"{path}: {extra} bytes after the last element; the header's element counts ({counts}) do not match the data"
        )


def _vertex_element(path: Path, data: PlyData) -> PlyElement:
    names = [e.name for e in data.elements]
    if "vertex" not in names:
        raise ValueError(f"{path}: no 'vertex' element (found elements: {names or 'none'})")
    return data["vertex"]


def read_ply(path: str | Path) -> GaussianScene:
    """Read an INRIA 3DGS `.ply` into a float32 `GaussianScene` on CPU (bitwise lossless for float32 files).

    Properties are read by name (order and extra properties do not matter; any numeric type is cast to float32).
    Errors name the file: not a PLY, corrupt or truncated data, wrong element counts, missing properties (listed),
    an `f_rest` count that is not 3 * ((d + 1)^2 - 1) for d in 0..3, and NaN/inf values.
    """
    path = Path(path)
    vertex = _vertex_element(path, _read_plydata(path))
    present = [p.name for p in vertex.properties]
    missing = [p for p in _REQUIRED if p not in present]
    if missing:
        raise ValueError(f"{path}: not a 3DGS splat file; missing vertex properties: {', '.join(missing)}")
    rest_names = [p for p in present if p.startswith("f_rest_")]
    if len(rest_names) not in _VALID_REST_COUNTS:
        raise ValueError(
            f"{path}: {len(rest_names)} f_rest properties is not a valid SH degree 0..3 (expected 0, 9, 24 or 45)"
        )
    absent_rest = [f"f_rest_{i}" for i in range(len(rest_names)) if f"f_rest_{i}" not in present]
    if absent_rest:
        raise ValueError(f"{path}: f_rest properties are not numbered 0..{len(rest_names) - 1}; missing {absent_rest}")
    if vertex.count == 0:
        raise ValueError(f"{path}: the vertex element has 0 Gaussians")

    def column(*names: str) -> torch.Tensor:
        return torch.from_numpy(np.stack([np.asarray(vertex[n], dtype=np.float32) for n in names], axis=1).copy())

    _check_finite(path, vertex, present)
    _check_splat_values(path, vertex)
    n = vertex.count
    k = len(rest_names) // 3
    sh_rest = column(*(f"f_rest_{i}" for i in range(3 * k))) if k else torch.zeros(n, 0)
    scene = GaussianScene(
        means=column("x", "y", "z"),
        quats=column("rot_0", "rot_1", "rot_2", "rot_3"),
        log_scales=column("scale_0", "scale_1", "scale_2"),
        opacity_logits=column("opacity")[:, 0].contiguous(),
        sh_dc=column("f_dc_0", "f_dc_1", "f_dc_2"),
        sh_rest=sh_rest.reshape(n, 3, k).transpose(1, 2).contiguous(),
    )
    logger.debug("read %d Gaussians (SH degree %d) from %s", n, scene.sh_degree, path)
    return scene


def _check_finite(path: Path, vertex: PlyElement, names: list[str]) -> None:
    bad = [n for n in names if np.issubdtype(vertex[n].dtype, np.floating) and not np.isfinite(vertex[n]).all()]
    if bad:
        raise InputError(f"{path}: non-finite values (NaN or inf) in properties: {', '.join(bad)}")


LOG_SCALE_RANGE = (-40.0, 20.0)
"""Accepted stored (log) Gaussian scales: exp(20) ~ 5e8 scene units is already absurd, and larger values overflow
float32 covariances (s^2) into inf, rendering nothing; exp(-40) ~ 4e-18 is still a finite, harmless speck."""


def _check_splat_values(path: Path, vertex: PlyElement) -> None:
    """Refuse values that render blank or NaN: zero quaternions (no rotation) and impossible scales."""
    quats = np.stack([np.asarray(vertex[f"rot_{i}"], dtype=np.float64) for i in range(4)], axis=1)
    zero = np.flatnonzero(np.linalg.norm(quats, axis=1) < 1e-12)
    if zero.size:
        raise InputError(f"{path}: {zero.size} Gaussian(s) have a zero rotation quaternion (rot_0..rot_3), first at "
                         f"vertex {int(zero[0])}")
    scales = np.stack([np.asarray(vertex[f"scale_{i}"], dtype=np.float64) for i in range(3)], axis=1)
    low, high = LOG_SCALE_RANGE
    bad = np.flatnonzero(((scales < low) | (scales > high)).any(axis=1))
    if bad.size:
        row = int(bad[0])
        raise InputError(f"{path}: {bad.size} Gaussian(s) have log-scales (scale_0..2) outside [{low:g}, {high:g}], "
                         f"first at vertex {row}: [{', '.join(f'{v:g}' for v in scales[row])}]")


def write_ply(scene: GaussianScene, path: str | Path) -> Path:
    """Write `scene` as an INRIA 3DGS `.ply` (binary little-endian float32, viewer-compatible), atomically.

    The file appears only when complete (written to a temporary file beside it, then renamed).
    """
    path = Path(path)
    scene.validate(source=f"write_ply({path})")
    n, k = scene.num_gaussians, scene.sh_rest.shape[1]
    names = splat_property_names(scene.sh_degree)
    cpu = {name: t.detach().to("cpu", torch.float32) for name, t in scene.parameters().items()}
    columns = torch.cat(
        [
            cpu["means"],
            torch.zeros(n, 3),
            cpu["sh_dc"],
            cpu["sh_rest"].transpose(1, 2).reshape(n, 3 * k),
            cpu["opacity_logits"][:, None],
            cpu["log_scales"],
            cpu["quats"],
        ],
        dim=1,
    ).numpy()
    rows = np.empty(n, dtype=[(name, "<f4") for name in names])
    for i, name in enumerate(names):
        rows[name] = columns[:, i]
    with atomic_path(path) as tmp:
        PlyData([PlyElement.describe(rows, "vertex")], text=False, byte_order="<").write(str(tmp))
    return path


def read_points_ply(path: str | Path) -> PointCloud:
    """Read an SfM point cloud `.ply` (ASCII or binary; x y z plus red green blue as uint8 or float in [0, 1]).

    Points without colour properties get grey (0.5). Used for nerfstudio `sparse_pc.ply` and INRIA `points3D.ply`.
    """
    path = Path(path)
    vertex = _vertex_element(path, _read_plydata(path))
    present = [p.name for p in vertex.properties]
    missing = [p for p in ("x", "y", "z") if p not in present]
    if missing:
        raise ValueError(f"{path}: point cloud is missing vertex properties: {', '.join(missing)}")
    points = np.stack([np.asarray(vertex[c], dtype=np.float32) for c in "xyz"], axis=1)
    if all(c in present for c in ("red", "green", "blue")):
        raw = np.stack([np.asarray(vertex[c]) for c in ("red", "green", "blue")], axis=1)
        colors = raw.astype(np.float32) / 255.0 if np.issubdtype(raw.dtype, np.integer) else raw.astype(np.float32)
    else:
        colors = np.full_like(points, 0.5)
    if not (np.isfinite(points).all() and np.isfinite(colors).all()):
        raise ValueError(f"{path}: non-finite values (NaN or inf) in the point cloud")
    return PointCloud(torch.from_numpy(points.copy()), torch.from_numpy(colors.copy()).clamp(0, 1))
