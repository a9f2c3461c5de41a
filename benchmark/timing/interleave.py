"""The one interleaved-measurement loop every timing in bgbench uses: each round measures
every variant once, in an order rotated from round to round (so that no variant always
follows the same other one), and figures are medians with their spread."""

from __future__ import annotations

import statistics
from typing import Callable, Mapping, Sequence


def interleaved(variants: Mapping[str, Callable[[], float]], repeats: int, rotate: bool = True,
                warmup: int = 0) -> dict[str, list[float]]:
    """``{name: [value per round]}``: each round calls every variant once (a variant returns
    what it measured, e.g. seconds); ``warmup`` rounds first, not kept; round r starts at
    variant r mod n when ``rotate``."""
    names = list(variants)
    out: dict[str, list[float]] = {n: [] for n in names}
    for r in range(warmup + repeats):
        k = r % len(names) if rotate and names else 0
        for name in names[k:] + names[:k]:
            value = variants[name]()
            if r >= warmup:
                out[name].append(value)
    return out


def interleaved_times(fns: Mapping[str, Callable[[], object]], repeats: int, clock: Callable[[], float] | None = None,
                      rotate: bool = False) -> dict[str, list[float]]:
    """``interleaved`` of plain callables, each round's value the ``clock`` time (default
    ``time.perf_counter``) one call took."""
    import time

    tick = clock or time.perf_counter

    def timed(fn: Callable[[], object]) -> Callable[[], float]:
        def f() -> float:
            t0 = tick()
            fn()
            return tick() - t0

        return f

    return interleaved({k: timed(fn) for k, fn in fns.items()}, repeats, rotate=rotate)


def median_spread(values: Sequence[float]) -> tuple[float, float | None]:
    """(median, (max - min) / median); the spread is None for a zero median."""
    med = statistics.median(values)
    return med, ((max(values) - min(values)) / med if med else None)
