"""A whole trained model from a file (issue 26, item 10): ``--set M.weights=FILE`` loads every
tensor of the method's modules by name and shape (``weights_only=True``), counted; a file
that matches nothing, or only part, is BadInput naming it; the job is keyed by the file's
content and says "pretrained, not trained here"; bgbench's own checkpoint of the method loads."""

from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from bgbench.errors import BadInput  # noqa: E402
from bgbench.method import build_method  # noqa: E402
from bgbench.data.video import LabelledFrames, TrainingSet  # noqa: E402
from conftest import HIGHWAY, copy_scene, needs_data  # noqa: E402

DEEP = ["bmn_bsn", "cdn_medal", "crossnet", "siamese_fcn", "two_stage_cnn"]


@needs_data
@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if n == "cdn_medal" else n for n in DEEP])
def test_a_bgbench_checkpoint_loads_as_the_whole_model(name, highway, tmp_path):
    from bgbench.execution import checkpoint

    m = build_method(name, config="smoke", seed=3)
    m.fit(TrainingSet(train=(LabelledFrames(highway, highway.eval_frames[:4]),)))
    checkpoint.save(tmp_path / "task.pt", {"state": m.state_dict(), "history": m.history}, "fp")  # as the runner does
    torch.save(m.state_dict(), tmp_path / "method.pt")  # the method's own state dict
    n = sum(len(mod.state_dict()) for mod in m.modules().values())
    ids = list(highway.eval_frames[-2:])
    want = dict(m.segment(highway.view(), ids))
    for f in ("task.pt", "method.pt"):
        p = build_method(name, config="smoke", seed=9, weights=str(tmp_path / f))  # another seed: other initial weights
        assert p.pretrained == str(tmp_path / f) and p.model_weights_loaded == {"loaded": n, "total": n}
        got = dict(p.segment(highway.view(), ids))
        assert all(np.array_equal(want[i], got[i]) for i in ids), f


def test_a_file_that_matches_nothing_or_part_is_refused(tmp_path):
    m = build_method("crossnet", config="smoke")
    torch.save({"foo.weight": torch.zeros(3)}, tmp_path / "foreign.pt")
    with pytest.raises(BadInput, match="holds no tensor of crossnet's model") as e:
        build_method("crossnet", config="smoke", weights=str(tmp_path / "foreign.pt"))
    assert str(tmp_path / "foreign.pt") in str(e.value)
    sd = {f"net.{k}": v for k, v in m.net.state_dict().items()}
    first = next(iter(sd))
    torch.save({first: sd[first]}, tmp_path / "part.pt")
    with pytest.raises(BadInput, match=r"holds 1 of \d+ tensors"):
        build_method("crossnet", config="smoke", weights=str(tmp_path / "part.pt"))
    wide = build_method("crossnet", config="smoke", channels="8,8,8,16")  # another width: shapes differ
    torch.save(wide.state_dict(), tmp_path / "wide.pt")
    with pytest.raises(BadInput, match="shape mismatches: net"):
        build_method("crossnet", config="smoke", weights=str(tmp_path / "wide.pt"))


def test_unreadable_unsafe_and_vgg_files_are_refused(tmp_path):
    import pickle

    (tmp_path / "text.pt").write_text("not a model")
    with pytest.raises(BadInput, match="cannot be (read as a model file|loaded as torch weights)"):
        build_method("bmn_bsn", config="smoke", weights=str(tmp_path / "text.pt"))

    class Evil:
        def __reduce__(self):
            return (print, ("code ran",))
    with open(tmp_path / "evil.pt", "wb") as f:
        pickle.dump({"x": Evil()}, f)
    with pytest.raises(BadInput, match="cannot be (read as a model file|loaded as torch weights)"):  # weights_only refuses the pickle
        build_method("bmn_bsn", config="smoke", weights=str(tmp_path / "evil.pt"))
    torch.save({"features.0.weight": torch.zeros(4, 3, 3, 3), "features.0.bias": torch.zeros(4)}, tmp_path / "vgg.pt")
    with pytest.raises(BadInput, match="vgg_weights=FILE"):
        build_method("siamese_fcn", config="smoke", weights=str(tmp_path / "vgg.pt"))


@needs_data
@pytest.mark.slow
def test_run_evaluates_a_pretrained_model_keyed_by_its_content(tmp_path, capsys):
    """Train two_stage_cnn smoke on a 40-frame highway excerpt; a second run given the first
    run's checkpoint as weights trains nothing, scores the same counts, and says so; the same
    path with other content is another job."""
    from bgbench.cli import main

    scene = copy_scene(HIGHWAY, tmp_path / "CDnet2014" / "baseline" / "highway", range(800, 840))
    base = ["run", "--data", str(scene), "--methods", "two_stage_cnn", "--config", "smoke", "--no-report"]
    assert main(base + ["--out", str(tmp_path / "a")]) in (0, 1)
    (ja,) = json.loads((tmp_path / "a" / "results.json").read_text())["jobs"]
    (ckpt,) = (tmp_path / "a" / "checkpoints").glob("*/*/*.pt")  # the task checkpoint (not the stages' own)
    model = tmp_path / "model.pt"
    model.write_bytes(ckpt.read_bytes())
    argv = base + ["--set", f"two_stage_cnn.weights={model}", "--out", str(tmp_path / "b")]
    assert main(argv) == 0
    (jb,) = json.loads((tmp_path / "b" / "results.json").read_text())["jobs"]
    assert jb["status"] == "ok" and jb["counts"] == ja["counts"]
    assert jb["training"]["note"] == "pretrained, not trained here" and jb["training"]["pretrained"] == str(model)
    assert jb["training"]["stages"] == [] and jb["training"]["tensors"]["loaded"] == jb["training"]["tensors"]["total"]
    assert not (tmp_path / "b" / "checkpoints").exists() or not list((tmp_path / "b" / "checkpoints").rglob("*.pt"))
    other = build_method("two_stage_cnn", config="smoke", seed=5)
    torch.save(other.state_dict(), model)  # same path, other content
    assert main(argv) == 0
    (jc,) = json.loads((tmp_path / "b" / "results.json").read_text())["jobs"]
    assert jc["fingerprint"] != jb["fingerprint"]
