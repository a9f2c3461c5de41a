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

One implementation (``update``) runs on NumPy (CPU) or torch (CPU or GPU), in float64 with
only operations IEEE 754 rounds exactly (+, -, *, /, sqrt, comparisons; the Gaussian's exp
is a fixed polynomial), evaluated in a fixed order, so both back ends give the same float64
state and maps, bit for bit. Leading batch dimensions let several videos of one size run as
one batch. On torch, frames go to the device as uint8 in chunks and are converted to float64
there, by the ops that mix them with the float64 state (a hidden copy inside each such op,
exact; ``count_ops`` counts the op, not the copy), and the maps come back per chunk.

The rework (after commit 98ab1b9). Every floating-point operation and its order are the
first version's, so state and maps are its bits (tests/test_gmm_sg.py checks the float64
distances and w, mu, var against a verbatim copy of it on highway, for k = 1..5 and both
rule sets) while the state is finite and every variance positive, which min_var > 0
guarantees (where min_var = 0 lets a variance reach 0, both versions produce inf and NaN,
not necessarily the same); only exact work was restructured: ranks come from one K x K pair
of comparisons (>= and >), counted in int8, instead of K(K-1) pairwise ones in float64; minima are one reduction; the paper's
eta (the 9-term polynomial) is evaluated for the chosen component only, on (H, W) instead
of (K, H, W); ``x * 0.0 + c`` constructions became ``where`` on constants; squares are taken
once. aten ops one eager ``step`` dispatches on a CPU tensor (``python -m
tests.perf.bench_gmm_sg`` counts them), first version -> now, total / with a float64 output /
kernels (not views) / MB those kernels read and write at 320x240:

- k=3, paper's rules: 241 / 196 / 176 / 609 MB -> 101 / 85 / 84 / 310 MB
- k=5, paper's rules: 445 / 336 / 300 / 1094 MB -> 105 / 89 / 88 / 507 MB
- k=3, OpenCV's rules: 201 / 156 / 136 / 417 MB -> 62 / 46 / 46 / 239 MB
- k=5, OpenCV's rules: 405 / 296 / 260 / 774 MB -> 66 / 50 / 50 / 424 MB

(on CUDA 2 more: the sqrt that eager CPU tensors take from NumPy). The polynomial's 30 ops
are most of what is left of the paper's rules; they and the mean and variance
updates must stay float64 for the identity, so every op with a floating-point output does.

The first version's torch path did not keep NumPy's bits, which its float32 maps hid
(after 60 highway frames 56 means and 719 float64 distances differed on the CPU, no map):
``c / t`` runs as ``reciprocal(t) * c``; torch's CPU sqrt is MKL's vdSqrt, not correctly
rounded (about 1% of results one ulp off); and on CUDA, ATen divides by a Python scalar as a
product with its reciprocal (``d2 / 3``, the polynomial's ``/ n``, the map's ``/ (2
T_sigma)``). Now divisors and ``where`` values are 0-dim tensors made once on the device
(``constants``) and eager CPU tensors take NumPy's sqrt (``_sqrt``).

``fuse`` (auto: on CUDA only; on: torch on any device; off) runs the frame (update and map)
through torch.compile with FMA contraction off (``EXACT_INDUCTOR_OPTIONS``, scoped to that
compilation: Triton's enable_fp_fusion is off under inductor's emulate_precision_casts; the
C++ backend gets -ffp-contract=off). On this CPU the compiled frame (one C++ kernel) keeps
NumPy's bits over 50 highway frames, and -ffp-contract=fast does not (the control test); it
compiles in 3-30 s and runs at about NumPy's speed (65 vs 85-90 frames/s at 320x240, one
thread; MOG2 760). **The CUDA paths, eager and fused, are unverified until run on a GPU**:
no GPU was lent to the session that wrote them. Their identity rests on reading the sources
(CUDA double sqrt and division are IEEE; inductor lowers float64 x / y to Triton's IEEE
division unless y is a constant, which it never is here; the test that the frame dispatches
no division by a Python scalar, no reciprocal and no scalar-to-tensor runs on the CPU).
Their speed against MOG2 (the issue asks 50x) is unmeasured: ``python -m
perf.bench_gmm_sg --device cuda --batch 8`` measures it and checks the maps.

