"""Deep methods on real highway frames: smoke configs train and segment, checkpoints
round-trip and resume with the identical next-step loss, parameter counts match the
paper, the loss falls on a fixed batch; 3D-HOP's shape, zeros and cache."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from bgbench.errors import BadInput  # noqa: E402
from bgbench.method import build_method  # noqa: E402
from bgbench.data.video import LabelledFrames, TrainingSet  # noqa: E402
from conftest import needs_data  # noqa: E402

def _deep_methods() -> list[str]:
    from bgbench.method import METHODS

    return sorted(e.name for e in METHODS if e.meta.get("family") == "deep")


DEEP = _deep_methods()


def _train(highway, n=6):
    return TrainingSet(train=(LabelledFrames(highway, highway.eval_frames[:n]),))


@needs_data
@pytest.mark.parametrize("name", DEEP)
def test_smoke_trains_and_segments_real_frames(name, highway):
    m = build_method(name, config="smoke")
    m.fit(_train(highway))
    assert len(m.history) >= 3 and all(np.isfinite(list(h.values())[1]) for h in m.history)
    assert m.describe()["parameters"]["total"] > 0
    ids = list(highway.eval_frames[-5:])
    out = dict(m.segment(highway.view(), ids))
    assert sorted(out) == ids
    for p in out.values():
        assert p.shape == (240, 320) and p.dtype == np.float32
        assert np.isfinite(p).all() and p.min() >= 0 and p.max() <= 1


@needs_data
@pytest.mark.parametrize("name", DEEP)
def test_checkpoint_round_trip(name, highway, tmp_path):
    from bgbench.execution import checkpoint

    m = build_method(name, config="smoke")
    m.fit(_train(highway, 3))
    checkpoint.save(tmp_path / "m.pt", {"state": m.state_dict()}, "fp")
    state = checkpoint.load(tmp_path / "m.pt", expect="fp")["state"]  # weights_only=True inside
    m2 = build_method(name, config="smoke", seed=7)
    m2.load_state_dict(state)
    ids = list(highway.eval_frames[-2:])
    a, b = dict(m.segment(highway.view(), ids)), dict(m2.segment(highway.view(), ids))
    assert all(np.array_equal(a[i], b[i]) for i in ids)
    with pytest.raises(BadInput, match="another config|other parameters"):
        build_method(name, config="cpu").load_state_dict(state)
    with pytest.raises(BadInput, match="another config"):
        checkpoint.load(tmp_path / "m.pt", expect="other")


@pytest.mark.slow
@needs_data
@pytest.mark.parametrize("name", DEEP)
def test_resume_gives_the_identical_next_step_loss(name, highway, tmp_path, monkeypatch):
    """Train 3 steps of the last stage uninterrupted; train again but stop after 2 (the
    trainer checkpoints every step); resume with a fresh method: its third loss is the
    uninterrupted run's third loss, exactly."""
    import bgbench.methods.common as common

    extra = {"cdn_medal": {"cdn_steps": 2, "medal_steps": 3}, "bmn_bsn": {"steps": 3},
             "two_stage_cnn": {"steps": "2,2,3"}, "siamese_fcn": {"steps1": 2, "steps2": 3},
             "crossnet": {"steps": 3}}[name]
    tag = {"cdn_medal": "medal", "bmn_bsn": "bmn_bsn", "two_stage_cnn": "joint", "siamese_fcn": "unet",
           "crossnet": "crossnet"}[name]

    def fit(workdir, seed=0):
        m = build_method(name, config="smoke", seed=seed, checkpoint_every=1, **extra)
        m.workdir = workdir
        m.fit(_train(highway, 4))
        return [h[f"{tag}_loss"] for h in m.history if f"{tag}_loss" in h]

    full = fit(tmp_path / "full")
    assert len(full) == 3
    real_run = common.Trainer.run

    def killed_after_two(self, steps, loss_fn, desc="train", **kw):
        return real_run(self, 2 if self.tag == tag else steps, loss_fn, desc, **kw)

    monkeypatch.setattr(common.Trainer, "run", killed_after_two)
    assert len(fit(tmp_path / "part")) == 2
    monkeypatch.setattr(common.Trainer, "run", real_run)
    resumed = fit(tmp_path / "part", seed=0)
    assert resumed == full  # steps 1-2 from the checkpoint, step 3 computed again: identical
    other = {"cdn_medal": {"K": 2}, "bmn_bsn": {"M": 3}, "two_stage_cnn": {"lam": 0.5},
             "siamese_fcn": {"margin": 0.5}, "crossnet": {"flow_scale": 5.0}}[name]
    with pytest.raises(BadInput, match="another config"):
        m = build_method(name, config="smoke", checkpoint_every=1, **extra, **other)
        m.workdir = tmp_path / "part"
        m.fit(_train(highway, 4))


def test_parameter_counts_match_the_paper():
    m = build_method("cdn_medal", config="paper")
    d = m.describe()["parameters"]
    assert d["medal_net"] == 2823 and abs(d["medal_net"] - 2800) / 2800 < 0.02  # paper: "around 2,800"
    assert d["cdn_gm"] == 694 and d["total"] == 3517 and abs(d["total"] - 3500) / 3500 < 0.02  # paper: ~3.5K
    b = build_method("bmn_bsn", config="paper").describe()
    assert b["input_size"] == "320x240" and b["flops"]["speedup_from_caching_the_background_model"] > 1.9


