"""One generic registry, one instance per kind (methods, dataset formats, protocols).

Entries may be lazy: a ``"module:attr"`` string with metadata, imported only when the
entry is built, so listing a registry never imports torch or OpenCV.
"""

from __future__ import annotations

import difflib
import importlib
from dataclasses import dataclass, field
from typing import Any, Callable, Generic, Iterator, TypeVar, cast

from bgbench.errors import BadInput

T = TypeVar("T")


@dataclass
class Entry:
    name: str
    target: str | None = None  # "module:attr" of a lazy entry
    obj: Any = None  # the resolved object
    meta: dict[str, Any] = field(default_factory=dict)

    def resolve(self) -> Any:
        if self.obj is None:
            assert self.target is not None  # an entry is built with a target or an object
            module, _, attr = self.target.partition(":")
            obj = importlib.import_module(module)
            for part in attr.split("."):
                obj = getattr(obj, part)
            self.obj = obj
        return self.obj


class Registry(Generic[T]):
    def __init__(self, kind: str):
        self.kind = kind
        self._entries: dict[str, Entry] = {}

    def register_lazy(self, name: str, target: str, **meta: Any) -> None:
        if name in self._entries:
            raise ValueError(f"{self.kind} {name!r} is registered twice")
        self._entries[name] = Entry(name, target=target, meta=meta)

    def register(self, name: str, **meta: Any) -> Callable[[T], T]:
        """Decorator. Re-registering the object a lazy entry points to fills that entry."""

        def deco(obj: T) -> T:
            entry = self._entries.get(name)
            where = f"{obj.__module__}:{cast(Any, obj).__qualname__}"  # classes and functions
            if entry is not None and not (entry.obj is None and entry.target == where):
                raise ValueError(f"{self.kind} {name!r} is registered twice ({entry.target or entry.obj} and {where})")
            if entry is None:
                self._entries[name] = Entry(name, obj=obj, meta=meta)
            else:
                entry.obj = obj
                entry.meta = {**entry.meta, **meta}
            return obj

        return deco

    def entry(self, name: str) -> Entry:
        try:
            return self._entries[name]
        except KeyError:
            close = difflib.get_close_matches(name, list(self._entries), n=3, cutoff=0.5)
            hint = f"did you mean {', '.join(close)}?" if close else f"known: {', '.join(sorted(self._entries))}"
            raise BadInput(f"unknown {self.kind} {name!r}", fix=hint) from None

    def get(self, name: str) -> T:
        return cast(T, self.entry(name).resolve())

    def names(self) -> list[str]:
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[Entry]:
        return iter(self._entries[n] for n in self.names())
