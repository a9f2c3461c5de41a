"""A fast path for the PNGs masks are most often written as: 8-bit grey, not interlaced, every
row filtered alike with None, Sub or Up (OpenCV's ``imwrite`` filters every row with Sub unless
given a compression level). Inflated by libdeflate where the system has it, else by zlib
(``bgbench.data.inflate``), and unfiltered with one or two whole-image array operations, it
costs about a third of OpenCV's decoder (libpng) with libdeflate, two thirds with zlib
(libpng spends a third of its time undoing the filter byte by byte, and zlib most of the
rest copying the runs OpenCV's writer makes byte by byte); ``python -m tests.perf.png_decode``
measures them.

``gray8`` returns None for every other file (colour, palette, 16-bit, interlaced, a
transparency chunk, an animation (APNG), rows filtered in more than one way or with Average
or Paeth (libpng's adaptive choice: seen while inflating, and given up there), a chunk whose
CRC is wrong or whose type is not a valid name, a side over libpng's 1,000,000 pixels, a
stream that does not inflate to exactly the image's bytes), and the caller decodes it with
OpenCV, whose answer (or refusal) then stands. Whenever it returns an image, it is the one
OpenCV returns for the file, read unchanged or as grey (tests/test_png_decode.py compares them).

``grey_values`` also takes the 8-bit palette PNGs ground truth is often stored as (CDnet2014's
every mask: 256 grey entries, rows unfiltered) when every pixel's entry is grey (R = G = B):
it returns that value per pixel, which is each of the three equal channels OpenCV's unchanged
read gives (the value bgbench's label reads keep, ``imageio._one_channel``), in about a
fifth of the time of OpenCV's expansion to three channels and the check that they agree
(with libdeflate; about half with zlib).
A pixel whose entry is coloured, or is past the palette's end, leaves the file to OpenCV.
"""

from __future__ import annotations

import sys
import threading
import zlib

import numpy as np

from bgbench.data import inflate

SIGNATURE = b"\x89PNG\r\n\x1a\n"
MAX_SIDE = 1_000_000  # libpng's default limit on either side: a larger image is refused by OpenCV
_NONE, _SUB, _UP = 0, 1, 2
_LOW_BYTE = 0 if sys.byteorder == "little" else 3  # of an int32
_local = threading.local()  # each decoding thread's integral image, reused while the size holds


def _integral_buffer(height: int, width: int) -> np.ndarray:
    # A fresh 4-byte-per-pixel integral each call is big enough for glibc to map and unmap it:
    # page faults (system time) on every call.
    buf = getattr(_local, "integral", None)
    if buf is None or buf.shape != (height + 1, width + 1):
        buf = _local.integral = np.empty((height + 1, width + 1), np.int32)
    return buf


def gray8(data: bytes) -> np.ndarray | None:
    """``data``'s pixels as H x W uint8 when it is an 8-bit grey PNG this path decodes, else None."""
    chunks = _chunks(data)
    if chunks is None or chunks[2] is not None:
        return None
    width, height, _, idat = chunks
    return _pixels(idat, height, width)


def grey_values(data: bytes) -> np.ndarray | None:
    """``gray8``'s pixels, or for an 8-bit palette PNG whose pixels all index grey entries,
    those entries' values (H x W uint8); None for every other file."""
    chunks = _chunks(data)
    if chunks is None:
        return None
    width, height, palette, idat = chunks
    index = _pixels(idat, height, width)
    if index is None or palette is None:
        return index
    import cv2

    entries = np.frombuffer(palette, np.uint8).reshape(-1, 3)
    grey = np.zeros(256, bool)
    grey[:len(entries)] = (entries[:, 0] == entries[:, 1]) & (entries[:, 1] == entries[:, 2])
    if not grey.all() and cv2.countNonZero(cv2.LUT(index, (~grey).astype(np.uint8))):
        return None  # a coloured entry, or one past the palette's end, is in use: OpenCV's to read
    lut = np.zeros(256, np.uint8)
    lut[:len(entries)] = entries[:, 0]
    if np.array_equal(lut, np.arange(256, dtype=np.uint8)):  # CDnet's palette: each entry its own index
        return index
    return cv2.LUT(index, lut)


def _pixels(idat: bytes, height: int, width: int) -> np.ndarray | None:
    """The 8-bit samples of one-sample-per-pixel scanlines, every row filtered alike, or None."""
    if max(width, height) > MAX_SIDE or width * height * 255 >= 2**31:  # libpng's limit; int32 row sums below
        return None
    lines = _inflate_one_filter(idat, height, width + 1)
    if lines is None:
        return None
    raw = np.frombuffer(lines, np.uint8).reshape(height, width + 1)
    filtered = raw[:, 1:]
    kind = raw[0, 0]
    if kind == _NONE:
        return np.array(filtered)  # a contiguous copy (and not a view of immutable inflated bytes)
    if kind == _UP:  # each row adds the one above it (row 0 adds zeros): a running sum down the columns
        return np.cumsum(filtered, axis=0, dtype=np.uint8)  # mod 256
    import cv2

    # Sub rows hold differences from the pixel on the left: each is its row's running sum
    # mod 256, read from one integral image (row y = S[y+1] - S[y], exact in int32, and so
    # in its low bytes mod 256: no int32 temporary, whose size made each call map fresh pages)
    s = cv2.integral(filtered, _integral_buffer(height, width), sdepth=cv2.CV_32S)
    low = s.view(np.uint8).reshape(height + 1, width + 1, 4)[..., _LOW_BYTE]  # each sum mod 256, no copy
    return np.subtract(low[1:, 1:], low[:-1, 1:])  # a new uint8 array; the difference wraps mod 256


