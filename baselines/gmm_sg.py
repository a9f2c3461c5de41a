"""Stauffer & Grimson's adaptive mixture of Gaussians (CVPR 1999), vectorised over pixels.

Per pixel, K Gaussians over RGB with one variance each (channels independent, equal
variance, as in the paper). For each frame x:

- a component matches if ``|x - mu|^2 < T_sigma^2 var`` (2.5 standard deviations); the
  first match in the order of ``w / sigma`` (descending) is taken;
- weights: ``w <- (1 - alpha) w + alpha M`` (``weight_rule="opencv"``: only the match
  gains ``alpha (1 - w)`` and renormalisation decays the rest, as OpenCV's bgsegm MOG); the matched component moves with
  ``rho = alpha * eta(x | mu, sigma)`` (``rho_rule="paper"``) or ``rho = alpha``
  (``"alpha"``, as OpenCV's bgsegm MOG updates):
  ``mu <- (1 - rho) mu + rho x``, ``var <- (1 - rho) var + rho |x - mu|^2``;
- no match: the least probable component (lowest ``w / sigma``) is replaced by one at x
  with ``var_init`` and ``w_init``, and the weights are renormalised;
- the background is the first B components by ``w / sigma`` whose weights first exceed T.

The probability is the Mahalanobis distance to the nearest background component, in
units of the match threshold, halved and clipped: ``p = min(1, d / (2 T_sigma))``, so
``p >= 0.5`` exactly when no background component matches (the paper's decision, up to
8-bit quantisation) and PR curves sweep the match threshold.

One implementation runs on NumPy (CPU) or torch (CPU or GPU), in float64 with only
operations IEEE 754 rounds exactly (+, -, *, /, sqrt, comparisons; the Gaussian's exp is
a fixed polynomial), evaluated in a fixed order, so both back ends take bit-for-bit the
same decisions. Leading batch dimensions let several videos of one size run as one batch.
On torch, frames go to the device as uint8 in chunks and the maps come back per chunk.
float64 is what the identity costs (consumer GPUs run it at 1/32-1/64 of float32; an H100
at 1/2); the per-frame update is still about 180 separate elementwise kernels: fusing them
(torch.compile with floating-point contraction off, so the rounding stays NumPy's) is left
until it can be checked bit for bit on a GPU.
"""

from __future__ import annotations

from typing import Any, Iterator, Sequence

import numpy as np

from benchmark.method import Method, frames_through, register_method
from benchmark.video import VideoView

_INV_2PI_15 = (2.0 * np.pi) ** -1.5


def _exp_neg(z, xp):
    """exp(-z) for z in [0, 3.2] with + and * only: (Taylor_9(-z/16))^16, rel. error < 1e-12."""
    y = -z / 16.0
    term = y * 0.0 + 1.0
    acc = term
    for n in range(1, 10):
        term = term * y / float(n)
        acc = acc + term
    for _ in range(4):
        acc = acc * acc
    return acc


class GMMState:
    """The mixture of every pixel: w (..., K, H, W), mu (..., K, H, W, 3), var (..., K, H, W)."""

    def __init__(self, first: Any, k: int, var_init: float, w_init: float, xp):
        self.xp = xp
        x = first
        shape = x.shape[:-1]
        lead, hw = shape[:-2], shape[-2:]
        self.w = xp.zeros((*lead, k, *hw), dtype=x.dtype)
        self.mu = xp.zeros((*lead, k, *hw, 3), dtype=x.dtype)
        self.var = xp.zeros((*lead, k, *hw), dtype=x.dtype) + var_init
        self.w[..., 0, :, :] = 1.0
        self.mu[..., 0, :, :, :] = x
        self.k, self.var_init, self.w_init = k, var_init, w_init


def _stack(xs, xp):
    return xp.stack(xs, axis=-3) if xp is np else xp.stack(xs, dim=-3)


