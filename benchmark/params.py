"""Typed method parameters: what a value may be, checked before any work starts.

A method declares ``params = {name: (default, help[, spec])}`` or ``{name: Param(...)}``.
The type comes from the default (bool, int, float, str, a tuple of one of those; a default
of None makes the parameter optional, its type given by ``kind``). ``spec`` is either the
allowed choices (a tuple of values) or an interval such as ``"(0, 1]"`` or ``"[1, inf)"``
(for a tuple parameter it applies to every element). ``Method.resolve`` checks every value,
from the defaults, the named config and ``--set`` alike: a wrong one is a BadInput naming
``method.param``, what was given and what is allowed.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bgbench.errors import BadInput

MAX_SEED = 2**31 - 1  # seeds reach OpenCV's setRNGSeed (a C int) and NumPy (non-negative)

_INTERVAL = re.compile(r"^\s*([\[(])\s*([^,]+?)\s*,\s*([^,]+?)\s*([\])])\s*$")
KINDS = ("int", "float", "number", "str", "file", "weights")


@dataclass(frozen=True)
class Param:
    default: Any
    help: str
    choices: tuple[Any, ...] | None = None
    interval: str | None = None  # e.g. "(0, 1]", "[1, inf)"
    kind: str | None = None  # for a default of None: int, float, number, str, file (an existing regular file) or
    # weights (a torch file that loads with weights_only=True: checked when parameters resolve, before any job)
    optional: bool = False  # None allowed too (always so when the default is None)

    def __post_init__(self) -> None:
        if self.interval is not None and not _INTERVAL.match(self.interval):
            raise ValueError(f"bad interval {self.interval!r}: write e.g. '(0, 1]' or '[1, inf)'")
        if self.kind is not None and self.kind not in KINDS:
            raise ValueError(f"bad kind {self.kind!r}: one of {KINDS}")

    @classmethod
    def of(cls, decl: Any) -> "Param":
        if isinstance(decl, Param):
            return decl
        default, help_, *rest = decl
        spec = rest[0] if rest else None
        if isinstance(spec, str):
            return cls(default, help_, interval=spec)
        if isinstance(spec, (tuple, list)):
            return cls(default, help_, choices=tuple(spec))
        return cls(default, help_)

    def allowed(self) -> str:
        """What a value may be, in words (``bgbench info`` shows it)."""
        base = self._base()
        what = ({bool: "true or false", int: "an integer", float: "a number", str: "text"}.get(base, "a value")
                if base is not None else "a value")
        if self.kind == "file":
            what = "an existing file"
        elif self.kind == "weights":
            what = "a torch weights file (loaded with weights_only=True)"
        elif self.kind in ("int", "float", "number", "str"):
            what = {"int": "an integer", "float": "a number", "number": "a number", "str": "text"}[self.kind]
        if self.choices is not None:
            what = "one of " + ", ".join(str(c) for c in self.choices)
        if self.interval is not None:
            what += f" in {self.interval}"
        if isinstance(self.default, (tuple, list)):
            what = f"comma-separated list of {what.replace('an integer', 'integers').replace('a number', 'numbers')}"
        if self.default is None or self.optional:
            what += ", or none"
        return what

    def _base(self) -> type | None:
        d = self.default
        if isinstance(d, (tuple, list)):
            d = d[0] if d else None
        if d is None:
            return {"int": int, "float": float, "number": float, "str": str, "file": str, "weights": str}.get(self.kind or "")
        return type(d)

    def check(self, value: Any, where: str) -> Any:
        """The value coerced to the parameter's type (from text if need be), or BadInput."""
        if (self.default is None or self.optional) and (value is None or (isinstance(value, str) and value.lower() in ("none", "null", ""))):
            return None
        if isinstance(self.default, (tuple, list)):
            items = value.split(",") if isinstance(value, str) else value
            if not isinstance(items, (tuple, list)) or not items:
                raise BadInput(f"cannot read {value!r} as {self.allowed()}", where, f"give {self.allowed()}")
            return type(self.default)(self._one(v, where) for v in items)
        return self._one(value, where)

    def _one(self, value: Any, where: str) -> Any:
        base = self._base()
        fix = f"give {self.allowed()}"
        try:
            v = _coerce(value, base, self.kind)
        except (TypeError, ValueError):
            raise BadInput(f"cannot read {value!r} as {self.allowed()}", where, fix) from None
        if isinstance(v, float) and not math.isfinite(v):
            raise BadInput(f"{value!r} is not a finite number", where, fix)
        if self.choices is not None and v not in self.choices:
            raise BadInput(f"{value!r} is not allowed", where, fix)
        if self.interval is not None and not _inside(v, self.interval):
            raise BadInput(f"{value!r} is outside {self.interval}", where, fix)
        if self.kind in ("file", "weights"):
            import os

            from bgbench.safefs import regular_file

            if not os.path.lexists(str(v)):
                raise BadInput("no such file", str(v), f"{where}: give an existing local file")
            regular_file(str(v), f"{where}: give a regular local file")  # a FIFO, device or folder: refused
        if self.kind == "weights":
            from bgbench.execution.checkpoint import check_weights

            check_weights(str(v), where)
        return v


def _coerce(value: Any, base: type | None, kind: str | None) -> Any:
    if base is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("1", "true", "yes", "on"):
            return True
        if isinstance(value, str) and value.lower() in ("0", "false", "no", "off"):
            return False
        raise ValueError(value)
    if base is int:
        if isinstance(value, bool):
            raise TypeError(value)
        if isinstance(value, int):
            return value
        f = float(value)
        if not f.is_integer():
            raise ValueError(value)
        return int(f)
    if base is float:
        if isinstance(value, bool):
            raise TypeError(value)
        return float(value)
    if base is str:
        if not isinstance(value, (str, Path)):
            raise TypeError(value)
        return str(value)
    if base is None:  # optional without a declared kind: a number when it reads as one, else text
        if isinstance(value, str):
            for k in (int, float):
                try:
                    return k(value)
                except ValueError:
                    pass
        return value
    return value


def _inside(v: Any, interval: str) -> bool:
    m = _INTERVAL.match(interval)
    assert m is not None  # intervals are checked when a Param is made
    lo_b, lo, hi, hi_b = m.groups()
    lo, hi = float(lo), float(hi)
    try:
        x = float(v)
    except (TypeError, ValueError):
        return False
    return (x > lo or (lo_b == "[" and x == lo)) and (x < hi or (hi_b == "]" and x == hi))
