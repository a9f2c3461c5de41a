"""The method catalogue: every method, built-in or plug-in, comes from the ``bgbench.methods``
entry-point group, and its metadata is read from its class's source without importing it.

A method's metadata is written once, as class attributes (``family``, ``trains``,
``configs``, ``gpu_capable``, ``default_protocol``, ``requires``; the summary is the first
docstring line), on the class or a base. Method modules import torch or OpenCV at top
level, so listing the catalogue reads them statically: the module's source is found
without importing it (nor its parent packages), parsed with ``ast``, and the class and its
bases (followed through ``from x import Base`` and ``import x``) are searched for literal
assignments, in method resolution order down to ``bgbench.method.Method``. Where that
fails (a compiled module, a computed attribute, a dynamic base) the class is imported and
its attributes read. Parsed modules are cached per (path, mtime) in this process.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import os
import sys
import warnings
from dataclasses import dataclass
from importlib import metadata
from typing import Any, Callable

from bgbench.errors import BadInput
from bgbench.registry import Entry, Registry

GROUP = "bgbench.methods"
BASE = ("bgbench.method", "Method")
ATTRS = ("family", "trains", "configs", "gpu_capable", "default_protocol", "requires")
DEFAULTS: dict[str, Any] = {"family": "classical", "trains": False, "configs": ("default",), "gpu_capable": False,
                            "default_protocol": "full", "requires": ""}


class StaticReadError(Exception):
    """The metadata cannot be read from the source alone (the caller imports the class)."""


class NotInstalled(BadInput):
    """The ``bgbench.methods`` entry points are missing: bgbench is not installed."""


_COMPUTED = object()  # an attribute assigned something other than a literal


# --- finding and parsing a module's source without importing it ----------------------
def _find_spec(name: str, path: Any) -> Any:
    for finder in sys.meta_path:
        find = getattr(finder, "find_spec", None)
        if find is None:
            continue
        try:
            spec = find(name, path)
        except (ImportError, ValueError):
            spec = None
        if spec is not None:
            return spec
    return None


def module_spec(modname: str) -> Any:
    """The spec of ``modname``, found without importing it or its parent packages (an
    already imported one gives its own)."""
    parts = modname.split(".")
    spec, path = None, None
    for i in range(len(parts)):
        name = ".".join(parts[: i + 1])
        mod = sys.modules.get(name)
        if mod is not None and getattr(mod, "__spec__", None) is not None:
            spec = mod.__spec__
        elif i == 0:
            try:
                spec = importlib.util.find_spec(name)  # top level: imports nothing
            except (ImportError, ValueError):
                spec = None
        else:
            spec = _find_spec(name, path)
        if spec is None:
            raise StaticReadError(f"no module {name!r}")
        path = spec.submodule_search_locations
        if i < len(parts) - 1 and path is None:
            raise StaticReadError(f"{name!r} is not a package")
    return spec


@dataclass
class _Module:
    name: str
    classes: dict[str, ast.ClassDef]
    imports: dict[str, tuple[str, str | None]]  # local name -> (module, attribute or None)
    patched: set[tuple[str, str]]  # (class, attribute) assigned at module level


_parsed: dict[str, tuple[tuple[int, int], _Module]] = {}


def _absolute(modname: str, is_package: bool, level: int, target: str | None) -> str:
    if not level:
        return target or ""
    base = modname.split(".") if is_package else modname.split(".")[:-1]
    if level > 1:
        base = base[: len(base) - (level - 1)]
    return ".".join(base + ([target] if target else []))


def _parse(modname: str) -> _Module:
    spec = module_spec(modname)
    origin = spec.origin
    if not origin or not origin.endswith(".py") or not os.path.isfile(origin):
        raise StaticReadError(f"{modname} has no Python source ({origin})")
    st = os.stat(origin)
    key = (st.st_mtime_ns, st.st_size)
    hit = _parsed.get(origin)
    if hit is not None and hit[0] == key and hit[1].name == modname:
        return hit[1]
    try:
        with open(origin, "rb") as f:
            tree = ast.parse(f.read(), filename=origin)
    except (OSError, SyntaxError, ValueError) as e:
        raise StaticReadError(f"cannot parse {origin}: {e}") from None
    is_package = spec.submodule_search_locations is not None
    classes: dict[str, ast.ClassDef] = {}
    imports: dict[str, tuple[str, str | None]] = {}
    patched: set[tuple[str, str]] = set()

    def bind(name: str, cls: ast.ClassDef | None = None, imp: tuple[str, str | None] | None = None) -> None:
        classes.pop(name, None)  # the last top-level binding wins
        imports.pop(name, None)
        if cls is not None:
            classes[name] = cls
        if imp is not None:
            imports[name] = imp

    for node in tree.body:
        if isinstance(node, ast.ClassDef):
            bind(node.name, cls=node)
        elif isinstance(node, ast.ImportFrom):
            src = _absolute(modname, is_package, node.level, node.module)
            for a in node.names:
                bind(a.asname or a.name, imp=(src, a.name))
        elif isinstance(node, ast.Import):
            for a in node.names:
                if a.asname:
                    bind(a.asname, imp=(a.name, None))
                else:
                    top = a.name.split(".")[0]
                    bind(top, imp=(top, None))
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            bind(node.name)
        else:
            for sub in ast.walk(node):  # Class.attr = ... after the class
                if isinstance(sub, ast.Attribute) and isinstance(sub.ctx, ast.Store) and isinstance(sub.value, ast.Name):
                    patched.add((sub.value.id, sub.attr))
            for name in _stores(node):  # rebound (or bound conditionally): not statically known
                bind(name)
    mod = _Module(modname, classes, imports, patched)
    _parsed[origin] = (key, mod)
    return mod


# --- classes, bases and attributes ---------------------------------------------------
def _is_module(name: str) -> bool:
    try:
        module_spec(name)
        return True
    except StaticReadError:
        return False


def _resolve_name(modname: str, dotted: list[str], depth: int = 0) -> tuple[str, str]:
    """(module, class) that the dotted name ``dotted`` denotes in module ``modname``."""
    if depth > 20:
        raise StaticReadError(f"import cycle resolving {'.'.join(dotted)} in {modname}")
    mod = _parse(modname)
    head, rest = dotted[0], dotted[1:]
    if not rest and head in mod.classes:
        return modname, head
    if head not in mod.imports:
        if rest and head in mod.classes:
            raise StaticReadError(f"nested class {'.'.join(dotted)} in {modname}")
        raise StaticReadError(f"{'.'.join(dotted)} is not defined statically in {modname}")
    src, attr = mod.imports[head]
    if attr is None:  # import x[.y] [as z]: head names a module
        where = src
    elif attr not in _parse(src).classes and _is_module(f"{src}.{attr}"):  # from pkg import submodule
        where = f"{src}.{attr}"
    elif attr in _parse(src).classes or attr in _parse(src).imports:  # from mod import Class (or a re-export)
        if rest:
            raise StaticReadError(f"nested class {'.'.join(dotted)} in {modname}")
        return _resolve_name(src, [attr], depth + 1)
    else:
        raise StaticReadError(f"{src} defines no {attr} statically (imported by {modname})")
    if not rest:
        raise StaticReadError(f"{'.'.join(dotted)} is a module in {modname}")
    while len(rest) > 1 and _is_module(f"{where}.{rest[0]}"):
        where, rest = f"{where}.{rest[0]}", rest[1:]
    return _resolve_name(where, rest, depth + 1)


def _dotted(expr: ast.expr) -> list[str] | None:
    if isinstance(expr, ast.Name):
        return [expr.id]
    if isinstance(expr, ast.Attribute):
        inner = _dotted(expr.value)
        return None if inner is None else inner + [expr.attr]
    return None


def _stores(node: ast.AST) -> set[str]:
    """Names a statement assigns (outside nested functions and classes)."""
    out: set[str] = set()
    todo = [node]
    while todo:
        n = todo.pop()
        if isinstance(n, ast.Name) and isinstance(n.ctx, (ast.Store, ast.Del)):
            out.add(n.id)
        if n is node or not isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)):
            todo.extend(ast.iter_child_nodes(n))
    return out


def _value(attr: str, expr: ast.expr) -> Any:
    if attr == "configs" and isinstance(expr, ast.Dict):
        if all(isinstance(k, ast.Constant) and isinstance(k.value, str) for k in expr.keys):
            return tuple(k.value for k in expr.keys)  # type: ignore[union-attr]
        return _COMPUTED
    try:
        value = ast.literal_eval(expr)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return _COMPUTED
    if attr == "configs":
        return tuple(value) if isinstance(value, dict) else _COMPUTED
    return value


def _own(modname: str, clsname: str) -> tuple[dict[str, Any], list[tuple[str, str]], str | None, bool]:
    """A class's own literal attributes, its bases (module, class), its docstring, and
    whether it overrides ``summary``."""
    mod = _parse(modname)
    node = mod.classes[clsname]
    if node.keywords:  # metaclass=..., or __init_subclass__ arguments
        raise StaticReadError(f"{modname}:{clsname} has class keywords")
    attrs: dict[str, Any] = {}
    summary_override = False
    for stmt in node.body:
        if isinstance(stmt, ast.Assign):
            simple = len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name)
            for name in set().union(*(_stores(t) for t in stmt.targets)) & set(ATTRS):
                attrs[name] = _value(name, stmt.value) if simple else _COMPUTED
        elif isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name):
            if stmt.target.id in ATTRS and stmt.value is not None:
                attrs[stmt.target.id] = _value(stmt.target.id, stmt.value)
        elif isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            if stmt.name in ATTRS:
                attrs[stmt.name] = _COMPUTED  # a property or a nested class
            summary_override |= stmt.name == "summary"
            if stmt.name == "__init_subclass__":
                for sub in ast.walk(stmt):
                    if isinstance(sub, ast.Attribute) and isinstance(sub.ctx, ast.Store) and sub.attr in ATTRS:
                        raise StaticReadError(f"{modname}:{clsname}.__init_subclass__ sets {sub.attr}")
        elif not isinstance(stmt, (ast.Expr, ast.Pass)):
            for name in _stores(stmt) & set(ATTRS):
                attrs[name] = _COMPUTED
    for cls, attr in mod.patched:
        if cls == clsname and attr in ATTRS:
            attrs[attr] = _COMPUTED
    bases = []
    for b in node.bases:
        dotted = _dotted(b)
        if dotted is None:
            raise StaticReadError(f"{modname}:{clsname} has a computed base {ast.unparse(b)}")
        if dotted in (["object"], ["builtins", "object"]):
            continue
        bases.append(_resolve_name(modname, dotted))
    return attrs, bases, ast.get_docstring(node, clean=False), summary_override


def _mro(key: tuple[str, str], own: Callable[[tuple[str, str]], list[tuple[str, str]]],
         seen: tuple = ()) -> list[tuple[str, str]]:
    """C3 linearisation over statically resolved classes."""
    if key in seen:
        raise StaticReadError(f"inheritance cycle at {key[0]}:{key[1]}")
    bases = own(key)
    seqs = [_mro(b, own, seen + (key,)) for b in bases] + [list(bases)]
    out = [key]
    while any(seqs):
        for seq in seqs:
            if not seq:
                continue
            head = seq[0]
            if not any(head in s[1:] for s in seqs):
                break
        else:
            raise StaticReadError(f"no consistent method resolution order for {key[0]}:{key[1]}")
        out.append(head)
        seqs = [s[1:] if s and s[0] == head else s for s in seqs]
    return out


def static_meta(target: str) -> dict[str, Any]:
    """The metadata of the class ``"module:Class"`` read from source only; raises
    StaticReadError where that is not possible."""
    modname, _, clsname = target.partition(":")
    if not modname or not clsname:
        raise StaticReadError(f"{target!r} is not 'module:Class'")
    key = _resolve_name(modname, clsname.split("."))
    info: dict[tuple[str, str], tuple] = {}

    def own(k: tuple[str, str]) -> list[tuple[str, str]]:
        if k not in info:
            info[k] = _own(*k)
        return info[k][1]

    mro = _mro(key, own)
    if BASE not in mro:
        raise StaticReadError(f"{target} does not derive from bgbench.method.Method statically")
    meta: dict[str, Any] = {}
    for attr in ATTRS:
        for k in mro:
            if attr in info[k][0]:
                value = info[k][0][attr]
                if value is _COMPUTED:
                    raise StaticReadError(f"{k[0]}:{k[1]}.{attr} is not a literal")
                meta[attr] = value
                break
        else:
            raise StaticReadError(f"{target}: no class in its bases sets {attr}")
    for k in mro[: mro.index(BASE)]:
        if info[k][3]:
            raise StaticReadError(f"{k[0]}:{k[1]} overrides summary()")
    doc = info[key][2]
    meta["summary"] = doc.strip().splitlines()[0] if doc and doc.strip() else ""
    return meta


def class_meta(cls: type) -> dict[str, Any]:
    """The same metadata, read from an imported class."""
    meta = {k: getattr(cls, k, v) for k, v in DEFAULTS.items()}
    meta["configs"] = tuple(meta["configs"])
    summary = getattr(cls, "summary", None)
    doc = cls.__doc__
    meta["summary"] = summary() if callable(summary) else (doc.strip().splitlines()[0] if doc and doc.strip() else "")
    return meta


def read_meta(target: str, resolve: Callable[[], Any] | None = None) -> dict[str, Any]:
    """Static metadata, else the imported class's; a class that cannot be imported gives
    what is known and why (``unavailable``)."""
    try:
        return static_meta(target)
    except StaticReadError:
        pass
    try:
        obj = resolve() if resolve is not None else _import(target)
    except Exception as e:  # a plug-in's import may fail in any way; listing must not
        return {**DEFAULTS, "family": "unknown", "configs": (), "summary": "", "unavailable": f"{type(e).__name__}: {e}"}
    return class_meta(obj)


def _import(target: str) -> Any:
    modname, _, attr = target.partition(":")
    obj = importlib.import_module(modname)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj


# --- the registry ---------------------------------------------------------------------
class MethodEntry(Entry):
    """An entry whose metadata is read on demand: from the imported class once it is
    imported, else statically from its source."""

    @property  # type: ignore[override]
    def meta(self) -> dict[str, Any]:
        extra = self.__dict__.get("_extra", {})
        if self.obj is not None:
            return {**class_meta(self.obj), **extra}
        return {**read_meta(self.target, self.resolve), **extra}  # type: ignore[arg-type]  # no object: a target

    @meta.setter
    def meta(self, value: dict[str, Any]) -> None:
        self.__dict__["_extra"] = dict(value)


class MethodRegistry(Registry):
    """The method registry, filled from the ``bgbench.methods`` entry points when it is
    first read (names, iteration, ``in``, lookups) or written."""

    def __init__(self, kind: str = "method", group: str = GROUP):
        self.group = group
        self._store: dict[str, Entry] = {}
        self._state = "empty"  # empty | loading | loaded
        super().__init__(kind)

    @property  # type: ignore[override]
    def _entries(self) -> dict[str, Entry]:
        if self._state == "empty":
            self._load()
        return self._store

    @_entries.setter
    def _entries(self, value: dict[str, Entry]) -> None:
        self._store = value

    def _load(self) -> None:
        self._state = "loading"
        try:
            eps = list(metadata.entry_points(group=self.group))
            if not eps:
                raise NotInstalled(f"no methods: the {self.group!r} entry points are missing (bgbench is not "
                                   "installed, or its metadata predates them)",
                                   fix="install the package from the checkout: pip install -e .")
            own = [ep for ep in eps if _dist(ep) == "bgbench"]
            for ep in own + [ep for ep in eps if _dist(ep) != "bgbench"]:
                target = f"{ep.module}:{ep.attr}" if ep.attr else ep.module
                have = self._store.get(ep.name)
                if have is not None:
                    if have.target != target:
                        warnings.warn(f"method {ep.name!r} of {_dist(ep) or target} is ignored: {have.target} "
                                      "is registered under that name", stacklevel=2)
                    continue
                self._store[ep.name] = MethodEntry(ep.name, target=target)
        except BaseException:
            self._state = "empty"
            raise
        self._state = "loaded"

    def register_lazy(self, name: str, target: str, **meta: Any) -> None:
        super().register_lazy(name, target, **meta)
        e = self._store[name]
        self._store[name] = MethodEntry(e.name, target=e.target, meta=meta)

    def register(self, name: str, **meta: Any) -> Callable[[Any], Any]:
        inner = super().register(name, **meta)

        def deco(obj: Any) -> Any:
            inner(obj)
            e = self._store[name]
            if not isinstance(e, MethodEntry):
                self._store[name] = MethodEntry(e.name, obj=e.obj, meta=e.meta)
            return obj

        return deco


def _dist(ep: Any) -> str | None:
    dist = getattr(ep, "dist", None)
    name = getattr(dist, "name", None) if dist is not None else None
    return name.lower().replace("_", "-") if name else None
