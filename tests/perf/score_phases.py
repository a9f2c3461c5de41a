"""Where ``bgbench score`` spends its time, phase by phase, in one fresh process per repeat.

    python -m tests.perf.score_phases [--masks DIR] [--video SCENE] [--repeats 5]

Each repeat runs a child process (a fresh interpreter, as the command is) that times, with
process CPU time and wall time: start-up (importing the command and building its parser),
loading the scene and its ground truth (``nothing_to_score`` opens the cached stack), and
scoring the masks (decoding them on the pool and counting). Masks default to a
frame-difference detector's for highway (``bgbench.timing.perf.write_detector_masks``). The
frame cache is a private one, built and left to settle before the timed repeats, so the phases
are those of a later use. Medians are printed.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CHILD = """
import json, sys, time
c0, t0 = time.process_time(), time.perf_counter()
from bgbench.cli import _parser
_parser()
c1, t1 = time.process_time(), time.perf_counter()
from pathlib import Path
from bgbench.data.formats import adapter, detect_scene
scene = Path(sys.argv[2])
v = adapter(detect_scene(scene)).load(scene, "error")
v.nothing_to_score()
c2, t2 = time.process_time(), time.perf_counter()
from bgbench.api import ScoreOptions
from bgbench.scoring.files import score_masks
score_masks(v, Path(sys.argv[1]), ScoreOptions())
c3, t3 = time.process_time(), time.perf_counter()
print(json.dumps({"start-up": [c1 - c0, t1 - t0], "load scene and ground truth": [c2 - c1, t2 - t1],
                  "decode masks and count": [c3 - c2, t3 - t2]}))
"""


def main(argv: list[str] | None = None) -> int:
    from bgbench.data.filehash import RACY_NS
    from bgbench.timing.perf import add_mask_options, scene_and_masks

    ap = argparse.ArgumentParser(prog="python -m tests.perf.score_phases", description=__doc__.split("\n")[0])
    add_mask_options(ap, repeats=5)
    a = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "BGBENCH_CACHE": str(Path(tmp) / "cache")}
        scene, masks = scene_and_masks(a, Path(tmp))
        cmd = [sys.executable, "-c", CHILD, str(masks), str(scene)]
        subprocess.run(cmd, env=env, check=True, capture_output=True)  # builds the cache entry
        time.sleep(RACY_NS / 1e9 + 0.2)
        subprocess.run(cmd, env=env, check=True, capture_output=True)  # the check that records it settled
        load0 = os.getloadavg()[0]
        runs = [json.loads(subprocess.run(cmd, env=env, check=True, capture_output=True, text=True).stdout)
                for _ in range(a.repeats)]
    print(f"bgbench score phases, {scene}: medians of {a.repeats} fresh processes; load "
          f"{load0:.1f} -> {os.getloadavg()[0]:.1f}")
    for phase in runs[0]:
        cpu = statistics.median(r[phase][0] for r in runs)
        wall = statistics.median(r[phase][1] for r in runs)
        print(f"  {phase:<30} CPU {cpu:.3f} s  wall {wall:.3f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
