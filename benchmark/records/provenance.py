"""What a result is tied to: the code that produced it and the content it was computed on.

- ``code_fingerprint(cls)``: the package version and a hash of the method's own source
  files (its module and the modules of its own package it imports, transitively: for a deep
  method, methods/common.py and methods/flow.py too) and of the harness modules that shape
  the counts (scoring, data reading, decoding, the method interface). Change a method's
  source and that method's jobs are recomputed; change the scoring and every job is.
- ``content_id(video)``: a hash of the video's size, frame count, a few decoded frames
  (evenly spaced) and a few ground-truth masks. Names can lie (a copy or a symlink of a
  scene under another name); content cannot. Splits and runs refuse one content twice.
"""

from __future__ import annotations

import ast
import hashlib
import importlib.util
import inspect
import sys
from functools import lru_cache
from pathlib import Path

import numpy as np

# modules whose code decides the counts of every job
HARNESS = ("bgbench.scoring.metrics", "bgbench.data.video", "bgbench.data.framecache", "bgbench.data.imageio", "bgbench.data.codes",
           "bgbench.method", "bgbench.data.formats.common", "bgbench.data.formats.cdnet", "bgbench.data.formats.sbi",
           "bgbench.data.formats.ucsd", "bgbench.data.formats.wallflower", "bgbench.data.formats.synthetic")
SAMPLES = 5


def _module_file(name: str) -> Path | None:
    mod = sys.modules.get(name)
    path = getattr(mod, "__file__", None)
    if path is None:
        spec = importlib.util.find_spec(name)
        path = spec.origin if spec else None
    return Path(path) if path and path.endswith(".py") else None


def _local_imports(path: Path, module: str) -> set[str]:
    """Modules of ``module``'s own top-level package that its source imports."""
    top = module.split(".")[0]
    package = module.rsplit(".", 1)[0] if "." in module else module
    out = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            names = [target] + [f"{target}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        else:
            continue
        for n in names:
            if n.split(".")[0] == top and _is_module(n):
                out.add(n)
    return out


def _is_module(name: str) -> bool:
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError, AttributeError):
        return False
    return spec is not None and bool(spec.origin) and spec.origin.endswith(".py")


@lru_cache(maxsize=None)
def source_files(module: str) -> tuple[Path, ...]:
    """The module's file and those of the same-package modules it imports, transitively."""
    seen: dict[str, Path] = {}
    todo = [module]
    while todo:
        name = todo.pop()
        if name in seen or not _is_module(name):
            continue
        path = _module_file(name)
        if path is None:
            continue
        seen[name] = path
        todo.extend(_local_imports(path, name) - set(seen))
    return tuple(sorted(seen.values()))


def _hash_files(paths) -> str:
    h = hashlib.sha1()
    for p in sorted(set(paths)):
        h.update(p.name.encode())
        h.update(p.read_bytes())
    return h.hexdigest()[:16]


@lru_cache(maxsize=None)
def harness_fingerprint() -> str:
    return _hash_files(p for m in HARNESS if _is_module(m) for p in [_module_file(m)] if p)


@lru_cache(maxsize=None)
def method_source_fingerprint(module: str) -> str:
    return _hash_files(source_files(module))


def code_fingerprint(cls) -> dict[str, str]:
    """{"bgbench": version, "method": hash of its sources, "harness": hash of the counting code}."""
    from bgbench import __version__

    module = cls.__module__
    if module == "__main__" or not _is_module(module):  # defined in a script or a test: hash its source text
        try:
            method = hashlib.sha1(inspect.getsource(cls).encode()).hexdigest()[:16]
        except (OSError, TypeError):
            method = "unknown"
    else:
        method = method_source_fingerprint(module)
    return {"bgbench": __version__, "method": method, "harness": harness_fingerprint()}


_CONTENT: dict[tuple, str] = {}


def content_id(video) -> str:
    """A hash of what a video is: size, frame count, ``SAMPLES`` frames spread evenly over it
    and as many ground-truth masks, decoded from their files (as the run reads them; a clip
    without files: its in-memory frames). Kept per process, keyed by the sampled files'
    paths, sizes and modification times."""
    from bgbench.data.imageio import read_bgr

    ids = list(video.frame_ids)
    picks = sorted({int(k) for k in np.linspace(0, len(ids) - 1, min(SAMPLES, len(ids))).round()})
    files = [Path(video.frame_files[k]) for k in picks] if getattr(video, "frame_files", None) else []
    gt_files = [Path(f) for _, f in getattr(video, "gt_files", ())]
    gpicks = sorted({int(k) for k in np.linspace(0, len(gt_files) - 1, min(SAMPLES, len(gt_files))).round()}) if gt_files else []
    gfiles = [gt_files[k] for k in gpicks]
    key = (tuple(video.shape), len(ids), *((str(f), f.stat().st_size, f.stat().st_mtime_ns) for f in files + gfiles))
    if files and key in _CONTENT:
        return _CONTENT[key]
    h = hashlib.sha1(f"{tuple(video.shape)}|{len(ids)}".encode())
    for k, f in zip(picks, files or [None] * len(picks)):
        h.update(np.ascontiguousarray(read_bgr(f) if f is not None else video.frames([ids[k]])[0]).tobytes())
    for f in gfiles:
        h.update(np.ascontiguousarray(video._decode_gt(f)).tobytes())
    cid = h.hexdigest()[:20]
    if files:
        _CONTENT[key] = cid
    return cid


def check_unique_content(videos) -> dict[str, str]:
    """{video id: content id}; the same content under two names is BadInput naming both."""
    from bgbench.errors import BadInput

    seen: dict[str, object] = {}
    out: dict[str, str] = {}
    for v in videos:
        cid = content_id(v)
        if cid in seen:
            other = seen[cid]
            raise BadInput(f"holds the same frames and ground truth as {getattr(other, 'path', other)} "
                           f"({getattr(other, 'id', '')}): one scene given twice would be trained and tested on, "
                           "or scored twice", getattr(v, "path", v.id), "give each scene once (drop the copy or link)")
        seen[cid] = v
        out[v.id] = cid
    return out
