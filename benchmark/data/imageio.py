"""Reading images with errors that name the file. OpenCV is imported on first use.

Every read goes through ``_load``: the file's bytes are read once, checked for
completeness (OpenCV's ``imread`` decodes a truncated JPEG without a word, filling the
missing rows with grey), then decoded from those bytes. A file that is cut short or
corrupt is refused with a BadInput that names it, never scored.

EXIF orientation is ignored everywhere (``cv2.IMREAD_IGNORE_ORIENTATION``): pixels are taken
in the order they are stored, as CDnet's own tools read them and as masks (PNG, BMP, no
EXIF) are read. A JPEG frame with an orientation tag is therefore never rotated away from
its ground truth (docs/scoring.md, "EXIF orientation").
"""

from __future__ import annotations

import os
import struct
from pathlib import Path

import numpy as np

from bgbench.data.png import gray8 as _png_gray8
from bgbench.data.png import grey_values as _png_grey_values
from bgbench.errors import BadInput

# The reads whose answer for an 8-bit grey PNG is its stored values (cv2.IMREAD_UNCHANGED,
# cv2.IMREAD_GRAYSCALE | cv2.IMREAD_IGNORE_ORIENTATION; OpenCV is imported on first use).
_GRAY_FLAGS = frozenset({-1, 0 | 128})

_RESTORE = "restore the file from the dataset's archive, or remove the video from --data"


def _cv2():
    # OpenCV's thread count is left as the caller has it: the pool that decodes many frames
    # at once (framecache) sets it to 1 for itself (scoped.opencv_threads) and restores it.
    import cv2

    return cv2


def decode_workers() -> int:
    """Threads of a pool that decodes many images (OpenCV at one thread each): one per core,
    at most 8. (One more than the cores once decoded highway 7% faster, when libpng and zlib
    did the work with the GIL released; with PNGs unfiltered in Python and inflated by
    libdeflate a third thread on 2 cores only adds GIL hand-overs: highway's ground truth
    built with 0.68 s of CPU against 0.74 s, its frames 1.03 against 1.06 s, `bgbench score`
    decoded its masks with 0.41 against 0.44 s, wall times equal or better: medians of 4-5
    interleaved ad-hoc rounds.)"""
    return min(8, os.cpu_count() or 1)


# --- completeness ------------------------------------------------------------------------
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _jpeg_problem(data: bytes) -> str | None:
    if not data.startswith(b"\xff\xd8"):
        return None  # not a JPEG after all: the decoder decides
    # Inside entropy-coded data a 0xFF byte is always followed by 0x00 or a restart
    # marker, so an FF D9 after the last start-of-scan (FF DA) is the real end of image.
    sos = data.rfind(b"\xff\xda")
    if sos < 0:
        return "is a JPEG with no image data (no start-of-scan marker FF DA): the file is cut short"
    if data.find(b"\xff\xd9", sos + 2) < 0:
        return ("is a truncated JPEG: no end-of-image marker (FF D9) after its last scan, so the missing part "
                "would decode as grey")
    return None


def _png_problem(data: bytes) -> str | None:
    if not data.startswith(_PNG_SIGNATURE):
        return None
    pos, n, seen_idat = len(_PNG_SIGNATURE), len(data), False
    while pos + 8 <= n:  # walk the chunks: length, type, data, CRC
        length = int.from_bytes(data[pos:pos + 4], "big")
        kind = data[pos + 4:pos + 8]
        end = pos + 12 + length
        if end > n:
            return (f"is a truncated PNG: its {kind.decode('latin-1')} chunk needs {length} bytes but the file "
                    f"ends {end - n} byte(s) short")
        seen_idat |= kind == b"IDAT"
        if kind == b"IEND":
            return None if seen_idat else "is a PNG with no image data (no IDAT chunk)"
        pos = end
    return "is a truncated PNG: it ends before its IEND chunk"


