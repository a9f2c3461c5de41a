"""The figures drawn without matplotlib: glyph outlines and layout read from the TrueType file
(checked against FreeType, through matplotlib), text filled by the non-zero rule (ink areas
worked out from the outlines), the PDF's structure, the PNG's resolution."""

from __future__ import annotations

import re
import struct
import zlib

import numpy as np
import pytest

from bgbench.reports.sketch import Sketch, _flatten
from bgbench.reports.truetype import Font, FontError, default_font, default_font_path

SAMPLE = [chr(c) for c in range(33, 127)] + ["é", "ß", "Ä", "α", "Ω"]


def test_outlines_are_freetypes_point_for_point():
    """Every contour point of printable ASCII and a few Latin-1 and Greek letters equals the
    one FreeType gives matplotlib's TextPath (unhinted), to its 26.6 fixed point at 100 px/em."""
    from matplotlib.font_manager import FontProperties
    from matplotlib.textpath import TextPath

    font, prop = default_font(), FontProperties(fname=str(default_font_path()))
    for ch in SAMPLE:
        ref = TextPath((0, 0), ch, size=1, prop=prop)
        want = np.array([v for v, c in zip(ref.vertices, ref.codes) if c != 79])  # CLOSEPOLY carries no point
        got = np.array([p for contour in font.outline(font.glyph_index(ch)) for seg in contour for p in seg[1:]])
        assert got.shape == want.shape, ch
        assert np.abs(got - want).max() < 2e-4, ch


def test_layout_equals_freetypes_advances_and_kerning():
    """Glyphs, advances and pair kerning in font units (2048 an em) as FreeType reads them
    (cmap, hmtx, kern): "AV", "AT", "Te" and "y," are kerned in DejaVu Sans."""
    from matplotlib.ft2font import FT2Font, Kerning, LoadFlags

    font = default_font()
    ft = FT2Font(str(default_font_path()))
    ft.set_size(font.units, 72)  # one pixel a font unit
    for text in ("AVATAR Tea, gmm_zivkovic", "frame_difference #1085", "Wallflower/Camouflage", "éß α"):
        x, prev, want = 0.0, None, []
        for ch in text:
            g = ft.get_char_index(ord(ch))
            if prev is not None:
                x += ft.get_kerning(prev, g, Kerning.UNSCALED)
            want.append((x / font.units, g))
            x += ft.load_glyph(g, LoadFlags.NO_HINTING).linearHoriAdvance / 65536
            prev = g
        placed, width = font.layout(text)
        assert [g for _, g in placed] == [g for _, g in want]
        assert np.allclose([p for p, _ in placed], [p for p, _ in want], atol=1e-9), text
        assert width == pytest.approx(x / font.units)
    placed, _ = font.layout("AV")
    assert placed[1][0] < font.advance(font.glyph_index("A"))  # kerned closer


def test_a_missing_glyph_is_the_notdef_box_and_a_bad_font_a_clear_error(tmp_path):
    font = default_font()
    assert font.glyph_index("\u4e2d") == 0 and font.outline(0)  # drawn as the .notdef box
    bad = tmp_path / "font.ttf"
    bad.write_bytes(b"OTTO" + bytes(100))  # CFF outlines: not this reader's
    with pytest.raises(FontError, match="TrueType"):
        Font(bad)
    bad.write_bytes(b"\x00\x01\x00\x00\x00\x05" + bytes(6))  # five tables announced, none there
    with pytest.raises(FontError, match=str(bad)):
        Font(bad)
    with pytest.raises(FontError, match="reinstall matplotlib"):
        Font(tmp_path / "gone.ttf")


def _ink_area(text: str, size: float) -> float:
    """The glyphs' area in square inches, from their outlines alone: each contour's signed
    (shoelace) area, holes winding the other way; no pixels involved."""
    sk = Sketch(8, 1)
    sk.text(0.5, 0.5, text, size)
    total = 0.0
    for contour in sk._outlines(sk.texts[0]):
        p = _flatten(contour, 1.0, 0.0, steps=64)
        x, y = p[:, 0], p[:, 1]
        total += 0.5 * float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1)))
    return abs(total)


@pytest.mark.parametrize("text", ["o", "B8%", "gmm_zivkovic #1085"])
def test_text_pixels_cover_the_outlines_area(text):
    """The raster's ink (coverage summed over pixels) equals the outlines' area, holes
    subtracted: a fill that lost the holes (every contour counted the same way) would be far off."""
    size, dpi = 40.0, 300
    sk = Sketch(8, 1)
    sk.text(0.5, 0.5, text, size)
    ink = (255 - sk.raster(dpi)[..., 0].astype(np.float64)).sum() / 255 / dpi ** 2
    area = _ink_area(text, size)
    # OpenCV fills the samples on a polygon's edge too: strokes come out up to ~1/8 pixel bolder
    assert ink == pytest.approx(area, rel=0.02)
    if text == "o":  # filled solid, the hole would add more than half again
        areas = [abs(0.5 * float(np.dot(p[:, 0], np.roll(p[:, 1], -1)) - np.dot(p[:, 1], np.roll(p[:, 0], -1))))
                 for p in (_flatten(c, 1.0, 0.0, 64) for c in sk._outlines(sk.texts[0]))]
        assert len(areas) == 2 and ink < 0.7 * max(areas)


