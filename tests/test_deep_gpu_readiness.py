"""What a CPU-only CI can check of the CUDA path (issue 10).

CUDA autocast refuses some ops (binary_cross_entropy on probabilities) and runs others in
float16, where a probability of 1 - 1e-6 rounds to 1. These tests run every deep method's
smoke training and inference under ``torch.autocast("cpu", float16)`` (``amp=on``) with
the refused ops made to raise as they do under CUDA autocast, and check the losses'
numerics at fp16 extremes, the device-resident sampler against the prefetching one, and
what a resumed run keeps (GradScaler state, the time budget).
"""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
import torch.nn.functional as F  # noqa: E402
from torch.utils._python_dispatch import TorchDispatchMode  # noqa: E402

from bgbench.method import build_method  # noqa: E402
from bgbench.data.video import LabelledFrames, TrainingSet  # noqa: E402
from conftest import needs_data  # noqa: E402
from test_deep import DEEP  # noqa: E402

# ops that CUDA autocast refuses ("unsafe to autocast": they raise inside an autocast region)
CUDA_AUTOCAST_REFUSES = {torch.ops.aten.binary_cross_entropy, torch.ops.aten.binary_cross_entropy_backward}


class RefuseLikeCudaAutocast(TorchDispatchMode):
    """Raise on the ops CUDA autocast refuses, as CUDA would; count everything else."""

    def __init__(self):
        super().__init__()
        self.refused: list[str] = []
        self.half_ops = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func.overloadpacket in CUDA_AUTOCAST_REFUSES:
            self.refused.append(str(func))
            raise RuntimeError(f"{func} is refused under CUDA autocast: use a loss on logits")
        out = func(*args, **(kwargs or {}))
        if isinstance(out, torch.Tensor) and out.dtype == torch.float16:
            self.half_ops += 1
        return out


def test_the_guard_refuses_what_cuda_autocast_refuses():
    x = torch.randn(8, requires_grad=True)
    with torch.autocast("cpu", dtype=torch.float16), RefuseLikeCudaAutocast():
        with pytest.raises(RuntimeError, match="refused under CUDA autocast"):
            F.binary_cross_entropy(torch.sigmoid(x), torch.ones(8))
        F.binary_cross_entropy_with_logits(x, torch.ones(8)).backward()


@needs_data
@pytest.mark.parametrize("name", DEEP)
def test_smoke_trains_and_segments_under_fp16_autocast(name, highway):
    m = build_method(name, config="smoke", amp="on")
    assert m.precision == "amp-fp16"
    train = TrainingSet(train=(LabelledFrames(highway, highway.eval_frames[:6]),))
    guard = RefuseLikeCudaAutocast()
    with guard:
        m.fit(train)
        ids = list(highway.eval_frames[-3:])
        out = dict(m.segment(highway.view(), ids))
    assert guard.refused == [] and guard.half_ops > 0  # autocast really ran in float16
    losses = [v for h in m.history for k, v in h.items() if k.endswith("_loss")]
    assert len(losses) >= 3 and np.isfinite(losses).all(), losses
    assert sorted(out) == ids
    assert all(p.dtype == np.float32 and np.isfinite(p).all() and 0 <= p.min() and p.max() <= 1 for p in out.values())
    assert m.train_stats and all(s["steps"] > 0 and 0 <= s["data_wait_fraction"] <= 1 for s in m.train_stats.values())


def _loss_cases():
    from bgbench.methods import common
    from bgbench.methods.crossnet import cs_focal_l1

    return {
        "bce_logits": common.bce_logits,
        "hard_sigmoid_bce": common.hard_sigmoid_bce,
        "focal_logits": lambda x, t, v: common.focal_logits(x, t, v, 0.75, 0.0, fg_scale=3.0),
        "focal_logits_gamma2": lambda x, t, v: common.focal_logits(x, t, v, 0.25, 2.0),
        "cs_focal_l1": cs_focal_l1,
        "masked_ce": lambda x, t, v: common.masked_ce(torch.cat([-x, x], 1), t[:, 0], v[:, 0]),
    }


@pytest.mark.parametrize("case", sorted(_loss_cases()))
def test_losses_are_finite_with_fp16_logits_at_plus_minus_20(case):
    loss_fn = _loss_cases()[case]
    x = torch.tensor([20.0, -20.0, 20.0, -20.0, 0.5, -0.5], dtype=torch.float16).reshape(1, 1, 2, 3)
    x.requires_grad_(True)
    t = torch.tensor([0.0, 1.0, 1.0, 0.0, 1.0, 0.0]).reshape(1, 1, 2, 3)  # confident and wrong, confident and right
    v = torch.ones_like(t)
    loss = loss_fn(x, t, v)
    assert loss.dtype == torch.float32 and torch.isfinite(loss), loss
    loss.backward()
    assert torch.isfinite(x.grad).all(), x.grad
    if case != "hard_sigmoid_bce":  # hard sigmoid saturates: no gradient past +-1, as in the paper's network
        assert x.grad.abs().sum() > 0