``cuda_graph`` (auto: on CUDA; off) replays each frame's update, fused or not, from one
captured CUDA graph (``GraphedFrame``): one launch per frame instead of one per kernel, the
state in static buffers the graph updates in place, the map copied out per frame. A replay
runs the captured kernels, so the bits are the un-graphed path's; the plumbing (in-place
state, recapture when a batch shrinks, the fallback when capture fails) is tested on the CPU
with the graph calls stubbed (tests/test_video_batch.py). Its speed is unmeasured until run on
a GPU (``bgbench doctor`` times the batch with and without the graph).

What float64 costs: the state is 40 bytes per pixel and component (w, 3 means, var), so a
fused frame at k=3 moves at least 247 bytes a pixel (19 MB at 320x240; float32 would halve
it); H100s run float64 at half float32's rate, consumer GPUs at 1/32-1/64, where the
polynomial and divisions may become the bound. Both are estimates until measured on a GPU.
"""

from __future__ import annotations

import functools

from typing import Any, Iterator, Sequence

import numpy as np

from bgbench.method import Method, frames_through, register_method
from bgbench.data.video import VideoView

_INV_2PI_15 = (2.0 * np.pi) ** -1.5
# Scalars the update divides by (or divides): the polynomial's 2..9 and the variance's 3;
# and those ``where`` selects: 0 and the 1e30 that stands for "not background".
_SCALARS = (0.0, 1e30, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, _INV_2PI_15)


def constants(xp, device=None, k: int | None = None, extra: Sequence[float] = ()) -> dict[Any, Any]:
    """The scalars ``update`` divides by or selects, keyed by value (``"k"``: k as int8), as
    each back end must see them to round as NumPy does and to launch nothing extra: plain
    numbers for NumPy, 0-dim tensors on the device for torch, made once. A Python scalar will
    not do on torch: ``c / t`` runs as ``reciprocal(t) * c`` (two roundings, on every device),
    CUDA divides by a CPU scalar ``b`` as ``a * (1 / b)``, and so does inductor's code for a
    constant divisor on the GPU (lowering.div_prim), while a divisor that is a tensor on the
    device is divided by, correctly rounded, everywhere; ``torch.where`` of two Python
    scalars is float32, and every Python scalar given to ``torch.where`` is first made into a
    tensor on the device (one more kernel on CUDA, each frame)."""
    values = (*_SCALARS, *extra)
    if xp is np:
        out: dict[Any, Any] = {v: v for v in values}
        if k is not None:
            out["k"] = k
        return out
    out = {v: xp.tensor(v, dtype=xp.float64, device=device) for v in values}
    if k is not None:
        out["k"] = xp.tensor(k, dtype=xp.int8, device=device)
    return out


def _exp_neg_half(z, xp, c):
    """exp(-z / 2) for z in [0, 6.4] with +, * and / only: (Taylor_9(-z/32))^16, rel. error < 1e-12.

    ``z * -1/32`` is the earlier ``-(z * 0.5) / 16`` bit for bit (scalings by powers of two
    are exact; where z is too small for that, y is too small to change ``1 + y``); the terms
    are ``term * y / n`` summed in the same order as before."""
    y = z * -0.03125
    acc = y + 1.0  # 1 + y / 1
    term = y
    for n in range(2, 10):
        term = term * y / c[float(n)]
        acc += term
    for _ in range(4):
        acc *= acc
    return acc


def _unbind(a, axis: int, xp):
    """The slices of ``a`` along ``axis`` (views; one dispatched op on torch)."""
    return a.unbind(axis) if xp is not np else list(np.moveaxis(a, axis, 0))


def _lead_shape(frames: Any) -> tuple[int, ...]:
    """The shape of one step's input to ``run``: an array, or a tuple of videos' frames."""
    return (len(frames), *frames[0].shape) if isinstance(frames, tuple) else tuple(frames.shape)


def _sqrt(a, xp):
    """Correctly rounded sqrt. torch's CPU kernel is MKL VML's vdSqrt (VML_HA), which is not:
    about 1% of float64 results are one ulp off IEEE sqrt, so eager CPU tensors take NumPy's
    (zero-copy). CUDA's double sqrt and compiled code (std::sqrt, _mm512_sqrt_pd, tl.sqrt_rn)
    are IEEE sqrt."""
    if xp is np:
        return np.sqrt(a)
    if a.device.type == "cpu" and not xp.compiler.is_compiling():
        return xp.from_numpy(np.sqrt(a.numpy()))
    return xp.sqrt(a)


def _floor(a, lo: float, xp):
    return np.maximum(a, lo) if xp is np else xp.clamp(a, min=lo)


def _ceil(a, hi: float, xp):
    return np.minimum(a, hi) if xp is np else xp.clamp(a, max=hi)


def _zeros(shape, like, xp):
    if xp is np:
        return np.zeros(shape, dtype=np.float64)
    return xp.zeros(shape, dtype=xp.float64, device=like.device)


class GMMState:
    """The mixture of every pixel: w (..., K, H, W), mu (..., K, H, W, 3), var (..., K, H, W),
    float64 whatever the frame's dtype (uint8 or float64), and the constants ``step`` uses."""

    def __init__(self, first: Any, k: int, var_init: float, w_init: float, xp):
        self.xp = xp
        x = first
        shape = x.shape[:-1]
        lead, hw = shape[:-2], shape[-2:]
        self.w = _zeros((*lead, k, *hw), x, xp)
        self.mu = _zeros((*lead, k, *hw, 3), x, xp)
        self.var = _zeros((*lead, k, *hw), x, xp) + var_init
        self.w[..., 0, :, :] = 1.0
        self.mu[..., 0, :, :, :] = x
        self.k, self.var_init, self.w_init = k, var_init, w_init
        device = None if xp is np else x.device
        self.consts = constants(xp, device, k, (w_init, var_init))
        # lower[i, j]: j < i, the tie-break of the ranking (an earlier index ranks first)
        tri = np.tril(np.ones((k, k), dtype=bool), -1)[:, :, None, None]
        self.lower = tri if xp is np else xp.from_numpy(tri).to(device)

    def fit_batch(self, x: Any) -> None:
        """A batch of videos (leading axis) whose last videos have ended: keep the first
        ``len(x)`` videos' state (views of a prefix, no copy)."""
        n = x.shape[0]
        if x.ndim == 4 and self.w.ndim == 4 and n < self.w.shape[0]:
            self.w, self.mu, self.var = self.w[:n], self.mu[:n], self.var[:n]


