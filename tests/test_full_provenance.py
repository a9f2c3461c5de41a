"""Every byte that shaped a job's counts decides whether it is reused (issue 23, items 1 and 5;
issue 25 item 1; issue 27, the frame cache):

- an edit of any ground-truth mask, input frame, ROI.bmp or temporalROI.txt of a scene
  (not only the five frames the old content id sampled) recomputes the job, and the new
  counts are those of a fresh run;
- the harness hash covers every module from decoding to counts (the run loop included),
  derived from the sources;
- a decoded-frame cache entry damaged in place (same size) is detected and rebuilt;
- a scene reached through a symlink and through its target shares one cache entry;
- one video id under two --data roots with different content is refused naming both
  folders; the same folder twice is one video;
- a parameter naming a file is keyed on the file's content: replacing it re-runs the job.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from bgbench.cli import main
from bgbench.data import filehash, framecache
from bgbench.method import METHODS, Method, register_method
from bgbench.params import Param
from bgbench.records import provenance
from conftest import CDNET, HIGHWAY, copy_scene, needs_data

OFFICE = CDNET / "baseline" / "office"
RUN = ["--methods", "frame_difference", "--no-report", "--no-tracking"]


def _scene(root: Path, name: str = "highway") -> Path:
    return copy_scene(HIGHWAY, root / "CDnet2014" / "baseline" / name, range(470, 530))


def _records(out: Path) -> dict[str, dict]:
    return {p.name: json.loads(p.read_text()) for p in (out / "jobs").rglob("*.json")}


def _only(out: Path) -> tuple[str, dict]:
    (item,) = _records(out).items()
    return item


def _run(scene: Path, out: Path, *extra: str) -> tuple[str, dict]:
    assert main(["run", "--data", str(scene), "--out", str(out), *RUN, *extra]) == 0
    return _only(out)


def _sampled_positions(n: int) -> set[int]:
    return {int(k) for k in np.linspace(0, n - 1, min(provenance.SAMPLES, n)).round()}


def _edit_mask(scene: Path) -> None:
    pos = 7
    assert pos not in _sampled_positions(60)  # a mask the old content id never looked at
    f = scene / "groundtruth" / f"gt{470 + pos:06d}.png"
    g = cv2.imread(str(f), cv2.IMREAD_GRAYSCALE)
    g[100:140, 20:120] = 255  # background marked as motion: FN/TP change
    cv2.imwrite(str(f), g)


def _edit_frame(scene: Path) -> None:
    f = scene / "input" / f"in{470 + 7:06d}.jpg"
    img = cv2.imread(str(f))
    img[100:140, 20:120] = 255  # a white block: frame differences around it change
    cv2.imwrite(str(f), img)


def _edit_roi(scene: Path) -> None:
    roi = cv2.imread(str(scene / "ROI.bmp"), cv2.IMREAD_GRAYSCALE)
    roi[:, : roi.shape[1] // 2] = 0
    cv2.imwrite(str(scene / "ROI.bmp"), roi)


def _edit_troi(scene: Path) -> None:
    (scene / "temporalROI.txt").write_text("490 529\n")


@needs_data
@pytest.mark.parametrize("edit", [_edit_mask, _edit_frame, _edit_roi, _edit_troi], ids=["mask", "frame", "roi", "troi"])
def test_an_edit_of_any_scored_file_recomputes_the_job(tmp_path, edit):
    scene, out = _scene(tmp_path / "d"), tmp_path / "run"
    name, old = _run(scene, out)
    edit(scene)
    new_name, new = _run(scene, out)
    assert new_name != name and new["fingerprint"] != old["fingerprint"]  # recomputed, the old record replaced
    _, fresh = _run(scene, tmp_path / "fresh")
    assert new["counts"] == fresh["counts"] != old["counts"]
    assert new["metrics"]["f_measure"] == fresh["metrics"]["f_measure"]


@needs_data
def test_an_untouched_scene_is_reused_and_the_digest_ignores_names(tmp_path):
    from bgbench.data.formats import discover

    scene, out = _scene(tmp_path / "d"), tmp_path / "run"
    name, old = _run(scene, out)
    mtime = next((out / "jobs").rglob("*.json")).stat().st_mtime_ns
    assert _run(scene, out) == (name, old)
    assert next((out / "jobs").rglob("*.json")).stat().st_mtime_ns == mtime  # read, not rewritten
    (a,) = discover(scene)
    (b,) = discover(shutil.copytree(scene, tmp_path / "e" / "CDnet2014" / "baseline" / "highway"))
    assert provenance.data_digest(a) == provenance.data_digest(b)  # a byte copy: same bytes, same digest
    (b.path / "temporalROI.txt").write_text("470 529 \n")  # a byte of a side file
    (b,) = discover(b.path)
    assert provenance.data_digest(a) != provenance.data_digest(b)


def test_the_harness_hash_covers_the_path_from_decoding_to_counts(monkeypatch, tmp_path):
    import pkgutil

    import bgbench.data
    import bgbench.scoring

    mods = set(provenance.harness_modules())
    for pkg in (bgbench.data, bgbench.scoring):
        assert {m.name for m in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + ".")} <= mods
    assert {"bgbench.execution.runner", "bgbench.method", "bgbench.data.formats.cdnet", "bgbench.scoring.metrics",
            "bgbench.data.framecache", "bgbench.protocols"} <= mods
    assert not {"bgbench.cli", "bgbench.api", "bgbench.reports.build"} & mods  # the report does not shape counts
    before = provenance.harness_fingerprint()
    real = provenance._module_file
    runner = real("bgbench.execution.runner")
    edited = tmp_path / "runner.py"
    edited.write_text(runner.read_text() + "\nSCORE_BATCH = 16\n")
    monkeypatch.setattr(provenance, "_module_file",
                        lambda m: edited if m == "bgbench.execution.runner" else real(m))
    provenance.harness_fingerprint.cache_clear()
    try:
        assert provenance.harness_fingerprint() != before  # an edit of the run loop re-runs every job
    finally:
        monkeypatch.undo()
        provenance.harness_fingerprint.cache_clear()
    assert provenance.harness_fingerprint() == before


def test_file_digests_follow_bytes_not_names(tmp_path):
    a = tmp_path / "a.bin"
    a.write_bytes(b"x" * 5000)
    link = tmp_path / "link.bin"
    link.symlink_to(a)
    d = filehash.file_digest(a)
    assert filehash.file_digest(link) == d
    import hashlib

    assert d == hashlib.blake2b(b"x" * 5000, digest_size=16).hexdigest()  # an independent reference
    st = a.stat()
    with open(a, "r+b") as f:  # one byte changed, size and mtime put back
        f.seek(100)
        f.write(b"y")
    os.utime(a, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert filehash.file_digest(a) != d  # ctime moved: the memo does not hide the edit


def _bgr_entries(root: Path) -> list[Path]:
    return sorted(p for p in root.glob("*-bgr-*.npy"))


@pytest.fixture
def private_cache(tmp_path, monkeypatch):
    """A frame cache of this test's own, with nothing verified or open in this process yet."""
    monkeypatch.setenv("BGBENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(framecache, "_verified", {})
    monkeypatch.setattr(framecache, "_open", set())
    return tmp_path / "cache"


@needs_data
def test_a_damaged_cache_entry_is_rebuilt_never_read(tmp_path, private_cache):
    from bgbench.data.formats import discover

    scene = copy_scene(OFFICE, tmp_path / "d" / "CDnet2014" / "baseline" / "office", range(600, 621))
    (v,) = discover(scene)
    good = np.array(v.frames(v.frame_ids))
    assert np.array_equal(good[3], cv2.imread(str(scene / "input" / "in000603.jpg")))
    (entry,) = _bgr_entries(tmp_path / "cache")
    size = entry.stat().st_size
    with open(entry, "r+b") as f:  # damage in place: frame 5's pixels, same size
        f.seek(size - good[0].nbytes * 16 + 1000)
        f.write(bytes(3000))
    assert entry.stat().st_size == size
    damaged = np.load(entry, mmap_mode="r")
    assert not np.array_equal(damaged, good)  # the damage is real
    del damaged
    framecache._verified.clear()  # a new process opens it
    (again,) = discover(scene)
    assert np.array_equal(again.frames(again.frame_ids), good)  # rebuilt, never the damaged bytes
    (entry2,) = _bgr_entries(tmp_path / "cache")
    assert np.array_equal(np.load(entry2), good)


@needs_data
def test_a_damaged_cache_entry_gives_a_run_the_fresh_counts(tmp_path, private_cache):
    scene = copy_scene(OFFICE, tmp_path / "d" / "CDnet2014" / "baseline" / "office", range(600, 631))
    _, fresh = _run(scene, tmp_path / "a")
    entries = [p for p in framecache.cache_root().glob("*office-gt-*.npy")]
    assert entries
    for e in entries:  # every pixel of the ground truth set to motion, same size
        arr = np.load(e, mmap_mode="r+")
        arr[:] = 255
        arr.flush()
        del arr
    framecache._verified.clear()
    _, again = _run(scene, tmp_path / "b")
    assert again["counts"] == fresh["counts"]


@needs_data
def test_a_scene_through_a_symlink_shares_its_targets_cache_entry(tmp_path, private_cache):
    from bgbench.data.formats import discover

    scene = copy_scene(OFFICE, tmp_path / "d" / "CDnet2014" / "baseline" / "office", range(600, 611))
    same_name = tmp_path / "l1" / "CDnet2014" / "baseline" / "office"
    other_name = tmp_path / "l2" / "Mirror" / "baseline" / "workroom"
    for link in (same_name, other_name):
        link.parent.mkdir(parents=True)
        link.symlink_to(scene, target_is_directory=True)
    frames = []
    for folder in (scene, same_name, other_name):
        (v,) = discover(folder)
        frames.append(np.array(v.frames(v.frame_ids)))
    assert len(_bgr_entries(tmp_path / "cache")) == 1  # one entry for three spellings
    assert all(np.array_equal(f, frames[0]) for f in frames)
    assert len(frames[0]) == 11


@needs_data
def test_one_id_from_two_roots_with_other_content_is_refused(tmp_path, capsys):
    a = copy_scene(OFFICE, tmp_path / "a" / "CDnet2014" / "baseline" / "office", range(600, 621))
    b = copy_scene(OFFICE, tmp_path / "b" / "CDnet2014" / "baseline" / "office", range(600, 621))
    g = cv2.imread(str(b / "groundtruth" / "gt000610.png"), cv2.IMREAD_GRAYSCALE)
    g[:10, :10] = 255 - g[:10, :10]
    cv2.imwrite(str(b / "groundtruth" / "gt000610.png"), g)
    for command in ("run", "splits"):
        args = [command, "--data", str(tmp_path / "a"), str(tmp_path / "b")]
        args += RUN + ["--out", str(tmp_path / "run")] if command == "run" else ["--protocol", "full"]
        assert main(args) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and str(a) in err[0] and str(b) in err[0] and "CDnet2014/baseline/office" in err[0]
    assert not (tmp_path / "run" / "jobs").exists()
    # the same folder twice (or a byte copy under the same id) is one video
    assert main(["run", "--data", str(tmp_path / "a"), str(tmp_path / "a"), *RUN, "--out", str(tmp_path / "r2")]) == 0
    assert len(_records(tmp_path / "r2")) == 1


if "test_file_param" not in METHODS:

    @register_method("test_file_param")
    class FileParam(Method):
        """Foreground where grey > the number in ``level`` (a text file): a parameter that takes a file"""

        params = {"level": Param(None, "a text file holding a grey level", kind="file")}

        def segment(self, video, frames):
            level = float(Path(self.p["level"]).read_text()) if self.p["level"] else 128
            for f in frames:
                grey = cv2.cvtColor(video.frame(f), cv2.COLOR_BGR2GRAY)
                yield f, (grey > level).astype(np.float32)


@needs_data
def test_replacing_a_file_parameter_reruns_the_job(tmp_path):
    scene = copy_scene(OFFICE, tmp_path / "d" / "CDnet2014" / "baseline" / "office", range(600, 611))
    level = tmp_path / "level.txt"
    level.write_text("100")
    args = ["run", "--data", str(scene), "--methods", "test_file_param", "--set", f"test_file_param.level={level}",
            "--out", str(tmp_path / "run"), "--no-report", "--no-tracking"]
    assert main(args) == 0
    name, old = _only(tmp_path / "run")
    level.write_text("200")  # same path, other content
    assert main(args) == 0
    new_name, new = _only(tmp_path / "run")
    assert new_name != name and new["counts"] != old["counts"]
    grey = np.stack([cv2.cvtColor(cv2.imread(str(f)), cv2.COLOR_BGR2GRAY) for f in sorted((scene / "input").iterdir())])
    gt = np.stack([cv2.imread(str(f), cv2.IMREAD_GRAYSCALE) for f in sorted((scene / "groundtruth").iterdir())])
    roi = cv2.imread(str(scene / "ROI.bmp"), cv2.IMREAD_GRAYSCALE) > 0
    valid = roi & (gt != 85) & (gt != 170)
    assert new["counts"]["tp"] == int(np.sum((grey > 200) & valid & (gt == 255)))  # computed with the new file
    assert provenance.param_digests({"level": str(level), "n": 3}) == {"level": filehash.file_digest(level)}


def test_two_same_size_writes_within_one_clock_tick_are_told_apart(tmp_path):
    """File times tick coarsely: a file rewritten at once with other bytes of the same size may
    keep its stat; its digest must follow the bytes (a young file is not memoised)."""
    from bgbench.data import filehash

    f = tmp_path / "weights.pt"
    f.write_bytes(b"a" * 64)
    first = filehash.file_digest(f)
    st = os.stat(f)
    f.write_bytes(b"b" * 64)
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns))  # the same mtime, as within one tick
    assert filehash.file_digest(f) != first
    assert filehash.digests([f]) == [filehash.file_digest(f)]
