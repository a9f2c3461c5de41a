"""External masks in the leaderboard (issue 25, item 1) and example frames by default (item 9).

On a real 51-frame clip (CDnet2014 baseline/office): masks saved by a run, the same masks
scored by ``bgbench score --data`` and run through the ``masks`` method give identical counts;
replacing one mask file changes the masks job on a re-run into the same --out, by exactly the
counts of that frame (an independent comparator says how much); the masks method has no FPS
("n/a"), and every job records an example frame without --save-masks."""

from __future__ import annotations

import json
import shutil
from types import SimpleNamespace

import cv2
import numpy as np
import pytest

from conftest import CDNET, DATA, reference_counts
from bgbench import api
from bgbench.cli import main
from bgbench.errors import BadInput

OFFICE = CDNET / "baseline" / "office"
pytestmark = pytest.mark.skipif(not DATA.is_dir(), reason="../shared/data is not present")


def _run(out, methods, save_masks=False, **kw):
    return api.run(api.RunConfig.of(methods, data=[OFFICE], out=out, tracking=False, report=False,
                                    save_masks=save_masks, **kw))


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """frame_difference on office with --save-masks: (run folder, its job)."""
    out = tmp_path_factory.mktemp("saved") / "run"
    (job,) = _run(out, ["frame_difference"], save_masks=True).jobs
    return out, job


def test_save_masks_writes_the_cdnet_results_layout(saved, highway):
    from bgbench.data.formats import discover

    out, job = saved
    (video,) = discover(OFFICE)
    tree = out / "masks" / "frame_difference" / "full"
    assert job.masks == "masks/frame_difference/full/CDnet2014/baseline/office"
    names = {f.name for f in (out / job.masks).iterdir()}
    assert names == {f"bin{i:06d}.png" for i in video.eval_frames} and len(names) == 51  # nothing but the masks
    m = cv2.imread(str(out / job.masks / f"bin{video.eval_frames[0]:06d}.png"), cv2.IMREAD_UNCHANGED)
    assert m.dtype == np.uint8 and m.shape == video.shape and set(np.unique(m)) <= {0, 255}
    assert (tree / "CDnet2014" / "baseline" / "office").is_dir()


def test_saved_masks_scored_and_read_back_by_the_masks_method_give_identical_counts(saved, tmp_path, capsys):
    out, job = saved
    tree = out / "masks" / "frame_difference" / "full"
    # bgbench score --data reads bgbench's own tree: a dataset root, and a folder of datasets
    for pred, root in ((tree / "CDnet2014" / "baseline", CDNET / "baseline"), (tree / "CDnet2014", CDNET),
                       (tree, DATA), (tree, CDNET / "baseline"), (tree / "CDnet2014", OFFICE)):
        capsys.readouterr()
        assert main(["score", str(pred), "--data", str(root), "--partial", "--roi-policy", "ignore", "--json"]) == 0
        scored = json.loads(capsys.readouterr().out)["datasets"]["CDnet2014"]["videos"][job.key.video]
        assert scored["counts"] == dict(job.counts) and scored["frames"] == 51
    # the masks method, from each layout the tree offers (per-dataset, CATEGORY/SCENE, the scene itself)
    for root in (tree, tree / "CDnet2014", tree / "CDnet2014" / "baseline" / "office"):
        res = _run(tmp_path / root.name, ["masks"], overrides={"masks": {"root": str(root)}})
        (m,) = res.jobs
        assert m.ok and dict(m.counts) == dict(job.counts), root
        assert m.fps is None and "no speed" in m.timing["fps_note"]


