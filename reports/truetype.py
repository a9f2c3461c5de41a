"""Glyph outlines, advances and kerning read from a TrueType font file: what the figures
that are not drawn with matplotlib (``bgbench.reports.sketch``) need to set text as filled
outlines, in the PNG and in the PDF alike.

The font is matplotlib's copy of DejaVu Sans, the face of the report's other figures,
found without importing matplotlib (its import is most of what a report's figures cost).
Read here: the table directory, ``head``, ``hhea``, ``maxp``, ``cmap`` (formats 4 and 12),
``hmtx``, ``loca``, ``glyf`` (simple and composite glyphs) and ``kern`` (format 0), the
layout FreeType gives matplotlib (advances, pair kerning; no hinting, as matplotlib's
vector output has none). A character the font has no glyph for is drawn as its ``.notdef``
box, as FreeType does."""

from __future__ import annotations

import functools
import struct
from pathlib import Path

Point = tuple[float, float]
# one contour: ("M", p), then ("L", p) and ("Q", control, p) segments, closed back to its start
Segment = tuple
Contour = list[Segment]


class FontError(ValueError):
    pass


class Font:
    """A TrueType font file's glyphs; sizes in the caller's units (points) per em."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        try:
            self.data = data = self.path.read_bytes()
        except OSError as e:
            raise FontError(f"{self.path}: cannot read the figures' font ({e.strerror}); "
                            "fix: reinstall matplotlib, whose copy of DejaVu Sans it is") from None
        try:
            if data[:4] not in (b"\x00\x01\x00\x00", b"true"):
                raise FontError("not a TrueType font (no glyf outlines)")
            (n,) = struct.unpack_from(">H", data, 4)
            self.tables = {data[12 + 16 * i:16 + 16 * i].decode("latin-1"):
                           struct.unpack_from(">II", data, 20 + 16 * i) for i in range(n)}
            self.units = struct.unpack_from(">H", self._table("head"), 18)[0]
            self.long_loca = struct.unpack_from(">h", self._table("head"), 50)[0] == 1
            hhea = self._table("hhea")
            self.ascender, self.descender = (v / self.units for v in struct.unpack_from(">hh", hhea, 4))
            self.n_metrics = struct.unpack_from(">H", hhea, 34)[0]
            self.n_glyphs = struct.unpack_from(">H", self._table("maxp"), 4)[0]
            self.cmap = self._read_cmap()
            self.kerning = self._read_kern()
        except (struct.error, KeyError, UnicodeDecodeError) as e:
            raise FontError(f"{self.path}: not a TrueType font this reader can use ({e!r})") from None

    def _table(self, tag: str) -> memoryview:
        offset, length = self.tables[tag]
        return memoryview(self.data)[offset:offset + length]

    def _read_cmap(self) -> dict[int, int]:
        t = self._table("cmap")
        (n,) = struct.unpack_from(">2xH", t, 0)
        subtables = {}
        for i in range(n):
            platform, encoding, offset = struct.unpack_from(">HHI", t, 4 + 8 * i)
            subtables[(platform, encoding)] = offset
        for key in ((3, 10), (0, 4), (3, 1), (0, 3)):  # Unicode, full range first
            if key in subtables:
                return self._cmap_subtable(t, subtables[key])
        raise FontError(f"{self.path}: no Unicode character map")

    @staticmethod
    def _cmap_subtable(t: memoryview, at: int) -> dict[int, int]:
        (fmt,) = struct.unpack_from(">H", t, at)
        out: dict[int, int] = {}
        if fmt == 12:
            (groups,) = struct.unpack_from(">I", t, at + 12)
            for g in range(groups):
                start, end, glyph = struct.unpack_from(">III", t, at + 16 + 12 * g)
                out.update((c, glyph + c - start) for c in range(start, end + 1))
            return out
        if fmt != 4:
            raise FontError(f"character map format {fmt}")
        seg = struct.unpack_from(">H", t, at + 6)[0] // 2
        ends = struct.unpack_from(f">{seg}H", t, at + 14)
        starts = struct.unpack_from(f">{seg}H", t, at + 16 + 2 * seg)
        deltas = struct.unpack_from(f">{seg}h", t, at + 16 + 4 * seg)
        range_at = at + 16 + 6 * seg
        offsets = struct.unpack_from(f">{seg}H", t, range_at)
        for i, (start, end, delta, ro) in enumerate(zip(starts, ends, deltas, offsets)):
            for c in range(start, min(end, 0xFFFE) + 1):
                if ro == 0:
                    glyph = (c + delta) & 0xFFFF
                else:
                    (glyph,) = struct.unpack_from(">H", t, range_at + 2 * i + ro + 2 * (c - start))
                    glyph = (glyph + delta) & 0xFFFF if glyph else 0
                if glyph:
                    out[c] = glyph
        return out

    def _read_kern(self) -> dict[tuple[int, int], int]:
        if "kern" not in self.tables:
            return {}
        t = self._table("kern")
        version, n = struct.unpack_from(">HH", t, 0)
        if version != 0:  # Apple's kern: not read (DejaVu's is Microsoft's, version 0)
            return {}
        pairs: dict[tuple[int, int], int] = {}
        at = 4
        for _ in range(n):
            _, length, coverage = struct.unpack_from(">HHH", t, at)
            if coverage >> 8 == 0 and coverage & 0b111 == 0b001:  # format 0, horizontal, kerning values
                (npairs,) = struct.unpack_from(">H", t, at + 6)
                for i in range(npairs):
                    left, right, value = struct.unpack_from(">HHh", t, at + 14 + 6 * i)
                    pairs.setdefault((left, right), value)
            at += length
        return pairs

    def glyph_index(self, char: str) -> int:
        return self.cmap.get(ord(char), 0)

    def advance(self, glyph: int) -> float:
        """The glyph's advance width, in ems."""
        i = min(glyph, self.n_metrics - 1)
        return struct.unpack_from(">H", self._table("hmtx"), 4 * i)[0] / self.units

    def _glyph_bytes(self, glyph: int) -> memoryview:
        loca = self._table("loca")
        if self.long_loca:
            start, end = struct.unpack_from(">II", loca, 4 * glyph)
        else:
            start, end = (2 * v for v in struct.unpack_from(">HH", loca, 2 * glyph))
        return self._table("glyf")[start:end]

    @functools.lru_cache(maxsize=512)  # noqa: B019  # a font lives as long as the process
    def outline(self, glyph: int, depth: int = 0) -> tuple[Contour, ...]:
        """The glyph's contours in ems (y up, origin on the baseline at the pen)."""
        g = self._glyph_bytes(glyph)
        if len(g) == 0:
            return ()  # a space
        (contours,) = struct.unpack_from(">h", g, 0)
        if contours >= 0:
            return tuple(self._simple(g, contours))
        if depth > 8:
            raise FontError(f"{self.path}: glyph {glyph} nests its components too deep")
        return tuple(self._composite(g, depth))

    def _simple(self, g: memoryview, contours: int) -> list[Contour]:
        ends = struct.unpack_from(f">{contours}H", g, 10)
        n = ends[-1] + 1 if contours else 0
        at = 10 + 2 * contours
        (ins,) = struct.unpack_from(">H", g, at)
        at += 2 + ins
        flags: list[int] = []
        while len(flags) < n:
            f = g[at]
            at += 1
            flags.append(f)
            if f & 8:  # repeated
                flags.extend([f] * g[at])
                at += 1
        coords = []
        for short, same in ((2, 16), (4, 32)):  # x, then y
            v, vals = 0, []
            for f in flags[:n]:
                if f & short:
                    v += g[at] if f & same else -g[at]
                    at += 1
                elif not f & same:
                    v += struct.unpack_from(">h", g, at)[0]
                    at += 2
                vals.append(v)
            coords.append(vals)
        pts = [(x / self.units, y / self.units, bool(f & 1)) for x, y, f in zip(*coords, flags)]
        out, start = [], 0
        for end in ends:
            out.append(_contour(pts[start:end + 1]))
            start = end + 1
        return [c for c in out if c]

    def _composite(self, g: memoryview, depth: int) -> list[Contour]:
        out: list[Contour] = []
        at, more = 10, True
        while more:
            flags, glyph = struct.unpack_from(">HH", g, at)
            at += 4
            if flags & 1:  # words
                dx, dy = struct.unpack_from(">hh", g, at)
                at += 4
            else:
                dx, dy = struct.unpack_from(">bb", g, at)
                at += 2
            if not flags & 2:
                raise FontError(f"{self.path}: a component placed by point numbers is not supported")
            a, b, c, d = 1.0, 0.0, 0.0, 1.0
            if flags & 8:
                a = d = struct.unpack_from(">h", g, at)[0] / 16384
                at += 2
            elif flags & 0x40:
                a, d = (v / 16384 for v in struct.unpack_from(">hh", g, at))
                at += 4
            elif flags & 0x80:
                a, b, c, d = (v / 16384 for v in struct.unpack_from(">hhhh", g, at))
                at += 8
            ox, oy = dx / self.units, dy / self.units

            def place(p: Point) -> Point:
                return (a * p[0] + c * p[1] + ox, b * p[0] + d * p[1] + oy)

            for contour in self.outline(glyph, depth + 1):
                out.append([(s[0], *map(place, s[1:])) for s in contour])
            more = bool(flags & 0x20)
        return out

    def layout(self, text: str) -> tuple[list[tuple[float, int]], float]:
        """Each glyph's pen position along the line, in ems, and the line's advance."""
        x, prev, placed = 0.0, None, []
        for ch in text:
            glyph = self.glyph_index(ch)
            if prev is not None:
                x += self.kerning.get((prev, glyph), 0) / self.units
            placed.append((x, glyph))
            x += self.advance(glyph)
            prev = glyph
        return placed, x