def _inflate_one_filter(idat: bytes, height: int, stride: int) -> bytes | np.ndarray | None:
    """The scanlines of ``idat`` if they are exactly ``height`` rows of ``stride`` bytes, the
    stream ends there, and every row has the first row's filter, None, Sub or Up; else None.

    With libdeflate (``bgbench.data.inflate``) the stream is inflated whole, then the rows'
    filters are checked. With zlib the first 16 rows are inflated apart: a file written with
    a filter per row (libpng's adaptive choice, Paeth rows and all) mostly shows it there
    and is given up for little more than its chunk walk (OpenCV then decodes it at its own
    speed); one whose rows differ only later is given up after inflating it whole. (Smaller
    blocks all through cost the decoding pool more in GIL hand-overs than they saved.)"""
    need = height * stride
    if inflate.LIBDEFLATE:
        lines = inflate.exact(idat, need)
        if lines is None or lines[0] > _UP or np.count_nonzero(lines[::stride] != lines[0]):
            return None
        return lines
    d = zlib.decompressobj()
    parts: list[bytes] = []
    got, tail, kind = 0, idat, -1
    block = 16 * stride  # then the rest at once: each call costs the pool's threads a GIL hand-over
    try:
        while got < need:
            out = d.decompress(tail, min(block, need - got))
            block = need
            tail = d.unconsumed_tail
            if not out:
                return None  # the stream ended (or its data did) short of the image
            if kind < 0:
                kind = out[0]
                if kind > _UP:
                    return None
            first = (-got) % stride  # the first row start inside this block
            if out[first::stride].count(kind) != len(range(first, len(out), stride)):
                return None
            parts.append(out)
            got += len(out)
        if d.decompress(tail, 1) or not d.eof or d.unused_data:  # more than the image, or not its end
            return None
    except zlib.error:
        return None
    return parts[0] if len(parts) == 1 else b"".join(parts)


def _chunks(data: bytes) -> tuple[int, int, bytes | None, bytes] | None:
    """(width, height, the palette or None, the joined IDAT data) of an 8-bit grey or 8-bit
    palette, non-interlaced PNG whose chunks are whole with right CRCs and valid names, IDATs
    consecutive, one PLTE (of 1 to 256 entries, before the IDATs) exactly where the image is
    a palette one, and no other critical chunk, tRNS or acTL; None otherwise."""
    if not data.startswith(SIGNATURE):
        return None
    pos, n = len(SIGNATURE), len(data)
    width = height = -1
    palette: bytes | None = None
    colour = -1
    idat: list[bytes] = []
    idat_done = False
    while pos + 12 <= n:
        length = int.from_bytes(data[pos:pos + 4], "big")
        end = pos + 12 + length
        if end > n:
            return None
        kind = data[pos + 4:pos + 8]
        if not kind.isalpha() or kind[2] & 0x20:  # four ASCII letters, the reserved bit clear, or libpng refuses it
            return None
        if zlib.crc32(data[pos + 4:end - 4]) != int.from_bytes(data[end - 4:end], "big"):
            return None
        body = data[pos + 8:end - 4]
        if width < 0:
            # depth 8, grey (0) or palette (3), deflate, adaptive filtering, not interlaced
            if kind != b"IHDR" or length != 13 or body[8] != 8 or body[9] not in (0, 3) or body[10:] != b"\0\0\0":
                return None
            width, height, colour = int.from_bytes(body[:4], "big"), int.from_bytes(body[4:8], "big"), body[9]
            if not (width and height):
                return None
        elif kind == b"IDAT":
            if idat_done or (colour == 3 and palette is None):
                return None  # IDATs must be consecutive, and come after a palette image's PLTE
            idat.append(body)
        elif kind == b"IEND":
            return (width, height, palette, b"".join(idat)) if idat else None
        elif kind == b"PLTE" and colour == 3 and palette is None and not idat and length % 3 == 0 and 0 < length <= 768:
            palette = body
        elif kind[0] & 0x20 == 0 or kind in (b"tRNS", b"acTL"):  # a critical chunk (PLTE, ...), transparency,
            return None  # or an animation (APNG: OpenCV may read its first frame, not IDAT's default image)
        else:
            idat_done = bool(idat)
        pos = end
    return None
