"""A figure of few parts (images, rectangles, lines of text) written as a 300-dpi PNG by
OpenCV and as a PDF written here, without matplotlib: what the qualitative mosaic needs
(``bgbench.reports.mosaic``), at a small part of matplotlib's cost (its import, the figure,
the PDF's font subsetting: docs/performance.md, section 6).

Coordinates are inches from the figure's bottom-left corner, as in matplotlib. Text is set
in DejaVu Sans (``bgbench.reports.truetype``, the face of the other figures) and drawn as
filled outlines in both files: the PDF embeds no font at all (nothing a publisher's check
can find unembedded or in Type 3), at the price of text a reader cannot select. Images are
placed unresampled in the PDF (shown pixel for pixel, ``/Interpolate false``) and scaled
by nearest neighbour in the PNG, as masks must be. Both files are byte-for-byte the same
for the same figure: no dates, no producer."""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from .truetype import Font, default_font

RGB = tuple[float, float, float]  # 0..1
LINE_SPACING = 1.2  # baseline to baseline, in font sizes (matplotlib's default)
SUPERSAMPLE = 4  # text coverage: outlines filled at 4x, then averaged


@dataclass(frozen=True)
class _Text:
    x: float
    y: float
    lines: tuple[str, ...]
    size: float  # points
    ha: str  # left | center | right
    va: str  # bottom | center | top | baseline
    rotation: int  # 0 or 90 (counter-clockwise)
    color: RGB


