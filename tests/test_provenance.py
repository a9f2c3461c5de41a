"""Results tied to the code and content that produced them (issue 13, items 1-2).

- a job is keyed on its method's source files and the counting harness: change one
  method's code and only that method recomputes; its old record stays until the new one
  is written (a failed recompute keeps it);
- one scene given twice under two names (a copy) is refused, naming both paths.
"""

from __future__ import annotations

import importlib
import json
import sys

import pytest

from bgbench.records import provenance
from bgbench.cli import main
from conftest import HIGHWAY, copy_scene, needs_data


def _package(tmp_path, monkeypatch, name: str, modules: dict[str, str]):
    """A package ``name`` of these modules (file name -> source) under tmp_path, importable."""
    pkg = tmp_path / name
    pkg.mkdir()
    for file, source in {"__init__.py": "", **modules}.items():
        (pkg / file).write_text(source)
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.invalidate_caches()
    return pkg


def test_method_fingerprint_follows_its_own_sources(tmp_path, monkeypatch):
    pkg = _package(tmp_path, monkeypatch, "plugpkg", {"method.py": "from .helper import value\nimport json\n",
                                                      "helper.py": "value = 1\n", "unrelated.py": "x = 0\n"})
    files = {p.name for p in provenance.source_files("plugpkg.method")}
    assert files == {"method.py", "helper.py"}  # same-package imports, transitively; not json, not unrelated
    before = provenance.method_source_fingerprint("plugpkg.method")
    (pkg / "unrelated.py").write_text("x = 1\n")
    provenance.method_source_fingerprint.cache_clear()
    assert provenance.method_source_fingerprint("plugpkg.method") == before
    (pkg / "helper.py").write_text("value = 2\n")
    provenance.method_source_fingerprint.cache_clear()
    assert provenance.method_source_fingerprint("plugpkg.method") != before
    provenance.method_source_fingerprint.cache_clear()
    sys.modules.pop("plugpkg", None)


def test_stored_import_lists_follow_the_source(tmp_path, monkeypatch):
    """The import names parsed from a source are kept on disk by its content: a new process
    (a fresh memo read from the store) finds the same closure, an edit that adds an import is
    parsed again, and a damaged store only costs the parsing."""
    monkeypatch.setenv("BGBENCH_CACHE", str(tmp_path / "cache"))
    pkg = _package(tmp_path, monkeypatch, "memopkg", {"method.py": "from .helper import value\n",
                                                      "helper.py": "value = 1\n", "extra.py": "y = 2\n"})

    def closure() -> set[str]:
        provenance.source_files.cache_clear()
        monkeypatch.setattr(provenance, "_IMPORTS", provenance._ImportsMemo())  # as a new process reads it
        return {p.name for p in provenance.source_files("memopkg.method")}

    assert closure() == {"method.py", "helper.py"}
    store = provenance._IMPORTS._file()
    rows = json.loads(store.read_text())["imports"]
    assert any(k.startswith("any:memopkg.method:method.py:") and v == ["memopkg.helper", "memopkg.helper.value"]
               for k, v in rows.items())
    parsed = []
    real_parse = provenance.ast.parse
    monkeypatch.setattr(provenance.ast, "parse", lambda src, *a, **k: parsed.append(1) or real_parse(src, *a, **k))
    assert closure() == {"method.py", "helper.py"} and not parsed  # taken from the store
    (pkg / "method.py").write_text("from .helper import value\nfrom .extra import y\n")
    assert closure() == {"method.py", "helper.py", "extra.py"} and len(parsed) == 2  # method.py again, extra.py
    store.write_text("{not json")
    assert closure() == {"method.py", "helper.py", "extra.py"}
    provenance.source_files.cache_clear()
    sys.modules.pop("memopkg", None)