def update(xp, w, mu, var, x, c, lower, *, k: int, alpha: float, t_bg: float, t_sigma: float, rho_rule: str,
           min_var: float, weight_rule: str, w_init: float, var_init: float):
    """One frame through the mixture, as a pure function of the state (what ``step`` runs and
    what ``fuse`` compiles): returns the new (w, mu, var) and the distance (in standard
    deviations) to the nearest background component. ``x`` is (..., H, W, 3) uint8 or
    float64 (uint8 is converted, exactly, by each op that mixes it with the float64 state).

    Every floating-point operation and its order are those of the first version (commit
    98ab1b9), so the results are the same bits; what changed are the exact parts: ranks are
    counted from one K x K pair of comparisons instead of K(K-1) pairwise ones, in int8; minima are
    one reduction; eta is computed for the chosen component only; constants (``c``) stand in
    ``where`` for ``x * 0.0 + c``; the squared distances square once and add the three
    channels. ``c``: ``constants(xp, device, k, (alpha, w_init, var_init))``; ``lower``:
    ``GMMState.lower``."""
    sd = _sqrt(var, xp)
    ratio = w / sd
    # ahead[..., i, j, :, :]: component j comes before i in descending w/sigma (ties: lower index first)
    ri, rj = ratio[..., :, None, :, :], ratio[..., None, :, :, :]
    ahead = xp.where(lower, rj >= ri, rj > ri)
    rank = xp.sum(ahead, axis=-3, dtype=xp.int8)
    # summed weight of the components ranked before each one, added in index order as before
    # (the diagonal's 0 adds nothing)
    parts = _unbind(w[..., None, :, :, :] * ahead, -3, xp)
    before = parts[0]
    for part in parts[1:]:
        before = before + part
    is_bg = before <= t_bg  # the first B components: their predecessors' weight has not passed T
    xe = x[..., None, :, :, :]
    diff = xe - mu
    sq = _unbind(diff * diff, -1, xp)
    z = (sq[0] + sq[1] + sq[2]) / var  # squared Mahalanobis distance
    dist_bg = _sqrt(xp.amin(xp.where(is_bg, z, c[1e30]), axis=-3), xp)
    match = (z < t_sigma * t_sigma) & (w > 1e-12)  # empty slots (weight 0) never match
    # first match in rank order (k where none)
    m_rank = xp.where(match, rank, c["k"])
    best = xp.amin(m_rank, axis=-3)[..., None, :, :]
    chosen = match & (m_rank == best)
    am = xp.where(chosen, c[alpha], c[0.0])  # alpha * M
    if weight_rule == "paper":
        w_new = (1.0 - alpha) * w + am
    else:  # "opencv": only the match gains alpha (1 - w); renormalisation decays the rest
        w_new = w + am * (1.0 - w)
    if rho_rule == "paper":
        # eta of the chosen component only, on (..., H, W): at most one component is chosen and
        # the others give 0 (z, q >= 0), so the maxima are its values, exactly
        zc = xp.amax(xp.where(chosen, z, c[0.0]), axis=-3)
        qc = xp.amax(xp.where(chosen, c[_INV_2PI_15] / (var * sd), c[0.0]), axis=-3)
        eta = qc * _exp_neg_half(zc, xp, c)
        rho = xp.where(chosen, (alpha * eta)[..., None, :, :], c[0.0])
    else:  # "alpha": a constant rate, as OpenCV's bgsegm MOG updates
        rho = am
    mu_new = mu + rho[..., None] * diff
    diff2 = xe - mu_new
    sq = _unbind(diff2 * diff2, -1, xp)
    var_new = _floor(var + rho * ((sq[0] + sq[1] + sq[2]) / c[3.0] - var), min_var, xp)
    # no match: replace the last-ranked component by one at x. rank <= k-1 and best <= k, so
    # rank + best == 2k-1 exactly when rank == k-1 and best == k (no component matched)
    replace = (rank + best) == 2 * k - 1
    w_new = xp.where(replace, c[w_init], w_new)
    mu_new = xp.where(replace[..., None], xe, mu_new)
    var_new = xp.where(replace, c[var_init], var_new)
    ws = _unbind(w_new, -3, xp)
    total = ws[0]
    for wi in ws[1:]:
        total = total + wi
    return w_new / total[..., None, :, :], mu_new, var_new, dist_bg


