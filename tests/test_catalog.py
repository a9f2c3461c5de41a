"""The method catalogue: entry points only, metadata read from the classes' source without
importing them (so neither torch nor OpenCV), a plug-in from another distribution, and the
fallbacks (import a class whose metadata is computed; a clear error when not installed)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from bgbench import catalog
from bgbench.catalog import MethodRegistry, NotInstalled, StaticReadError, read_meta, static_meta
from bgbench.errors import BadInput, MethodUnavailable
from bgbench.method import METHODS, method_class
from conftest import ROOT

HEAVY = ("torch", "cv2")

# The README's worked example ("Writing a plug-in method"), verbatim.
PLUGIN = '''\
"""bgbench_example_plugin: one method, registered by an entry point."""

import numpy as np

from bgbench.method import Method


class Threshold(Method):
    """Fixed-threshold difference to the first frame (example plug-in)"""

    family = "classical"
    binary_output = True  # yields 0/255 only: a run of it alone has no PR curve, its report no matplotlib
    params = {"threshold": (30, "largest channel difference (0-255) that is still background", "[0, 255)")}

    def segment(self, video, frames):
        first = video.frame(video.frame_ids[0]).astype(np.int16)
        for fid in frames:
            d = np.abs(video.frame(fid).astype(np.int16) - first).max(axis=2)
            yield fid, np.where(d > self.p["threshold"], 255, 0).astype(np.uint8)
'''


def _python(code: str, cwd: Path, extra_path: Path | None = None) -> str:
    env = dict(os.environ)
    if extra_path is not None:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(extra_path), env.get("PYTHONPATH")]))
    p = subprocess.run([sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True, text=True)
    assert p.returncode == 0, p.stderr[-3000:]
    return p.stdout


def test_listing_imports_neither_torch_nor_opencv(tmp_path):
    code = textwrap.dedent(f"""
        import io, json, sys, contextlib
        from bgbench.method import METHODS
        metas = [e.meta for e in METHODS]
        assert len(metas) >= 19 and all(m["summary"] for m in metas)
        heavy = [m for m in {HEAVY!r} if m in sys.modules]
        from bgbench.cli import main
        buf = io.StringIO()
        with contextlib.redirect_stdout(buf):
            assert main(["list", "--json"]) == 0
        listed = json.loads(buf.getvalue())["methods"]
        heavy += [m for m in {HEAVY!r} + ("bgbench.baselines.opencv_bgs", "bgbench.methods.common") if m in sys.modules]
        print(json.dumps({{"heavy": heavy, "listed": listed}}))
    """)
    out = json.loads(_python(code, cwd=tmp_path).splitlines()[-1])  # outside the checkout: entry points only
    assert out["heavy"] == []
    by = {m["name"]: m for m in out["listed"]}
    assert by["cdn_medal"]["family"] == "deep" and by["cdn_medal"]["configs"] == ["paper", "cpu", "smoke"]
    assert by["vibe"]["summary"].startswith("ViBe") and by["gmm_zivkovic"]["family"] == "classical"


def test_registry_is_complete_when_first_read_and_names_typos():
    assert "gmm_zivkovic" in METHODS and "cdn_medal" in METHODS.names()
    with pytest.raises(BadInput, match="did you mean cdn_medal"):
        METHODS.entry("cdn_medl")
    assert METHODS.entry("subsense").meta["requires"].startswith("BGSLibrary")
    assert METHODS.entry("crossnet").meta["requires"].startswith("torch")


def test_not_installed_is_a_clear_error():
    r = MethodRegistry(group="bgbench.no_such_group")
    with pytest.raises(NotInstalled, match=r"pip install -e \."):
        r.names()
    with pytest.raises(NotInstalled):  # still so on the next read, not an empty registry
        _ = "x" in r


def _write(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(textwrap.dedent(text))


def test_static_reader_follows_bases_and_falls_back_to_importing(tmp_path, monkeypatch):
    _write(tmp_path, {
        "catpkg/__init__.py": "",
        "catpkg/base.py": '''
            from bgbench.method import Method

            class Base(Method):
                """Base."""
                family = "deep"
                trains = True
                requires = "catpkg_missing_dep: pip install catpkg-missing-dep"
            ''',
        "catpkg/heavy.py": '''
            import catpkg_missing_dep  # not installed: importing this module fails
            from . import base
            from .base import Base as B

            class One(B):
                """One: inherits through a relative import.

                More text."""
                configs = {"paper": {"x": 1}, "smoke": dict(x=2)}

            class Two(base.Base):
                """Two: inherits through a module attribute"""
                gpu_capable = True
                default_protocol = "cross-scene"
            ''',
        "catpkg/computed.py": '''
            from bgbench.method import Method

            class Computed(Method):
                """Computed: the family is not a literal"""
                family = "deep".upper().lower()

            class Patched(Method):
                """Patched: set after the class"""

            if True:
                Patched.trains = True
            ''',
    })
    monkeypatch.syspath_prepend(str(tmp_path))
    one = static_meta("catpkg.heavy:One")
    assert one == {"family": "deep", "trains": True, "configs": ("paper", "smoke"), "gpu_capable": False,
                   "default_protocol": "full", "requires": "catpkg_missing_dep: pip install catpkg-missing-dep",
                   "summary": "One: inherits through a relative import."}
    two = static_meta("catpkg.heavy:Two")
    assert two["configs"] == ("default",) and two["gpu_capable"] and two["default_protocol"] == "cross-scene"
    assert "catpkg.heavy" not in sys.modules and "catpkg" not in sys.modules  # nothing was imported

    with pytest.raises(StaticReadError, match="not a literal"):
        static_meta("catpkg.computed:Computed")
    with pytest.raises(StaticReadError, match="trains is not a literal"):
        static_meta("catpkg.computed:Patched")
    assert read_meta("catpkg.computed:Computed")["family"] == "deep"  # imported instead
    assert read_meta("catpkg.computed:Patched")["trains"] is True
    assert "catpkg.computed" in sys.modules

    # a module that cannot be imported: the class's requires is the fix
    r = MethodRegistry(group="bgbench.methods")
    r.register_lazy("catpkg_one", "catpkg.heavy:One")
    monkeypatch.setattr("bgbench.method.METHODS", r)
    with pytest.raises(MethodUnavailable, match="catpkg-missing-dep"):
        method_class("catpkg_one")

    # parsed modules are cached per (path, mtime): an edit is seen
    src = tmp_path / "catpkg" / "base.py"
    src.write_text(src.read_text().replace('family = "deep"', 'family = "classical"'))
    os.utime(src, ns=(time.time_ns(), time.time_ns() + 10**9))
    assert static_meta("catpkg.heavy:One")["family"] == "classical"
    for m in [m for m in sys.modules if m.startswith("catpkg")]:
        del sys.modules[m]


def test_plugin_worked_example(tmp_path):
    """A plug-in in its own distribution (a dist-info folder with entry_points.txt, as
    ``pip install`` writes): listed with its static metadata, built, run and scored."""
    assert PLUGIN in (ROOT / "README.md").read_text()  # the code README shows is the code tested here
    site = tmp_path / "site"
    _write(site, {
        "bgbench_example_plugin/__init__.py": PLUGIN,
        "bgbench_example_plugin-0.1.dist-info/METADATA":
            "Metadata-Version: 2.1\nName: bgbench-example-plugin\nVersion: 0.1\n",
        "bgbench_example_plugin-0.1.dist-info/entry_points.txt":
            "[bgbench.methods]\nexample_threshold = bgbench_example_plugin:Threshold\n",
    })
    code = textwrap.dedent("""
        import io, json, sys, contextlib
        from pathlib import Path
        import numpy as np
        from bgbench.method import METHODS, build_method
        meta = METHODS.entry("example_threshold").meta
        static = "bgbench_example_plugin" not in sys.modules
        try:
            METHODS.entry("example_treshold")
        except Exception as e:
            typo = str(e)
        from bgbench.cli import main
        buf = io.StringIO()
        with contextlib.redirect_stdout(buf):
            assert main(["list", "--json"]) == 0
        listed = [m for m in json.loads(buf.getvalue())["methods"] if m["name"] == "example_threshold"]

        from bgbench.data.formats import discover
        from bgbench.data.formats.synthetic import write_scenes
        from bgbench.data.video import LabelledFrames
        write_scenes(Path("data"), n_frames=40, first_scored=10)
        video = next(v for v in discover(Path("data/synthetic/baseline")))
        m = build_method("example_threshold", threshold=40)
        ids = list(video.eval_frames[-5:])
        out = dict(m.segment(video.view(), ids))
        gt = LabelledFrames(video, ids).gts(ids)
        pred = np.stack([out[i] for i in ids]) > 0
        hit = float(pred[gt == 255].mean())
        false = float(pred[gt == 0].mean())
        print(json.dumps({"meta": meta, "static": static, "typo": typo, "listed": listed, "name": m.name,
                          "ids": sorted(out) == ids, "dtype": str(out[ids[0]].dtype), "hit": hit, "false": false}))
    """)
    out = json.loads(_python(code, cwd=tmp_path, extra_path=site).splitlines()[-1])
    assert out["static"], "listing imported the plug-in"
    assert out["meta"] == {"family": "classical", "trains": False, "configs": ["default"], "gpu_capable": False,
                           "default_protocol": "full", "requires": "",
                           "summary": "Fixed-threshold difference to the first frame (example plug-in)"}
    assert "did you mean example_threshold" in out["typo"]
    assert out["listed"] and out["listed"][0]["summary"].startswith("Fixed-threshold")
    assert out["name"] == "example_threshold" and out["ids"] and out["dtype"] == "uint8"
    assert out["hit"] > 0.5 and out["false"] < 0.1, out


def test_every_builtin_is_an_entry_point_and_reads_statically():
    from importlib import metadata

    eps = {ep.name: ep.value for ep in metadata.entry_points(group=catalog.GROUP)}
    text = (ROOT / "pyproject.toml").read_text()
    for name, target in eps.items():
        if target.startswith(("bgbench.baselines.", "bgbench.methods.")):
            assert f'{name} = "{target}"' in text
            static_meta(target)  # no StaticReadError: built-ins never fall back to importing
    assert sum(t.startswith("bgbench.baselines.") for t in eps.values()) == 15  # 14 baselines and masks
    assert sum(t.startswith("bgbench.methods.") for t in eps.values()) == 5
