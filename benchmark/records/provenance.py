"""What a result is tied to: the code that produced it and the content it was computed on.

- ``code_fingerprint(cls)``: the package version and a hash of the method's own source
  files (its module and the modules of its own package it imports, transitively: for a deep
  method, methods/common.py and methods/flow.py too) and of the harness modules that shape
  the counts (``harness_modules()``: every module of bgbench.data and bgbench.scoring,
  bgbench.execution.runner and bgbench.method, and every bgbench module those import at
  module level, transitively; derived from the sources, so a new module on the path from
  decoding to counts is in it without a list to keep). Change a method's source and that
  method's jobs are recomputed; change the scoring, decoding or the run loop and every job is.
- ``data_digest(video)``: a hash of every byte the video's counts depend on: each frame,
  each ground-truth mask, the ROI file, and every file directly in the scene folder
  (temporalROI.txt, ROI.bmp, ROI.jpg, script.txt, ...), hashed whole (bgbench.data.filehash),
  with the frame and mask ids and what the adapter read from them (size, temporal ROI, ROI
  policy, label table). Jobs are keyed on it: any edit of any of those files recomputes.
- ``param_digests(params)``: content hashes of the files (and folders) named by parameter
  values, so replacing a weights file re-runs its jobs.
- ``content_id(video)``: a hash of the video's size, frame count, a few decoded frames
  (evenly spaced) and a few ground-truth masks. Names can lie (a copy or a symlink of a
  scene under another name); content cannot. Splits and runs refuse one content twice.
"""

from __future__ import annotations

import ast
import hashlib
import importlib.util
import inspect
import json
import os
import sys
import uuid
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

import numpy as np

# where the code that decides the counts of every job starts: packages (all their modules)
# and modules; harness_modules() adds what they import at module level, transitively
HARNESS_ROOTS = ("bgbench.data", "bgbench.scoring", "bgbench.execution.runner", "bgbench.method")
SAMPLES = 5


def _module_file(name: str) -> Path | None:
    mod = sys.modules.get(name)
    path = getattr(mod, "__file__", None)
    if path is None:
        spec = _spec(name)
        path = spec.origin if spec else None
    return Path(path) if path and path.endswith(".py") else None


def _spec(name: str) -> Any:
    """The spec of ``name``, found without importing it or its parent packages (importlib's
    ``find_spec("a.b.c")`` imports ``a.b``: fingerprinting a method used to import every
    module its sources name, the report's included, which then made the run build its report
    in process instead of in its worker). None if not found."""
    from bgbench.catalog import StaticReadError, module_spec

    try:
        return module_spec(name)
    except (StaticReadError, TypeError, AttributeError):
        return None


def _local_imports(path: Path, module: str) -> set[str]:
    """Modules of ``module``'s own top-level package that its source imports."""
    top = module.split(".")[0]
    return {n for n in _imported_names(path, module, "any") if n.split(".")[0] == top and _is_module(n)}


def _imported_names(path: Path, module: str, where: str) -> list[str]:
    """Every dotted name the source of ``module`` (at ``path``) may import: anywhere in it
    (``where="any"``), or when it is imported (``"module"``: not inside functions or classes).

    Parsing is most of what a code fingerprint costs (``python -m tests.perf.run_costs``), so
    the names are kept on disk (``_ImportsMemo``) by the source's content and the module's
    name, under the Python version and this module's own source: an edited file is parsed
    again, an unchanged one never."""
    source = path.read_bytes()
    key = f"{where}:{module}:{path.name}:{hashlib.blake2b(source, digest_size=16).hexdigest()}"
    names = _IMPORTS.get(key)
    if names is None:
        tree = ast.parse(source.decode("utf-8"))
        nodes: Iterable[ast.AST]
        if where == "any":
            package = module.rsplit(".", 1)[0] if "." in module else module
            nodes = ast.walk(tree)
        else:
            package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
            nodes = _module_level_nodes(tree.body)
        names = sorted({n for node in nodes for n in _imported(node, package) or ()})
        _IMPORTS.put(key, names)
    return names


def _module_level_nodes(nodes: Iterable[ast.AST]) -> Iterable[ast.AST]:
    """The import statements run when the module is imported (not inside functions or classes)."""
    for node in nodes:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)):
            continue
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        else:
            yield from _module_level_nodes(ast.iter_child_nodes(node))


# a 20-hex name, as the digest store's files have (``bgbench cache clear`` knows them)
IMPORTS_MEMO_NAME = hashlib.blake2b(b"source imports", digest_size=10).hexdigest() + ".json"