@dataclass
class Sketch:
    """A figure ``width`` x ``height`` inches; add parts, then ``png`` and ``pdf``."""

    width: float
    height: float
    font: Font = field(default_factory=default_font)
    images: list[tuple[float, float, float, float, np.ndarray]] = field(default_factory=list)
    rects: list[tuple[float, float, float, float, RGB, RGB | None, float]] = field(default_factory=list)
    texts: list[_Text] = field(default_factory=list)

    def image(self, x: float, y: float, w: float, h: float, rgb: np.ndarray) -> None:
        """An H x W x 3 uint8 image filling the box whose bottom-left corner is (x, y)."""
        if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
            raise ValueError(f"an image must be H x W x 3 uint8, not {rgb.shape} {rgb.dtype}")
        self.images.append((x, y, w, h, np.ascontiguousarray(rgb)))

    def rect(self, x: float, y: float, w: float, h: float, fill: RGB, edge: RGB | None = None,
             linewidth: float = 0.5) -> None:
        """A filled box, with an edge ``linewidth`` points wide, centred on its outline."""
        self.rects.append((x, y, w, h, fill, edge, linewidth))

    def text(self, x: float, y: float, text: str, size: float = 8.0, ha: str = "left", va: str = "baseline",
             rotation: int = 0, color: RGB = (0.0, 0.0, 0.0)) -> None:
        """``text`` (lines split at newlines, each aligned by ``ha``) anchored at (x, y): ``va``
        bottom, center and top are the text block's line box (the font's ascender to its
        descender), baseline the first line's. ``rotation`` 90 reads bottom to top; the
        alignment is the text's own, before it turns (there ``va="bottom"`` puts the text on the
        anchor's left)."""
        if ha not in ("left", "center", "right") or va not in ("bottom", "center", "top", "baseline"):
            raise ValueError(f"alignment {ha!r}/{va!r}")
        if rotation not in (0, 90):
            raise ValueError(f"rotation {rotation}: 0 or 90 degrees")
        self.texts.append(_Text(x, y, tuple(text.split("\n")), size, ha, va, rotation, color))

    def text_extent(self, text: str, size: float = 8.0) -> tuple[float, float]:
        return text_extent(text, size, self.font)

    def text_boxes(self) -> list[tuple[str, float, tuple[float, float, float, float]]]:
        """Each text's (string, size in points, (x0, y0, x1, y1)): the box, in inches on the
        figure, of its outlines' points (curve control points included: never smaller than
        the ink)."""
        out = []
        for t in self.texts:
            pts = [p for contour in self._outlines(t) for seg in contour for p in seg[1:]]
            xs, ys = [p[0] for p in pts] or [t.x], [p[1] for p in pts] or [t.y]
            out.append(("\n".join(t.lines), t.size, (min(xs), min(ys), max(xs), max(ys))))
        return out

    # --- outlines: each text as contours in inches, on the figure --------------------------

    def _outlines(self, t: _Text) -> list[list[tuple]]:
        """The text's glyph contours placed on the figure, in inches (y up): lists of
        ("M", p) / ("L", p) / ("Q", c, p) segments."""
        f, em = self.font, t.size / 72
        lines = [f.layout(line) for line in t.lines]
        step = LINE_SPACING * em
        top = f.ascender * em  # the block's top, above the first baseline
        height = (len(lines) - 1) * step + (f.ascender - f.descender) * em
        shift = {"baseline": 0.0, "top": -top, "bottom": height - top, "center": height / 2 - top}[t.va]
        out = []
        for i, (placed, w) in enumerate(lines):
            # the line in the text's own frame: x along it, y up from the anchor
            x0 = {"left": 0.0, "center": -w * em / 2, "right": -w * em}[t.ha]
            base = shift - i * step
            for gx, glyph in placed:
                for contour in f.outline(glyph):
                    out.append([(s[0], *(_place(t, x0 + (gx + px) * em, base + py * em) for px, py in s[1:]))
                                for s in contour])
        return out

    # --- the PNG ------------------------------------------------------------------------

    def png(self, path: Path, dpi: int = 300) -> Path:
        import cv2

        from bgbench.safefs import atomic_write

        canvas = self.raster(dpi)
        ok, data = cv2.imencode(".png", np.ascontiguousarray(canvas[..., ::-1]))
        if not ok:
            raise OSError(f"OpenCV could not encode {path}")
        out = _with_dpi(data.tobytes(), dpi)
        with atomic_write(Path(path), "the figure") as tmp:
            tmp.write_bytes(out)
        return Path(path)

    def raster(self, dpi: int = 300) -> np.ndarray:
        """The figure as an H x W x 3 uint8 RGB array at ``dpi``."""
        import cv2

        H, W = round(self.height * dpi), round(self.width * dpi)
        canvas = np.full((H, W, 3), 255, np.uint8)

        def box(x: float, y: float, w: float, h: float) -> tuple[int, int, int, int]:
            x0, x1 = round(x * dpi), round((x + w) * dpi)
            y0, y1 = H - round((y + h) * dpi), H - round(y * dpi)
            return max(x0, 0), max(y0, 0), min(x1, W), min(y1, H)

        for x, y, w, h, rgb in self.images:
            x0, y0, x1, y1 = box(x, y, w, h)
            fx0, fy0 = round(x * dpi), H - round((y + h) * dpi)  # the unclipped box: clipping keeps the scale
            fw, fh = round((x + w) * dpi) - fx0, H - round(y * dpi) - fy0
            if x1 > x0 and y1 > y0:
                scaled = cv2.resize(rgb, (fw, fh), interpolation=cv2.INTER_NEAREST)
                canvas[y0:y1, x0:x1] = scaled[y0 - fy0:y1 - fy0, x0 - fx0:x1 - fx0]
        for x, y, w, h, fill, edge, lw in self.rects:
            x0, y0, x1, y1 = box(x, y, w, h)
            if edge is not None:  # the edge centred on the outline, the fill inside it
                px = max(1, round(lw / 72 * dpi))
                a, b = px // 2, px - px // 2
                canvas[max(y0 - a, 0):y1 + b, max(x0 - a, 0):x1 + b] = _byte(edge)
                x0, y0, x1, y1 = x0 + b, y0 + b, x1 - a, y1 - a
            canvas[y0:max(y1, y0), x0:max(x1, x0)] = _byte(fill)
        for t in self.texts:
            _fill(canvas, self._outlines(t), dpi, _byte(t.color))
        return canvas

    # --- the PDF ------------------------------------------------------------------------

    def pdf(self, path: Path) -> Path:
        from bgbench.safefs import atomic_write

        with atomic_write(Path(path), "the figure") as tmp:
            tmp.write_bytes(self.pdf_bytes())
        return Path(path)

    def pdf_bytes(self) -> bytes:
        pt = 72.0
        ops: list[str] = []
        xobjects = []
        for i, (x, y, w, h, rgb) in enumerate(self.images):
            ops.append(f"q {_n(w * pt)} 0 0 {_n(h * pt)} {_n(x * pt)} {_n(y * pt)} cm /Im{i} Do Q")
            xobjects.append(rgb)
        for x, y, w, h, fill, edge, lw in self.rects:
            paint = "B" if edge is not None else "f"
            stroke = f" {_colour(edge, 'RG')} {_n(lw)} w" if edge is not None else ""
            ops.append(f"{_colour(fill, 'rg')}{stroke} {_n(x * pt)} {_n(y * pt)} {_n(w * pt)} {_n(h * pt)} re {paint}")
        for t in self.texts:
            path, cur = [], (0.0, 0.0)
            for contour in self._outlines(t):
                for s in contour:
                    end = (s[-1][0] * pt, s[-1][1] * pt)
                    if s[0] == "M":
                        path.append(f"{_n(end[0])} {_n(end[1])} m")
                    elif s[0] == "L":
                        path.append(f"{_n(end[0])} {_n(end[1])} l")
                    else:  # a quadratic as the cubic PDF draws: controls 2/3 of the way to its control point
                        cx, cy = s[1][0] * pt, s[1][1] * pt
                        c1 = (cur[0] + 2 / 3 * (cx - cur[0]), cur[1] + 2 / 3 * (cy - cur[1]))
                        c2 = (end[0] + 2 / 3 * (cx - end[0]), end[1] + 2 / 3 * (cy - end[1]))
                        path.append(f"{_n(c1[0])} {_n(c1[1])} {_n(c2[0])} {_n(c2[1])} {_n(end[0])} {_n(end[1])} c")
                    cur = end
                path.append("h")
            if path:
                ops.append(_colour(t.color, "rg") + "\n" + "\n".join(path) + "\nf")  # non-zero fill, as fonts need
        content = zlib.compress("\n".join(ops).encode("ascii"), 6)
        objects: list[bytes] = [
            b"<< /Type /Catalog /Pages 2 0 R >>",
            b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            (f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 {_n(self.width * pt)} {_n(self.height * pt)}] "
             f"/Resources << /XObject << {' '.join(f'/Im{i} {5 + i} 0 R' for i in range(len(xobjects)))} >> >> "
             f"/Contents 4 0 R >>").encode("ascii"),
            _stream(b"<< /Filter /FlateDecode", content),
        ]
        for rgb in xobjects:
            h, w = rgb.shape[:2]
            objects.append(_stream(f"<< /Type /XObject /Subtype /Image /Width {w} /Height {h} /ColorSpace /DeviceRGB "
                                   f"/BitsPerComponent 8 /Interpolate false /Filter /FlateDecode".encode("ascii"),
                                   zlib.compress(rgb.tobytes(), 6)))
        out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
        offsets = []
        for i, body in enumerate(objects, 1):
            offsets.append(len(out))
            out += f"{i} 0 obj\n".encode("ascii") + body + b"\nendobj\n"
        xref = len(out)
        out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode("ascii")
        out += b"".join(f"{o:010d} 00000 n \n".encode("ascii") for o in offsets)
        out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode("ascii")
        return bytes(out)


