"""zlib streams of a known size, inflated by libdeflate where the system has it (through
ctypes), else left to zlib by the caller.

PNG masks as OpenCV writes them are zlib streams made with ``Z_RLE``: runs, each a copy of
the byte before. zlib 1.2's inflate copies those byte by byte (here 165 us for a 320x240
detector mask, two thirds of decoding it); libdeflate copies a word at a time (33 us; both
printed by ``python -m tests.perf.png_decode``). Either gives the same bytes or the
same refusal: ``exact`` returns the bytes only for one whole zlib stream (its Adler-32
checked) that inflates to exactly the size asked, with nothing after it.

libdeflate is a system library (Debian's ``libdeflate0``, which ``libtiff6`` and so
``libopencv-dev`` bring in: ``.ci/setup`` installs it); where it is missing, ``LIBDEFLATE``
is False and callers inflate with zlib. A decompressor serves one call at a time: they are
kept in a free list (never one per thread: threads of short-lived pools would leak them).
The call releases the GIL (``ctypes.CDLL``), so decoding threads inflate in parallel.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import threading
from typing import Any

import numpy as np

_SUCCESS = 0
_free: list[int] = []  # decompressors not in use
_guard = threading.Lock()


def _load() -> Any:
    name = ctypes.util.find_library("deflate")
    if not name:
        return None
    try:
        lib = ctypes.CDLL(name)
        lib.libdeflate_alloc_decompressor.restype = ctypes.c_void_p
        lib.libdeflate_alloc_decompressor.argtypes = []
        fn = lib.libdeflate_zlib_decompress_ex
        fn.restype = ctypes.c_int
        fn.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p, ctypes.c_size_t,
                       ctypes.POINTER(ctypes.c_size_t), ctypes.POINTER(ctypes.c_size_t)]
    except (OSError, AttributeError):  # not loadable, or too old for the _ex call (libdeflate < 1.5)
        return None
    return lib


_lib = _load()
LIBDEFLATE = _lib is not None


def exact(data: bytes, size: int) -> np.ndarray | None:
    """The ``size`` bytes the zlib stream ``data`` inflates to (uint8, writable), or None when
    it is not one whole stream of exactly that size with nothing after it. Only where
    ``LIBDEFLATE``."""
    with _guard:
        d = _free.pop() if _free else None
    if d is None:
        d = _lib.libdeflate_alloc_decompressor()
        if not d:
            raise MemoryError("libdeflate could not allocate a decompressor")
    out = np.empty(size, np.uint8)
    used, made = ctypes.c_size_t(), ctypes.c_size_t()
    try:
        r = _lib.libdeflate_zlib_decompress_ex(d, data, len(data), out.ctypes.data, size,
                                               ctypes.byref(used), ctypes.byref(made))
    finally:
        with _guard:
            _free.append(d)
    if r != _SUCCESS or made.value != size or used.value != len(data):
        return None
    return out
