"""False alarms of the near-copy guard (bgbench.data.nearcopy) on real videos that share no
footage: every pair of videos under ../shared/data (or the folders given), compared by the
same rule that refuses a split. Prints the pair count, the pairs flagged (false alarms: no
two of these videos share footage), and the closest distance between frames of two
different videos against the threshold.

    python -m tests.perf.near_copies [DATA ...]
"""

from __future__ import annotations

import itertools
import sys
import time
from pathlib import Path

from bgbench.data import nearcopy
from bgbench.data.formats import discover

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"


def main(argv: list[str]) -> int:
    roots = [Path(a) for a in argv] or [DATA]
    videos = []
    for root in roots:
        videos += discover(root, roi_policy="ignore", on_error=lambda e: print(f"left out: {e}"))
    t0 = time.perf_counter()
    sigs = [nearcopy.signature(v) for v in videos]
    t1 = time.perf_counter()
    pairs = alarms = 0
    closest = (2.0, "", "")
    with nearcopy.one_blas_thread():
        for a, b in itertools.combinations(sigs, 2):
            pairs += 1
            found = nearcopy.shared_frames(a, b)
            if found is not None:
                alarms += 1
                print(f"FALSE ALARM: {found.describe()}")
            d = nearcopy.closest(a, b)
            if d < closest[0]:
                closest = (d, a.vid, b.vid)
    t2 = time.perf_counter()
    frames = sum(len(s.ids) for s in sigs)
    print(f"{len(videos)} videos, {frames} frames: {pairs} pairs, {alarms} false alarm(s)")
    print(f"closest frames of two different videos: distance {closest[0]:.4f} ({closest[1]} vs {closest[2]}); "
          f"threshold {nearcopy.THRESHOLD} (distance = 1 - correlation of {nearcopy.THUMB[0]}x{nearcopy.THUMB[1]} "
          f"grey thumbnails; a pair is flagged at {nearcopy.MIN_FRAMES} matching frames)")
    print(f"signatures {t1 - t0:.1f} s (decoding included on first use), comparisons {t2 - t1:.2f} s")
    return 1 if alarms else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
