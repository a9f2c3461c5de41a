"""Costs inside a one-method run that docs/performance.md and docs/data.md quote, each measured
here against the way it was done before:

    python -m tests.perf.run_costs [--video SCENE] [--repeats 3]

- a code fingerprint (gmm_zivkovic's) in a fresh process, with an empty import-list store and
  with the lists stored (``provenance._ImportsMemo``);
- building the scene's frame-cache entry (frames, as ``cached_stack`` does, the sidecar's
  hashes included, from an empty digest memo) three ways: as now (``pwrite`` into the
  reserved file; each item's CRC-32 and each source file's digest taken by the decoding
  threads from the bytes they hold); the sources read again to hash them and the entry
  hashed whole with BLAKE2b after the build (the way before); and decoding into a fresh
  writable memmap and ``msync``-ing it (the way before that). Process user and system CPU,
  wall time, and apart the sync (on the build's path in the last, on a thread otherwise);
- reading a mask file with ``safefs.read_bytes`` against a file object's ``read()``.

Medians of ``--repeats`` interleaved rounds.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

FINGERPRINT = """
import time
from bgbench.baselines.opencv_bgs import GMMZivkovic
from bgbench.records.provenance import code_fingerprint
import bgbench.execution.runner
t0 = time.perf_counter()
code_fingerprint(GMMZivkovic)
print(time.perf_counter() - t0)
"""


def fingerprint_seconds(cache: Path) -> float:
    env = {**os.environ, "BGBENCH_CACHE": str(cache)}
    out = subprocess.run([sys.executable, "-c", FINGERPRINT], env=env, check=True, capture_output=True, text=True)
    return float(out.stdout.split()[-1])


def whole_file_blake2b(path: Path) -> str:
    """The entry checksum the sidecar held before (``blake2b``): BLAKE2b-128 of the whole
    entry file, in 16 MB pieces hashed on threads, combined in order."""
    import hashlib
    from concurrent.futures import ThreadPoolExecutor

    size = os.path.getsize(path)
    piece = 1 << 24

    def one(k: int) -> bytes:
        with open(path, "rb", buffering=0) as f:
            f.seek(k * piece)
            return hashlib.blake2b(f.read(piece), digest_size=16).digest()

    n = max(1, -(-size // piece))
    with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1)) as pool:
        parts = list(pool.map(one, range(n)))
    h = hashlib.blake2b(f"{size}|{n}".encode(), digest_size=16)
    for d in parts:
        h.update(d)
    return h.hexdigest()


BUILDS = ("now", "hashed apart (before)", "memmap + msync (before that)")


def build(video, folder: Path, way: str) -> dict[str, float]:
    """One build of the video's frame stack into ``folder`` ``way`` (one of BUILDS), from an
    empty digest memo: CPU (user, system) and wall."""
    import contextlib

    import numpy as np

    from bgbench.data import filehash, framecache

    src = video.source  # the FrameSource: its files and its decoder
    files, shape = list(src.files), (*video.shape, 3)
    os.environ["BGBENCH_CACHE"] = str(folder)
    filehash._memo.clear()
    filehash._loaded.clear()
    framecache._open.clear()
    r0, t0 = os.times(), time.perf_counter()
    if way == BUILDS[2]:  # a fresh writable memmap, filled on the pool, then msync
        from concurrent.futures import ThreadPoolExecutor

        from bgbench.data.imageio import decode_workers
        from bgbench.execution.scoped import opencv_threads

        path = folder / "old.npy"
        out = np.lib.format.open_memmap(path, mode="w+", dtype=np.uint8, shape=(len(files), *shape))

        def fill(i: int) -> None:
            out[i] = src._decode(files[i])

        with opencv_threads(1), ThreadPoolExecutor(max_workers=decode_workers()) as pool:
            list(pool.map(fill, range(len(files))))
        s0 = time.perf_counter()
        out.flush()
        sync = time.perf_counter() - s0
        del out
        framecache._sources_hash(files)  # the sidecar's two hashes, as then
        whole_file_blake2b(path)
    else:
        apart = way == BUILDS[1]
        with contextlib.ExitStack() as stack:
            if apart:  # the decoders' reads are not hashed: the sources are read again for their digests
                from unittest import mock

                stack.enter_context(mock.patch.object(framecache, "noting_reads", contextlib.nullcontext))
            arr = framecache.cached_stack("run-costs", files, src._decode, shape)
        if apart:
            whole_file_blake2b(Path(arr.filename))
        s0 = time.perf_counter()
        framecache.wait_synced()  # (the run goes on meanwhile: timed apart)
        sync = time.perf_counter() - s0
    r1 = os.times()
    return {"user": r1.user - r0.user, "system": r1.system - r0.system,
            "wall": time.perf_counter() - t0 - sync, "sync": sync}


def main(argv: list[str] | None = None) -> int:
    from bgbench.timing.perf import default_scene

    ap = argparse.ArgumentParser(prog="python -m tests.perf.run_costs", description=__doc__.split("\n")[0])
    ap.add_argument("--video", type=Path, help="scene folder (default ../shared/data/CDnet2014/baseline/highway)")
    ap.add_argument("--repeats", type=int, default=3)
    a = ap.parse_args(argv)
    from bgbench.data.formats import discover
    from bgbench.safefs import read_bytes

    scene = a.video or default_scene()
    (video,) = discover(scene)
    load0 = os.getloadavg()[0]
    fp: dict[str, list[float]] = {"empty store": [], "lists stored": []}
    builds: dict[str, list[dict[str, float]]] = {way: [] for way in BUILDS}
    for _ in range(a.repeats):
        with tempfile.TemporaryDirectory() as tmp:
            fp["empty store"].append(fingerprint_seconds(Path(tmp)))
            fp["lists stored"].append(fingerprint_seconds(Path(tmp)))
        for name in builds:
            with tempfile.TemporaryDirectory(dir=Path.home()) as tmp:  # a disk, not a tmpfs
                builds[name].append(build(video, Path(tmp), name))
    masks = sorted(Path(scene, "groundtruth").glob("*.png"))[:500]
    reads = {"safefs.read_bytes": read_bytes, "open().read()": lambda p: open(p, "rb").read()}
    per_file: dict[str, list[float]] = {k: [] for k in reads}
    for _ in range(a.repeats):
        for name, fn in reads.items():
            c0 = time.process_time()
            for p in masks:
                fn(p)
            per_file[name].append((time.process_time() - c0) / len(masks))
    print(f"run costs, {scene}: medians of {a.repeats} rounds; load {load0:.1f} -> {os.getloadavg()[0]:.1f}")
    for name, v in fp.items():
        print(f"  code fingerprint, fresh process, {name:<14} {statistics.median(v):.3f} s")
    for name, v in builds.items():
        m = {k: statistics.median(r[k] for r in v) for k in v[0]}
        print(f"  frame-cache build, {name:<29} user {m['user']:.2f} s  system {m['system']:.2f} s  "
              f"wall {m['wall']:.2f} s  + sync {m['sync']:.2f} s")
    for name, v in per_file.items():
        print(f"  reading a mask, {name:<18} {statistics.median(v) * 1e6:.1f} us CPU")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