def test_fingerprinting_a_method_imports_nothing_it_names():
    """Finding the modules a method's sources name must not import them (importlib's find_spec
    imports parents): fingerprinting gmm_zivkovic used to import the report modules and
    matplotlib into the run's process, which then built its report there, not in its worker."""
    import subprocess

    code = ("import sys\n"
            "from bgbench.baselines.opencv_bgs import GMMZivkovic\n"
            "from bgbench.records.provenance import code_fingerprint, harness_modules\n"
            "before = set(sys.modules)\n"
            "code_fingerprint(GMMZivkovic)\n"
            "new = sorted(m for m in set(sys.modules) - before if m.startswith(('bgbench', 'matplotlib', 'torch')))\n"
            "print(new, len(harness_modules()))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out[0] in ("[]", "['bgbench.data.formats']")  # walk_packages imports the harness's subpackages only
    assert int(out[-1]) > 20


def _jobs(out):
    return {p.name: p for p in (out / "jobs").rglob("*.json")}


def _scene(tmp_path, name="highway"):
    return copy_scene(HIGHWAY, tmp_path / "data" / "baseline" / name, range(470, 530))


@needs_data
def test_changing_one_methods_code_recomputes_that_method_only(tmp_path, monkeypatch):
    scene, out = _scene(tmp_path), tmp_path / "run"
    args = ["run", "--data", str(scene), "--methods", "gmm_zivkovic,frame_difference", "--out", str(out),
            "--no-report", "--no-tracking"]
    assert main(args) == 0
    first = {n: p.read_text() for n, p in _jobs(out).items()}
    assert len(first) == 2
    real = provenance.method_source_fingerprint

    def edited(module):  # as if baselines/frame_difference.py had been edited
        return "edited" if module.endswith("frame_difference") else real(module)

    monkeypatch.setattr(provenance, "method_source_fingerprint", edited)
    assert main(args) == 0
    second = {n: p.read_text() for n, p in _jobs(out).items()}
    assert len(second) == 2  # the replaced record is gone once its successor is written
    for n, text in first.items():
        rec = json.loads(text)
        if rec["method"] == "gmm_zivkovic":
            assert second[n] == text  # reused as it was
        else:
            assert n not in second  # recomputed under a new fingerprint
    new = [json.loads(t) for n, t in second.items() if n not in first]
    assert len(new) == 1 and new[0]["method"] == "frame_difference" and new[0]["status"] == "ok"


@needs_data
def test_a_failed_recompute_keeps_the_old_record(tmp_path, monkeypatch, fork_workers):
    from bgbench.baselines.frame_difference import FrameDifference

    scene, out = _scene(tmp_path), tmp_path / "run"
    base = ["run", "--data", str(scene), "--methods", "frame_difference", "--out", str(out), "--no-report",
            "--no-tracking"]
    assert main(base) == 0
    (old,) = _jobs(out).values()
    old_text = old.read_text()

    def broken(self, video, frames):
        raise RuntimeError("broken on purpose")
        yield

    monkeypatch.setattr(FrameDifference, "segment", broken)
    main(base + ["--set", "frame_difference.threshold=20"])
    assert old.exists() and old.read_text() == old_text  # never overwritten first
    statuses = sorted(json.loads(p.read_text())["status"] for p in _jobs(out).values())
    assert statuses == ["failed", "ok"]
    monkeypatch.undo()
    assert main(base + ["--set", "frame_difference.threshold=20"]) == 0
    (only,) = _jobs(out).values()  # the new ok record replaced both
    rec = json.loads(only.read_text())
    assert rec["status"] == "ok" and rec["params"] == {"threshold": "20"}


@needs_data
@pytest.mark.parametrize("command", ["run", "splits"])
def test_one_scene_under_two_names_is_refused(tmp_path, capsys, command):
    a = _scene(tmp_path, "highway")
    b = copy_scene(HIGHWAY, tmp_path / "copy" / "baseline" / "motorway", range(470, 530))
    args = [command, "--data", str(a), str(b)] + (["--protocol", "full"] if command == "splits" else [])
    if command == "run":
        args += ["--methods", "frame_difference", "--out", str(tmp_path / "run"), "--no-report", "--no-tracking"]
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "same frames and ground truth" in err[0]
    assert "motorway" in err[0] and "highway" in err[0]
    assert not (tmp_path / "run" / "jobs").exists()  # refused before any job


@needs_data
def test_content_id_sees_content_not_names(tmp_path, highway):
    from bgbench.data.formats import discover

    (same,) = discover(_scene(tmp_path, "renamed"))
    (other,) = discover(copy_scene(HIGHWAY, tmp_path / "o" / "baseline" / "x", range(471, 531)))
    (again,) = discover(_scene(tmp_path / "2", "highway"))
    assert provenance.content_id(same) == provenance.content_id(again) != provenance.content_id(other)
