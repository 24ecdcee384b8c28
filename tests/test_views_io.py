"""Image files: save/load round trip, atomic writes, folders of views, comparison sheets."""

from __future__ import annotations

import pytest
import torch

from rl3dedit.views import load_image, load_views, make_comparison_sheet, save_image


def test_png_round_trip_is_exact_at_8_bits(tmp_path):
    image = torch.randint(0, 256, (3, 10, 12)).float() / 255
    path = save_image(image, tmp_path / "sub" / "a.png")
    torch.testing.assert_close(load_image(path), image, atol=1e-7, rtol=0)
    assert sorted(p.name for p in path.parent.iterdir()) == ["a.png"]  # no temporary file left behind


def test_save_errors(tmp_path):
    with pytest.raises(ValueError, match=r"a.png\): expected a \(3, H, W\)"):
        save_image(torch.zeros(4, 4), tmp_path / "a.png")
    with pytest.raises(ValueError, match="unknown image suffix '.xyz'"):
        save_image(torch.zeros(3, 4, 4), tmp_path / "a.xyz")
    (tmp_path / "bad.png").write_bytes(b"not an image")
    with pytest.raises(ValueError, match=r"bad.png: not a readable image"):
        load_image(tmp_path / "bad.png")


def test_load_views_sorted(tmp_path):
    for name, value in [("b.png", 0.2), ("a.png", 0.6), ("c.jpg", 1.0)]:
        save_image(torch.full((3, 8, 8), value), tmp_path / name)
    (tmp_path / "notes.txt").write_text("ignored")
    views = load_views(tmp_path)
    assert views.shape == (3, 3, 8, 8)
    assert views[:, 0, 0, 0].tolist() == pytest.approx([0.6, 0.2, 1.0], abs=0.01)
    save_image(torch.zeros(3, 4, 4), tmp_path / "d.png")
    with pytest.raises(ValueError, match="different sizes"):
        load_views(tmp_path)


def test_comparison_sheet_layout():
    source, edited = torch.zeros(3, 3, 10, 12), torch.ones(3, 3, 10, 12) * 0.5
    sheet = make_comparison_sheet([source, edited], ["source", "edited"], gap=4)
    label_w = 8 + 7 * len("source")
    assert sheet.shape == (3, 2 * 14 + 4, label_w + 3 * 16)
    assert torch.equal(sheet[:, 4:14, label_w : label_w + 12], source[0])
    assert torch.equal(sheet[:, 18:28, label_w + 16 : label_w + 28], edited[1])
    assert sheet[:, 4:14, :label_w].min() < 0.5  # the label text is drawn
    with pytest.raises(ValueError, match="one label per row"):
        make_comparison_sheet([source], ["a", "b"])
