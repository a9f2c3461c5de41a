"""Rolling checkpoints (issue 26, item 5): by elapsed time and/or steps into one file per
stage, written off the training thread (a CPU copy handed to a writer thread, atomic
replace); a slow writer never stalls the step loop; a run resumed from the rolling file ends
exactly where the uninterrupted run does; ``speed --train`` runs the same checkpoints."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import bgbench.methods.common as common  # noqa: E402
from bgbench.method import build_method  # noqa: E402
from bgbench.data.video import LabelledFrames, TrainingSet  # noqa: E402
from conftest import needs_data  # noqa: E402


def _trainer(tmp_path, **kw):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(3, 8), torch.nn.ReLU(), torch.nn.Linear(8, 1))
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    return common.Trainer(model, opt, seed=0, device="cpu", tag="t", checkpoint_dir=tmp_path, **kw)


def _loss(model, hook=None):
    def loss(step):
        if hook:
            hook(step)
        g = torch.Generator().manual_seed(step)  # the batch: a function of the step
        x = torch.randn(4, 3, generator=g)
        return ((model(x) - x.sum(1, keepdim=True)) ** 2).mean()
    return loss


def test_a_slow_writer_does_not_block_the_step_loop(tmp_path):
    """The writer's save blocks until the loop itself reaches step 6 (or 20 s pass): with a
    blocking writer the loop could never get there. Checkpoints due meanwhile are skipped,
    the stage's final one is written whole."""
    tr = _trainer(tmp_path, checkpoint_every=1)
    release, started, reached = threading.Event(), [], []
    real_save = tr.writer.save

    def slow_save(state, path):
        started.append(state["step"])
        release.wait(20)
        real_save(state, path)

    def hook(step):
        if step == 6 and release is not None and not release.is_set():
            reached.append(time.perf_counter())
            release.set()

    tr.writer.save = slow_save
    t0 = time.perf_counter()
    tr.run(12, _loss(tr.model, hook))
    assert reached and reached[0] - t0 < 15  # the loop got to step 6 while the first write was blocked
    assert started[0] == 1 and started[-1] == 12  # the first checkpoint (step 1) and the final one
    assert len(started) < 12  # those due while the writer was busy were skipped
    saved = torch.load(tr.path, weights_only=True)
    assert saved["step"] == 12 and len(saved["history"]) == 12
    assert tr.stats["checkpoints_written"] == len(started) and 0 < tr.stats["checkpoint_fraction"] < 1


def test_checkpoints_by_elapsed_time(tmp_path):
    tr = _trainer(tmp_path / "a", checkpoint_seconds=1e-9)  # due at every step: the writer is free at step 1
    tr.run(5, _loss(tr.model))
    assert tr.stats["checkpoints_written"] >= 2  # one in the loop at least, and the stage's final one
    tr = _trainer(tmp_path / "b")  # no time or step trigger: the final one only
    tr.run(5, _loss(tr.model))
    assert tr.stats["checkpoints_written"] == 1
    assert sorted(p.name for p in (tmp_path / "b").iterdir()) == ["t_last.pt"]  # one rolling file, no temporaries


def test_the_checkpoint_is_a_copy_not_the_live_tensors():
    model = torch.nn.Linear(2, 1)
    snap = common.cpu_copy({"m": model.state_dict(), "n": [torch.ones(1)], "k": 3})
    with torch.no_grad():
        model.weight.add_(1.0)
    assert not torch.equal(snap["m"]["weight"], model.weight) and snap["k"] == 3


def test_resume_from_the_rolling_file_equals_the_uninterrupted_run(tmp_path):
    full = _trainer(tmp_path / "full", checkpoint_every=3)
    full.run(10, _loss(full.model))

    def crash(step):
        if step == 7:
            raise KeyboardInterrupt  # killed mid-stage

    part = _trainer(tmp_path / "part", checkpoint_every=3)
    with pytest.raises(KeyboardInterrupt):
        part.run(10, _loss(part.model, crash))
    saved = torch.load(part.path, weights_only=True)
    assert saved["step"] in (3, 6)  # the last checkpoint written (one at 6 is skipped if 3's was in flight)
    again = _trainer(tmp_path / "part", checkpoint_every=3)
    torch.manual_seed(123)  # fresh weights: everything must come from the file
    again.model.apply(lambda m: m.reset_parameters() if hasattr(m, "reset_parameters") else None)
    again.run(10, _loss(again.model))
    assert again.history == full.history
    for a, b in zip(again.model.parameters(), full.model.parameters()):
        assert torch.equal(a, b)


@needs_data
@pytest.mark.slow
def test_a_method_resumed_from_its_rolling_file_segments_as_the_uninterrupted_one(highway, tmp_path, monkeypatch):
    """crossnet smoke, 6 steps, checkpoint every 2 steps; a crash at step 5; a fresh method
    on the same folder resumes and segments exactly as the uninterrupted one."""
    train = TrainingSet(train=(LabelledFrames(highway, highway.eval_frames[:4]),))
    ids = list(highway.eval_frames[-2:])

    def fit(workdir):
        m = build_method("crossnet", config="smoke", steps=6, checkpoint_every=2)
        m.workdir = workdir
        m.fit(train)
        return dict(m.segment(highway.view(), ids))

    want = fit(tmp_path / "full")
    real_run = common.Trainer.run

    def crashing(self, steps, loss_fn, desc="train", **kw):
        def loss(batch):
            if self.step == 5:
                raise KeyboardInterrupt
            return loss_fn(batch)
        return real_run(self, steps, loss, desc, **kw)

    monkeypatch.setattr(common.Trainer, "run", crashing)
    with pytest.raises(KeyboardInterrupt):
        fit(tmp_path / "part")
    monkeypatch.setattr(common.Trainer, "run", real_run)
    got = fit(tmp_path / "part")
    assert all(np.array_equal(want[i], got[i]) for i in ids)


@needs_data
def test_speed_train_writes_the_runs_checkpoints_and_reports_their_share(highway):
    from bgbench.timing.deep import profile

    r = profile("crossnet", highway, config="smoke", device="cpu", steps=3, warmup=1, train_frames=4, batches=(),
                overrides={"checkpoint_every": 2})
    st = r["stages"]["crossnet"]
    assert st["checkpoints_written"] >= 2 and 0 < st["checkpoint_fraction"] < 1 and 0 <= st["data_wait_fraction"] < 1
    assert torch.backends.cudnn.benchmark is False  # as bgbench run leaves it
