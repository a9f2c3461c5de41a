"""Scoring on the device a method's maps are on (torch tensors: CUDA, or the CPU in tests).

A GPU method's maps need not come back to the host to be scored: per batch of frames, the
maps are quantised where they are (``round(255 p)`` of the float32 product, ties to even,
clipped to [0, 255], exactly ``metrics.quantize``'s rule), each pixel becomes one int32 key
``(4 * frame + class) * 256 + q`` and ONE ``torch.bincount`` counts them all (class:
negative, shadow, positive, ignored, from the ground truth and the ROI as
``metrics._CLASS_LUT`` reads them). On the device they are then reduced to what
``VideoScore`` keeps of a batch: the 3 x 256 histograms summed over the frames and per frame
tp, fp and fn at the threshold bin (Dice), with the count of NaNs appended; one copy of
3 x 256 + 3 N + 1 int64 comes back. The counts are the CPU path's, bit for bit
(tests/test_performance.py checks them against ``score_batch`` on real frames).

The ground truth goes up as uint8 per batch (one byte a pixel; a video's is not kept on
the device), its classes are looked up there.
"""

from __future__ import annotations

import warnings
from types import ModuleType
from typing import TYPE_CHECKING, Any, Sequence, TypeGuard, cast

import numpy as np

from bgbench.scoring import metrics as _m

if TYPE_CHECKING:
    from torch import Tensor

NBINS = _m.NBINS


def is_tensor(x: object) -> TypeGuard[Tensor]:
    """Whether ``x`` is a torch tensor (without importing torch where nobody has)."""
    return type(x).__module__.startswith("torch") and hasattr(x, "device") and hasattr(x, "dtype")


def _tables(torch: ModuleType, device: Any) -> Tensor:
    return cast("Tensor", torch.as_tensor(_m._CLASS_LUT.astype(np.int32), device=device))


def quantize(p: Tensor) -> Tensor:
    """A tensor of probabilities (any float dtype, read as float32) or uint8 levels -> int32
    levels 0..255 with ``metrics.quantize``'s rule; NaN becomes -1 (counted, then refused)."""
    import torch

    if p.dtype == torch.uint8:
        return p.to(torch.int32)
    p = p.to(torch.float32)
    q = torch.round(torch.clamp(p, 0.0, 1.0) * 255.0)  # float32 product, round half to even
    return torch.where(torch.isnan(p), -1.0, q).to(torch.int32)


def score_device(probs: Sequence[Tensor] | Tensor, gt: np.ndarray, roi: np.ndarray, tbin: int
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``metrics.score_batch`` of maps that are torch tensors on one device: ``probs`` a
    sequence of H x W tensors (or one N x H x W tensor), ``gt`` N x H x W uint8 (host),
    ``roi`` H x W bool (host). Returns (3 x 256 histograms summed, tp, fp, fn per frame), int64
    NumPy arrays. Raises ValueError on a NaN, like ``metrics.quantize``."""
    import torch

    p = probs if is_tensor(probs) else torch.stack(list(probs))
    n = int(p.shape[0])
    if p.ndim != 3 or tuple(p.shape) != tuple(gt.shape) or tuple(roi.shape) != tuple(gt.shape[1:]):
        raise ValueError(f"maps {tuple(p.shape)} and gt {gt.shape} must be N x H x W and roi {roi.shape} H x W")
    hist = np.zeros((3, NBINS), np.int64)
    if n == 0 or p[0].numel() == 0:
        return hist, np.zeros(n, np.int64), np.zeros(n, np.int64), np.zeros(n, np.int64)
    dev = p.device
    q = quantize(p)
    nan = q < 0
    with warnings.catch_warnings():  # a read-only (cached, memory-mapped) stack: torch only reads it
        warnings.simplefilter("ignore", UserWarning)
        g = torch.as_tensor(np.ascontiguousarray(gt), device=dev)
    cls = _tables(torch, dev)[g.long()]
    if not bool(np.all(roi)):
        cls = torch.where(torch.from_numpy(np.ascontiguousarray(roi, bool)).to(dev), cls, _m.IGNORED)
    frame = torch.arange(n, dtype=torch.int32, device=dev).view(n, 1, 1)  # int32 keys: n * 1024 < 2**31
    key = (frame * 4 + cls) * NBINS + q
    key = torch.where(nan, n * 4 * NBINS, key)  # one extra bin: the NaNs
    h = torch.bincount(key.reshape(-1), minlength=n * 4 * NBINS + 1)
    nans = h[-1:]
    h = h[:-1].view(n, 4, NBINS)
    above = h[:, :, tbin:].sum(-1)  # n x 4
    tp = above[:, _m.POS]
    fp = above[:, _m.NEG] + above[:, _m.SHADOW]
    fn = h[:, _m.POS].sum(-1) - tp
    packed = torch.cat([h[:, :3].sum(0).reshape(-1), tp, fp, fn, nans]).cpu().numpy()  # the one copy back
    if packed[-1]:
        raise ValueError("probability map holds NaN")
    hist[:] = packed[:3 * NBINS].reshape(3, NBINS)
    k = 3 * NBINS
    return hist, packed[k:k + n].copy(), packed[k + n:k + 2 * n].copy(), packed[k + 2 * n:k + 3 * n].copy()


def to_host_levels(prob: Tensor) -> np.ndarray:
    """One tensor map as ``metrics.quantize`` gives it on the host (uint8), for what needs
    the levels there (saved masks, the reports' example frame)."""
    q = quantize(prob)
    if bool((q < 0).any()):
        raise ValueError("probability map holds NaN")
    return q.to(dtype=__import__("torch").uint8).cpu().numpy()
