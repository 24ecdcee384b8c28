"""INRIA splat .ply and SfM point .ply: round trips, file layout, atomic writes, and one test per loader error."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from plyfile import PlyData, PlyElement

from rl3dedit.scene import GaussianScene, read_ply, read_points_ply, write_ply
from rl3dedit.scene import ply as ply_module
from rl3dedit.scene.ply import splat_property_names


def _random_scene(n: int, degree: int, seed: int = 0) -> GaussianScene:
    g = torch.Generator().manual_seed(seed)
    k = (degree + 1) ** 2 - 1
    return GaussianScene(
        means=torch.randn(n, 3, generator=g),
        quats=torch.randn(n, 4, generator=g),
        log_scales=torch.randn(n, 3, generator=g),
        opacity_logits=torch.randn(n, generator=g),
        sh_dc=torch.randn(n, 3, generator=g),
        sh_rest=torch.randn(n, k, 3, generator=g),
    )


@pytest.mark.parametrize("degree", [0, 1, 2, 3])
def test_round_trip_is_bitwise(tmp_path, degree):
    scene = _random_scene(17, degree)
    path = write_ply(scene, tmp_path / "scene.ply")
    back = read_ply(path)
    for name, value in scene.parameters().items():
        assert torch.equal(getattr(back, name), value), name
    assert back.sh_degree == degree


def test_file_layout_matches_inria(tmp_path):
    scene = _random_scene(5, 3)
    # Distinct values per (coefficient, channel) to pin down the channel-major f_rest order.
    scene.sh_rest = torch.arange(15)[None, :, None] + 100 * torch.arange(3)[None, None, :] + torch.zeros(5, 15, 3)
    path = write_ply(scene, tmp_path / "scene.ply")
    data = PlyData.read(str(path))
    assert [e.name for e in data.elements] == ["vertex"]
    assert not data.text and data.byte_order == "<"
    vertex = data["vertex"]
    assert [p.name for p in vertex.properties] == splat_property_names(3)
    assert len(vertex.properties) == 62 and all(vertex[p.name].dtype == np.float32 for p in vertex.properties)
    assert (vertex["nx"] == 0).all() and (vertex["nz"] == 0).all()
    assert vertex["f_rest_1"][0] == 1.0  # R, coefficient 2
    assert vertex["f_rest_15"][0] == 100.0  # G, coefficient 1
    assert vertex["f_rest_44"][0] == 214.0  # B, coefficient 15
    np.testing.assert_array_equal(vertex["rot_0"], scene.quats[:, 0].numpy())  # w first


def test_write_is_atomic(tmp_path, monkeypatch):
    path = tmp_path / "scene.ply"
    write_ply(_random_scene(4, 0), path)
    before = path.read_bytes()

    def boom(self, stream):
        with open(stream, "wb") as f:
            f.write(b"ply\npartial")
        raise OSError("disk full")

    monkeypatch.setattr(ply_module.PlyData, "write", boom)
    with pytest.raises(OSError, match="disk full"):
        write_ply(_random_scene(4, 1), path)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scene.ply"]


def _write_vertex(path, columns: dict[str, np.ndarray], text: bool = False) -> None:
    rows = np.empty(len(next(iter(columns.values()))), dtype=[(k, v.dtype.str) for k, v in columns.items()])
    for k, v in columns.items():
        rows[k] = v
    PlyData([PlyElement.describe(rows, "vertex")], text=text).write(str(path))


def _columns(n: int = 3, rest: int = 0) -> dict[str, np.ndarray]:
    names = [p for p in splat_property_names(0)] + [f"f_rest_{i}" for i in range(rest)]
    cols = {name: np.ones(n, dtype=np.float32) for name in names}
    return cols


def test_error_not_a_ply(tmp_path):
    path = tmp_path / "bad.ply"
    path.write_bytes(b"\x89PNG not a ply")
    with pytest.raises(ValueError, match=rf"{path}.*not a PLY file"):
        read_ply(path)


def test_error_corrupt_header(tmp_path):
    path = tmp_path / "bad.ply"
    path.write_bytes(b"ply\nformat binary_little_endian 1.0\nelement vertex 2\nproperty flot x\nend_header\n")
    with pytest.raises(ValueError, match=rf"{path}.*corrupt PLY header"):
        read_ply(path)


def test_error_missing_properties_are_listed(tmp_path):
    path = tmp_path / "points.ply"
    cols = _columns()
    del cols["opacity"], cols["rot_3"]
    _write_vertex(path, cols)
    with pytest.raises(ValueError, match=rf"{path}.*missing vertex properties: opacity, rot_3"):
        read_ply(path)


def test_error_no_vertex_element(tmp_path):
    path = tmp_path / "faces.ply"
    rows = np.zeros(2, dtype=[("a", "<f4")])
    PlyData([PlyElement.describe(rows, "face_data")]).write(str(path))
    with pytest.raises(ValueError, match=rf"{path}.*no 'vertex' element"):
        read_ply(path)


def test_error_element_count_too_small(tmp_path):
    path = tmp_path / "scene.ply"
    write_ply(_random_scene(5, 0), path)
    raw = path.read_bytes().replace(b"element vertex 5", b"element vertex 4")
    path.write_bytes(raw)
    with pytest.raises(ValueError, match=rf"{path}.*element counts \(vertex=4\) do not match"):
        read_ply(path)


def test_error_truncated_data(tmp_path):
    path = tmp_path / "scene.ply"
    write_ply(_random_scene(5, 1), path)
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(ValueError, match=rf"{path}.*truncated"):
        read_ply(path)


def test_error_non_finite(tmp_path):
    path = tmp_path / "scene.ply"
    cols = _columns()
    cols["scale_1"][1] = np.nan
    cols["x"][0] = np.inf
    _write_vertex(path, cols)
    with pytest.raises(ValueError, match=rf"{path}.*non-finite.*x, scale_1"):
        read_ply(path)


def test_error_invalid_sh_rest_count(tmp_path):
    path = tmp_path / "scene.ply"
    _write_vertex(path, _columns(rest=12))
    with pytest.raises(ValueError, match=rf"{path}.*12 f_rest properties is not a valid SH degree"):
        read_ply(path)


def test_reads_float64_properties_in_any_order(tmp_path):
    path = tmp_path / "scene.ply"
    cols = {k: v.astype(np.float64) for k, v in reversed(list(_columns(n=4, rest=9).items()))}
    cols["f_rest_4"][:] = 7.0  # channel-major with K = 3: index 4 is channel 1 (G), coefficient 1
    _write_vertex(path, cols)
    scene = read_ply(path)
    assert scene.sh_degree == 1 and scene.means.dtype == torch.float32
    assert (scene.sh_rest[:, 1, 1] == 7.0).all()


def test_read_points_ascii_and_binary(tmp_path):
    xyz = np.array([[0, 1, 2], [3, 4, 5]], dtype=np.float32)
    rgb = np.array([[255, 0, 0], [0, 128, 255]], dtype=np.uint8)
    cols = {"x": xyz[:, 0], "y": xyz[:, 1], "z": xyz[:, 2], "red": rgb[:, 0], "green": rgb[:, 1], "blue": rgb[:, 2]}
    for text in (True, False):
        path = tmp_path / f"pc_{text}.ply"
        _write_vertex(path, cols, text=text)
        cloud = read_points_ply(path)
        np.testing.assert_array_equal(cloud.points.numpy(), xyz)
        np.testing.assert_allclose(cloud.colors.numpy(), rgb / 255.0, atol=1e-7)
    path = tmp_path / "noxyz.ply"
    _write_vertex(path, {"x": xyz[:, 0]})
    with pytest.raises(ValueError, match=rf"{path}.*missing vertex properties: y, z"):
        read_points_ply(path)