def test_losses_in_fp32_equal_the_probability_forms_they_replace():
    """Numerics unchanged in float32 away from saturation: BCE with logits vs BCE on
    sigmoid, the hard-sigmoid BCE vs BCE on the clamped hard sigmoid, focal from
    log-sigmoid vs focal on clamped probabilities."""
    from bgbench.methods import common

    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 1, 8, 8, generator=g) * 3
    t = (torch.rand(2, 1, 8, 8, generator=g) > 0.6).float()
    v = (torch.rand(2, 1, 8, 8, generator=g) > 0.1).float()

    def masked(loss):
        return (loss * v).sum() / v.sum()

    p = torch.sigmoid(x)
    assert torch.allclose(common.bce_logits(x, t, v), masked(F.binary_cross_entropy(p, t, reduction="none")), atol=1e-6)
    ph = common.hard_sigmoid(x).clamp(1e-6, 1 - 1e-6)
    assert torch.allclose(common.hard_sigmoid_bce(x, t, v), masked(F.binary_cross_entropy(ph, t, reduction="none")),
                          atol=1e-5)
    pc = p.clamp(1e-6, 1 - 1e-6)
    old = masked(-0.75 * torch.log(pc) * t * 2.0 - 0.25 * torch.log(1 - pc) * (1 - t))
    assert torch.allclose(common.focal_logits(x, t, v, 0.75, 0.0, fg_scale=2.0), old, atol=1e-5)


def test_crossnet_beta_is_per_frame():
    """Eq. 6: S(fg) per frame. A batch of a frame with 1% foreground and one with 50%:
    the loss equals the mean of the two frames' losses computed alone, weighted by pixels."""
    from bgbench.methods.crossnet import cs_focal_l1

    t = torch.zeros(2, 1, 10, 10)
    t[0, 0, 0, 0] = 1  # 1%
    t[1, 0, :5] = 1  # 50%
    x = torch.randn(2, 1, 10, 10, generator=torch.Generator().manual_seed(1))
    v = torch.ones_like(t)
    both = cs_focal_l1(x, t, v)
    alone = (cs_focal_l1(x[:1], t[:1], v[:1]) + cs_focal_l1(x[1:], t[1:], v[1:])) / 2
    assert torch.allclose(both, alone, atol=1e-6)


@needs_data
@pytest.mark.parametrize("name", ["bmn_bsn", "crossnet", "cdn_medal"])
def test_prefetching_loader_gives_the_resident_losses(name, highway):
    """resident=off (host memory, batches gathered one step ahead in a thread) trains the
    very same steps as the device-resident bank."""
    train = TrainingSet(train=(LabelledFrames(highway, highway.eval_frames[:5]),))
    runs = {}
    for resident in ("on", "off"):
        m = build_method(name, config="smoke", resident=resident)
        m.fit(train)
        runs[resident] = [v for h in m.history for k, v in h.items() if k.endswith("_loss")]
        assert all(s["resident"] == (resident == "on") for s in m.train_stats.values())
    assert runs["on"] == runs["off"]


def test_epoch_rows_pass_over_every_row_once_per_epoch():
    from bgbench.methods.common import epoch_rows

    n, bs = 10, 3
    rows = np.concatenate([epoch_rows(0, s, bs, n) for s in range(10)])  # 30 rows: 3 epochs
    for e in range(3):
        assert sorted(rows[e * n:(e + 1) * n]) == list(range(n))
    assert not np.array_equal(rows[:n], rows[n:2 * n])  # reshuffled per epoch
    assert np.array_equal(epoch_rows(0, 4, bs, n), rows[12:15])  # a function of (seed, step) only


@needs_data
def test_resume_keeps_scaler_state_and_the_time_budget(highway, tmp_path):
    """The training checkpoint carries the GradScaler state and the seconds spent; a
    resumed run whose budget is already spent takes no further step."""
    from bgbench.methods import common

    train = TrainingSet(train=(LabelledFrames(highway, highway.eval_frames[:4]),))
    m = build_method("crossnet", config="smoke", amp="on", checkpoint_every=1, steps=2)
    m.workdir = tmp_path
    m.fit(train)
    state = torch.load(tmp_path / "crossnet_last.pt", weights_only=True)
    assert state["step"] == 2 and state["scaler"]["scale"] > 0 and state["elapsed"] > 0
    state["elapsed"] = 1e6  # as if an earlier process had trained for a long time
    torch.save(state, tmp_path / "crossnet_last.pt")
    m2 = build_method("crossnet", config="smoke", amp="on", checkpoint_every=1, steps=5, max_train_seconds=100)
    m2.workdir = tmp_path
    with pytest.raises(Exception, match="another config"):  # steps/budget are part of the config hash
        m2.fit(train)
    tr = common.Trainer(m.net, torch.optim.Adam(m.net.parameters()), seed=0, device="cpu", precision=m.amp,
                        checkpoint_dir=tmp_path, tag="crossnet", config=m.p, max_seconds=100)
    tr.run(5, lambda step: m.net(torch.zeros(1, 3, 64, 64), torch.zeros(1, 3, 64, 64)).float().mean())
    assert tr.stats["steps"] == 0 and tr.step == 2  # the budget counts the time before the interruption
    assert tr.stats["resumed_seconds"] == 1e6  # and the run's fit_seconds adds it (runner._fit)


@needs_data
@pytest.mark.parametrize("name", DEEP)
def test_inference_batch_does_not_change_the_maps(name, highway):
    train = TrainingSet(train=(LabelledFrames(highway, highway.eval_frames[:4]),))
    m = build_method(name, config="smoke")
    m.fit(train)
    ids = list(highway.eval_frames[-5:])
    m.infer_batch = 1
    one = dict(m.segment(highway.view(), ids))
    m.infer_batch = 4
    four = dict(m.segment(highway.view(), ids))
    assert all(np.allclose(one[i], four[i], atol=1e-5) for i in ids)
