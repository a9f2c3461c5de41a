"""The fast grey-PNG decoder (bgbench.data.png) against OpenCV's decoder on files built here byte
by byte: every filter mix it takes must give OpenCV's pixels exactly, and every file it leaves
to OpenCV (another format, a filter it does not undo, a damaged chunk) must be answered by
OpenCV, through ``read_mask`` as well."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest

from bgbench.data import imageio
from bgbench.data.png import gray8, grey_values
from bgbench.errors import BadInput

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture(autouse=True, params=["libdeflate", "zlib"])
def inflater(request, monkeypatch):
    """Every test with each inflater: libdeflate where the system has it, and zlib."""
    from bgbench.data import inflate

    if request.param == "libdeflate" and not inflate.LIBDEFLATE:
        pytest.skip("no libdeflate on this system")
    monkeypatch.setattr(inflate, "LIBDEFLATE", request.param == "libdeflate")
    return request.param


def test_libdeflate_inflates_exactly_what_zlib_does_and_refuses_the_same(inflater):
    """One whole zlib stream of exactly the size asked, its checksum right, nothing after it:
    the bytes; anything else: None (zlib's path refuses the same in ``_inflate_one_filter``)."""
    from bgbench.data import inflate

    if inflater != "libdeflate":
        pytest.skip("libdeflate's own check runs once, under the libdeflate parameter")
    rng = np.random.default_rng(1)
    raw = bytes(rng.integers(0, 4, 5000, np.uint8)) + bytes(3000)
    for level in (0, 1, 6, 9):
        stream = zlib.compress(raw, level)
        got = inflate.exact(stream, len(raw))
        assert got is not None and got.tobytes() == raw and got.flags.writeable
        bad_check = stream[:-1] + bytes([stream[-1] ^ 1])
        for why, data, size in (("shorter than asked", stream, len(raw) + 1), ("longer than asked", stream, len(raw) - 1),
                                ("cut short", stream[:-5], len(raw)), ("bytes after it", stream + b"\0", len(raw)),
                                ("a wrong Adler-32", bad_check, len(raw)), ("not zlib", raw[:100], len(raw))):
            assert inflate.exact(data, size) is None, (level, why)


def _chunk(kind: bytes, body: bytes, crc: int | None = None) -> bytes:
    crc = zlib.crc32(kind + body) if crc is None else crc
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)


def _paeth(a: int, b: int, c: int) -> int:
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    return a if pa <= pb and pa <= pc else (b if pb <= pc else c)


