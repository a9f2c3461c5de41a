"""Named suites: what ``bgbench run`` does with no arguments (``quick``).

The quick suite scores every available classical baseline under the ``full`` protocol on
the real data in ``../shared/data`` (CDnet2014, SBI2015, UCSD) when it is there, and on
the built-in synthetic scenes otherwise. Videos that fail validation are skipped with
their message (CDnet2014 cameraJitter/traffic's ROI, unless ``--roi-policy`` says what to
do), so the suite always produces its tables.
"""

from __future__ import annotations

import os
from pathlib import Path

QUICK_METHODS = ("gmm_zivkovic", "temporal_median")
QUICK_DATASETS = ("CDnet2014", "SBI2015", "UCSD")


def shared_data() -> Path | None:
    """``$BGBENCH_DATA``, else ``../shared/data`` from the working folder or the checkout."""
    env = os.environ.get("BGBENCH_DATA")
    candidates = [Path(env)] if env else []
    candidates += [Path.cwd().parent / "shared" / "data", Path(__file__).resolve().parents[2] / "shared" / "data"]
    return next((c for c in candidates if c.is_dir()), None)


def quick_data() -> list[str]:
    root = shared_data()
    if root is None:
        return ["synthetic"]
    found = [str(root / d) for d in QUICK_DATASETS if (root / d).is_dir()]
    return found or ["synthetic"]
