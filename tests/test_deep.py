"""Deep methods, part 1, on real highway frames: smoke configs train and segment, checkpoints
round-trip and resume with the identical next-step loss, parameter counts match the
paper, the loss falls on a fixed batch."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from benchmark.errors import BadInput  # noqa: E402
from benchmark.method import build_method  # noqa: E402
from benchmark.video import LabelledFrames, TrainingSet  # noqa: E402
from conftest import needs_data  # noqa: E402

DEEP = ["cdn_medal", "bmn_bsn"]


def _train(highway, n=6):
    return TrainingSet(train=(LabelledFrames(highway, highway.eval_frames[:n]),))


@needs_data
@pytest.mark.parametrize("name", DEEP)
def test_smoke_trains_and_segments_real_frames(name, highway):
    m = build_method(name, config="smoke")
    m.fit(_train(highway))
    assert len(m.history) >= 3 and all(np.isfinite(list(h.values())[1]) for h in m.history)
    ids = list(highway.eval_frames[-5:])
    out = dict(m.segment(highway.view(), ids))
    assert sorted(out) == ids
    for p in out.values():
        assert p.shape == (240, 320) and p.dtype == np.float32
        assert np.isfinite(p).all() and p.min() >= 0 and p.max() <= 1


@needs_data
@pytest.mark.parametrize("name", DEEP)
def test_checkpoint_round_trip(name, highway, tmp_path):
    from benchmark import checkpoint

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


@needs_data
@pytest.mark.parametrize("name", DEEP)
def test_resume_gives_the_identical_next_step_loss(name, highway, tmp_path, monkeypatch):
    """Train 3 steps of the last stage uninterrupted; train again but stop after 2 (the
    trainer checkpoints every step); resume with a fresh method: its third loss is the
    uninterrupted run's third loss, exactly."""
    import methods.common as common

    extra = {"cdn_medal": {"cdn_steps": 2, "medal_steps": 3}, "bmn_bsn": {"steps": 3}}[name]
    tag = {"cdn_medal": "medal", "bmn_bsn": "bmn_bsn"}[name]

    def fit(workdir, seed=0):
        m = build_method(name, config="smoke", seed=seed, checkpoint_every=1, **extra)
        m.workdir = workdir
        m.fit(_train(highway, 4))
        return [h[f"{tag}_loss"] for h in m.history if f"{tag}_loss" in h]

    full = fit(tmp_path / "full")
    assert len(full) == 3
    real_run = common.Trainer.run

    def killed_after_two(self, steps, loss_fn, desc="train"):
        return real_run(self, 2 if self.tag == tag else steps, loss_fn, desc)

    monkeypatch.setattr(common.Trainer, "run", killed_after_two)
    assert len(fit(tmp_path / "part")) == 2
    monkeypatch.setattr(common.Trainer, "run", real_run)
    resumed = fit(tmp_path / "part", seed=0)
    assert resumed == full  # steps 1-2 from the checkpoint, step 3 computed again: identical
    with pytest.raises(BadInput, match="another config"):
        m = build_method(name, config="smoke", checkpoint_every=1, **dict(extra, K=2) if name == "cdn_medal"
                         else dict(extra, M=3))
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
    from methods.common import masked_bce

    m = build_method("cdn_medal", config="smoke")
    item = LabelledFrames(highway, highway.eval_frames[:2])
    x, t, v = m._batch([(item, f) for f in item.frames])
    opt = torch.optim.Adam(m.medal.parameters(), lr=0.005)
    losses = []
    for _ in range(40):
        loss = masked_bce(m.medal(x), t, v)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < 0.7 * losses[0], losses[::10]