def test_alignment_and_rotation_place_the_text_box():
    sk = Sketch(3, 2)
    w, h = sk.text_extent("ground truth", 8)
    sk.text(1.5, 1.0, "ground truth", 8, ha="center", va="bottom")
    sk.text(0.3, 1.0, "ground truth", 8, ha="center", va="bottom", rotation=90)
    sk.text(3.0, 2.0, "two\nlines", 8, ha="right", va="top")
    (_, _, (x0, y0, x1, y1)), (_, _, (r0, s0, r1, s1)), (_, _, (t0, u0, t1, u1)) = sk.text_boxes()
    assert (x0 + x1) / 2 == pytest.approx(1.5, abs=0.01) and y0 >= 1.0 - 1e-9 and y1 <= 1.0 + h
    assert x1 - x0 == pytest.approx(w, abs=0.02)
    # rotated a quarter turn counter-clockwise: reads upwards, its bottom on the anchor's left
    assert (s0 + s1) / 2 == pytest.approx(1.0, abs=0.01) and r1 <= 0.3 + 1e-9 and r0 >= 0.3 - h
    assert s1 - s0 == pytest.approx(w, abs=0.02)
    assert t1 <= 3.0 and u1 <= 2.0 and 2.0 - u0 > 1.2 * 8 / 72  # two lines, below the top-right anchor


def test_the_pdf_is_well_formed_and_holds_the_image_unresampled():
    rng = np.random.default_rng(3)
    img = rng.integers(0, 256, (30, 40, 3), np.uint8)
    sk = Sketch(2.0, 1.0)
    sk.image(0.1, 0.2, 1.0, 0.75, img)
    sk.rect(1.3, 0.2, 0.2, 0.1, (0.0, 0.8, 0.0), edge=(0.4, 0.4, 0.4))
    sk.text(1.2, 0.5, "TP", 8)
    data = sk.pdf_bytes()
    assert data == sk.pdf_bytes() and data.startswith(b"%PDF-1.4") and data.endswith(b"%%EOF\n")
    xref = int(re.search(rb"startxref\n(\d+)\n", data).group(1))
    assert data[xref:xref + 4] == b"xref"
    offsets = [int(o) for o in re.findall(rb"(\d{10}) 00000 n ", data[xref:])]
    assert len(offsets) == 5  # catalog, pages, page, content, image
    for i, o in enumerate(offsets, 1):
        assert data[o:].startswith(f"{i} 0 obj".encode())
    streams = {}
    for m in re.finditer(rb"(\d+) 0 obj\n(<<[^\n]*?/Length (\d+) >>)\nstream\n", data):
        start = m.end()
        body = data[start:start + int(m.group(3))]
        assert data[start + len(body):].startswith(b"\nendstream")
        streams[int(m.group(1))] = (m.group(2), zlib.decompress(body))
    assert b"/MediaBox [0 0 144 72]" in data and b"/Font" not in data
    head, pixels = streams[5]
    assert b"/Width 40 /Height 30" in head and b"/Interpolate false" in head and pixels == img.tobytes()
    content = streams[4][1].decode()
    assert "q 72 0 0 54 7.2 14.4 cm /Im0 Do Q" in content
    assert "0 0.8 0 rg 0.4 0.4 0.4 RG 0.5 w 93.6 14.4 14.4 7.2 re B" in content
    first = sk._outlines(sk.texts[0])[0][0][1]  # the first outline point, in points, opens the text's path
    assert f"{first[0] * 72:.3f}".rstrip("0").rstrip(".") + " " in content.split(" m\n", 1)[0]
    assert content.rstrip().endswith("f")


def test_the_png_says_300_dpi_and_scales_images_by_nearest_neighbour(tmp_path):
    from PIL import Image

    img = np.zeros((2, 2, 3), np.uint8)
    img[0, 1] = (255, 0, 0)
    sk = Sketch(1.0, 0.5)
    sk.image(0.0, 0.0, 0.5, 0.5, img)
    out = sk.png(tmp_path / "f.png")
    raw = out.read_bytes()
    assert raw[12:16] == b"IHDR" and raw[37:41] == b"pHYs"
    ppm = struct.unpack(">IIB", raw[41:50])
    assert ppm == (11811, 11811, 1) and struct.unpack(">I", raw[50:54])[0] == zlib.crc32(raw[37:50])
    with Image.open(out) as im:
        assert im.size == (300, 150) and im.info["dpi"] == pytest.approx((300, 300), abs=0.01)
        px = np.asarray(im.convert("RGB"))
    assert (px[:75, 75:150] == (255, 0, 0)).all() and (px[:75, :75] == 0).all() and (px[75:, :150] == 0).all()
    assert (px[:, 150:] == 255).all()
    assert sk.png(tmp_path / "g.png").read_bytes() == raw  # the same bytes each time