def _filtered(img: np.ndarray, kinds: list[int]) -> bytes:
    """The PNG scanlines of an 8-bit grey image, row y filtered with kinds[y] (the standard's
    five filters, written out pixel by pixel)."""
    h, w = img.shape
    out = bytearray()
    for y in range(h):
        row = [int(v) for v in img[y]]
        up = [int(v) for v in img[y - 1]] if y else [0] * w
        k = kinds[y]
        out.append(k)
        for x in range(w):
            a = row[x - 1] if x else 0
            b = up[x]
            c = up[x - 1] if x else 0
            pred = (0, a, b, (a + b) // 2, _paeth(a, b, c))[k]
            out.append((row[x] - pred) % 256)
    return bytes(out)


def png(img: np.ndarray, kinds: list[int] | None = None, *, depth: int = 8, colour: int = 0, interlace: int = 0,
        extra: tuple[bytes, ...] = (), idat_parts: int = 1, stream: bytes | None = None,
        idat_crc: int | None = None) -> bytes:
    h, w = img.shape
    kinds = [1] * h if kinds is None else kinds
    data = zlib.compress(_filtered(img, kinds), 6) if stream is None else stream
    cut = max(1, -(-len(data) // idat_parts))
    idats = [_chunk(b"IDAT", data[k:k + cut], idat_crc) for k in range(0, len(data), cut)]
    ihdr = _chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, depth, colour, 0, 0, interlace))
    return b"\x89PNG\r\n\x1a\n" + ihdr + b"".join(extra) + b"".join(idats) + _chunk(b"IEND", b"")


def opencv(data: bytes, flag: int = cv2.IMREAD_UNCHANGED) -> np.ndarray | None:
    return cv2.imdecode(np.frombuffer(data, np.uint8), flag)


def _image(rng: np.random.Generator, h: int, w: int, mask: bool) -> np.ndarray:
    return (rng.random((h, w)) < 0.3).astype(np.uint8) * 255 if mask else rng.integers(0, 256, (h, w), np.uint8)


def test_the_flags_it_serves_are_opencvs_grey_reads():
    assert imageio._GRAY_FLAGS == {cv2.IMREAD_UNCHANGED, cv2.IMREAD_GRAYSCALE | cv2.IMREAD_IGNORE_ORIENTATION}


@pytest.mark.parametrize("shape", [(1, 1), (1, 37), (29, 1), (17, 23), (64, 48), (300, 200)])
def test_one_filter_for_every_row_decodes_as_opencv_does_and_mixes_are_left_to_it(shape):
    """Rows all None, all Sub or all Up: OpenCV's pixels exactly (several IDAT chunks, blocks
    of rows inflated apart). Mixed filters, even only None, Sub and Up,
    are OpenCV's to decode, wherever the first other row is (the first, the last, a block's edge)."""
    rng = np.random.default_rng(sum(shape))
    h, w = shape
    for kind in (0, 1, 2):
        for mask in (True, False):
            img = _image(rng, h, w, mask)
            data = png(img, [kind] * h, idat_parts=3)
            got = gray8(data)
            assert got is not None, kind
            assert got.dtype == np.uint8 and got.shape == (h, w) and got.flags.c_contiguous
            np.testing.assert_array_equal(got, img)
            np.testing.assert_array_equal(got, opencv(data))
            np.testing.assert_array_equal(got, opencv(data, cv2.IMREAD_GRAYSCALE | cv2.IMREAD_IGNORE_ORIENTATION))
    if h == 1:
        return
    img = _image(rng, h, w, True)
    for at in sorted({1, h - 1, min(h - 1, 15), min(h - 1, 16), h // 2}):  # (16: the first block's end)
        for first, other in ((1, 2), (0, 1), (1, 4), (2, 3)):
            kinds = [first] * h
            kinds[at] = other
            data = png(img, kinds)
            assert gray8(data) is None, (at, first, other)
            np.testing.assert_array_equal(opencv(data), img)  # (the file is good: our encoder is right)


def test_masks_opencv_writes_take_the_fast_path():
    """OpenCV's ``imwrite``/``imencode`` filters every row with Sub unless told otherwise (or
    with the one filter it is given): this path decodes those. Given a compression level, or
    IMWRITE_PNG_FAST_FILTERS, it picks a filter per row (Paeth too, with a level): where this
    path takes such a file (one filter throughout), its image is still OpenCV's."""
    gt = sorted((SHARED / "CDnet2014" / "baseline" / "highway" / "groundtruth").glob("gt*.png"))[900:1500:100]
    if not gt:
        pytest.skip("no ../shared/data")
    masks = [np.where(cv2.imread(str(f), cv2.IMREAD_GRAYSCALE) == 255, 255, 0).astype(np.uint8) for f in gt]
    blob = np.zeros((240, 320), np.uint8)
    cv2.circle(blob, (100, 120), 40, 255, -1)
    masks += [blob, _image(np.random.default_rng(3), 240, 320, True), _image(np.random.default_rng(4), 31, 45, False)]
    for img in masks:
        for params in ([], *([cv2.IMWRITE_PNG_FILTER, f] for f in (cv2.IMWRITE_PNG_FILTER_NONE, cv2.IMWRITE_PNG_FILTER_SUB,
                                                                    cv2.IMWRITE_PNG_FILTER_UP))):
            got = gray8(cv2.imencode(".png", img, params)[1].tobytes())
            assert got is not None
            np.testing.assert_array_equal(got, img)
        for params in ([cv2.IMWRITE_PNG_FILTER, cv2.IMWRITE_PNG_FAST_FILTERS], [cv2.IMWRITE_PNG_COMPRESSION, 0],
                       [cv2.IMWRITE_PNG_COMPRESSION, 9]):
            got = gray8(cv2.imencode(".png", img, params)[1].tobytes())
            if got is not None:
                np.testing.assert_array_equal(got, img)


def test_ancillary_chunks_are_skipped_as_libpng_skips_them():
    img = _image(np.random.default_rng(5), 20, 30, True)
    extra = (_chunk(b"tEXt", b"Software\x00test"), _chunk(b"pHYs", struct.pack(">IIB", 2835, 2835, 1)),
             _chunk(b"gAMA", struct.pack(">I", 45455)), _chunk(b"tIME", bytes(7)), _chunk(b"prVt", b"own chunk"))
    data = png(img, extra=extra)
    np.testing.assert_array_equal(gray8(data), opencv(data))


def test_what_it_leaves_to_opencv():
    rng = np.random.default_rng(7)
    img = _image(rng, 12, 16, False)
    good = png(img)
    stream = zlib.compress(_filtered(img, [1] * 12))
    left = {
        "average rows": png(img, [1, 3] * 6),
        "paeth rows": png(img, [4] * 12),
        "a filter that does not exist": png(img, [1] * 11 + [5], stream=zlib.compress(_filtered(img, [1] * 12)[:-17]
                                                                                      + b"\x05" + bytes(16))),
        "transparency": png(img, extra=(_chunk(b"tRNS", b"\x00\x00"),)),
        "an animation (APNG)": png(img, extra=(_chunk(b"acTL", struct.pack(">II", 1, 0)),)),
        "a palette chunk": png(img, extra=(_chunk(b"PLTE", bytes(3)),)),
        "interlaced": png(img, interlace=1),
        "colour": png(img, colour=2),
        "16-bit": png(img, depth=16),
        "a wrong IDAT CRC": png(img, idat_crc=1),
        "a wrong ancillary CRC": png(img, extra=(_chunk(b"tEXt", b"a\x00b", crc=7),)),
        "a short stream": png(img, stream=stream[:-9]),
        "a stream of too few rows": png(img, stream=zlib.compress(_filtered(img, [1] * 12)[:-17])),
        "a stream of too many rows": png(img, stream=zlib.compress(_filtered(img, [1] * 12) + bytes(17))),
        "data after the stream": png(img, stream=stream + b"\x00\x01"),
        "no IDAT": good[:33] + _chunk(b"IEND", b""),
        "IDATs apart": good[:33] + _chunk(b"IDAT", stream[:10]) + _chunk(b"tEXt", b"a\x00b")
        + _chunk(b"IDAT", stream[10:]) + _chunk(b"IEND", b""),
        "cut short": good[:-20],
        "not a PNG": cv2.imencode(".bmp", img)[1].tobytes(),
    }
    assert gray8(good) is not None
    for why, data in left.items():
        assert gray8(data) is None, why


def test_too_big_for_int32_row_sums_is_left_to_opencv():
    img = np.zeros((3000, 3000), np.uint8)
    data = cv2.imencode(".png", img)[1].tobytes()
    assert gray8(data) is None
    assert gray8(cv2.imencode(".png", img[:2000])[1].tobytes()) is not None


def test_read_mask_answers_as_opencv_for_files_it_leaves(tmp_path):
    """Through the reader: a file the fast path leaves gives OpenCV's image, or OpenCV's refusal."""
    img = (np.random.default_rng(9).random((12, 16)) < 0.5).astype(np.uint8) * 255
    paeth = tmp_path / "paeth.png"
    paeth.write_bytes(png(img, [4] * 12))
    np.testing.assert_array_equal(imageio.read_mask(paeth), img)
    bad = tmp_path / "bad.png"
    bad.write_bytes(png(img, idat_crc=1))
    assert opencv(bad.read_bytes()) is None
    with pytest.raises(BadInput, match="cannot be decoded"):
        imageio.read_mask(bad)


def _grey8(f: Path) -> bool:
    head = f.read_bytes()[:29]
    return head[24:29] == b"\x08\x00\x00\x00\x00"  # IHDR: depth 8, grey, not interlaced


def test_real_masks_decode_as_opencv_does():
    """Grey PNGs of real scenes (SBI2015's ground truth is Sub-filtered, UCSD's mixes Paeth in):
    where the fast path takes a file, its image is OpenCV's."""
    files = [f for ds in ("SBI2015", "UCSD") for f in [g for g in sorted((SHARED / ds).rglob("*.png")) if _grey8(g)][:60]]
    if not files:
        pytest.skip("no ../shared/data")
    taken = 0
    for f in files:
        data = f.read_bytes()
        got = gray8(data)
        if got is not None:
            taken += 1
            np.testing.assert_array_equal(got, opencv(data), err_msg=str(f))
    assert taken >= 40


def test_results_are_fresh_writable_arrays_also_across_threads():
    """Every result is its own writable array (never a view of the inflated bytes or of a
    thread's reused integral buffer): results kept across calls, on several threads, stay
    equal to OpenCV's."""
    from concurrent.futures import ThreadPoolExecutor

    rng = np.random.default_rng(11)
    images = [_image(rng, int(h), 40, bool(k % 2)) for k, h in enumerate(rng.integers(1, 30, 24))]
    kinds = [[k % 3] * len(im) for k, im in enumerate(images)]
    datas = [png(im, kd) for im, kd in zip(images, kinds)]
    with ThreadPoolExecutor(4) as pool:
        got = list(pool.map(gray8, datas * 3))
    for k, g in enumerate(got):
        assert g is not None and g.flags.writeable
        np.testing.assert_array_equal(g, images[k % len(images)])
    one_row = gray8(png(images[0][:1], [0]))
    one_row[0, 0] ^= 1  # writable, and a copy
    assert gray8(png(images[0][:1], [0]))[0, 0] == images[0][0, 0]


def test_invalid_chunk_names_and_oversized_sides_are_left_to_opencv():
    img = _image(np.random.default_rng(13), 4, 6, True)
    for kind in (b"ab1d", b"a\x00cd", b"abcd"):  # a digit, a NUL, the reserved (third) letter lower case
        data = png(img, extra=(_chunk(kind, b"x"),))
        assert gray8(data) is None and opencv(data) is None, kind
    private = png(img, extra=(_chunk(b"abCd", b"x"),))  # a valid private ancillary chunk: skipped by both
    np.testing.assert_array_equal(gray8(private), opencv(private))
    wide = np.zeros((1, 1_000_001), np.uint8)
    data = png(wide, [0], stream=zlib.compress(b"\x00" + bytes(1_000_001)))
    assert gray8(data) is None


def test_colour_reads_never_take_the_grey_path(tmp_path):
    """A grey PNG read as colour (frames) is OpenCV's three-channel image, not the grey one."""
    img = _image(np.random.default_rng(17), 8, 9, False)
    f = tmp_path / "grey.png"
    f.write_bytes(png(img))
    bgr = imageio.read_bgr(f)
    assert bgr.shape == (8, 9, 3)
    np.testing.assert_array_equal(bgr, opencv(f.read_bytes(), cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION))


def _plte(entries: list[tuple[int, int, int]]) -> bytes:
    return _chunk(b"PLTE", bytes(v for e in entries for v in e))


def _opencv_one_channel(data: bytes) -> np.ndarray | None:
    """What ``imageio._one_channel`` keeps of OpenCV's unchanged read: the value of three equal
    channels (None where they differ)."""
    img = opencv(data)
    if img.ndim == 3:
        same = (img[..., 0] == img[..., 1]).all() and (img[..., 1] == img[..., 2]).all()
        return img[..., 0] if same else None
    return img


def test_grey_palettes_give_each_pixels_entry_as_opencv_does(tmp_path, monkeypatch):
    """8-bit palette PNGs whose pixels use grey entries only (CDnet2014's ground truth: 256
    entries, each its index): the entry's value per pixel, as OpenCV's three equal channels
    give it, through ``read_label`` as well; coloured entries no pixel uses do not matter."""
    rng = np.random.default_rng(11)
    h, w = 21, 34
    identity = [(v, v, v) for v in range(256)]
    reversed_greys = [(255 - v,) * 3 for v in range(256)]
    short = [(v * 15,) * 3 for v in range(17)]
    some_coloured = [(v, v, v) if v % 2 == 0 else (v, 0, 255 - v) for v in range(256)]
    for entries, index in ((identity, rng.integers(0, 256, (h, w))), (reversed_greys, rng.integers(0, 256, (h, w))),
                           (short, rng.integers(0, 17, (h, w))), (some_coloured, 2 * rng.integers(0, 128, (h, w)))):
        index = index.astype(np.uint8)
        want = np.array([e[0] for e in entries], np.uint8)[index]
        for kind in (0, 1, 2):
            data = png(index, [kind] * h, colour=3, extra=(_plte(entries),), idat_parts=2)
            got = grey_values(data)
            assert got is not None and gray8(data) is None
            assert got.dtype == np.uint8 and got.shape == (h, w) and got.flags.writeable
            np.testing.assert_array_equal(got, want)
            np.testing.assert_array_equal(got, _opencv_one_channel(data))
    f = tmp_path / "gt.png"
    f.write_bytes(png(index, colour=3, extra=(_plte(some_coloured),)))
    fast = imageio.read_label(f)
    monkeypatch.setattr(imageio, "_png_grey_values", lambda data: None)  # OpenCV's way
    np.testing.assert_array_equal(fast, imageio.read_label(f))


def test_palettes_it_leaves_to_opencv(tmp_path):
    """A used coloured entry (then ``read_label`` refuses the file as OpenCV's channels say),
    an index past the palette, transparency, a misplaced, doubled, broken or missing PLTE, a
    depth under 8, Paeth rows: None."""
    rng = np.random.default_rng(12)
    index = rng.integers(0, 16, (10, 12)).astype(np.uint8)
    greys = [(v * 16,) * 3 for v in range(16)]
    stream = zlib.compress(_filtered(index, [1] * 10))
    ihdr = _chunk(b"IHDR", struct.pack(">IIBBBBB", 12, 10, 8, 3, 0, 0, 0))
    sig = b"\x89PNG\r\n\x1a\n"
    coloured = [*greys[:15], (200, 10, 10)]
    left = {
        "a coloured entry in use": png(index, colour=3, extra=(_plte(coloured),)),
        "an index past the palette": png(index, colour=3, extra=(_plte(greys[:15]),)),
        "transparency": png(index, colour=3, extra=(_plte(greys), _chunk(b"tRNS", b"\x00"))),
        "PLTE after the IDAT": sig + ihdr + _chunk(b"IDAT", stream) + _plte(greys) + _chunk(b"IEND", b""),
        "two PLTEs": png(index, colour=3, extra=(_plte(greys), _plte(greys))),
        "a PLTE of a broken length": png(index, colour=3, extra=(_chunk(b"PLTE", bytes(47)),)),
        "no PLTE": png(index, colour=3),
        "4-bit indices": png(index, colour=3, depth=4, extra=(_plte(greys),)),
        "paeth rows": png(index, [4] * 10, colour=3, extra=(_plte(greys),)),
    }
    assert grey_values(png(index, colour=3, extra=(_plte(greys),))) is not None
    for why, data in left.items():
        assert grey_values(data) is None, why
    f = tmp_path / "coloured.png"
    f.write_bytes(left["a coloured entry in use"])
    with pytest.raises(BadInput, match="channels differ"):
        imageio.read_label(f)
    np.testing.assert_array_equal(imageio.read_label(f, colour="luma"),
                                  cv2.cvtColor(opencv(f.read_bytes()), cv2.COLOR_BGR2GRAY))


def test_real_palette_ground_truth_reads_as_opencv_does(monkeypatch):
    """CDnet2014's masks (8-bit palettes of 256 greys): ``read_label`` by this path equals
    ``read_label`` by OpenCV, file for file, across every CDnet scene here."""
    files = [f for scene in sorted((SHARED / "CDnet2014").glob("*/*/groundtruth"))
             for f in sorted(scene.glob("*.png"))[::97]]
    if not files:
        pytest.skip("no ../shared/data")
    fast = [imageio.read_label(f) for f in files]
    assert sum(grey_values(f.read_bytes()) is not None for f in files) == len(files)
    monkeypatch.setattr(imageio, "_png_grey_values", lambda data: None)
    for f, got in zip(files, fast):
        np.testing.assert_array_equal(got, imageio.read_label(f), err_msg=str(f))
