"""What the deep methods share: building blocks, losses, targets from CDnet codes,
deterministic samplers, the training bank, one trainer, and the deep Method base class.

Written for CUDA first, tested on the CPU:
- every loss takes logits (pre-activations) and computes in float32, so nothing that CUDA
  autocast refuses (binary_cross_entropy on probabilities) or that overflows in fp16 (the
  log of a probability rounded to 1) can run under mixed precision;
- a method's training frames, targets and validity codes go to the device once per fit, as
  uint8 at the method's input size (``Bank``), and batches are gathered there from
  (seed, step); a training set too large for the device stays in pinned host memory and a
  prefetching thread overlaps the gather and copy with compute;
- the trainer is seeded per step (the batch of step s depends only on the seed and s), so a
  run resumed from a checkpoint (model, optimiser, GradScaler, elapsed seconds) takes
  exactly the steps the uninterrupted run would have taken; it syncs with the device only
  every ``log_every`` steps and records the time spent waiting for data;
- inference is batched (``infer_batch``, separate from the training batch) under the same
  autocast policy as training, and the records name the precision that actually ran;
  models use channels-last memory on CUDA, restored ones included.
``amp=on`` turns autocast on for the CPU too (float16): the tests run every method that way
with the ops CUDA autocast refuses made to raise, so a CPU-only CI catches GPU breakage.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, ClassVar, Iterator, Sequence

import numpy as np
import torch
from torch import nn
import torch.nn.functional as F

from bgbench.data import codes
from bgbench.errors import BadInput
from bgbench.execution.device import synchronize
from bgbench.method import Method
from bgbench.params import Param
from bgbench.execution.scoped import seed_torch, torch_rng
from bgbench.data.video import VideoView


# --- blocks ----------------------------------------------------------------------------
def hard_sigmoid(x: torch.Tensor) -> torch.Tensor:
    """max(0, min(1, (x + 1) / 2)), the form both CDN-GM and MEDAL-net use."""
    return torch.clamp((x + 1.0) * 0.5, 0.0, 1.0)


class SeparableConv(nn.Module):
    """Depthwise 3x3 (no bias) then pointwise 1x1 (with bias), as in MobileNets."""

    def __init__(self, cin: int, cout: int, k: int = 3):
        super().__init__()
        self.dw = nn.Conv2d(cin, cin, k, padding=k // 2, groups=cin, bias=False)
        self.pw = nn.Conv2d(cin, cout, 1)

    def forward(self, x):
        return self.pw(self.dw(x))


class UNet(nn.Module):
    """U-Net: ``depth`` down blocks of two 3x3 conv+ReLU and a 2x2 max-pool, channels
    doubling from ``base``; up-convolutions with concatenated skips; a 1x1 output conv."""

    def __init__(self, cin: int, cout: int, base: int, depth: int):
        super().__init__()
        self.depth = depth

        def block(a, b):
            return nn.Sequential(nn.Conv2d(a, b, 3, padding=1), nn.ReLU(inplace=True),
                                 nn.Conv2d(b, b, 3, padding=1), nn.ReLU(inplace=True))

        chans = [base * 2 ** i for i in range(depth + 1)]
        self.down = nn.ModuleList([block(cin if i == 0 else chans[i - 1], chans[i]) for i in range(depth)])
        self.mid = block(chans[depth - 1], chans[depth])
        self.upconv = nn.ModuleList([nn.ConvTranspose2d(chans[i + 1], chans[i], 2, stride=2) for i in reversed(range(depth))])
        self.up = nn.ModuleList([block(2 * chans[i], chans[i]) for i in reversed(range(depth))])
        self.out = nn.Conv2d(chans[0], cout, 1)

    def forward(self, x):
        skips = []
        for blk in self.down:
            x = blk(x)
            skips.append(x)
            x = F.max_pool2d(x, 2)
        x = self.mid(x)
        for upc, blk, skip in zip(self.upconv, self.up, reversed(skips)):
            x = blk(torch.cat([upc(x), skip], dim=1))
        return self.out(x)


def count_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def flops(module: nn.Module, *inputs: torch.Tensor) -> int:
    """FLOPs of one forward pass (torch's counter: 2 per multiply-add)."""
    from torch.utils.flop_counter import FlopCounterMode

    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        module(*inputs)
    return int(counter.get_total_flops())


# --- targets and losses -----------------------------------------------------------------
# Every loss takes the network's pre-activation output ("logits") and computes in float32,
# whatever dtype autocast gave the network: safe under CUDA autocast by construction (no
# binary_cross_entropy on probabilities, no log of an fp16 probability that rounds to 1).
def resize_labels(gt: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """CDnet codes at another (width, height): nearest neighbour, so no code is invented."""
    import cv2

    return gt if gt.shape[::-1] == tuple(size) else cv2.resize(gt, tuple(size), interpolation=cv2.INTER_NEAREST)


def label_codes(item, fids: Sequence[int], size: tuple[int, int] | None) -> np.ndarray:
    """N x h x w uint8 CDnet codes of training frames at ``size`` (None: native), with the
    pixels outside the ROI set to 85, so targets and validity follow from the codes alone."""
    gts = item.gts(list(fids))
    roi = item.view.roi
    if size is not None:
        gts = np.stack([resize_labels(g, size) for g in gts]) if len(gts) else gts.reshape(0, size[1], size[0])
        roi = resize_labels(roi.astype(np.uint8), size) > 0
    return np.where(roi[None], gts, np.uint8(codes.OUTSIDE_ROI)).astype(np.uint8)


def code_targets(c: torch.Tensor, ignore_shadow: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """(target, valid) float32 tensors from a tensor of CDnet codes (what ``targets`` does,
    on the device)."""
    target = c == codes.MOTION
    valid = target | (c == codes.STATIC)
    if not ignore_shadow:
        valid = valid | (c == codes.SHADOW)
    return target.float(), valid.float()


def _masked_mean(loss: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    valid = valid.float()
    return (loss * valid).sum() / valid.sum().clamp(min=1)


def bce_logits(logits: torch.Tensor, target: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy of sigmoid(logits) over valid pixels, in float32."""
    loss = F.binary_cross_entropy_with_logits(logits.float(), target.float(), reduction="none")
    return _masked_mean(loss, valid)


def hard_sigmoid_bce(pre: torch.Tensor, target: torch.Tensor, valid: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Binary cross-entropy of hard_sigmoid(pre) (MEDAL-net's output) over valid pixels,
    in float32 from the pre-activation: p is clamped to [eps, 1 - eps] in float32 before
    the logs, as the fp32 BCE on probabilities did (identical values and gradients there)."""
    p = hard_sigmoid(pre.float()).clamp(eps, 1 - eps)
    t = target.float()
    loss = -(t * torch.log(p) + (1 - t) * torch.log1p(-p))
    return _masked_mean(loss, valid)


def masked_ce(logits: torch.Tensor, target: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Two-class cross-entropy (N x 2 x H x W logits) over valid pixels only, in float32."""
    loss = F.cross_entropy(logits.float(), target.long(), reduction="none")
    return _masked_mean(loss, valid)


def focal_logits(logits: torch.Tensor, target: torch.Tensor, valid: torch.Tensor, alpha: float = 0.75,
                 gamma: float = 0.0, fg_scale: float | torch.Tensor = 1.0) -> torch.Tensor:
    """Focal loss from logits in float32: log p = logsigmoid(x), log(1 - p) = logsigmoid(-x),
    finite for any logit. ``fg_scale`` multiplies the foreground term (a number, or a
    tensor broadcast per sample, e.g. CrossNet's per-frame beta)."""
    x, t = logits.float(), target.float()
    log_p, log_q = F.logsigmoid(x), F.logsigmoid(-x)
    fg = -alpha * torch.exp(gamma * log_q) * log_p * t * fg_scale if gamma else -alpha * log_p * t * fg_scale
    bg = -(1 - alpha) * torch.exp(gamma * log_p) * log_q * (1 - t) if gamma else -(1 - alpha) * log_q * (1 - t)
    return _masked_mean(fg + bg, valid)


# --- sampling -----------------------------------------------------------------------------
def step_rng(seed: int, step: int, salt: str = "") -> np.random.Generator:
    """The random stream of one training step: a function of (seed, step) only."""
    h = int(hashlib.sha1(f"{seed}|{step}|{salt}".encode()).hexdigest()[:12], 16)
    return np.random.default_rng(h)


def epoch_rows(seed: int, step: int, batch: int, n: int, salt: str = "") -> np.ndarray:
    """The rows of step ``step`` when every epoch passes over all ``n`` rows once, shuffled
    (a permutation per epoch from (seed, epoch)): a function of (seed, step) only. A batch
    that crosses an epoch boundary takes the next epoch's first rows."""
    first = step * batch
    out = []
    for k in range(first, first + batch):
        epoch, pos = divmod(k, n)
        out.append(_permutation(seed, epoch, n, salt)[pos])
    return np.asarray(out, dtype=np.int64)


@lru_cache(maxsize=8)
def _permutation(seed: int, epoch: int, n: int, salt: str) -> np.ndarray:
    return step_rng(seed, epoch, f"epoch|{salt}").permutation(n)


def reference_pool(view: VideoView, train_frames: Sequence[int]) -> list[int]:
    """Frames whose images may serve as references: the unlabelled part of the video,
    else its training frames (never a test frame's ground truth: images only)."""
    return list(view.unlabelled_frames) or list(train_frames)


def upload(frames_bgr: np.ndarray, device: str) -> torch.Tensor:
    """N x H x W x 3 uint8 BGR (host) -> N x 3 x H x W uint8 RGB on ``device``: the copy is
    of uint8 (a quarter of float32's bytes), the channel flip happens on the device."""
    x = torch.from_numpy(np.ascontiguousarray(frames_bgr))
    if device.startswith("cuda"):
        x = x.pin_memory().to(device, non_blocking=True)
    return x.permute(0, 3, 1, 2).flip(1)


def as_float(x: torch.Tensor) -> torch.Tensor:
    """uint8 images -> float32 in [0, 1] (on whatever device they are)."""
    return x.float().div_(255.0)


# --- where training data lives --------------------------------------------------------------
RESIDENT = ("auto", "on", "off")


def _fits_on_device(nbytes: int, device: str, fraction: float = 0.5) -> bool:
    if not device.startswith("cuda"):
        return True  # the CPU's "device" memory is host memory: nothing to copy
    free, _ = torch.cuda.mem_get_info(torch.device(device))
    return nbytes <= fraction * free


class Bank:
    """A method's training material, uploaded once per fit: named uint8 (or other) arrays
    that batches are gathered from by row. Resident on the device when ``resident`` is
    ``on``, or ``auto`` and the arrays take at most half the free device memory; otherwise
    kept in (pinned) host memory and gathered there, the copies made on a side stream by
    the trainer's prefetching thread (``prefetch`` is then True)."""

    def __init__(self, arrays: dict[str, np.ndarray | torch.Tensor], device: str, resident: str = "auto"):
        if resident not in RESIDENT:
            raise BadInput(f"unknown value {resident!r}", "resident", f"use one of {', '.join(RESIDENT)}")
        self.device = device
        self.nbytes = int(sum(np.asarray(a).nbytes if not torch.is_tensor(a) else a.numel() * a.element_size()
                              for a in arrays.values()))
        self.resident = resident == "on" or (resident == "auto" and _fits_on_device(self.nbytes, device))
        self.prefetch = not self.resident
        cuda = device.startswith("cuda")
        self.t: dict[str, torch.Tensor] = {}
        for k, a in arrays.items():
            t = a if torch.is_tensor(a) else torch.from_numpy(np.ascontiguousarray(a))
            if self.resident:
                t = t.to(device)
            elif cuda:
                t = t.pin_memory()
            self.t[k] = t
        self._stream = self._side_stream() if cuda and not self.resident else None

    def _side_stream(self):
        """The CUDA stream the host-to-device copies run on (a test stubs it on the CPU)."""
        return torch.cuda.Stream(self.device)

    def __getitem__(self, name: str) -> torch.Tensor:
        return self.t[name]

    def take(self, name: str, rows: np.ndarray | torch.Tensor | Sequence[int]) -> torch.Tensor:
        """Rows of an array, on the device."""
        return self.gather(name, rows)

    def gather(self, name: str, *index: np.ndarray | torch.Tensor | Sequence[int]) -> torch.Tensor:
        """``array[index]`` (advanced indexing, one index array per leading dimension), on
        the device: indexed there when resident, else on the host and copied over on a
        side stream from pinned memory."""
        t = self.t[name]
        idx = tuple(torch.as_tensor(np.asarray(i, dtype=np.int64)) if not torch.is_tensor(i) else i for i in index)
        if self.resident:
            return t[tuple(i.to(t.device, non_blocking=True) for i in idx)]
        out = t[tuple(i.cpu() for i in idx)]
        if self._stream is None:
            return out
        out = out.pin_memory()
        with torch.cuda.stream(self._stream):
            dev = out.to(self.device, non_blocking=True)
        torch.cuda.current_stream(self.device).wait_stream(self._stream)
        dev.record_stream(torch.cuda.current_stream(self.device))
        return dev


# --- mixed precision ------------------------------------------------------------------------
AMP = ("auto", "on", "off")
AMP_DTYPES = ("auto", "float16", "bfloat16")


class Precision:
    """The autocast policy of a method: on CUDA by default (``amp=auto``), on the CPU when
    asked (``amp=on``: the CPU emulation of CUDA autocast that the tests run). ``name`` is
    what the records say, and it is what ran: training and inference use the same policy."""

    def __init__(self, device: str, amp: str = "auto", dtype: str = "auto"):
        if amp not in AMP:
            raise BadInput(f"unknown value {amp!r}", "amp", f"use one of {', '.join(AMP)}")
        if dtype not in AMP_DTYPES:
            raise BadInput(f"unknown value {dtype!r}", "amp_dtype", f"use one of {', '.join(AMP_DTYPES)}")
        self.device_type = "cuda" if device.startswith("cuda") else "cpu"
        if dtype == "auto":  # bf16 where the GPU has it: fp32's range, so no loss scaler and no per-step sync
            dtype = "bfloat16" if self.device_type == "cuda" and torch.cuda.is_bf16_supported() else "float16"
        self.enabled = amp == "on" or (amp == "auto" and self.device_type == "cuda")
        self.dtype = getattr(torch, dtype)
        self.name = f"amp-{'fp16' if dtype == 'float16' else 'bf16'}" if self.enabled else "float32"
        self.scaled = self.enabled and dtype == "float16"  # bf16 needs no loss scaling

    def autocast(self):
        return torch.autocast(self.device_type, dtype=self.dtype, enabled=self.enabled)

    def scaler(self) -> torch.amp.GradScaler:
        return torch.amp.GradScaler(self.device_type, enabled=self.scaled)


# --- the trainer --------------------------------------------------------------------------
def cpu_copy(obj: Any) -> Any:
    """A deep copy of a (nested) state with every tensor cloned to host memory: what a
    background writer may save while training goes on mutating the originals in place."""
    if torch.is_tensor(obj):
        return obj.detach().to("cpu", copy=True)
    if isinstance(obj, dict):
        return {k: cpu_copy(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(cpu_copy(v) for v in obj)
    return obj


class CheckpointWriter:
    """Writes a trainer's rolling checkpoint off the training thread: ``submit`` hands a CPU
    copy of the state to one background thread, which saves it to a temporary file and
    atomically replaces the rolling file (a reader sees the old file or the new one, never a
    partial one). A checkpoint due while the previous one is still being written is skipped
    (``submit`` returns False; the trainer tries again at its next step), so a slow disk never
    stalls training. ``wait`` joins the write in flight and raises its error, if any.
    ``save`` (``torch.save``) is an attribute so a test can slow it down."""

    def __init__(self, path: Path):
        import threading

        self.path, self.save = path, torch.save
        self._thread: "threading.Thread | None" = None
        self._error: BaseException | None = None
        self.seconds = 0.0  # writing time on the background thread
        self.written = 0

    @property
    def busy(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def submit(self, state: dict[str, Any]) -> bool:
        import threading

        if self.busy:
            return False
        self._raise()
        self._thread = threading.Thread(target=self._write, args=(state,), name="bgbench-checkpoint", daemon=True)
        self._thread.start()
        return True

    def _write(self, state: dict[str, Any]) -> None:
        t0 = time.perf_counter()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            from bgbench.safefs import atomic_write

            with atomic_write(self.path, "a mid-training checkpoint") as tmp:  # a full disk: DiskFull, no tmp left
                self.save(state, tmp)
            self.written += 1
        except BaseException as e:  # noqa: BLE001 - raised on the training thread by wait()/submit()
            self._error = e
        self.seconds += time.perf_counter() - t0

    def _raise(self) -> None:
        if self._error is not None:
            e, self._error = self._error, None
            raise e

    def wait(self, raise_error: bool = True) -> None:
        if self._thread is not None:
            self._thread.join()
        if raise_error:
            self._raise()


class Trainer:
    """Runs ``steps`` optimisation steps of ``loss_fn(batch_fn(step)) -> loss tensor``.

    ``batch_fn(step)`` draws the step's batch (from a Bank: a function of (seed, step) only);
    with ``prefetch`` it runs one step ahead in a thread, overlapping host gathers and copies
    with compute. Losses stay on the device and are read back every ``log_every`` steps (one
    sync, not one per step); the time spent waiting for batches is kept in ``stats``. The
    checkpoint holds model, optimiser, GradScaler, step, history and training seconds so
    far, so a resumed run takes exactly the uninterrupted run's steps and the
    ``max_seconds`` budget counts the time before the interruption too. Checkpoints go to one
    rolling file per stage (``path``), every ``checkpoint_seconds`` of training and/or every
    ``checkpoint_every`` steps, and at the end of the stage: the training thread only copies
    the state to host memory, a ``CheckpointWriter`` thread writes it (atomic replace).
    """

    def __init__(self, model: nn.Module, optimizer: torch.optim.Optimizer, *, seed: int, device: str,
                 precision: Precision | None = None, clip: float = 5.0, checkpoint_dir: Path | None = None,
                 checkpoint_every: int = 0, tag: str = "train", config: dict | None = None,
                 max_seconds: float | None = None, log_every: int = 50, timing_warmup: int = 0,
                 checkpoint_seconds: float | None = None):
        self.model, self.opt, self.seed, self.device = model, optimizer, seed, device
        self.timing_warmup = max(0, int(timing_warmup))  # steps left out of the "timed" figures
        self.clip, self.dir, self.every, self.tag = clip, checkpoint_dir, checkpoint_every, tag
        self.every_seconds = float(checkpoint_seconds) if checkpoint_seconds else None
        self.writer = CheckpointWriter(self.path) if self.path is not None else None
        self.config_hash = config_hash(config or {})
        self.max_seconds = max_seconds
        self.precision = precision or Precision(device)
        self.scaler = self.precision.scaler()
        self.log_every = max(1, int(log_every))
        self.history: list[dict[str, float]] = []
        self.step = 0
        self.elapsed = 0.0  # training seconds before this process (from the checkpoint)
        self.stats: dict[str, Any] = {}

    @property
    def path(self) -> Path | None:
        return self.dir / f"{self.tag}_last.pt" if self.dir else None

    def snapshot(self, elapsed: float) -> dict[str, Any]:
        """The checkpoint's content, copied to host memory (the one sync a checkpoint costs the
        training thread)."""
        return cpu_copy({"model": self.model.state_dict(), "optimizer": self.opt.state_dict(),
                         "scaler": self.scaler.state_dict(), "step": self.step, "history": list(self.history),
                         "elapsed": float(elapsed), "config_hash": self.config_hash})

    def save(self, elapsed: float, wait: bool = True) -> bool:
        """Hand a snapshot to the background writer (the one rolling file ``path``); ``wait``:
        until it is on disk (the end of a stage). False when a write was still in flight."""
        if self.writer is None:
            return False
        if wait:
            self.writer.wait()
        ok = self.writer.submit(self.snapshot(elapsed))
        if wait:
            self.writer.wait()
        return ok

    def resume(self) -> bool:
        if self.path is None or not self.path.exists():
            return False
        try:
            state = torch.load(self.path, map_location=self.device, weights_only=True)
        except Exception as e:  # noqa: BLE001 - a truncated or foreign file gets one clear message
            raise BadInput(f"cannot be read as a training checkpoint ({type(e).__name__})", self.path,
                           "delete it to train this stage from scratch") from None
        if state.get("config_hash") != self.config_hash:
            raise BadInput("is a training checkpoint of another config", self.path,
                           "delete it to train from scratch, or run with the config that made it")
        self.model.load_state_dict(state["model"])
        self.opt.load_state_dict(state["optimizer"])
        if state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
        self.step, self.history = int(state["step"]), list(state["history"])
        self.elapsed = float(state.get("elapsed", 0.0))
        return True

    def run(self, steps: int, loss_fn: Callable[[Any], torch.Tensor], desc: str = "train",
            batch_fn: Callable[[int], Any] | None = None, prefetch: bool = False) -> list[dict[str, float]]:
        from concurrent.futures import ThreadPoolExecutor

        from bgbench.execution.progress import bar as progress_bar

        batch_fn = batch_fn or (lambda step: step)
        self.resume()
        t0, first = time.perf_counter(), self.step
        t_warm, wait_warm = t0, 0.0
        budget = None if self.max_seconds is None else float(self.max_seconds) - self.elapsed
        bar = progress_bar(total=steps, initial=self.step, desc=desc, unit="step", disable=None, leave=False)
        pending: list[torch.Tensor] = []
        wait = 0.0
        ckpt = 0.0  # seconds the training thread spent on checkpoints (snapshots to host memory)
        last_ckpt = t0
        # one fork of torch's global random state around the loop (the steps' seeding and dropout
        # draw from it), so the caller's state is as it was after training
        with torch_rng(device=self.device):
            pool = ThreadPoolExecutor(1, thread_name_prefix="bgbench-prefetch") if prefetch else None
            nxt = pool.submit(batch_fn, self.step) if pool and self.step < steps else None
            self.model.train()
            try:
                while self.step < steps and (budget is None or time.perf_counter() - t0 < budget):
                    tw = time.perf_counter()
                    if pool is not None:
                        batch = nxt.result()  # type: ignore[union-attr]  # with a pool, the next batch is submitted
                        nxt = pool.submit(batch_fn, self.step + 1) if self.step + 1 < steps else None
                    else:
                        batch = batch_fn(self.step)
                    wait += time.perf_counter() - tw
                    seed_torch(self.seed * 1_000_003 + self.step, self.device)  # dropout etc.: a function of the step
                    with self.precision.autocast():
                        loss = loss_fn(batch)
                    self.opt.zero_grad(set_to_none=True)
                    self.scaler.scale(loss).backward()
                    self.scaler.unscale_(self.opt)
                    torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.clip)
                    self.scaler.step(self.opt)
                    self.scaler.update()
                    self.step += 1
                    pending.append(loss.detach().float())
                    bar.update(1)
                    if self.step - first == self.timing_warmup and self.timing_warmup:
                        synchronize(self.device)
                        t_warm, wait_warm = time.perf_counter(), wait
                    now = time.perf_counter()
                    due = self.writer is not None and (
                        (self.every and self.step % self.every == 0)
                        or (self.every_seconds is not None and now - last_ckpt >= self.every_seconds))
                    if len(pending) >= self.log_every or due:
                        self._flush(pending, bar)
                    if due and not self.writer.busy:  # type: ignore[union-attr]  # due: a writer; a write in flight: try again next step
                        self.save(self.elapsed + now - t0, wait=False)
                        last_ckpt = time.perf_counter()
                        ckpt += last_ckpt - now
            except BaseException:
                bar.close()  # a failed or interrupted stage leaves no progress line printing on
                raise
            finally:
                if pool is not None:
                    pool.shutdown(wait=True, cancel_futures=True)
                if self.writer is not None:  # a write in flight finishes (its file whole) before we go on
                    self.writer.wait(raise_error=False)
        self._flush(pending, bar)
        synchronize(self.device)
        t_end = time.perf_counter()
        # steps are the budget: a stage that ends short of them was stopped by the clock
        self.stopped_by = "steps" if self.step >= steps else "max_train_seconds"
        seconds = t_end - t0
        bar.close()
        before = self.elapsed
        self.elapsed += seconds  # a later run() of this trainer, checkpointed or not, counts this time too
        t_save = time.perf_counter()
        self.save(self.elapsed)
        final = time.perf_counter() - t_save
        ckpt += final
        timed = max(0, self.step - first - self.timing_warmup)
        timed_s = t_end - t_warm if timed else 0.0
        self.stats = {"steps": self.step - first, "seconds": seconds, "resumed_seconds": before,
                      "steps_configured": int(steps), "steps_trained": int(self.step), "stopped_by": self.stopped_by,
                      "data_wait_seconds": wait,
                      "data_wait_fraction": wait / seconds if seconds > 0 else 0.0,
                      "checkpoint_seconds": ckpt,  # snapshots in the loop and the stage's final save
                      "checkpoint_fraction": ckpt / (seconds + final) if seconds + final > 0 else 0.0,
                      "checkpoints_written": self.writer.written if self.writer else 0,
                      "checkpoint_write_seconds": self.writer.seconds if self.writer else 0.0,
                      "timed_steps": timed, "timed_seconds": timed_s,
                      "timed_data_wait_fraction": (wait - wait_warm) / timed_s if timed_s > 0 else 0.0}
        self.model.eval()
        return self.history

    def _flush(self, pending: list[torch.Tensor], bar) -> None:
        """Read the pending losses back in one copy; refuse a run whose losses are all
        non-finite over a window (the gradient scaler would skip every step silently)."""
        if not pending:
            return
        values = torch.stack(pending).cpu().tolist()
        first = self.step - len(values) + 1
        self.history.extend({"step": first + k, f"{self.tag}_loss": v} for k, v in enumerate(values))
        pending.clear()
        finite = [v for v in values if math.isfinite(v)]
        if len(values) >= 8 and not finite:
            raise FloatingPointError(f"{self.tag}: the last {len(values)} training losses are all non-finite "
                                     f"(steps {first}-{self.step}); lower the learning rate or run with amp=off")
        if finite:
            bar.set_postfix_str(f"loss {finite[-1]:.4f}")


def config_hash(config: dict) -> str:
    return hashlib.sha1(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()[:16]


# --- the deep method base -------------------------------------------------------------------
# Parameters every deep method has (a method's own ``params`` may override a default).
DEEP_PARAMS: dict[str, Any] = {
    "infer_batch": (8, "frames per inference batch (separate from the training batch)", "[1, 4096]"),
    "amp": ("auto", "mixed precision: auto (on with CUDA), on (also on the CPU), off", AMP),
    "amp_dtype": ("auto", "autocast dtype: auto (bfloat16 on a GPU that supports it, else float16), float16 (with "
                          "loss scaling: one host sync per step) or bfloat16 (no scaler)", AMP_DTYPES),
    "resident": ("auto", "training data on the device: auto (when it fits in half the free memory), on, off "
                         "(pinned host memory and a prefetching loader)", RESIDENT),
    "max_train_seconds": Param(None, "stop each training stage after this many seconds, resumes included "
                                     "(none: no limit); a stage it stops short of its steps makes the job "
                                     "'truncated', not ok, unless the run passes --accept-truncated",
                               interval="(0, inf)", kind="number"),
    "checkpoint_minutes": (10.0, "minutes of training between checkpoints into each stage's one rolling file, "
                                 "written off the training thread (0: only at the end of a stage)", "[0, inf)"),
    "checkpoint_every": (0, "also checkpoint every this many steps (0: by time only)", "[0, inf)"),
    "compile": ("off", "torch.compile the training step's forward and loss with this backend: off, inductor (CUDA: "
                       "fewer launches for launch-bound methods), cudagraphs, or aot_eager (no code generation; the "
                       "CPU test's)", ("off", "inductor", "cudagraphs", "aot_eager")),
    "weights": Param(None, "a trained model of this method (its bgbench checkpoint, or a state dict by module "
                           "name), loaded with weights_only: evaluated as is, not trained here", kind="weights"),
}


class DeepMethod(Method):
    """Base for deep methods: torch device and seeding, the precision policy, checkpoint
    state carrying the config, parameter count and FLOPs, batched inference helpers."""

    family = "deep"
    trains = True
    gpu_capable = True
    requires = "torch: pip install torch==2.13.0 (the CPU wheel; README, 'Two commands')"
    stage_steps: ClassVar[tuple[str, ...]] = ()  # the parameters that set each training stage's steps

    def __init_subclass__(cls, **kw: Any):
        super().__init_subclass__(**kw)
        cls.params = {**DEEP_PARAMS, **cls.params}

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.batch_size = int(self.p.get("batch_size", 1))
        self.infer_batch = max(1, int(self.p["infer_batch"]))
        self.warmup_frames = self.infer_batch  # the first batch's yields carry its whole compute
        self.amp = Precision(self.device, str(self.p["amp"]), str(self.p["amp_dtype"]))
        self.precision = self.amp.name
        self.timing_warmup = 0  # training steps a speed run leaves out of its timed figures
        with torch_rng(self.seed, self.device):  # the weights: a function of the seed; the caller's RNG untouched
            self.build()
        self.model_weights_loaded: dict[str, Any] | None = None
        if self.p.get("weights"):  # a whole trained model: evaluated as is, ``fit`` is not called by the runner
            self.model_weights_loaded = load_model_weights(self, str(self.p["weights"]))
            self.pretrained = str(self.p["weights"])
        self._layout()

    def build(self) -> None:
        raise NotImplementedError

    def foreign_weights(self, flat: dict[str, torch.Tensor], path: str
                        ) -> tuple[str, dict[str, torch.Tensor]] | None:
        """A whole-model file written in another layout (an author's released checkpoint,
        converted to ``{name: tensor}``): (the layout's name, the tensors under this method's
        ``module.key`` names and layouts); None when ``flat`` is not such a layout (it is then
        read as bgbench's own). Nothing by default; crossnet maps the HOFAM authors' TensorFlow
        names."""
        return None

    def load_extra(self, state: dict[str, Any]) -> None:
        """Non-tensor state of a whole-model file (``weights``) that the method keeps beside its
        modules (siamese_fcn: each video's background frame); nothing by default."""

    def modules(self) -> dict[str, nn.Module]:
        raise NotImplementedError

    def _layout(self) -> None:
        """Channels-last memory on CUDA (faster convolutions under AMP), after building and
        after loading a checkpoint alike."""
        if self.device.startswith("cuda"):
            for m in self.modules().values():
                m.to(memory_format=torch.channels_last)  # type: ignore[call-overload]  # torch's stubs omit it

    def state_dict(self) -> dict[str, Any]:
        return {"config": self.config, "config_hash": config_hash(self.p),
                **{k: m.state_dict() for k, m in self.modules().items()}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state.get("config_hash") != config_hash(self.p):
            raise BadInput(f"checkpoint of config {state.get('config')!r} with other parameters", self.name,
                           f"load a checkpoint made with --config {self.config} and the same --set values")
        for k, m in self.modules().items():
            m.load_state_dict(state[k])
        self._layout()

    def trainer(self, model: nn.Module, lr: float, tag: str, betas=(0.9, 0.999), params=None, **kw: Any) -> Trainer:
        """A Trainer with the config's optimiser: Adam by default, SGD (momentum 0.9, the
        config's weight decay) where ``optimizer`` is ``sgd``."""
        params = list(model.parameters()) if params is None else params
        if self.p.get("optimizer", "adam") == "sgd":
            opt: torch.optim.Optimizer = torch.optim.SGD(params, lr=lr, momentum=0.9,
                                                         weight_decay=float(self.p.get("weight_decay", 0.0)))
        else:
            opt = torch.optim.Adam(params, lr=lr, betas=betas, weight_decay=float(self.p.get("weight_decay", 0.0)))
        return Trainer(model, opt, seed=self.seed, device=self.device, precision=self.amp, tag=tag, config=self.p,
                       checkpoint_dir=Path(self.workdir) if self.workdir else None,
                       checkpoint_every=int(self.p["checkpoint_every"]),
                       checkpoint_seconds=60.0 * float(self.p["checkpoint_minutes"]) or None,
                       max_seconds=self.p["max_train_seconds"], timing_warmup=self.timing_warmup, **kw)

    def train_stage(self, tr: Trainer, steps: int, loss_fn: Callable[[Any], torch.Tensor], desc: str,
                    batch_fn: Callable[[int], Any] | None = None, bank: Bank | None = None,
                    images_per_step: int = 1) -> list[dict[str, float]]:
        """Run one training stage and keep its throughput figures in ``train_stats``."""
        if self.p.get("compile", "off") != "off":  # one graph per stage; the optimiser step stays eager
            loss_fn = torch.compile(loss_fn, backend=str(self.p["compile"]), dynamic=False)
        hist = tr.run(steps, loss_fn, desc, batch_fn=batch_fn, prefetch=bool(bank and bank.prefetch))
        self.train_stats[tr.tag] = {**tr.stats, "images_per_step": images_per_step,
                                    "resident": bool(bank.resident) if bank else True,
                                    "bank_bytes": bank.nbytes if bank else 0}
        return hist

    def bank(self, arrays: dict[str, Any]) -> Bank:
        return Bank(arrays, self.device, str(self.p["resident"]))

    @contextmanager
    def infer(self):
        """The inference context: no gradients, the method's autocast policy."""
        with torch.no_grad(), self.amp.autocast():
            yield


def native(prob: torch.Tensor, shape: tuple[int, int], on_device: bool = False) -> np.ndarray | torch.Tensor:
    """N x 1 x h x w probabilities -> N x H x W float32 at the video's native size (resized
    on the device, one copy back per batch). ``on_device`` (``Method.device_maps``, set by
    the run loop): the maps stay a tensor on the device, scored there (bgbench.scoring.device)."""
    prob = prob.float()
    if prob.shape[-2:] != tuple(shape):
        prob = F.interpolate(prob, size=shape, mode="bilinear", align_corners=False)
    out = prob[:, 0].clamp(0, 1)
    return out if on_device else out.cpu().numpy()


def batches(ids: Sequence[int], size: int) -> Iterator[list[int]]:
    ids = list(ids)
    for k in range(0, len(ids), size):
        yield ids[k:k + size]


# VGG16's convolution layers: (channels, convs) per block; pools between blocks
VGG16 = ((64, 2), (128, 2), (256, 3), (512, 3), (512, 3))


def vgg_layers(cin: int, width: float, blocks: Sequence[tuple[int, int]], pools: Sequence[int],
               dilation_from: int | None = None) -> nn.Sequential:
    """VGG16-style 3x3 conv + ReLU blocks with channels scaled by ``width``; a 2x2 max-pool
    after each block index in ``pools``; blocks from ``dilation_from`` on use dilation 2
    (DeepLab-LargeFOV keeps pool4/pool5 at stride 1 and dilates conv5 instead)."""
    layers: list[nn.Module] = []
    for b, (c, n) in enumerate(blocks):
        c = max(4, int(round(c * width)))
        dil = 2 if dilation_from is not None and b >= dilation_from else 1
        for _ in range(n):
            layers += [nn.Conv2d(cin, c, 3, padding=dil, dilation=dil), nn.ReLU(inplace=True)]
            cin = c
        if b in pools:
            layers.append(nn.MaxPool2d(2))
    return nn.Sequential(*layers)


# --- a whole trained model from a file ------------------------------------------------------
def _flat_state(state: Any, modules: Sequence[str]) -> dict[str, torch.Tensor]:
    """``{module.key: tensor}`` of a whole-model file in any form bgbench writes: a task
    checkpoint (``{"state": method.state_dict(), ...}``), a method's ``state_dict()``
    (``{module: {key: tensor}}``), or a flat state dict keyed ``module.key`` (``module.`` of
    DataParallel stripped)."""
    if isinstance(state, dict) and isinstance(state.get("state"), dict):
        state = state["state"]
    flat: dict[str, torch.Tensor] = {}
    if not isinstance(state, dict):
        return flat
    for k, v in state.items():
        if isinstance(v, dict) and k in modules:
            flat.update({f"{k}.{kk}": t for kk, t in v.items() if torch.is_tensor(t)})
        elif torch.is_tensor(v):
            flat[k[len("module."):] if k.startswith("module.") else k] = v
    return flat


def load_model_weights(method: "DeepMethod", path: str) -> dict[str, Any]:
    """Load a whole trained model of ``method`` from ``path`` (``torch.load`` with
    ``weights_only=True``, on the CPU, then copied): every tensor of the method's modules is
    taken from the file by name (``module.key``) and shape. Returns ``{"loaded": k, "total":
    n}``. BadInput naming the file when it cannot be read, when it is a VGG16 file (that is
    ``vgg_weights``), or when no tensor matches; a file that fills only some tensors is
    refused too (the rest would be untrained), with the first mismatches named."""
    try:
        raw = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - a missing, foreign or unsafe file: one clear message
        raise BadInput(f"cannot be read as a model file ({type(e).__name__}: {str(e)[:200]})", path,
                       f"give a checkpoint bgbench wrote for {method.name} (OUT/checkpoints/...) or its state dict")
    mods = method.modules()
    flat = _flat_state(raw, list(mods))
    mapped = method.foreign_weights(flat, path)
    if mapped is not None:
        flat = mapped[1]
    want = {f"{name}.{k}": t for name, m in mods.items() for k, t in m.state_dict().items()}
    if flat and all(k.startswith("features.") for k in flat) and hasattr(method, "p") and "vgg_weights" in method.p:
        raise BadInput("is a VGG16 state dict (features.*), not a whole model", path,
                       f"give it as {method.name}.vgg_weights=FILE (the VGG16 front), or give a whole {method.name} model")
    matched = [k for k, t in want.items() if k in flat and tuple(flat[k].shape) == tuple(t.shape)]
    wrong = [f"{k} {tuple(flat[k].shape)} vs {tuple(want[k].shape)}" for k in want if k in flat and k not in matched]
    if len(matched) < len(want):
        what = "no tensor" if not matched else f"{len(matched)} of {len(want)} tensors"
        detail = f" (shape mismatches: {', '.join(wrong[:3])})" if wrong else \
            f" (missing, e.g. {', '.join(k for k in want if k not in flat)[:200]})"
        raise BadInput(f"holds {what} of {method.name}'s model under its names and shapes{detail}", path,
                       f"give a model of {method.name} written with the same config (--config {method.config} and "
                       "the same size parameters)")
    with torch.no_grad():
        for name, m in mods.items():
            sd = m.state_dict()
            for k, t in sd.items():
                t.copy_(flat[f"{name}.{k}"].to(t.dtype))
    state = raw.get("state", raw) if isinstance(raw, dict) else {}
    if isinstance(state, dict):
        method.load_extra(state)
    return {"loaded": len(matched), "total": len(want), **({"mapped_from": mapped[0]} if mapped is not None else {})}