def step(state: GMMState, x, alpha: float, t_bg: float, t_sigma: float, rho_rule: str, min_var: float,
         weight_rule: str = "paper"):
    """Classify frame ``x`` (..., H, W, 3 uint8 or float64) against the model, then update it.
    Returns the distance (in standard deviations) to the nearest background component."""
    if alpha not in state.consts:
        state.consts.update(constants(state.xp, None if state.xp is np else state.w.device, extra=(alpha,)))
    state.w, state.mu, state.var, dist_bg = update(
        state.xp, state.w, state.mu, state.var, x, state.consts, state.lower, k=state.k, alpha=alpha, t_bg=t_bg,
        t_sigma=t_sigma, rho_rule=rho_rule, min_var=min_var, weight_rule=weight_rule, w_init=state.w_init,
        var_init=state.var_init)
    return dist_bg


def frame_function(xp, *, k: int, alpha: float, t_bg: float, t_sigma: float, rho_rule: str, min_var: float,
                   weight_rule: str, w_init: float, var_init: float):
    """``f(w, mu, var, x, c, lower) -> (w, mu, var, map)``: ``update`` and the float32
    probability map ``min(1, d / (2 t_sigma))``, one function to compile. ``c`` must hold
    k, alpha, ``2 t_sigma``, w_init and var_init (``constants(xp, device, k, (alpha, 2 * t_sigma,
    w_init, var_init))``)."""
    two_ts = 2.0 * t_sigma

    def f(w, mu, var, x, c, lower):
        w, mu, var, d = update(xp, w, mu, var, x, c, lower, k=k, alpha=alpha, t_bg=t_bg, t_sigma=t_sigma,
                               rho_rule=rho_rule, min_var=min_var, weight_rule=weight_rule, w_init=w_init,
                               var_init=var_init)
        prob = _ceil(d / c[two_ts], 1.0, xp)
        return w, mu, var, (prob.astype(np.float32) if xp is np else prob.to(xp.float32))

    return f