def step(state: GMMState, x, alpha: float, t_bg: float, t_sigma: float, rho_rule: str, min_var: float,
         weight_rule: str = "paper"):
    """Classify frame ``x`` (..., H, W, 3 float64) against the model, then update it.
    Returns the distance (in standard deviations) to the nearest background component."""
    xp, k = state.xp, state.k
    w, mu, var = state.w, state.mu, state.var
    sd = xp.sqrt(var)
    ratio = w / sd
    # rank of each component in descending w/sigma order (ties: lower index first)
    rank = []
    before = []  # summed weight of the components ranked before each one
    for i in range(k):
        r = ratio[..., i, :, :] * 0.0
        s = ratio[..., i, :, :] * 0.0
        for j in range(k):
            if j == i:
                continue
            ahead = (ratio[..., j, :, :] > ratio[..., i, :, :]) | ((ratio[..., j, :, :] == ratio[..., i, :, :]) & (j < i))
            r = r + ahead
            s = s + w[..., j, :, :] * ahead
        rank.append(r)
        before.append(s)
    rank, before = _stack(rank, xp), _stack(before, xp)
    is_bg = before <= t_bg  # the first B components: their predecessors' weight has not passed T
    diff = x[..., None, :, :, :] - mu
    d2 = diff[..., 0] * diff[..., 0] + diff[..., 1] * diff[..., 1] + diff[..., 2] * diff[..., 2]
    z = d2 / var  # squared Mahalanobis distance
    big = z * 0.0 + 1e30
    dist_bg = xp.sqrt(_min_k(xp.where(is_bg, z, big), k))
    match = (z < t_sigma * t_sigma) & (w > 1e-12)  # empty slots (weight 0) never match
    # first match in rank order
    m_rank = xp.where(match, rank, rank * 0.0 + k)
    best = _min_k(m_rank, k)
    chosen = match & (m_rank == best[..., None, :, :])
    any_match = best < k
    # weights
    m = xp.where(chosen, w * 0.0 + 1.0, w * 0.0)
    if weight_rule == "paper":
        w_new = (1.0 - alpha) * w + alpha * m
    else:  # "opencv": only the match gains alpha (1 - w); renormalisation decays the rest
        w_new = w + alpha * m * (1.0 - w)
    if rho_rule == "paper":
        eta = _INV_2PI_15 / (var * sd) * _exp_neg(xp.where(chosen, z, z * 0.0) * 0.5, xp)
        rho = alpha * eta
    else:  # "alpha": a constant rate, as OpenCV's bgsegm MOG updates
        rho = w * 0.0 + alpha
    rho = xp.where(chosen, rho, rho * 0.0)
    mu_new = mu + rho[..., None] * diff
    diff2 = x[..., None, :, :, :] - mu_new
    d2n = diff2[..., 0] * diff2[..., 0] + diff2[..., 1] * diff2[..., 1] + diff2[..., 2] * diff2[..., 2]
    var_new = var + rho * (d2n / 3.0 - var)
    var_new = xp.where(var_new < min_var, var_new * 0.0 + min_var, var_new)
    # no match: replace the last-ranked component by one at x
    replace = (rank == k - 1) & ~any_match[..., None, :, :]
    w_new = xp.where(replace, w_new * 0.0 + state.w_init, w_new)
    mu_new = xp.where(replace[..., None], x[..., None, :, :, :] + mu_new * 0.0, mu_new)
    var_new = xp.where(replace, var_new * 0.0 + state.var_init, var_new)
    total = w_new[..., 0, :, :]
    for i in range(1, k):
        total = total + w_new[..., i, :, :]
    state.w, state.mu, state.var = w_new / total[..., None, :, :], mu_new, var_new
    return dist_bg


def _min_k(a, k):
    out = a[..., 0, :, :]
    for i in range(1, k):
        b = a[..., i, :, :]
        out = out * (out <= b) + b * (b < out)
    return out