class _ImportsMemo:
    """``_imported_names`` kept in one JSON file of the frame cache's digest store (written
    atomically once a fingerprint is done, merged with what another process wrote; a file
    that is damaged, from another Python or another version of this module, or cannot be
    written only costs the parsing)."""

    def __init__(self) -> None:
        self._rows: dict[str, list[str]] | None = None
        self._fresh: dict[str, list[str]] = {}
        self._python = "%d.%d" % sys.version_info[:2]

    def _file(self) -> Path:
        from bgbench.data.framecache import cache_root

        return cache_root() / "digests" / IMPORTS_MEMO_NAME

    def _read(self) -> dict[str, list[str]]:
        try:
            d = json.loads(self._file().read_text())
        except (OSError, ValueError):
            return {}
        ours = isinstance(d, dict) and d.get("python") == self._python and d.get("parser") == self._parser()
        rows = d.get("imports") if ours else None
        return {k: v for k, v in rows.items() if isinstance(v, list) and all(isinstance(n, str) for n in v)} \
            if isinstance(rows, dict) else {}

    @staticmethod
    @lru_cache(maxsize=None)
    def _parser() -> str:
        """This module's own source, hashed: lists stored by another version of the parsing
        code (an edit of this file) are dropped, never trusted."""
        try:
            return hashlib.blake2b(Path(__file__).read_bytes(), digest_size=8).hexdigest()
        except OSError:
            return "unknown"

    def get(self, key: str) -> list[str] | None:
        if self._rows is None:
            self._rows = self._read()
        return self._rows.get(key)

    def put(self, key: str, names: list[str]) -> None:
        if self._rows is None:
            self._rows = self._read()
        self._rows[key] = self._fresh[key] = names

    def save(self) -> None:
        if not self._fresh:
            return
        from bgbench.data.framecache import WRITTEN_BY

        rows = {**self._read(), **self._fresh}
        target = self._file()
        tmp = target.with_name(f"{target.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp.write_text(json.dumps({"written_by": WRITTEN_BY, "python": self._python, "parser": self._parser(),
                                       "imports": rows}))
            os.replace(tmp, target)
            self._fresh.clear()
        except OSError:
            tmp.unlink(missing_ok=True)


_IMPORTS = _ImportsMemo()


def _imported(node: ast.AST, package: str) -> list[str] | None:
    """The dotted names an import statement may bring in (``from a import b``: ``a`` and
    ``a.b``; relative ones resolved against ``package``); None for any other node."""
    if isinstance(node, ast.ImportFrom):
        if node.level:
            base = package.split(".")
            base = base[: len(base) - node.level + 1]
            target = ".".join(base + ([node.module] if node.module else []))
        else:
            target = node.module or ""
        return [target] + [f"{target}.{a.name}" for a in node.names]
    if isinstance(node, ast.Import):
        return [a.name for a in node.names]
    return None


def _module_level_imports(path: Path, module: str) -> set[str]:
    """bgbench modules that ``module`` imports when it is imported (not inside functions)."""
    return {n for n in _imported_names(path, module, "module") if n.split(".")[0] == "bgbench" and _is_module(n)}


@lru_cache(maxsize=None)
def harness_modules() -> tuple[str, ...]:
    """Every module whose code shapes the counts of every job (see the module docstring)."""
    import pkgutil

    todo: list[str] = []
    for root in HARNESS_ROOTS:
        spec = importlib.util.find_spec(root)
        todo.append(root)
        if spec is not None and spec.submodule_search_locations:
            todo += [m.name for m in pkgutil.walk_packages(list(spec.submodule_search_locations), root + ".")]
    found = _closure(todo, _module_level_imports)
    _IMPORTS.save()
    return tuple(sorted(found))


def _is_module(name: str) -> bool:
    spec = _spec(name)
    return spec is not None and spec.origin is not None and spec.origin.endswith(".py")


@lru_cache(maxsize=None)
def source_files(module: str) -> tuple[Path, ...]:
    """The module's file and those of the same-package modules it imports, transitively."""
    found = _closure([module], _local_imports)
    _IMPORTS.save()
    return tuple(sorted(found.values()))


def _closure(start: Iterable[str], imports: Callable[[Path, str], set[str]]) -> dict[str, Path]:
    """{module: its file} for ``start`` and every module ``imports(file, module)`` reaches."""
    seen: dict[str, Path] = {}
    todo = list(start)
    while todo:
        name = todo.pop()
        if name in seen or not _is_module(name):
            continue
        path = _module_file(name)
        if path is None:
            continue
        seen[name] = path
        todo.extend(imports(path, name) - set(seen))
    return seen


