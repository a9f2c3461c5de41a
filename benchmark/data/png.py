"""A fast path for the PNGs masks are most often written as: 8-bit grey, not interlaced, rows
filtered with None, Sub or Up (OpenCV's ``imwrite`` filters every row with Sub). Decoded with
zlib and a few whole-image array operations, it costs about two thirds of OpenCV's decoder
(libpng), which spends a third of its time undoing the filter byte by byte;
``python -m tests.perf.png_decode`` measures both.

``gray8`` returns None for every other file (colour, palette, 16-bit, interlaced, a
transparency chunk, an animation (APNG), Average or Paeth rows, a chunk whose CRC is wrong, a stream that does
not inflate to exactly the image's bytes), and the caller decodes it with OpenCV, whose
answer (or refusal) then stands. Whenever it returns an image, it is the one OpenCV returns
for the file, read unchanged or as grey (tests compare them on every filter mix).
"""

from __future__ import annotations

import threading
import zlib

import numpy as np

SIGNATURE = b"\x89PNG\r\n\x1a\n"
_SUB, _UP = 1, 2
_local = threading.local()  # each decoding thread's integral image, reused while the size holds


def _integral_buffer(height: int, width: int) -> np.ndarray:
    # A fresh 4-byte-per-pixel integral each call is big enough for glibc to map and unmap it,
    # page faults that cost a third as much as the decoding itself (system time).
    buf = getattr(_local, "integral", None)
    if buf is None or buf.shape != (height + 1, width + 1):
        buf = _local.integral = np.empty((height + 1, width + 1), np.int32)
    return buf


def gray8(data: bytes) -> np.ndarray | None:
    """``data``'s pixels as H x W uint8 when it is a PNG this path decodes, else None."""
    if not data.startswith(SIGNATURE):
        return None
    chunks = _chunks(data)
    if chunks is None:
        return None
    width, height, idat = chunks
    rows = height * (width + 1)
    if width * height * 255 >= 2**31:  # the row sums below are int32
        return None
    try:
        d = zlib.decompressobj()
        raw_bytes = d.decompress(idat, rows + 1)
    except zlib.error:
        return None
    if len(raw_bytes) != rows or not d.eof or d.unused_data:  # short, long, or not ending with the image
        return None
    raw = np.frombuffer(raw_bytes, np.uint8).reshape(height, width + 1)
    kinds = raw[:, 0]
    if int(kinds.max()) > _UP:  # Average, Paeth or an invalid filter: OpenCV decides
        return None
    filtered = raw[:, 1:]
    sub = kinds == _SUB
    if sub.any():
        import cv2

        # Sub rows hold differences from the pixel on the left: each is its row's running
        # sum mod 256, read from one integral image (row y = S[y+1] - S[y], exact in int32).
        s = cv2.integral(filtered, _integral_buffer(height, width), sdepth=cv2.CV_32S)
        prefix = np.subtract(s[1:, 1:], s[:-1, 1:]).astype(np.uint8)  # astype wraps mod 256
        base = prefix if sub.all() else np.where(sub[:, None], prefix, filtered)
    else:
        base = filtered
    up = kinds == _UP
    if not up.any():
        return np.ascontiguousarray(base)
    # An Up row adds the row above it: a run of Up rows is a running sum down the columns,
    # restarted at each row that is not Up (row 0 adds zeros, as the PNG standard says).
    total = np.cumsum(base, axis=0, dtype=np.uint8)  # mod 256
    start = np.maximum.accumulate(np.where(up, 0, np.arange(height)))  # the run's first row
    before = np.zeros((height, width), np.uint8)
    after_first = start > 0
    before[after_first] = total[start[after_first] - 1]
    return np.subtract(total, before)  # uint8: mod 256


def _chunks(data: bytes) -> tuple[int, int, bytes] | None:
    """(width, height, the joined IDAT data) of an 8-bit grey, non-interlaced PNG whose chunks
    are whole with right CRCs, IDATs consecutive and no PLTE or tRNS; None otherwise."""
    pos, n = len(SIGNATURE), len(data)
    width = height = -1
    idat: list[bytes] = []
    idat_done = False
    while pos + 12 <= n:
        length = int.from_bytes(data[pos:pos + 4], "big")
        end = pos + 12 + length
        if end > n:
            return None
        kind = data[pos + 4:pos + 8]
        if zlib.crc32(data[pos + 4:end - 4]) != int.from_bytes(data[end - 4:end], "big"):
            return None
        body = data[pos + 8:end - 4]
        if width < 0:
            if kind != b"IHDR" or length != 13 or body[8:] != b"\x08\x00\x00\x00\x00":  # depth 8, grey, plain
                return None
            width, height = int.from_bytes(body[:4], "big"), int.from_bytes(body[4:8], "big")
            if not (width and height):
                return None
        elif kind == b"IDAT":
            if idat_done:
                return None  # IDATs must be consecutive
            idat.append(body)
        elif kind == b"IEND":
            return (width, height, b"".join(idat)) if idat else None
        elif kind[0] & 0x20 == 0 or kind in (b"tRNS", b"acTL"):  # a critical chunk (PLTE, ...), transparency,
            return None  # or an animation (APNG: OpenCV may read its first frame, not IDAT's default image)
        else:
            idat_done = bool(idat)
        pos = end
    return None
