"""Progress bars: tqdm's notebook widget under IPython, else its plain terminal bar (the
choice ``tqdm.auto`` makes, without importing asyncio into every command: ~30 ms)."""

from __future__ import annotations

import sys


def bar(**kwargs):
    if "IPython" in sys.modules:
        from tqdm.auto import tqdm
    else:
        from tqdm import tqdm
    return tqdm(**kwargs)