def test_replacing_one_mask_changes_the_masks_job_on_a_rerun(saved, tmp_path):
    from bgbench.data.formats import discover
    from bgbench.reports.tables import metrics_table, terminal_summary
    from bgbench.timing.gate import methods_of

    src, job = saved
    root = tmp_path / "results"
    shutil.copytree(src / job.masks, root / "baseline" / "office")  # the CDnet results layout, CATEGORY/SCENE
    out = tmp_path / "run"
    cfg = dict(overrides={"masks": {"root": str(root)}})
    first = _run(out, ["masks"], **cfg)
    (a,) = first.jobs
    again = _run(out, ["masks"], **cfg)  # nothing changed: the job is reused as it is
    assert again.jobs[0].fingerprint == a.fingerprint and again.jobs[0].timing == a.timing

    (video,) = discover(OFFICE)
    fid = video.eval_frames[25]
    path = root / "baseline" / "office" / f"bin{fid:06d}.png"
    old = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE) == 255
    new = np.zeros(video.shape, bool)
    new[:, : video.shape[1] // 2] = True  # the left half foreground
    cv2.imwrite(str(path), new.astype(np.uint8) * 255)
    second = _run(out, ["masks"], **cfg)  # same --out, same parameters (the same root path)
    (b,) = second.jobs
    assert b.fingerprint != a.fingerprint
    gt, roi = video.gt(fid)[None], np.asarray(video.roi, bool)
    before, after = reference_counts(old[None], gt, roi), reference_counts(new[None], gt, roi)
    for k in ("tp", "fp", "tn", "fn"):
        assert b.counts[k] == a.counts[k] - before[k] + after[k], k
    assert b.counts != a.counts
    assert len(list((out / "jobs" / "masks").rglob("*.json"))) == 1  # the superseded record is gone

    # FPS "n/a" in the tables, no point in the speed plot's data, not timed by the CI gate
    header, rows, _ = metrics_table(second, "full", "CDnet2014")
    assert rows[0][header.index("FPS")] == "n/a"
    assert "| n/a |" in terminal_summary(second).replace("  ", " ").replace("  ", " ")
    assert methods_of(second) == []


def test_the_masks_method_refuses_what_it_cannot_read(saved, tmp_path):
    out, job = saved
    with pytest.raises(BadInput, match="masks.root is not set"):
        _run(tmp_path / "a", ["masks"])
    with pytest.raises(BadInput, match="masks.root"):
        _run(tmp_path / "b", ["masks"], overrides={"masks": {"root": str(tmp_path / "nowhere")}})
    empty = tmp_path / "empty"
    (empty / "baseline" / "highway").mkdir(parents=True)
    with pytest.raises(BadInput, match="no mask folder for CDnet2014/baseline/office") as e:
        _run(tmp_path / "c", ["masks"], overrides={"masks": {"root": str(empty)}})
    assert str(empty / "baseline" / "office") in str(e.value)
    cut = tmp_path / "cut" / "baseline" / "office"
    shutil.copytree(out / job.masks, cut)
    first = sorted(cut.iterdir())[0]
    first.unlink()
    with pytest.raises(BadInput, match="1 of the 51 frames") as e:
        _run(tmp_path / "d", ["masks"], overrides={"masks": {"root": str(tmp_path / "cut")}})
    assert str(first) in str(e.value)
    cv2.imwrite(str(first), np.ones((240, 360), np.uint8))  # a 0/1 mask of another size: refused like score does
    with pytest.raises(BadInput, match="0/1 mask|mask is 360x240"):
        _run(tmp_path / "e", ["masks"], overrides={"masks": {"root": str(tmp_path / "cut")}})
    assert not (tmp_path / "e" / "jobs").exists()


def test_bgbench_speed_refuses_the_masks_method(capsys):
    from conftest import cli_error

    line = cli_error(capsys, "speed", "--methods", "masks", "--frames", "5")
    assert "masks has no speed to measure" in line and "--methods" in line


def test_mask_folders_follow_the_dataset_layout(tmp_path):
    from bgbench.scoring.files import find_mask_folder, mask_folder_candidates

    sbi = SimpleNamespace(dataset="SBI2015", category=None, name="Board", id="SBI2015/-/Board")
    assert mask_folder_candidates(tmp_path, sbi) == [tmp_path / "SBI2015" / "Board", tmp_path / "Board", tmp_path]
    cd = SimpleNamespace(dataset="CDnet2014", category="baseline", name="office", id="CDnet2014/baseline/office")
    assert mask_folder_candidates(tmp_path, cd) == [tmp_path / "CDnet2014/baseline/office", tmp_path / "baseline/office",
                                                    tmp_path / "office", tmp_path]
    (tmp_path / "office").mkdir()
    assert find_mask_folder(tmp_path, cd) == tmp_path / "office"  # flat
    (tmp_path / "baseline" / "office").mkdir(parents=True)
    assert find_mask_folder(tmp_path, cd) == tmp_path / "baseline" / "office"  # the more specific wins
    one = tmp_path / "one"
    one.mkdir()
    (one / "bin000001.png").write_bytes(b"")
    assert find_mask_folder(one, cd) == one  # a folder of one scene's masks


def test_every_job_records_an_example_frame_without_save_masks(tmp_path):
    """No --save-masks: the job still records its example (the middle test frame), one small
    overlay of its own, which is frame_difference's mask coloured against the ground truth."""
    from bgbench.data.formats import discover
    from bgbench.execution.examples import colour_mask
    from bgbench.method import build_method
    from bgbench.scoring.metrics import quantize, threshold_bin

    out = tmp_path / "run"
    (job,) = _run(out, ["frame_difference"]).jobs
    assert job.masks is None and not (out / "masks").exists()
    (video,) = discover(OFFICE)
    fid = sorted(video.eval_frames)[len(video.eval_frames) // 2]
    assert job.examples["frame"] == fid
    overlay_file = out / job.examples["overlay"]
    assert overlay_file.parent.parent.parent.parent == out / "examples" / "jobs"
    assert overlay_file.stat().st_size < 20_000  # one small PNG per job
    (_, prob), = build_method("frame_difference").segment(video.view(), [fid])
    overlay = cv2.imread(str(overlay_file), cv2.IMREAD_COLOR)[..., ::-1]
    pred = quantize(prob) >= threshold_bin(0.5)  # as the run thresholds
    assert np.array_equal(overlay, colour_mask(pred, video.gt(fid), np.asarray(video.roi, bool)))
    assert np.array_equal(cv2.imread(str(out / job.examples["input"]), cv2.IMREAD_UNCHANGED), video.frame(fid))


def test_a_file_parameter_keys_its_jobs_on_the_files_content(tmp_path):
    """Any Param(kind="file") (a deep method's weights): replacing the file in place changes the
    job's fingerprint, putting the same bytes back restores it."""
    from bgbench.data.formats import discover
    from bgbench.method import METHODS, Method, register_method
    from bgbench.params import Param
    from bgbench.protocols import build_protocol
    from bgbench.execution.runner import MethodSpec, RunOptions, plan

    if "test_weights_file_param" not in METHODS:
        @register_method("test_weights_file_param")
        class _FileParam(Method):
            """A test method with a file parameter"""

            params = {"weights": Param(None, "a file", kind="file")}

    (video,) = discover(OFFICE)
    weights = tmp_path / "w.bin"

    def fp() -> str:
        spec = MethodSpec("test_weights_file_param", "default", (("weights", str(weights)),))
        (task,) = plan([spec], {"test_weights_file_param": [build_protocol("full")]}, [video], RunOptions(out=tmp_path / "o"))
        return task.fingerprints[video.id]

    weights.write_bytes(b"first")
    a = fp()
    weights.write_bytes(b"second")
    assert fp() != a
    weights.write_bytes(b"first")
    assert fp() == a
