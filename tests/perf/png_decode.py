"""Decoding grey mask PNGs: bgbench's fast path (``bgbench.data.png.gray8``: zlib and an
integral image) against OpenCV's decoder (``cv2.imdecode``, libpng), on the same bytes in memory.

    python -m tests.perf.png_decode [--masks DIR] [--repeats 5]

Prints, per file, the median CPU time of each over ``--repeats`` interleaved passes on one
thread (the fast path with libdeflate where the system has it and with zlib, and the files'
zlib streams inflated alone by each), their ratio, how many of the files the fast path took (the rest go to OpenCV), the
same over all files as bgbench reads them (a file the fast path declines pays for its look
and then OpenCV), and checks that every image it returned is OpenCV's. Masks default to a frame-difference
detector's for CDnet2014 highway, written by OpenCV's default PNG writer (every row Sub).

Then the scene's ground truth as bgbench reads labels (``imageio.read_label``, file reads
included): with the fast path (``png.grey_values``: CDnet2014's masks are 8-bit palette
PNGs of grey entries) against the same reader with OpenCV alone (its BGR expansion, then
the check that the three channels agree), labels checked identical.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import tempfile
import time
import zlib
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    import cv2
    import numpy as np

    from bgbench.data.png import gray8
    from bgbench.timing.perf import add_mask_options, scene_and_masks

    ap = argparse.ArgumentParser(prog="python -m tests.perf.png_decode", description=__doc__.split("\n")[0])
    add_mask_options(ap, repeats=5)
    a = ap.parse_args(argv)
    cv2.setNumThreads(1)
    with tempfile.TemporaryDirectory() as tmp:
        scene, masks = scene_and_masks(a, Path(tmp))
        datas = [f.read_bytes() for f in sorted(Path(masks).glob("*.png"))]
    if not datas:
        raise SystemExit(f"no PNG files in {masks}")
    fast = [gray8(d) for d in datas]
    for d, img in zip(datas, fast):
        if img is not None and not np.array_equal(img, cv2.imdecode(np.frombuffer(d, np.uint8), cv2.IMREAD_UNCHANGED)):
            raise AssertionError("the fast path's image differs from OpenCV's")
    taken = [d for d, img in zip(datas, fast) if img is not None]
    def opencv(d: bytes):
        return cv2.imdecode(np.frombuffer(d, np.uint8), cv2.IMREAD_UNCHANGED)

    def read(d: bytes):
        img = gray8(d)
        return opencv(d) if img is None else img

    from bgbench.data import inflate, png

    has_libdeflate = inflate.LIBDEFLATE
    streams = [(c[3], c[1] * (c[0] + 1)) for d in taken if (c := png._chunks(d)) is not None]
    # (files, decoder, libdeflate on): the files the fast path takes, each way (the fast path
    # with each inflater), and their zlib streams inflated alone; every file as bgbench reads
    # it (the fast path, else OpenCV after it declined: a declined file pays for both)
    coders = {**({"bgbench fast path": (taken, gray8, has_libdeflate),
                   **({"bgbench, zlib inflate": (taken, gray8, False)} if has_libdeflate else {}),
                   "cv2.imdecode": (taken, opencv, has_libdeflate),
                   **({"inflate, libdeflate": (streams, lambda s: inflate.exact(*s), True)} if has_libdeflate else {}),
                   "inflate, zlib": (streams, lambda s: zlib.decompress(s[0]), False)} if taken else {}),
              "all files, bgbench": (datas, read, has_libdeflate),
              "all files, OpenCV": (datas, opencv, has_libdeflate)}
    times: dict[str, list[float]] = {k: [] for k in coders}
    load0 = os.getloadavg()[0]
    for _ in range(a.repeats):
        for name, (files, decode, libdeflate) in coders.items():
            inflate.LIBDEFLATE = libdeflate
            c0 = time.process_time()
            for d in files:
                decode(d)
            times[name].append((time.process_time() - c0) / max(1, len(files)))
    inflate.LIBDEFLATE = has_libdeflate
    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"grey PNG decoding, {masks}: {len(taken)} of {len(datas)} files taken by the fast path; "
          f"CPU per file, medians of {a.repeats} interleaved passes, one thread; load {load0:.1f} -> "
          f"{os.getloadavg()[0]:.1f}")
    for name, t in med.items():
        print(f"  {name:<22} {t * 1e6:7.1f} us")
    taken_ratio = f"{med['bgbench fast path'] / med['cv2.imdecode']:.2f}x OpenCV's time on the files taken, " \
        if taken else "no file taken; "
    if "bgbench, zlib inflate" in med:
        taken_ratio += f"{med['bgbench, zlib inflate'] / med['cv2.imdecode']:.2f}x with zlib's inflate, "
    print(f"  ratio                {taken_ratio}{med['all files, bgbench'] / med['all files, OpenCV']:.2f}x on all "
          "(as bgbench reads them); images identical")
    gt = sorted(Path(scene, "groundtruth").glob("*.png"))
    if gt:
        label_reads(gt, a.repeats)
    return 0


def label_reads(files: list[Path], repeats: int) -> None:
    from unittest import mock

    import numpy as np

    from bgbench.data import imageio

    def opencv_only():
        return mock.patch.object(imageio, "_png_grey_values", lambda data: None)

    fast = [imageio.read_label(f) for f in files]
    with opencv_only():
        if not all(np.array_equal(x, imageio.read_label(f)) for f, x in zip(files, fast)):
            raise AssertionError("the fast path's labels differ from OpenCV's")
    times: dict[str, list[float]] = {"read_label, bgbench": [], "read_label, OpenCV alone": []}
    for _ in range(repeats):
        for name in times:
            with opencv_only() if name.endswith("alone") else contextlib.nullcontext():
                c0 = time.process_time()
                for f in files:
                    imageio.read_label(f)
                times[name].append((time.process_time() - c0) / len(files))
    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"ground truth labels, {files[0].parent}: {len(files)} files, CPU per file (file read included)")
    for name, t in med.items():
        print(f"  {name:<26} {t * 1e6:7.1f} us")
    print(f"  ratio                      {med['read_label, bgbench'] / med['read_label, OpenCV alone']:.2f}x; "
          "labels identical")


if __name__ == "__main__":
    raise SystemExit(main())
