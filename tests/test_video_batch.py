"""Several videos of one split as one batch (``Method.batches_videos``, ``--video-batch N``):
every video's record holds the counts it would have alone, bit for bit, on real scenes of
unequal length; a bad video fails alone; the run plans one task per batch of like videos."""

from __future__ import annotations

import json

import numpy as np
import pytest

from bgbench import api
from bgbench.data.formats import discover
from bgbench.execution.runner import RunOptions, run_video, run_videos, video_batches
from bgbench.method import Method, build_method
from bgbench.records.types import Results
from conftest import DATA, needs_data

pytestmark = needs_data

# three UCSD scenes of one shape (156 x 240) and unequal lengths: 51, 71 and 81 frames
SCENES = ("chopper", "birds", "jump")


@pytest.fixture(scope="module")
def ucsd():
    return [discover(DATA / "UCSD" / name)[0] for name in SCENES]


def _alone_and_batched(method_of, videos, tmp_path):
    tests = [(v, tuple(v.eval_frames)) for v in videos]
    alone = [run_video(method_of(), v, f, RunOptions(out=tmp_path / "alone")) for v, f in tests]
    batched = run_videos(method_of(), tests, RunOptions(out=tmp_path / "batched"))
    return alone, batched


@pytest.mark.parametrize("params", [{}, {"backend": "torch", "fuse": "off"}], ids=["numpy", "torch"])
def test_a_batch_gives_each_video_its_own_counts_bit_for_bit(ucsd, tmp_path, params):
    alone, batched = _alone_and_batched(lambda: build_method("gmm_sg", **params), ucsd, tmp_path)
    assert [len(v.frame_ids) for v in ucsd] == [51, 71, 81]  # unequal: the shorter ones are padded
    for a, b in zip(alone, batched):
        assert isinstance(b, dict)
        assert b["counts"] == a["counts"] and b["dice"] == a["dice"] and b["histograms"] == a["histograms"]
        assert a["counts"]["tp"] > 0  # (metrics follow from the counts)
    # one clock for the batch: every video's fps is its throughput, and the shares add up
    batch = batched[0]["timing"]["video_batch"]
    assert batch["videos"] == 3
    assert batch["frames"] == sum(b["timing"]["frames"] for b in batched) == (51 - 1) + (71 - 1) + (81 - 1)
    assert sum(b["timing"]["seconds"] for b in batched) == pytest.approx(batch["seconds"])
    assert {b["timing"]["fps"] for b in batched} == {batch["frames"] / batch["seconds"]}
    assert "video_batch" not in alone[0]["timing"]


def test_the_device_scoring_path_gives_the_same_counts(ucsd, tmp_path, monkeypatch):
    """Torch maps scored the device's way (as on a GPU), batched, against NumPy alone."""
    from bgbench.execution import videorun

    alone = [run_video(build_method("gmm_sg"), v, tuple(v.eval_frames), RunOptions(out=tmp_path / "a")) for v in ucsd]
    monkeypatch.setattr(videorun, "DEVICE_SCORING_ON_CPU", True)
    batched = run_videos(build_method("gmm_sg", backend="torch", fuse="off"),
                         [(v, tuple(v.eval_frames)) for v in ucsd], RunOptions(out=tmp_path / "b"))
    assert [b["counts"] for b in batched] == [a["counts"] for a in alone]


class _NaNOnSecond(Method):
    """gmm_sg's maps, but NaN for every frame of the batch's second video"""

    batches_videos = True

    def segment_videos(self, videos, frames):
        inner = build_method("gmm_sg")
        for i, fid, prob in inner.segment_videos(videos, frames):
            yield i, fid, (np.full_like(prob, np.nan) if i == 1 else prob)


def test_a_bad_video_fails_alone_and_a_failing_method_fails_the_batch(ucsd, tmp_path):
    tests = [(v, tuple(v.eval_frames)) for v in ucsd]
    out = run_videos(_NaNOnSecond(), tests, RunOptions(out=tmp_path))
    assert isinstance(out[1], RuntimeError) and "unusable map" in str(out[1])
    alone = run_video(build_method("gmm_sg"), *tests[2], RunOptions(out=tmp_path / "alone"))
    assert isinstance(out[2], dict) and out[2]["counts"] == alone["counts"]
    assert out[2]["timing"]["video_batch"]["frames"] == (51 - 1) + (81 - 1)  # the failed video's frames left out

    class Broken(Method):
        batches_videos = True

        def segment_videos(self, videos, frames):
            yield 0, frames[0][0], np.zeros(videos[0].shape, np.float32)
            raise ValueError("boom")

    out = run_videos(Broken(), tests, RunOptions(out=tmp_path / "broken"))
    assert all(isinstance(o, ValueError) for o in out)


def test_batches_hold_videos_of_one_shape_longest_first(ucsd):
    office, pedestrians = (discover(DATA / "CDnet2014" / "baseline" / n)[0] for n in ("office", "pedestrians"))
    tests = [(v, tuple(v.eval_frames)) for v in [*ucsd, office, pedestrians]]
    got = [[v.name for v, _ in b] for b in video_batches(tests, 2)]
    assert got == [["jump", "birds"], ["chopper"], ["office", "pedestrians"]]
    assert [[v.name for v, _ in b] for b in video_batches(tests, 8)] == [["jump", "birds", "chopper"],
                                                                         ["office", "pedestrians"]]
    assert all(len(b) == 1 for b in video_batches(tests, 1))


