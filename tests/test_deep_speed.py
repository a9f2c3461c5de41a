"""``bgbench speed --train`` on the CPU with smoke configs: the figures it prints are
computed (positive, finite, from whole timed batches) and too few batches are refused."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("torch")

from bgbench.errors import BadInput  # noqa: E402
from conftest import HIGHWAY, ROOT, needs_data  # noqa: E402


@needs_data
def test_profile_reports_training_and_inference_figures(highway):
    from bgbench.timing.deep import profile

    r = profile("crossnet", highway, config="smoke", device="cpu", steps=3, warmup=1, train_frames=8,
                batches=(1, 2))
    st = r["stages"]["crossnet"]
    assert st["timed_steps"] == 3 and st["steps_per_s"] > 0 and st["images_per_s"] == pytest.approx(2 * st["steps_per_s"])
    assert 0 <= st["data_wait_fraction"] < 1 and st["resident"] is True
    assert set(r["infer_fps"]) == {1, 2} and all(math.isfinite(v) and v > 0 for v in r["infer_fps"].values())
    assert r["infer_fps_best"] == max(r["infer_fps"].values()) and r["paper_fps"] == 5.33
    assert r["peak_train_bytes"] is None and r["gpu"] is None  # CPU: no GPU figures invented


@needs_data
def test_inference_fps_refuses_fewer_than_three_timed_batches(highway):
    from bgbench.timing.deep import inference_fps
    from bgbench.method import build_method

    m = build_method("crossnet", config="smoke")
    with pytest.raises(BadInput, match="fewer than 3"):
        inference_fps(m, highway, list(highway.frame_ids[:12]), batch=4)  # 3 batches, 1 of them warm-up


def test_speed_refuses_a_clip_of_one_batch():
    """The 254,000 fps of a one-batch clip: now refused, naming --frames."""
    from bgbench.method import build_method
    from bgbench.timing.speed import measure
    from bgbench.data.video import Clip

    m = build_method("crossnet", config="smoke")
    clip = Clip("tiny", np.zeros((m.infer_batch, 48, 64, 3), np.uint8))
    with pytest.raises(BadInput, match="3 are needed"):
        measure(m, clip, repeats=1)


@pytest.mark.slow
@needs_data
def test_speed_train_cli_json():
    out = subprocess.run([sys.executable, "-m", "bgbench.cli", "speed", "--train", "--config", "smoke", "--device", "cpu",
                          "--methods", "bmn_bsn", "--steps", "2", "--warmup-steps", "1", "--frames", "8",
                          "--scene", str(HIGHWAY), "--json"], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    (row,) = json.loads(out.stdout)
    assert row["method"] == "bmn_bsn" and row["stages"]["bmn_bsn"]["timed_steps"] == 2
