"""Named suites: what ``bgbench run`` does with no arguments (``quick``).

The quick suite scores the fast classical baselines under the ``full`` protocol on
the real data in ``../shared/data`` (CDnet2014, SBI2015, UCSD; each dataset folder read whole,
so CDnet2014's 51-frame clips numbered from 600 or 2500 are in it) when it is there, and on
the built-in synthetic scenes otherwise. Videos that fail validation are skipped with
their message (CDnet2014 cameraJitter/traffic's ROI, unless ``--roi-policy`` says what to
do), so the suite always produces its tables.

The paper suite runs each deep method under its default protocol and its ``paper_protocols``
(the other experiments of its paper). A protocol rule that cannot be met for a video, an
empty cross-scene fold, or a transfer dataset that is not in the data becomes a skip with
its reason in ``results.json`` (``meta.skipped``, with the protocol and methods), and the
run goes on; only a run left with no job at all is refused.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

QUICK_METHODS = ("gmm_zivkovic", "mog_kb", "knn", "cnt", "vibe", "frame_difference", "temporal_median")
QUICK_DATASETS = ("CDnet2014", "SBI2015", "UCSD")
# methods that read what another tool wrote (``masks``, with its masks.root): named explicitly, never in a suite
EXTERNAL = ("masks",)
SUITES = {
    "quick": "the fast classical baselines (100+ frames/s here) on the real data, protocol full",
    "baselines": "every available classical baseline on the real data, protocol full",
    "paper": "every deep method in its paper config under each of its paper's protocols (a GPU job); what the "
             "data cannot serve (a video too short for a rule, a transfer dataset not given) is skipped with its reason",
}


def suite_methods(name: str) -> list[str]:
    """The methods of a suite that are available here (optional ones are left out)."""
    if name == "baselines":
        return available_classical(say=True)
    return [m for m in suite_candidates(name) if name == "paper" or _available(m)]


def suite_candidates(name: str) -> list[str]:
    """Every method suite ``name`` takes where it is installed, in its order (nothing probed)."""
    from bgbench.errors import BadInput
    from bgbench.method import METHODS

    if name == "quick":
        return list(QUICK_METHODS)
    if name in ("baselines", "paper"):
        family = "classical" if name == "baselines" else "deep"
        return [e.name for e in METHODS if e.meta.get("family") == family and e.name not in EXTERNAL]
    raise BadInput(f"unknown suite {name!r}", "--suite", f"use one of {', '.join(SUITES)}")


def is_suite(name: str, methods: Sequence[str]) -> bool:
    """Whether ``methods`` are suite ``name``'s available methods in its order, probing only
    what it must: the candidates left out, in order, until one is found installed (a
    method's probe may import its library, e.g. bgslibrary, 0.1 s)."""
    cands = suite_candidates(name)
    if not methods or list(methods) != [m for m in cands if m in methods]:
        return False
    return not any(name == "paper" or _available(m) for m in cands if m not in methods)  # paper: no probe


def _available(name: str, say: bool = False) -> bool:
    """Whether method ``name`` can be built here; with ``say``, why not goes to stderr."""
    import sys

    from bgbench.errors import MethodUnavailable
    from bgbench.method import build_method

    try:
        build_method(name)
        return True
    except MethodUnavailable as err:
        if say:
            print(f"bgbench: left out: {err}", file=sys.stderr)
        return False


def available_classical(say: bool = False) -> list[str]:
    """Every registered classical method whose dependencies are installed here; with
    ``say``, each one left out is named on stderr with the reason and the fix."""
    return [m for m in suite_candidates("baselines") if _available(m, say)]


def data_candidates() -> list[Path]:
    """Where the real data is looked for, in order: ``$BGBENCH_DATA``, then ``../shared/data``
    from the working folder and from the checkout."""
    env = os.environ.get("BGBENCH_DATA")
    candidates = [Path(env)] if env else []
    candidates += [Path.cwd().parent / "shared" / "data", Path(__file__).resolve().parents[2] / "shared" / "data"]
    out: list[Path] = []
    for c in candidates:
        if c not in out:
            out.append(c)
    return out


def shared_data() -> Path | None:
    """``$BGBENCH_DATA``, else ``../shared/data`` from the working folder or the checkout."""
    return next((c for c in data_candidates() if c.is_dir()), None)


def synthetic_fallback_note() -> str | None:
    """The one line a run on the quick data prints when it falls back to the synthetic scenes:
    where it looked (and what for), and how to point it at real data; None when real data is found."""
    root = shared_data()
    if root is not None and any((root / d).is_dir() for d in QUICK_DATASETS):
        return None
    if root is not None:
        looked = f"{root} holds none of {', '.join(QUICK_DATASETS)}"
    else:
        env = os.environ.get("BGBENCH_DATA")
        looked = ("looked in " + ", ".join(str(c.resolve()) if not c.is_absolute() else str(c) for c in data_candidates())
                  + ("" if env else "; $BGBENCH_DATA is not set"))
    return (f"bgbench: no real data ({looked}); running on the built-in synthetic scenes -- fix: set $BGBENCH_DATA "
            "to the folder holding CDnet2014/, SBI2015/, UCSD/, or pass --data")


def quick_data() -> list[str]:
    root = shared_data()
    if root is None:
        return ["synthetic"]
    found = [str(root / d) for d in QUICK_DATASETS if (root / d).is_dir()]
    return found or ["synthetic"]
