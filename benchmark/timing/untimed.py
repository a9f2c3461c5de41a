"""Methods whose frames/s means nothing (``Method.untimed``, e.g. ``masks``: PNGs read from
disk): their jobs record ``timing.fps`` None with ``timing.fps_note`` saying why; tables read
"n/a" in their FPS column, the speed plot and the CI speed gate leave them out."""

from __future__ import annotations

from typing import Any

NA = "n/a"


def untimed_labels(results: Any) -> set[str]:
    """The method labels of a run whose ok jobs all record why they have no speed."""
    seen: dict[str, bool] = {}
    for j in results.jobs_of(ok=True):
        note = (j.timing or {}).get("fps_note")
        seen[j.key.label] = seen.get(j.key.label, True) and bool(note)
    return {label for label, all_noted in seen.items() if all_noted}


def fps_cell(value: float | None, label: str, untimed: set[str]) -> float | str | None:
    """An FPS cell: the value, or "n/a" for a method without a speed (``untimed_labels``)."""
    return NA if value is None and label in untimed else value