# The inductor settings (torch 2.13) that keep compiled code rounding as NumPy does, applied
# to this compilation only (torch.compile's ``options`` patch the config while it compiles):
# - Triton (CUDA): kernels get ``enable_fp_fusion = not emulate_precision_casts``
#   (codegen/triton.py, triton_meta_common); fp fusion lets LLVM contract a*b+c into one FMA.
#   emulate_precision_casts otherwise keeps fp16/bf16 round trips and has Triton use the CUDA
#   toolkit's libdevice (warning where CUDA_HOME is unset); this code has neither.
# - C++ (CPU): ``-ffp-contract=<cpp.enable_floating_point_contract_flag>`` (cpp_builder,
#   _get_ffast_math_flags; "off" unless TORCHINDUCTOR_CPP_ENABLE_FLOATING_POINT_CONTRACT_FLAG
#   says otherwise) and ``-fno-unsafe-math-optimizations`` unless cpp.enable_unsafe_math_opt_flag.
# Division by a constant, which inductor turns into a multiplication on the GPU, is kept out
# by dividing by 0-dim tensors (``constants``); sqrt is correctly rounded in both (tl.sqrt_rn,
# std::sqrt / _mm*_sqrt_pd); x / y of float64 in Triton is IEEE division (div.full, the
# approximate one, exists for float32 only).
EXACT_INDUCTOR_OPTIONS: dict[str, Any] = {
    "emulate_precision_casts": True,
    "cpp.enable_floating_point_contract_flag": "off",
    "cpp.enable_unsafe_math_opt_flag": False,
}


def _eager_if_it_fails(compiled, eager):
    """fuse=auto: ``compiled``, or ``eager`` from the first call where compiling fails (no
    Triton or no C++ compiler there), said once. The functions are pure, so nothing is half done."""
    current = [compiled]

    def f(*args):
        try:
            return current[0](*args)
        except Exception as e:  # noqa: BLE001 - an error of the update itself raises again from eager
            if current[0] is eager:
                raise
            import warnings

            warnings.warn(f"gmm_sg: torch.compile failed ({type(e).__name__}: {e}); running the update eagerly",
                          RuntimeWarning, stacklevel=2)
            current[0] = eager
            return eager(*args)

    return f


def compile_frame_function(f, options: dict[str, Any] | None = None):
    """``f`` under torch.compile (whole graph, static shapes) with FMA contraction off."""
    import torch

    return torch.compile(f, fullgraph=True, dynamic=False, options=dict(EXACT_INDUCTOR_OPTIONS, **(options or {})))


class CudaGraphs:
    """torch.cuda's graph capture, as ``GraphedFrame`` uses it (tests put a CPU stand-in in its
    place): ``capture(step, warm, buffers)`` runs ``warm`` (the pure update) once on a side
    stream (allocations, compiled kernels' first launch) and records ``step`` (the update and
    its copies into the static buffers) into one graph; returns (step's output, replay)."""

    def __init__(self, device: Any) -> None:
        self.device = device

    def capture(self, step, warm, buffers):
        import torch

        side = torch.cuda.Stream(self.device)
        side.wait_stream(torch.cuda.current_stream(self.device))
        with torch.cuda.stream(side):
            warm()
        torch.cuda.current_stream(self.device).wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            out = step()
        return out, graph.replay


class GraphedFrame:
    """A frame function ``f(w, mu, var, x, c, lower) -> (w, mu, var, map)`` replayed from one
    captured CUDA graph per shape: one launch per frame instead of one per kernel (the eager
    update is ~50-100 kernels; compiled, a few). The state lives in static buffers that the
    graph updates in place (a call that passes them back copies nothing), the frame is copied
    into its static buffer, and each map is copied out of the graph's (the next replay
    overwrites it). The graph replays the very kernels ``f`` launches, so the bits are ``f``'s.
    A new state or frame shape is captured again."""

    def __init__(self, f, graphs: Any) -> None:
        self.f, self.graphs, self.key = f, graphs, None

    def __call__(self, w, mu, var, x, c, lower):
        key = (tuple(w.shape), tuple(mu.shape), tuple(x.shape), x.dtype)
        if key != self.key:
            self.key = None
            self.w, self.mu, self.var, self.x = w.clone(), mu.clone(), var.clone(), x.clone()
            f = self.f

            def warm():
                return f(self.w, self.mu, self.var, self.x, c, lower)

            def step():
                w2, mu2, var2, prob = warm()
                self.w.copy_(w2)
                self.mu.copy_(mu2)
                self.var.copy_(var2)
                return prob

            self.map, self.replay = self.graphs.capture(step, warm, (self.w, self.mu, self.var))
            self.key = key
        else:
            for static, given in ((self.w, w), (self.mu, mu), (self.var, var)):
                if given is not static:
                    static.copy_(given)
        self.x.copy_(x)
        self.replay()
        return self.w, self.mu, self.var, self.map.clone()


