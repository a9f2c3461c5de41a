"""bgbench leaves its caller's process as it found it: OpenCV's and torch's thread counts and
torch's and NumPy's global random states are the same after importing every module,
decoding frames through the cache, fitting and segmenting every deep method and running
classical ones; deep methods stay reproducible from their seed alone."""

from __future__ import annotations

import importlib
import json
import pkgutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest

torch = pytest.importorskip("torch")
cv2 = pytest.importorskip("cv2")

from bgbench.method import METHODS, build_method  # noqa: E402
from bgbench.data.video import LabelledFrames, TrainingSet  # noqa: E402
from conftest import HIGHWAY, ROOT, copy_scene, needs_data  # noqa: E402

PACKAGES = ("bgbench", "bgbench.baselines", "bgbench.methods", "bgbench.reports")
DEEP = sorted(e.name for e in METHODS if e.meta.get("family") == "deep")
CLASSICAL = ("gmm_zivkovic", "temporal_median")
DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA"))]


def _snapshot() -> dict:
    """Everything process-wide this test watches, in comparable form."""
    kind, key, pos, has_gauss, gauss = np.random.get_state()
    snap = {"opencv_threads": cv2.getNumThreads(), "torch_threads": torch.get_num_threads(),
            "torch_rng": torch.random.get_rng_state().numpy().tobytes(),
            "numpy_rng": (kind, key.tobytes(), pos, has_gauss, gauss)}
    if torch.cuda.is_available():
        snap["cuda_rng"] = [s.numpy().tobytes() for s in torch.cuda.get_rng_state_all()]
    return snap


def _changed(before: dict, after: dict) -> list[str]:
    return [k for k in sorted(set(before) | set(after)) if before.get(k) != after.get(k)]


@pytest.fixture
def caller_state():
    """A caller with settings of its own (not the libraries' defaults, not bgbench's old 1),
    put back as they were after the test; yields their snapshot, taken before any bgbench work
    of the test (``small_scene`` included)."""
    cuda = torch.cuda.is_available()
    saved = (cv2.getNumThreads(), torch.get_num_threads(), torch.random.get_rng_state(), np.random.get_state(),
             torch.cuda.get_rng_state_all() if cuda else None)
    cv2.setNumThreads(3)
    torch.set_num_threads(3)
    torch.manual_seed(20240611)  # every CUDA device's generator too
    np.random.seed(4321)
    torch.rand(3), np.random.rand(3)  # somewhere in the middle of both streams
    try:
        yield _snapshot()
    finally:
        cv2.setNumThreads(saved[0])
        torch.set_num_threads(saved[1])
        torch.random.set_rng_state(saved[2])
        np.random.set_state(saved[3])
        if cuda:
            torch.cuda.set_rng_state_all(saved[4])


def test_importing_every_module_changes_nothing():
    """In a fresh interpreter (imports happen once per process): every module of the four
    packages imported after the caller set its own counts and seeds."""
    code = textwrap.dedent(f"""
        import importlib, json, pkgutil, sys
        import cv2, numpy as np, torch
        cv2.setNumThreads(3); torch.set_num_threads(3); torch.manual_seed(11); np.random.seed(12)

        def snap():
            k = np.random.get_state()
            return [cv2.getNumThreads(), torch.get_num_threads(),
                    torch.random.get_rng_state().numpy().tobytes().hex(), k[1].tobytes().hex(), k[2]]

        before, names = snap(), []
        for pkg in {PACKAGES!r}:
            mod = importlib.import_module(pkg)
            names.append(pkg)
            for info in pkgutil.walk_packages(mod.__path__, pkg + "."):
                importlib.import_module(info.name)
                names.append(info.name)
        after = snap()
        keys = ["opencv_threads", "torch_threads", "torch_rng", "numpy_rng_key", "numpy_rng_pos"]
        print(json.dumps({{"modules": names, "changed": [k for k, a, b in zip(keys, before, after) if a != b]}}))
    """)
    run = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    out = json.loads(run.stdout.strip().splitlines()[-1])
    expected = {p for p in PACKAGES}
    for pkg in PACKAGES:
        expected |= {i.name for i in pkgutil.walk_packages(importlib.import_module(pkg).__path__, pkg + ".")}
    assert set(out["modules"]) == expected and len(expected) > 20
    assert out["changed"] == []


@pytest.fixture
def small_scene(caller_state, tmp_path):
    """40 real highway frames copied (new files: the frame cache decodes them afresh), the
    last 10 of them labelled (the temporal ROI), the 30 before unlabelled."""
    d = copy_scene(HIGHWAY, tmp_path / "baseline" / "highway", range(440, 480))
    (d / "temporalROI.txt").write_text("470 479\n")
    from bgbench.data.formats import discover

    (v,) = discover(d)
    return v