def _bmp_problem(data: bytes) -> str | None:
    if not data.startswith(b"BM") or len(data) < 30:
        return None
    offset = struct.unpack_from("<I", data, 10)[0]
    header = struct.unpack_from("<I", data, 14)[0]
    if header < 40 or len(data) < 34:
        return None  # an old OS/2 header: the decoder decides
    width, height, _, bpp, compression = struct.unpack_from("<iiHHI", data, 18)
    if compression not in (0, 3) or width <= 0 or bpp == 0:
        return None  # run-length or embedded formats: the decoder decides
    need = offset + ((width * bpp + 31) // 32) * 4 * abs(height)
    if len(data) < need:
        return f"is a truncated BMP: its pixel data needs {need} bytes but the file holds {len(data)}"
    return None


def completeness_problem(data: bytes) -> str | None:
    """Why the encoded image ``data`` is cut short or incomplete, or None if it is whole.

    JPEG: an end-of-image marker after the last scan; PNG: every chunk whole, up to IEND;
    BMP: all the pixel rows its header announces. Cheap (no decoding); other formats pass.
    """
    return _jpeg_problem(data) or _png_problem(data) or _bmp_problem(data)


def _load(path: Path, flag: int, damaged_fix: str = _RESTORE, one_channel: bool = False) -> np.ndarray:
    """``path`` decoded by OpenCV with ``flag``, or by ``bgbench.data.png`` where it gives the
    same pixels; ``one_channel`` (an unchanged read whose caller keeps one of three equal
    channels): a palette PNG of grey entries may come back as those values, H x W."""
    path = Path(path)
    from bgbench.safefs import read_bytes

    try:
        data = read_bytes(path)  # a FIFO or device where an image should be: BadInput naming it, never a hang
    except FileNotFoundError:
        if path.is_symlink():  # the name is there, what it points at is not
            raise BadInput(f"is a broken symbolic link (to {os.readlink(path)})", path,
                           "restore the file it points at, or replace the link with the file") from None
        raise BadInput("is missing", path, damaged_fix) from None
    except OSError as e:
        raise BadInput(f"cannot be read ({e.strerror or e})", path, "check the file's permissions, or restore it") from None
    problem = completeness_problem(data)
    if problem:
        raise BadInput(problem, path, damaged_fix)
    cv2 = _cv2()
    img = None
    if flag in _GRAY_FLAGS:  # the common mask PNGs, decoded faster (data.png)
        img = _png_grey_values(data) if one_channel and flag == cv2.IMREAD_UNCHANGED else _png_gray8(data)
    if img is None:
        img = cv2.imdecode(np.frombuffer(data, np.uint8), flag) if data else None
    if img is None:
        raise BadInput("cannot be decoded as an image" + (" (the file is empty)" if not data else ""), path, damaged_fix)
    return img


def decode_flag(colour: bool) -> int:
    """The OpenCV flag every bgbench read uses: colour or grey, EXIF orientation ignored."""
    cv2 = _cv2()
    return (cv2.IMREAD_COLOR if colour else cv2.IMREAD_GRAYSCALE) | cv2.IMREAD_IGNORE_ORIENTATION


def _read(path: Path, colour: bool) -> np.ndarray:
    return _load(path, decode_flag(colour))


def read_bgr(path: Path) -> np.ndarray:
    """A colour image in OpenCV's channel order (BGR), the order bgbench keeps frames in."""
    return _read(path, True)


def read_gray(path: Path) -> np.ndarray:
    return _read(path, False)


COLOUR_RULES = ("refuse", "luma")


def _one_channel(path: Path, what: str, fix: str, damaged_fix: str = _RESTORE, colour: str = "refuse") -> np.ndarray:
    """The image's values as stored, as H x W uint8: a colour file must hold one value in
    all three channels (a weighted grey conversion would invent values), 16-bit values
    must be exact multiples of 257 (the 8-bit value written at 16 bits).

    ``colour="luma"`` (for datasets whose own masks are 24-bit colour files with
    anti-aliased edges, Wallflower): an 8-bit colour file whose channels differ is read as
    its luma, ITU-R BT.601 ``Y = 0.299 R + 0.587 G + 0.114 B`` as OpenCV's BGR2GRAY computes
    it (fixed point: one level off the exactly rounded value on 22,411 of the 2^24 colours,
    docs/scoring.md), which is the value itself wherever the three channels agree."""
    if colour not in COLOUR_RULES:
        raise ValueError(f"colour rule {colour!r} is not one of {COLOUR_RULES}")
    cv2 = _cv2()
    img = _load(path, cv2.IMREAD_UNCHANGED, damaged_fix, one_channel=True)  # UNCHANGED: no EXIF orientation either
    if img.ndim == 3:
        if img.shape[2] == 4:
            if not (img[..., 3] == np.iinfo(img.dtype).max).all():
                raise BadInput(f"{what} has a transparency (alpha) channel that is not opaque everywhere", path, fix)
            img = img[..., :3]
        if img.shape[2] >= 3:
            b, g, r = img[..., 0], img[..., 1], img[..., 2]
            differ = (b != g) | (g != r)
            if differ.any() and colour == "luma" and img.dtype == np.uint8:
                return np.ascontiguousarray(cv2.cvtColor(np.ascontiguousarray(img[..., :3]), cv2.COLOR_BGR2GRAY))
            if differ.any():
                y, x = np.argwhere(differ)[0]
                raise BadInput(
                    f"{what} is a colour image whose channels differ ({int(differ.sum())} pixel(s), the first at "
                    f"x={x} y={y} holds B,G,R = {int(b[y, x])},{int(g[y, x])},{int(r[y, x])})", path, fix)
        img = img[..., 0]
    if img.dtype == np.uint16:
        if (img % 257).any():
            raise BadInput(f"{what} is a 16-bit image whose values are not 8-bit values (multiples of 257)", path, fix)
        img = (img // 257).astype(np.uint8)
    elif img.dtype != np.uint8:
        raise BadInput(f"{what} holds {img.dtype} values, not 8-bit ones", path, fix)
    return np.ascontiguousarray(img)


def read_label(path: Path, colour: str = "refuse") -> np.ndarray:
    """A ground-truth image's label values, H x W uint8, exactly as stored; ``colour``:
    what a colour file whose channels differ gives (``_one_channel``): refused, or its luma."""
    return _one_channel(path, "ground truth", "write ground truth as a single-channel 8-bit lossless image (PNG), "
                                              "or restore it from the dataset's archive", colour=colour)


def _values_text(counts: np.ndarray, limit: int = 8) -> str:
    vals = np.flatnonzero(counts)
    shown = ", ".join(f"{v} ({counts[v]} px)" for v in vals[:limit])
    return shown + (f", ... ({len(vals)} distinct values)" if len(vals) > limit else "")


def read_mask(path: Path, probabilities: bool = False) -> np.ndarray:
    """A prediction mask to score, H x W uint8, validated so it cannot score F = 0 silently.

    Default: a binary mask, every value 0 or 255. ``probabilities``: grey levels 0..255
    read as probabilities p = value / 255. Either way a colour file must hold the same
    value in its three channels."""
    fix = ("write each mask as one 8-bit channel, 0 background and 255 foreground (e.g. mask.astype(bool) * 255), "
           "or pass --probabilities if the values are probabilities scaled to 0..255")
    m = _one_channel(path, "mask", fix, damaged_fix="write this mask again (a whole 8-bit PNG, 0 and 255): the file is "
                                                     "cut short or is not an image")
    if probabilities:
        return m
    cv2 = _cv2()
    if not cv2.countNonZero(cv2.inRange(m, 1, 254)):  # only 0 and 255: the common case, no histogram needed
        return m
    counts = np.bincount(m.ravel(), minlength=256)
    if counts[1:255].any():
        hint = ""
        if not counts[2:].any():
            hint = ": a 0/1 mask, which would score F = 0"
        elif not counts[np.r_[1:127, 128:256]].any():
            hint = ": a 0/127 mask, which would score F = 0"
        raise BadInput(f"mask holds values {_values_text(counts)}, not only 0 and 255{hint}", path, fix)
    return m


def image_size(path: Path) -> tuple[int, int]:
    """(height, width) of an image file."""
    return read_gray(path).shape[:2]


def write_mask(path: Path, mask: np.ndarray) -> None:
    """Encoded in memory, then written atomically: a full disk is ``DiskFull`` naming the
    folder (never a failed job), and no half-written PNG is left."""
    from bgbench.safefs import write_bytes

    cv2 = _cv2()
    ok, buf = cv2.imencode(".png", mask)
    if not ok:
        raise BadInput("could not be encoded as PNG", path, "write a 2-D uint8 mask")
    write_bytes(path, buf.tobytes(), "masks")