def _ungraphed_if_it_fails(graphed: GraphedFrame, plain):
    """cuda_graph=auto: ``graphed``, or ``plain`` from the first call whose capture fails
    (said once). A failed capture changed no state (its buffers are clones)."""
    current = [graphed]

    def f(*args):
        try:
            return current[0](*args)
        except Exception as e:  # noqa: BLE001 - an error of the update itself raises again from plain
            if current[0] is plain or graphed.key is not None:
                raise
            import warnings

            warnings.warn(f"gmm_sg: CUDA graph capture failed ({type(e).__name__}: {e}); running the update "
                          "without a graph", RuntimeWarning, stacklevel=2)
            current[0] = plain
            return plain(*args)

    return f


@register_method("gmm_sg")
class GMMStaufferGrimson(Method):
    """Stauffer & Grimson adaptive mixture of Gaussians (1999), NumPy or torch, GPU-batchable"""

    gpu_capable = True
    batches_videos = True
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
        "backend": ("auto", "numpy, torch, or auto (torch on CUDA or with fuse=on, NumPy on the CPU)",
                    ("auto", "numpy", "torch")),
        "fuse": ("auto", "torch.compile the per-frame update (FMA contraction off) on CUDA (auto), always (on: "
                         "torch on any device) or never (off)", ("auto", "on", "off")),
        "cuda_graph": ("auto", "replay each frame's update (fused or not) from one captured CUDA graph: one launch "
                               "per frame; auto: on CUDA (falls back, said once, if capture fails); off",
                       ("auto", "off")),
    }

    @classmethod
    def validate(cls, values: dict[str, Any]) -> None:
        if values["fuse"] == "on" and values["backend"] == "numpy":
            from bgbench.errors import BadInput

            raise BadInput("fuse = on compiles the torch update; backend = numpy has none", "gmm_sg.fuse",
                           "set backend to torch or auto, or fuse to auto or off")

    def _xp(self):
        backend = self.p["backend"]
        if backend == "auto":
            backend = "torch" if self.device.startswith("cuda") or self.p["fuse"] == "on" else "numpy"
        if backend == "numpy":
            return np, None
        import torch

        return torch, torch.device(self.device)

    def fused(self) -> bool:
        """Whether ``run`` compiles the per-frame update: fuse=on, or auto on CUDA (torch)."""
        xp, dev = self._xp()
        if xp is np or self.p["fuse"] == "off":
            return False
        return self.p["fuse"] == "on" or dev.type == "cuda"

    def graphed(self) -> bool:
        """Whether ``run`` replays the frame from a CUDA graph: cuda_graph=auto on CUDA (torch)."""
        xp, dev = self._xp()
        return xp is not np and dev.type == "cuda" and self.p["cuda_graph"] == "auto"

    def frame_function(self):
        """The per-frame function ``run`` calls (compiled when ``fused()``, replayed from a CUDA
        graph when ``graphed()``) and its constants."""
        xp, dev = self._xp()
        p = self.p
        f = frame_function(xp, k=int(p["k"]), alpha=float(p["alpha"]), t_bg=float(p["t_bg"]),
                           t_sigma=float(p["t_sigma"]), rho_rule=p["rho_rule"], min_var=float(p["min_var"]),
                           weight_rule=p["weight_rule"], w_init=float(p["w_init"]), var_init=float(p["var_init"]))
        c = constants(xp, dev, int(p["k"]), (float(p["alpha"]), 2.0 * float(p["t_sigma"]), float(p["w_init"]),
                                              float(p["var_init"])))
        if self.fused():
            g = compile_frame_function(f)
            f = g if p["fuse"] == "on" else _eager_if_it_fails(g, f)
        if self.graphed():
            f = _ungraphed_if_it_fails(GraphedFrame(f, CudaGraphs(dev)), f)
        return f, c

    @functools.cached_property
    def _frame(self):
        """``frame_function()`` once per instance: one compilation (or one failed attempt, said
        once) for all the videos it segments."""
        return self.frame_function()

    def raw_loop(self, frames: np.ndarray) -> None:
        """The model's core over in-memory frames (the speed baseline for the wrapper)."""
        for _ in self.run(iter(frames)):
            pass

    def run(self, frames_iter, chunk: int = 32, device_maps: bool = False) -> Iterator[np.ndarray]:
        """Yield the probability map (..., H, W float32) for every frame batch from an
        iterator of uint8 (..., H, W, 3) arrays (a leading axis batches videos), or of tuples of
        several videos' (H, W, 3) frames, which are stacked in the one host copy made anyway.

        On torch, ``chunk`` frames at a time are uploaded as uint8 (an eighth of float64's
        bytes; pinned on CUDA) and converted on the device by the update itself, and their maps stay on
        the device until the chunk is done: one copy back and one synchronisation per chunk,
        not per frame. The decisions are those of the NumPy path, bit for bit. ``device_maps``
        (torch only): yield the maps as tensors on the device instead, for scoring there
        (``Method.device_maps``): nothing comes back to the host."""
        xp, dev = self._xp()
        p = self.p
        f, c = self._frame
        state = None
        if xp is np:
            for img in frames_iter:
                x = np.asarray(img, dtype=np.uint8)
                if state is None:
                    state = GMMState(x, int(p["k"]), float(p["var_init"]), float(p["w_init"]), xp)
                state.fit_batch(x)
                state.w, state.mu, state.var, prob = f(state.w, state.mu, state.var, x, c, state.lower)
                yield prob
            return
        import itertools

        torch = xp
        cuda = dev.type == "cuda"
        it = iter(frames_iter)
        while True:
            block = list(itertools.islice(it, chunk))
            if not block:
                return
            for _, part in itertools.groupby(block, key=_lead_shape):  # a batch that shrank: one copy per size
                host = torch.from_numpy(np.array(list(part), dtype=np.uint8))  # the chunk's one host copy
                frames = (host.pin_memory() if cuda else host).to(dev, non_blocking=True)
                maps = []
                for x in frames:
                    if state is None:
                        state = GMMState(x, int(p["k"]), float(p["var_init"]), float(p["w_init"]), xp)
                    state.fit_batch(x)
                    state.w, state.mu, state.var, prob = f(state.w, state.mu, state.var, x, c, state.lower)
                    maps.append(prob)
                if device_maps:
                    yield from maps
                else:
                    yield from torch.stack(maps).cpu().numpy()

    def segment(self, video: VideoView, frames: Sequence[int]) -> Iterator[tuple[int, np.ndarray]]:
        walk = list(frames_through(video, frames))
        maps = self.run((img for _, _, img, _ in walk), device_maps=self.device_maps)
        for (_, fid, _, wanted), prob in zip(walk, maps):
            if wanted:
                yield fid, prob

    def segment_videos(self, videos: Sequence[VideoView], frames: Sequence[Sequence[int]]
                       ) -> Iterator[tuple[int, int, np.ndarray]]:
        """Several videos of one shape as one batch: the update runs over a leading video axis
        (one launch per frame for all of them on a GPU), each pixel's arithmetic that of
        ``segment`` on its own video, so every map is the same bits. The videos are ordered
        longest first and a video that has ended leaves the batch (its state is a prefix: no
        copy); fused or graphed (compiled or captured for one shape), the batch keeps its size
        instead, a video that has ended is fed its last frame again and those maps are dropped."""
        walks = [list(frames_through(v, f)) for v, f in zip(videos, frames)]
        order = sorted(range(len(walks)), key=lambda i: -len(walks[i]))
        steps = len(walks[order[0]])
        pad = self.fused() or self.graphed()  # one shape: compiled or captured once

        def stacked() -> Iterator[tuple[np.ndarray, ...]]:  # one step's frames, copied once by ``run``
            for t in range(steps):
                live = [walks[i] for i in order if pad or t < len(walks[i])]
                yield tuple(w[min(t, len(w) - 1)][2] for w in live)

        for t, probs in enumerate(self.run(stacked(), device_maps=self.device_maps)):
            for j, i in enumerate(order):
                w = walks[i]
                if t >= len(w):
                    break  # the rest are shorter still
                if w[t][3]:
                    yield i, w[t][1], probs[j]