def text_extent(text: str, size: float = 8.0, font: Font | None = None) -> tuple[float, float]:
    """(width, height) in inches of ``text`` set unrotated: the widest line's advance, and the
    line boxes (the first line's ascender to the last one's descender)."""
    font = font or default_font()
    widths = [font.layout(line)[1] for line in text.split("\n")]
    return max(widths) * size / 72, ((len(widths) - 1) * LINE_SPACING + font.ascender - font.descender) * size / 72


def _place(t: _Text, x: float, y: float) -> tuple[float, float]:
    """A point of the text's own frame (x along the line, y up, from the anchor) on the figure."""
    if t.rotation == 90:
        return (t.x - y, t.y + x)
    return (t.x + x, t.y + y)


def _flatten(contour: list[tuple], scale: float, height: float, steps: int = 6) -> np.ndarray:
    """A contour in inches as polygon points in pixels (y down), each quadratic cut in ``steps``."""
    pts: list[tuple[float, float]] = []
    for s in contour:
        if s[0] in ("M", "L"):
            pts.append(s[1])
        else:
            (x0, y0), (cx, cy), (x1, y1) = pts[-1], s[1], s[2]
            for k in range(1, steps + 1):
                u = k / steps
                a, b, c = (1 - u) ** 2, 2 * u * (1 - u), u * u
                pts.append((a * x0 + b * cx + c * x1, a * y0 + b * cy + c * y1))
    arr = np.array(pts, np.float64)
    arr[:, 0] *= scale
    arr[:, 1] = height - arr[:, 1] * scale
    return arr