@pytest.mark.slow
def test_a_run_with_video_batch_writes_the_same_records_in_fewer_tasks(ucsd, tmp_path):
    data = [str(DATA / "UCSD" / n) for n in SCENES] + [str(DATA / "CDnet2014" / "baseline" / "office")]
    runs = {}
    for n in (1, 3):
        cfg = api.RunConfig.of(["gmm_sg"], data=data, out=tmp_path / f"b{n}", report=False, tracking=False,
                               video_batch=n, roi_policy="ignore")
        runs[n] = api.run(cfg)
    one, three = runs[1], runs[3]
    assert [j.key for j in one.jobs] == [j.key for j in three.jobs] and len(one.jobs) == 4
    for a, b in zip(one.jobs, three.jobs):
        assert a.ok and b.ok and a.counts == b.counts and a.fingerprint == b.fingerprint
    batched = {j.key.video.split("/")[-1]: (j.timing or {}).get("video_batch") for j in three.jobs}
    assert batched["office"] is None and {batched[n]["videos"] for n in SCENES} == {3}
    # resumed: every record is reused (same fingerprints), batched or not
    again = api.run(api.RunConfig.of(["gmm_sg"], data=data, out=tmp_path / "b3", report=False, tracking=False,
                                     video_batch=1, roi_policy="ignore"))
    assert [j.counts for j in again.jobs] == [j.counts for j in three.jobs]
    assert [j.timing for j in again.jobs] == [j.timing for j in three.jobs]  # read back, not recomputed
    assert all(j.ok for j in Results.from_json(json.loads((tmp_path / "b3" / "results.json").read_text())).jobs)


@pytest.mark.slow
def test_a_fused_batch_keeps_its_size_and_the_bits(ucsd, tmp_path):
    """Compiled for one shape (fuse=on), the batch is padded rather than shrunk: same counts."""
    alone, batched = _alone_and_batched(lambda: build_method("gmm_sg", backend="torch", fuse="on"), ucsd, tmp_path)
    assert [b["counts"] for b in batched] == [a["counts"] for a in alone]


class _ReplayStub:
    """CUDA graph capture's semantics on the CPU: capturing records ``step`` but leaves nothing
    computed (the static buffers are put back, the captured output is poisoned with NaN), and
    each replay runs the recorded step, writing its output into the captured tensor."""

    def __init__(self, fail: bool = False):
        self.fail, self.captures, self.replays = fail, 0, 0

    def capture(self, step, warm, buffers):
        if self.fail:
            raise RuntimeError("capture unsupported here")
        self.captures += 1
        warm()
        saved = [b.clone() for b in buffers]
        out = step()
        for b, v in zip(buffers, saved):
            b.copy_(v)
        out.fill_(float("nan"))

        def replay():
            self.replays += 1
            out.copy_(step())

        return out, replay


def _graphed(stub, **params):
    from bgbench.baselines.gmm_sg import GraphedFrame, _ungraphed_if_it_fails

    m = build_method("gmm_sg", backend="torch", fuse="off", **params)
    f, c = m.frame_function()
    m.__dict__["_frame"] = (_ungraphed_if_it_fails(GraphedFrame(f, stub), f), c)  # as graphed() does on CUDA
    return m


def test_the_cuda_graph_path_replays_the_same_bits(ucsd, tmp_path):
    """The graph plumbing (static state updated in place, frame copied in, map copied out,
    captured again when a batch shrinks) with the stream and graph calls stubbed."""
    clip = np.ascontiguousarray(ucsd[2].frames(list(ucsd[2].frame_ids)))
    stub = _ReplayStub()
    want = list(build_method("gmm_sg").run(iter(clip)))
    got = list(_graphed(stub).run(iter(clip)))
    assert stub.captures == 1 and stub.replays == len(clip) == len(got) == 81
    assert all(np.array_equal(a, b) for a, b in zip(want, got))
    # three videos of unequal length, the batch shrinking twice: captured once per batch size
    stub = _ReplayStub()
    alone = [run_video(build_method("gmm_sg"), v, tuple(v.eval_frames), RunOptions(out=tmp_path / "a")) for v in ucsd]
    batched = run_videos(_graphed(stub), [(v, tuple(v.eval_frames)) for v in ucsd], RunOptions(out=tmp_path / "b"))
    assert [b["counts"] for b in batched] == [a["counts"] for a in alone]
    assert stub.captures == 3 and stub.replays == 81


def test_a_failed_capture_falls_back_once_and_keeps_the_bits(ucsd):
    clip = np.ascontiguousarray(ucsd[0].frames(list(ucsd[0].frame_ids[:20])))
    want = list(build_method("gmm_sg").run(iter(clip)))
    with pytest.warns(RuntimeWarning, match="CUDA graph capture failed"):
        got = list(_graphed(_ReplayStub(fail=True)).run(iter(clip)))
    assert all(np.array_equal(a, b) for a, b in zip(want, got))


def test_graphs_only_where_cuda_runs_the_update():
    assert not build_method("gmm_sg", backend="torch").graphed()  # a CPU: nothing to capture
    assert not build_method("gmm_sg", backend="torch", cuda_graph="off").graphed()