def _hash_files(paths: Iterable[Path]) -> str:
    h = hashlib.sha1()
    for p in sorted(set(paths)):
        h.update(p.name.encode())
        h.update(p.read_bytes())
    return h.hexdigest()[:16]


@lru_cache(maxsize=None)
def harness_fingerprint() -> str:
    h = hashlib.sha1()
    for m in harness_modules():
        h.update(f"{m}\n".encode())
        path = _module_file(m)
        assert path is not None  # harness_modules lists only modules with a file
        h.update(path.read_bytes())
    return h.hexdigest()[:16]


@lru_cache(maxsize=None)
def method_source_fingerprint(module: str) -> str:
    return _hash_files(source_files(module))


def code_fingerprint(cls: type) -> dict[str, str]:
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


def data_digest(video: Any) -> str:  # a Video or a Clip (duck-typed: files are looked up with getattr)
    """A hash of every byte the video's counts depend on (see the module docstring): its
    frame, mask and ROI files and every file directly in its folder, hashed whole, with
    their ids and the adapter's reading of them. A clip without files: its pixels."""
    from bgbench.data import filehash

    frames = getattr(video, "frame_files", None)
    if not frames:
        return "pixels:" + hashlib.blake2b(np.ascontiguousarray(video.source.all_frames()).tobytes(),
                                           digest_size=16).hexdigest()
    gts = tuple(getattr(video, "gt_files", ()))
    roi = getattr(video, "roi_file", None)
    folder = Path(video.path) if getattr(video, "path", None) else None
    side = sorted(f for f in folder.iterdir() if f.is_file()) if folder is not None and folder.is_dir() else []
    described = (tuple(video.shape), tuple(video.frame_ids), tuple(i for i, _ in gts), tuple(video.temporal_roi),
                 getattr(video, "roi_policy", None), getattr(video, "roi_mismatch", None), getattr(video, "gt_lut", None),
                 getattr(video, "format", None), str(roi.name) if roi else None, tuple(f.name for f in side))
    return filehash.tree_digest([*frames, *(f for _, f in gts), *([roi] if roi else []), *side], described)


def param_digests(params: Mapping[str, Any]) -> dict[str, str]:
    """{parameter: content hash} for every parameter value that names an existing file
    (a ``kind="file"`` parameter, or any text value that is a path to a file), or a
    folder given as a path with a separator in it (all files below it are hashed)."""
    import os

    from bgbench.data import filehash

    out = {}
    for name, value in sorted(params.items()):
        values = value if isinstance(value, (tuple, list)) else (value,)
        hashed = []
        for v in values:
            if not isinstance(v, (str, Path)) or not str(v):
                continue
            p = Path(str(v)).expanduser()
            try:
                if p.is_file() or (p.is_dir() and (os.sep in str(v) or p.is_absolute())):
                    hashed.append(filehash.path_digest(p))
            except OSError:
                continue
        if hashed:
            out[name] = ",".join(hashed)
    return out


_CONTENT: dict[tuple[Any, ...], str] = {}


def content_id(video: Any) -> str:  # a Video or a Clip
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
    nofiles: list[Path | None] = [None] * len(picks)
    for k, f in zip(picks, files or nofiles):
        h.update(np.ascontiguousarray(read_bgr(f) if f is not None else video.frames([ids[k]])[0]).tobytes())
    for f in gfiles:
        h.update(np.ascontiguousarray(video._decode_gt(f)).tobytes())
    cid = h.hexdigest()[:20]
    if files:
        _CONTENT[key] = cid
    return cid


def one_per_id(videos: Iterable[Any]) -> list[Any]:
    """The videos with each id once. One id found under two --data roots is the same video
    given twice (one kept) only if every byte is the same (``data_digest``); with different
    content it is BadInput naming both folders, never one dropped and the other scored twice."""
    from bgbench.errors import BadInput

    first: dict[str, object] = {}
    out = []
    for v in videos:
        other = first.get(v.id)
        if other is None:
            first[v.id] = v
            out.append(v)
            continue
        if data_digest(other) != data_digest(v):
            raise BadInput(f"has the id {v.id} of {getattr(other, 'path', other)} but other content (frames, ground "
                           "truth, ROI or temporal ROI differ): which one is the video?", getattr(v, "path", v.id),
                           "give one of the two folders, or rename one scene's dataset folder so the ids differ")
    return out


def check_unique_content(videos: Iterable[Any]) -> dict[str, str]:
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