def _fill(canvas: np.ndarray, contours: list[list[tuple]], dpi: int, colour: np.ndarray) -> None:
    """Fill the contours (non-zero rule: a glyph's holes wind the other way) into ``canvas``,
    anti-aliased: each pixel takes its share of SUPERSAMPLE^2 samples."""
    import cv2

    if not contours:
        return
    H, W = canvas.shape[:2]
    polys = [_flatten(c, dpi, H) for c in contours]
    allpts = np.concatenate(polys)
    x0, y0 = (max(int(math.floor(v)) - 1, 0) for v in allpts.min(axis=0))
    x1, y1 = (int(math.ceil(v)) + 1 for v in allpts.max(axis=0))
    x1, y1 = min(x1, W), min(y1, H)
    if x1 <= x0 or y1 <= y0:
        return
    s = SUPERSAMPLE
    winding = np.zeros(((y1 - y0) * s, (x1 - x0) * s), np.int16)
    for p in polys:  # each contour adds +1 or -1 inside it, by the way it winds (its signed area)
        q = np.round((p - (x0, y0)) * s * 16).astype(np.int32)  # 4 fraction bits under the sample grid
        lo = np.maximum(q.min(axis=0) >> 4, 0)
        hi = np.minimum((q.max(axis=0) >> 4) + 2, (winding.shape[1], winding.shape[0]))
        if (hi <= lo).any():
            continue
        one = np.zeros((hi[1] - lo[1], hi[0] - lo[0]), np.uint8)
        cv2.fillPoly(one, [q - (lo << 4)], 1, lineType=cv2.LINE_8, shift=4)
        area = float(np.sum(p[:-1, 0] * p[1:, 1] - p[1:, 0] * p[:-1, 1]) + p[-1, 0] * p[0, 1] - p[0, 0] * p[-1, 1])
        part = winding[lo[1]:hi[1], lo[0]:hi[0]]
        if area > 0:
            part += one
        else:
            part -= one
    covered = (winding != 0).astype(np.float32)
    alpha = cv2.resize(covered, (x1 - x0, y1 - y0), interpolation=cv2.INTER_AREA)[..., None]
    region = canvas[y0:y1, x0:x1].astype(np.float32)
    canvas[y0:y1, x0:x1] = np.round(region * (1 - alpha) + colour.astype(np.float32) * alpha).astype(np.uint8)


def _with_dpi(png: bytes, dpi: int) -> bytes:
    """``png`` with a pHYs chunk after IHDR: its pixels per metre, so that LaTeX and viewers
    size it at ``dpi``."""
    import struct

    ppm = round(dpi / 0.0254)
    body = b"pHYs" + struct.pack(">IIB", ppm, ppm, 1)
    chunk = struct.pack(">I", 9) + body + struct.pack(">I", zlib.crc32(body))
    end_of_ihdr = 8 + 8 + 13 + 4
    return png[:end_of_ihdr] + chunk + png[end_of_ihdr:]


def _byte(c: Sequence[float]) -> np.ndarray:
    return np.array([round(255 * v) for v in c], np.uint8)


def _n(v: float) -> str:
    """A PDF number: at most 3 decimals, no trailing zeros, no minus zero."""
    s = f"{v:.3f}".rstrip("0").rstrip(".")
    return "0" if s in ("-0", "") else s


def _colour(c: Sequence[float], op: str) -> str:
    return " ".join(_n(v) for v in c) + f" {op}"


def _stream(dictionary: bytes, data: bytes) -> bytes:
    return dictionary + f" /Length {len(data)} >>\nstream\n".encode("ascii") + data + b"\nendstream"
