"""A fast path for the PNGs masks are most often written as: 8-bit grey, not interlaced, every
row filtered alike with None, Sub or Up (OpenCV's ``imwrite`` filters every row with Sub unless
given a compression level). Decoded with zlib and one or two whole-image array operations, it
costs about two thirds of OpenCV's decoder (libpng), which spends a third of its time
undoing the filter byte by byte; ``python -m tests.perf.png_decode`` measures both.

``gray8`` returns None for every other file (colour, palette, 16-bit, interlaced, a
transparency chunk, an animation (APNG), rows filtered in more than one way or with Average
or Paeth (libpng's adaptive choice: seen while inflating, and given up there), a chunk whose
CRC is wrong or whose type is not a valid name, a side over libpng's 1,000,000 pixels, a
stream that does not inflate to exactly the image's bytes), and the caller decodes it with
OpenCV, whose answer (or refusal) then stands. Whenever it returns an image, it is the one
OpenCV returns for the file, read unchanged or as grey (tests/test_png_decode.py compares them).
"""

from __future__ import annotations

import sys
import threading
import zlib

import numpy as np

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
    """``data``'s pixels as H x W uint8 when it is a PNG this path decodes, else None."""
    if not data.startswith(SIGNATURE):
        return None
    chunks = _chunks(data)
    if chunks is None:
        return None
    width, height, idat = chunks
    if max(width, height) > MAX_SIDE or width * height * 255 >= 2**31:  # libpng's limit; int32 row sums below
        return None
    raw_bytes = _inflate_one_filter(idat, height, width + 1)
    if raw_bytes is None:
        return None
    raw = np.frombuffer(raw_bytes, np.uint8).reshape(height, width + 1)
    filtered = raw[:, 1:]
    kind = raw_bytes[0]
    if kind == _NONE:
        return np.array(filtered)  # a copy: ``filtered`` is a view of the immutable inflated bytes
    if kind == _UP:  # each row adds the one above it (row 0 adds zeros): a running sum down the columns
        return np.cumsum(filtered, axis=0, dtype=np.uint8)  # mod 256
    import cv2

    # Sub rows hold differences from the pixel on the left: each is its row's running sum
    # mod 256, read from one integral image (row y = S[y+1] - S[y], exact in int32, and so
    # in its low bytes mod 256: no int32 temporary, whose size made each call map fresh pages)
    s = cv2.integral(filtered, _integral_buffer(height, width), sdepth=cv2.CV_32S)
    low = s.view(np.uint8).reshape(height + 1, width + 1, 4)[..., _LOW_BYTE]  # each sum mod 256, no copy
    return np.subtract(low[1:, 1:], low[:-1, 1:])  # a new uint8 array; the difference wraps mod 256


def _inflate_one_filter(idat: bytes, height: int, stride: int) -> bytes | None:
    """The scanlines of ``idat`` if they are exactly ``height`` rows of ``stride`` bytes, the
    stream ends there, and every row has the first row's filter, None, Sub or Up; else None.
    The first 16 rows are inflated apart: a file written with a filter per row (libpng's
    adaptive choice, Paeth rows and all) mostly shows it there and is given up for little more
    than its chunk walk (OpenCV then decodes it at its own speed); one whose rows differ only
    later is given up after inflating it whole. (Smaller blocks all through cost the decoding
    pool more in GIL hand-overs than they saved.)"""
    need = height * stride
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


def _chunks(data: bytes) -> tuple[int, int, bytes] | None:
    """(width, height, the joined IDAT data) of an 8-bit grey, non-interlaced PNG whose chunks
    are whole with right CRCs and valid names, IDATs consecutive, and no other critical chunk,
    tRNS or acTL; None otherwise."""
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
        if not kind.isalpha() or kind[2] & 0x20:  # four ASCII letters, the reserved bit clear, or libpng refuses it
            return None
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