@needs_data
def test_loss_decreases_on_a_fixed_batch(highway):
    from bgbench.methods.common import code_targets, hard_sigmoid_bce, label_codes

    m = build_method("cdn_medal", config="smoke")
    item = LabelledFrames(highway, highway.eval_frames[:2])
    frames = torch.from_numpy(highway.frames(item.frames)[..., ::-1].copy()).permute(0, 3, 1, 2).float() / 255
    bg = torch.stack([m.background(item.view, f) for f in item.frames])
    x = torch.cat([frames, bg], 1)
    t, v = code_targets(torch.from_numpy(label_codes(item, item.frames, None))[:, None], ignore_shadow=False)
    opt = torch.optim.Adam(m.medal.parameters(), lr=0.005)
    losses = []
    for _ in range(40):
        loss = hard_sigmoid_bce(m.medal(x), t, v)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < 0.7 * losses[0], losses[::10]


def test_3d_hop_shape_zeros_and_cache(tmp_path, monkeypatch):
    """A static clip with one moving square: flow only where the square moves; the
    second call reads the cache."""
    import cv2

    from bgbench.data.formats import discover
    from bgbench.methods import flow

    scene = tmp_path / "DS" / "baseline" / "square"
    (scene / "input").mkdir(parents=True)
    (scene / "groundtruth").mkdir()
    rng = np.random.default_rng(0)
    bg = cv2.GaussianBlur(rng.integers(0, 255, (96, 128, 3), dtype=np.uint8), (7, 7), 0)
    for t in range(1, 16):
        img = bg.copy()
        img[40:56, 10 + 4 * t:26 + 4 * t] = (255, 255, 255)
        cv2.imwrite(str(scene / "input" / f"in{t:06d}.png"), img)
        cv2.imwrite(str(scene / "groundtruth" / f"gt{t:06d}.png"), np.zeros((96, 128), np.uint8))
    (v,) = discover(scene)
    h = flow.hop(v.view(), (128, 96), "farneback")
    assert h.shape == (15, 96, 128, 3) and h.dtype == np.uint8
    # zero up to flow noise (1 unit = 10/255 px): the first frame, compared with itself ...
    assert h[0].max() <= 2
    moving = np.zeros((96, 128), bool)
    moving[30:66, 40:110] = True  # around the square's path in frames 8-15
    last = h[-1].max(axis=2)
    assert last[moving].max() > 50 and last[:20].max() <= 2 and last[80:].max() <= 2  # ... and still background
    calls = []
    monkeypatch.setattr(flow, "flow_magnitude", lambda a, b, backend: calls.append(1) or np.zeros(a.shape, np.float32))
    again = flow.hop(v.view(), (128, 96), "farneback")
    assert calls == [] and np.array_equal(again, h)  # cached
    flow.hop(v.view(), (64, 48), "farneback")
    assert len(calls) == 15 * 3  # another size: computed (once per frame and tau)


@needs_data
@pytest.mark.slow  # three runs of the five deep smoke configs: ~20 s
def test_deep_numbers_depend_on_deep_threads_only_never_on_threads_or_jobs(tmp_path):
    """Found by probing: torch's CPU reductions split by thread, so a model trained (and, for
    three of the five, segmented) at 2 threads gave other weights and histograms than at 1,
    and the default thread count was the cores over --jobs: `--jobs 1` and `--jobs 2` gave
    different deep numbers under one job key. Deep jobs now run at --deep-threads (default 1),
    which keys them; --threads and --jobs no longer change them."""
    import json

    from bgbench.cli import main
    from conftest import CDNET, copy_scene

    scene = copy_scene(CDNET / "baseline" / "office", tmp_path / "CDnet2014" / "baseline" / "office", range(600, 640))
    deep = "cdn_medal,bmn_bsn,two_stage_cnn,siamese_fcn,crossnet"

    def run(name: str, *extra: str) -> dict:
        assert main(["run", "--methods", deep, "--config", "smoke", "--protocol", "scene-specific", "--rule",
                     "first-half", "--data", str(scene), "--no-tracking", "--no-report", "--out", str(tmp_path / name),
                     *extra]) == 0
        doc = json.loads((tmp_path / name / "results.json").read_text())
        return {"meta": doc["meta"]["deep_threads"],
                **{j["method"]: (j["counts"], j["histograms"], j["fingerprint"], j["timing"]["threads"])
                   for j in doc["jobs"]}}

    one, two = run("t1", "--threads", "1", "--jobs", "1"), run("t2", "--threads", "2", "--jobs", "1")
    assert one == two and len(one) == 6 and one["meta"] == 1
    other = run("d2", "--deep-threads", "2")
    assert other["meta"] == 2 and all(other[m][3] == 2 for m in deep.split(","))
    assert all(other[m][2] != one[m][2] for m in deep.split(","))  # keyed apart: never reused for the other
    assert any(other[m][1] != one[m][1] for m in deep.split(","))  # the count matters, so it must key the jobs