@register_method("gmm_sg")
class GMMStaufferGrimson(Method):
    """Stauffer & Grimson adaptive mixture of Gaussians (1999), NumPy or torch, GPU-batchable"""

    gpu_capable = True
    params = {
        "k": (3, "Gaussians per pixel (the paper used 3 to 5)", "[1, 10]"),
        "alpha": (0.01, "learning rate alpha", "(0, 1]"),
        "t_bg": (0.7, "T: minimum weight share the background components explain", "(0, 1]"),
        "t_sigma": (2.5, "match threshold in standard deviations", "(0, inf)"),
        "var_init": (900.0, "variance of a new component (sigma 30)", "(0, inf)"),
        "w_init": (0.05, "weight of a new component", "(0, 1]"),
        "min_var": (4.0, "variance floor (sigma 2), against collapse on static pixels", "[0, inf)"),
        "weight_rule": ("paper", "paper: w = (1 - alpha) w + alpha M; opencv: the match gains alpha (1 - w), "
                                 "then all are renormalised (OpenCV bgsegm MOG)", ("paper", "opencv")),
        "rho_rule": ("paper", "paper: rho = alpha * eta(x|mu,sigma); alpha: rho = alpha (OpenCV bgsegm MOG)", ("paper", "alpha")),
        "backend": ("auto", "numpy, torch, or auto (torch on CUDA, NumPy on the CPU)", ("auto", "numpy", "torch")),
    }

    def _xp(self):
        backend = self.p["backend"]
        if backend == "auto":
            backend = "torch" if self.device.startswith("cuda") else "numpy"
        if backend == "numpy":
            return np, None
        import torch

        return torch, torch.device(self.device)

    def raw_loop(self, frames: np.ndarray) -> None:
        """The model's core over in-memory frames (the speed baseline for the wrapper)."""
        for _ in self.run(iter(frames)):
            pass

    def run(self, frames_iter, chunk: int = 32) -> Iterator[np.ndarray]:
        """Yield the probability map (..., H, W float32) for every frame batch from an
        iterator of uint8 (..., H, W, 3) arrays (a leading axis batches videos).

        On torch, ``chunk`` frames at a time are uploaded as uint8 (a quarter of float32's
        bytes; pinned on CUDA) and converted to float64 on the device, and their maps stay
        there until the chunk is done: one copy back and one synchronisation per chunk, not
        per frame. The decisions are those of the NumPy path, bit for bit."""
        xp, dev = self._xp()
        p = self.p
        args = (float(p["alpha"]), float(p["t_bg"]), float(p["t_sigma"]), p["rho_rule"], float(p["min_var"]),
                p["weight_rule"])
        state = None

        def prob_of(d):
            prob = d / (2.0 * float(p["t_sigma"]))
            return xp.where(prob > 1.0, prob * 0.0 + 1.0, prob)

        if xp is np:
            for img in frames_iter:
                x = np.asarray(img, dtype=np.float64)
                if state is None:
                    state = GMMState(x, int(p["k"]), float(p["var_init"]), float(p["w_init"]), xp)
                yield prob_of(step(state, x, *args)).astype(np.float32)
            return
        import itertools

        torch = xp
        cuda = dev.type == "cuda"
        it = iter(frames_iter)
        while True:
            block = list(itertools.islice(it, chunk))
            if not block:
                return
            host = torch.from_numpy(np.ascontiguousarray(np.stack([np.asarray(b, dtype=np.uint8) for b in block])))
            frames = (host.pin_memory() if cuda else host).to(dev, non_blocking=True)
            maps = []
            for x8 in frames:
                x = x8.to(torch.float64)
                if state is None:
                    state = GMMState(x, int(p["k"]), float(p["var_init"]), float(p["w_init"]), xp)
                maps.append(prob_of(step(state, x, *args)).float())
            yield from torch.stack(maps).cpu().numpy()

    def segment(self, video: VideoView, frames: Sequence[int]) -> Iterator[tuple[int, np.ndarray]]:
        walk = list(frames_through(video, frames))
        for (_, fid, _, wanted), prob in zip(walk, self.run(img for _, _, img, _ in walk)):
            if wanted:
                yield fid, prob
