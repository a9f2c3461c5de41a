"""What full-content provenance costs: hashing every file under ../shared/data (or the
folders given) whole with BLAKE2b, first and memoised, and verifying the largest entry of
the decoded-frame cache (what the first open of an entry in a process costs).

    python -m tests.perf.hash_data [DATA ...]
"""

from __future__ import annotations

import resource
import sys
import time
from pathlib import Path

from bgbench.data import filehash, framecache

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"


def main(argv: list[str]) -> int:
    roots = [Path(a) for a in argv] or [DATA]
    files = [p for r in roots for p in sorted(r.rglob("*")) if p.is_file()]
    size = sum(p.stat().st_size for p in files)
    def cpu() -> float:
        r = resource.getrusage(resource.RUSAGE_SELF)
        return r.ru_utime + r.ru_stime

    c0, t0 = cpu(), time.perf_counter()
    filehash.digests(files)
    c1, t1 = cpu(), time.perf_counter()
    filehash.digests(files)
    t2 = time.perf_counter()
    print(f"{len(files)} files, {size / 1e6:.0f} MB: hashed in {t1 - t0:.2f} s wall, {c1 - c0:.2f} s CPU; memoised (stat only) {t2 - t1:.2f} s")
    stacks = [e for e in framecache.entries() if e.kind == "stack"]
    if stacks:
        big = max(stacks, key=lambda e: e.bytes)
        t3 = time.perf_counter()
        framecache._entry_checksum(big.path)
        t4 = time.perf_counter()
        print(f"verifying the largest cache entry ({big.name}, {big.bytes / 1e6:.0f} MB): {t4 - t3:.2f} s "
              f"({big.bytes / 1e6 / (t4 - t3):.0f} MB/s)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
