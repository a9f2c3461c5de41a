"""Process-wide library settings changed only for the work that needs them, then restored.

OpenCV's and torch's thread counts and torch's random state are global to a process; a
library that sets them at import or in a constructor changes its caller's program. Here they
are set inside a ``with`` block and put back on the way out, so embedding bgbench (a notebook,
a Dask worker, another tool's process) leaves those settings as they were.
"""

from __future__ import annotations

import contextlib
import sys
import threading
from typing import Callable, Iterator


# A thread count is one value per process, and blocks of several threads may overlap (a
# decode pool started while a training thread prefetches): each setting keeps the blocks now
# inside it. The first block in saves the value; a block going out puts back the count of the
# latest block still inside, and the last one out restores the saved value. Nested blocks in
# one thread so restore exactly; overlapping blocks of several threads end, once all are
# out, with the value from before the first (a plain save/restore per block could leave the
# inner block's count behind for good).
_lock = threading.Lock()
_inside: dict[str, list[tuple[object, int]]] = {}
_saved: dict[str, int] = {}


@contextlib.contextmanager
def _hold(name: str, get: Callable[[], int], put: Callable[[int], None], n: int) -> Iterator[None]:
    token = object()
    with _lock:
        blocks = _inside.setdefault(name, [])
        if not blocks:
            _saved[name] = get()
        put(n)  # a refused count raises before the block is recorded
        blocks.append((token, n))
    try:
        yield
    finally:
        with _lock:
            blocks[:] = [b for b in blocks if b[0] is not token]
            put(blocks[-1][1] if blocks else _saved.pop(name))


@contextlib.contextmanager
def opencv_threads(n: int | None) -> Iterator[None]:
    """OpenCV alone at ``n`` threads inside the block (``None``: as it is), restored after:
    for work that is OpenCV's only, such as a pool of threads decoding frames."""
    if n is None:
        yield
        return
    import cv2

    with _hold("opencv", cv2.getNumThreads, cv2.setNumThreads, int(n)):
        yield


@contextlib.contextmanager
def threads(n: int | None) -> Iterator[None]:
    """OpenCV and (if already imported) torch at ``n`` intra-op threads inside the block;
    ``None`` leaves both as they are. The old counts are restored afterwards."""
    if n is None:
        yield
        return
    torch = sys.modules.get("torch")
    with contextlib.ExitStack() as stack:
        stack.enter_context(opencv_threads(n))
        if torch is not None:
            stack.enter_context(_hold("torch", torch.get_num_threads, torch.set_num_threads, int(n)))
        yield


def _cuda_devices(torch, device: str) -> list[int]:
    """The CUDA device index ``device`` names, as a list (empty for the CPU, or without CUDA)."""
    if not str(device).startswith("cuda") or not torch.cuda.is_available():
        return []
    index = torch.device(device).index
    return [torch.cuda.current_device() if index is None else index]


def seed_torch(seed: int, device: str = "cpu") -> None:
    """Seed torch's CPU generator and ``device``'s CUDA generator with ``seed``, as
    ``torch.manual_seed`` does, and no other: ``torch.manual_seed`` seeds every CUDA device,
    and those outside a ``torch_rng`` block's fork would keep the change."""
    import torch

    torch.random.default_generator.manual_seed(int(seed))
    for i in _cuda_devices(torch, device):
        with torch.cuda.device(i):
            torch.cuda.manual_seed(int(seed))


@contextlib.contextmanager
def torch_rng(seed: int | None = None, device: str = "cpu") -> Iterator[None]:
    """torch's global random state forked for the block (CPU, and ``device``'s generator
    when it is CUDA) and seeded with ``seed`` if given; the caller's state is restored after."""
    import torch

    with torch.random.fork_rng(devices=_cuda_devices(torch, device)):
        if seed is not None:
            seed_torch(seed, device)
        yield


@contextlib.contextmanager
def one_thread():
    """OpenCV and torch on one thread for the block, restored after (no process-wide change).
    torch is imported first where it is installed: the methods built inside may import it."""
    try:
        import torch  # noqa: F401 - imported so that ``threads`` sets its count too
    except ImportError:
        pass
    with threads(1):
        yield
