"""CPU seconds per training step of each deep method's ``cpu`` config, one torch thread, on
a real labelled scene: the figure the ``cpu`` configs' step counts are sized from (docs/deep.md).

Run: ``python -m tests.perf.cpu_steps [SCENE] [--steps 6] [--warmup 2]``. Process CPU time
(``time.process_time``), not the wall clock, stands in for an idle machine's time on a loaded
one: a step's CPU seconds do not grow with the number of other processes sharing the cores
(with one thread, wall time on an idle core equals CPU time, up to cache effects).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("scene", nargs="?", default="../shared/data/CDnet2014/baseline/highway")
    ap.add_argument("--methods", default="bmn_bsn,cdn_medal,crossnet,siamese_fcn,two_stage_cnn")
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--train-frames", type=int, default=60)
    a = ap.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    time.perf_counter = time.process_time  # the trainer's clock: CPU seconds of this process
    from bgbench.data.formats import discover
    from bgbench.method import method_class
    from bgbench.timing.deep import profile

    video = discover(Path(a.scene))[0]
    out = {}
    for name in a.methods.split(","):
        r = profile(name, video, config="cpu", device="cpu", steps=a.steps, warmup=a.warmup,
                    train_frames=a.train_frames, batches=())
        cfg = method_class(name).resolve("cpu")[1]
        out[name] = {}
        for tag, st in r["stages"].items():
            sec = 1.0 / st["steps_per_s"] if st["steps_per_s"] else None
            out[name][tag] = {"cpu_seconds_per_step": sec}
        out[name]["config_steps"] = {k: cfg[k] for k in method_class(name).stage_steps}
        print(name, json.dumps(out[name]), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