@needs_data
def test_decoding_through_the_frame_cache_keeps_the_callers_threads(caller_state, small_scene):
    seen = []

    def decode(f):  # inside the pool: OpenCV on one thread while the pool decodes
        seen.append(cv2.getNumThreads())
        return read_bgr(f)

    from bgbench.data.framecache import cached_stack
    from bgbench.data.imageio import read_bgr

    before = caller_state  # discovering the scene (image sizes read) is covered too
    assert before["opencv_threads"] == before["torch_threads"] == 3
    files = small_scene.frame_files
    stack = cached_stack("side-effects", files, decode, (*small_scene.shape, 3))
    assert _changed(before, _snapshot()) == []
    assert len(seen) == len(files) and set(seen) == {1}
    frames = small_scene.frames(list(small_scene.frame_ids[:5]))  # the video's own cache, built here
    assert frames.shape == (5, 240, 320, 3) and np.array_equal(frames, stack[:5])
    assert _changed(before, _snapshot()) == []


@needs_data
@pytest.mark.parametrize("device", DEVICES)
def test_fit_and_segment_leave_the_process_as_it_was(caller_state, small_scene, device):
    """Every deep method's smoke config fitted on 4 frames and segmenting 2, then classical
    methods: thread counts and global random states unchanged throughout."""
    before = caller_state
    ids = list(small_scene.eval_frames[-2:])
    for name in DEEP:
        m = build_method(name, config="smoke", device=device)
        assert _changed(before, _snapshot()) == [], f"{name}: building"
        m.fit(TrainingSet(train=(LabelledFrames(small_scene, small_scene.eval_frames[:4]),)))
        assert _changed(before, _snapshot()) == [], f"{name}: fit"
        out = dict(m.segment(small_scene.view(), ids))
        assert sorted(out) == ids
        assert _changed(before, _snapshot()) == [], f"{name}: segment"
    for name in CLASSICAL:
        m = build_method(name)
        out = dict(m.segment(small_scene.view(), list(small_scene.frame_ids)))
        assert len(out) == len(small_scene.frame_ids)
        assert _changed(before, _snapshot()) == [], name


def _weights(m) -> dict[str, np.ndarray]:
    return {f"{k}.{p}": v.detach().cpu().numpy().copy() for k, mod in m.modules().items()
            for p, v in mod.state_dict().items()}


@pytest.mark.parametrize("name", DEEP)
def test_same_seed_same_weights_whatever_the_caller_drew(name, caller_state):
    a = _weights(build_method(name, config="smoke", seed=5))
    torch.manual_seed(999)
    torch.randn(1000)
    after_draws = torch.random.get_rng_state()
    b = build_method(name, config="smoke", seed=5)
    assert torch.equal(torch.random.get_rng_state(), after_draws)  # the caller's stream goes on undisturbed
    b = _weights(b)
    assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)
    c = _weights(build_method(name, config="smoke", seed=6))
    assert any(not np.array_equal(a[k], c[k]) for k in a if a[k].dtype.kind == "f" and a[k].size > 1)


def test_thread_blocks_nest_and_overlap_back_to_the_callers_count(caller_state):
    import threading

    from bgbench.execution.scoped import opencv_threads, threads

    with threads(1):
        assert (cv2.getNumThreads(), torch.get_num_threads()) == (1, 1)
        with opencv_threads(2):
            assert (cv2.getNumThreads(), torch.get_num_threads()) == (2, 1)
        assert cv2.getNumThreads() == 1
    assert (cv2.getNumThreads(), torch.get_num_threads()) == (3, 3)
    # blocks of two threads that overlap out of order: the caller's count once both are out
    entered, release = threading.Event(), threading.Event()

    def other():
        with opencv_threads(1):
            entered.set()
            release.wait(10)

    with opencv_threads(2):
        t = threading.Thread(target=other)
        t.start()
        entered.wait(10)
    assert cv2.getNumThreads() == 1  # the other thread's block is still inside
    release.set()
    t.join()
    assert cv2.getNumThreads() == 3


def test_torch_rng_restores_and_is_seeded(caller_state):
    from bgbench.execution.scoped import torch_rng

    state = torch.random.get_rng_state()
    with torch_rng(17):
        x = torch.rand(4)
    assert torch.equal(torch.random.get_rng_state(), state)
    torch.manual_seed(17)
    assert torch.equal(torch.rand(4), x)