def _contour(pts: list[tuple[float, float, bool]]) -> Contour:
    """TrueType's quadratic contour as segments: two off-curve points in a row have an
    on-curve point midway; a contour may begin off the curve."""
    if not pts:
        return []
    first = next((i for i, p in enumerate(pts) if p[2]), None)
    if first is None:  # all off the curve: start midway between the last and the first
        start = ((pts[-1][0] + pts[0][0]) / 2, (pts[-1][1] + pts[0][1]) / 2)
        order = pts
    else:
        start = pts[first][:2]
        order = pts[first + 1:] + pts[:first + 1]
    out: Contour = [("M", start)]
    control = None
    for x, y, on in order:
        if on:
            out.append(("L", (x, y)) if control is None else ("Q", control, (x, y)))
            control = None
        else:
            if control is not None:
                mid = ((control[0] + x) / 2, (control[1] + y) / 2)
                out.append(("Q", control, mid))
            control = (x, y)
    if control is not None:  # back to the start through the last control point
        out.append(("Q", control, start))
    return out


def default_font_path() -> Path:
    """DejaVu Sans as matplotlib ships it, located without importing matplotlib."""
    import importlib.util

    spec = importlib.util.find_spec("matplotlib")
    if spec is None or not spec.submodule_search_locations:
        raise FontError("matplotlib is not installed: its DejaVu Sans is the figures' font")
    return Path(list(spec.submodule_search_locations)[0]) / "mpl-data" / "fonts" / "ttf" / "DejaVuSans.ttf"


@functools.lru_cache(maxsize=None)
def default_font() -> Font:
    return Font(default_font_path())
