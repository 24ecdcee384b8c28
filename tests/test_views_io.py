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


def _png16(path, samples):
    """Write an (H, W, C) uint16 array as a 16-bit PNG (C = 1 grey or 3 RGB); Pillow cannot write 16-bit colour."""
    import struct
    import zlib

    import numpy as np

    h, w, c = samples.shape
    raw = b"".join(b"\x00" + samples[y].astype(">u2").tobytes() for y in range(h))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", w, h, 16, {1: 0, 3: 2}[c], 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw))
                     + chunk(b"IEND", b""))
    return np.asarray(samples, dtype=np.float64) / 65535.0


@pytest.mark.parametrize("channels", [1, 3])
def test_16_bit_png_is_read_at_full_precision_not_as_white(tmp_path, channels):
    import numpy as np

    samples = np.random.default_rng(0).integers(0, 65536, size=(6, 7, channels), dtype=np.uint16)
    expected = _png16(tmp_path / "deep.png", samples)
    image = load_image(tmp_path / "deep.png")
    assert image.shape == (3, 6, 7)
    want = torch.from_numpy(np.repeat(expected, 3 // channels, axis=2)).permute(2, 0, 1).float()
    torch.testing.assert_close(image, want, atol=1e-6, rtol=0)  # 8-bit reading would be off by up to 1/255
    assert image.max() < 1.0 or samples.max() == 65535  # not saturated


def test_truncated_and_oversized_images_name_the_file(tmp_path):
    from PIL import Image

    from rl3dedit.errors import InputError

    save_image(torch.rand(3, 64, 64), tmp_path / "full.jpg")
    data = (tmp_path / "full.jpg").read_bytes()
    (tmp_path / "cut.jpg").write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match=r"cut.jpg: not a readable image"):
        load_image(tmp_path / "cut.jpg")
    save_image(torch.rand(3, 64, 64), tmp_path / "bomb.png")
    limit = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = 64 * 64 // 4  # > 2x the limit is a DecompressionBombError
    try:
        with pytest.raises(InputError, match=r"bomb.png: image is too large"):
            load_image(tmp_path / "bomb.png")
    finally:
        Image.MAX_IMAGE_PIXELS = limit
