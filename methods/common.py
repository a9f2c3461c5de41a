"""What the deep methods share: building blocks, losses, targets from CDnet codes,
deterministic training samplers, one trainer, and the deep Method base class.

The trainer is seeded per step (the batch of step s depends only on the seed and s), so a
run resumed from a checkpoint takes exactly the steps the uninterrupted run would have
taken. On CUDA it uses automatic mixed precision and channels-last memory; everywhere it
clips gradients, checkpoints every ``checkpoint_every`` steps into the run folder, resumes
from the last checkpoint, shows a progress bar and keeps the loss history for MLflow.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np
import torch
from torch import nn
import torch.nn.functional as F

from benchmark import codes
from benchmark.errors import BadInput
from benchmark.method import Method
from benchmark.video import VideoView


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
def targets(gt: np.ndarray, roi: np.ndarray, ignore_shadow: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """(target 0/1 float32, valid bool) from CDnet codes: 255 is foreground, 0 (and 50 unless
    ``ignore_shadow``) background; 85, 170 and pixels outside the ROI are ignored."""
    target = (gt == codes.MOTION).astype(np.float32)
    valid = (gt == codes.MOTION) | (gt == codes.STATIC)
    if not ignore_shadow:
        valid |= gt == codes.SHADOW
    return target, valid & roi


def resize_labels(gt: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """CDnet codes at another (width, height): nearest neighbour, so no code is invented."""
    import cv2

    return gt if gt.shape[::-1] == tuple(size) else cv2.resize(gt, tuple(size), interpolation=cv2.INTER_NEAREST)


def targets_at(item, fid: int, size: tuple[int, int], ignore_shadow: bool, gt: np.ndarray | None = None
               ) -> tuple[np.ndarray, np.ndarray]:
    """``targets`` of a training frame at the method's input size (``gt``: already resized
    ground truth, e.g. after copy-paste)."""
    gt = resize_labels(item.gt(fid), size) if gt is None else gt
    roi = resize_labels(item.view.roi.astype(np.uint8), size) > 0
    return targets(gt, roi, ignore_shadow)


def masked_bce(prob: torch.Tensor, target: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    loss = F.binary_cross_entropy(prob.clamp(1e-6, 1 - 1e-6), target, reduction="none")
    return (loss * valid).sum() / valid.sum().clamp(min=1)


def masked_ce(logits: torch.Tensor, target: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Two-class cross-entropy (N x 2 x H x W logits) over valid pixels only."""
    loss = F.cross_entropy(logits, target.long(), reduction="none")
    return (loss * valid).sum() / valid.sum().clamp(min=1)


def focal(prob: torch.Tensor, target: torch.Tensor, valid: torch.Tensor, alpha: float = 0.75, gamma: float = 0.0,
          fg_scale: float | torch.Tensor = 1.0) -> torch.Tensor:
    p = prob.clamp(1e-6, 1 - 1e-6)
    fg = -alpha * (1 - p) ** gamma * torch.log(p) * target * fg_scale
    bg = -(1 - alpha) * p ** gamma * torch.log(1 - p) * (1 - target)
    return ((fg + bg) * valid).sum() / valid.sum().clamp(min=1)


# --- sampling -----------------------------------------------------------------------------
def step_rng(seed: int, step: int, salt: str = "") -> np.random.Generator:
    """The random stream of one training step: a function of (seed, step) only."""
    h = int(hashlib.sha1(f"{seed}|{step}|{salt}".encode()).hexdigest()[:12], 16)
    return np.random.default_rng(h)


def reference_pool(view: VideoView, train_frames: Sequence[int]) -> list[int]:
    """Frames whose images may serve as references: the unlabelled part of the video,
    else its training frames (never a test frame's ground truth: images only)."""
    return list(view.unlabelled_frames) or list(train_frames)


def to_tensor(frames_bgr: np.ndarray, device: str) -> torch.Tensor:
    """N x H x W x 3 uint8 BGR -> N x 3 x H x W float in [0, 1], RGB."""
    x = torch.from_numpy(np.ascontiguousarray(frames_bgr[..., ::-1])).to(device)
    return x.permute(0, 3, 1, 2).float().div_(255.0)


# --- the trainer --------------------------------------------------------------------------
class Trainer:
    """Runs ``steps`` optimisation steps of ``loss_fn(step) -> loss tensor``."""

    def __init__(self, model: nn.Module, optimizer: torch.optim.Optimizer, *, seed: int, device: str,
                 clip: float = 5.0, checkpoint_dir: Path | None = None, checkpoint_every: int = 200,
                 tag: str = "train", config: dict | None = None, max_seconds: float | None = None):
        self.model, self.opt, self.seed, self.device = model, optimizer, seed, device
        self.clip, self.dir, self.every, self.tag = clip, checkpoint_dir, checkpoint_every, tag
        self.config_hash = config_hash(config or {})
        self.max_seconds = max_seconds
        self.cuda = device.startswith("cuda")
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.cuda)
        self.history: list[dict[str, float]] = []
        self.step = 0
        if self.cuda:
            self.model.to(memory_format=torch.channels_last)

    @property
    def path(self) -> Path | None:
        return self.dir / f"{self.tag}_last.pt" if self.dir else None

    def save(self) -> None:
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        torch.save({"model": self.model.state_dict(), "optimizer": self.opt.state_dict(), "step": self.step,
                    "history": self.history, "config_hash": self.config_hash}, tmp)
        os.replace(tmp, self.path)

    def resume(self) -> bool:
        if self.path is None or not self.path.exists():
            return False
        state = torch.load(self.path, map_location=self.device, weights_only=True)
        if state.get("config_hash") != self.config_hash:
            raise BadInput("is a training checkpoint of another config", self.path,
                           "delete it to train from scratch, or run with the config that made it")
        self.model.load_state_dict(state["model"])
        self.opt.load_state_dict(state["optimizer"])
        self.step, self.history = int(state["step"]), list(state["history"])
        return True

    def run(self, steps: int, loss_fn: Callable[[int], torch.Tensor], desc: str = "train") -> list[dict[str, float]]:
        from tqdm.auto import tqdm

        self.resume()
        t0 = time.perf_counter()
        bar = tqdm(total=steps, initial=self.step, desc=desc, unit="step", disable=None, leave=False)
        self.model.train()
        while self.step < steps:
            torch.manual_seed(self.seed * 1_000_003 + self.step)  # dropout etc.: a function of the step
            with torch.autocast("cuda", enabled=self.cuda):
                loss = loss_fn(self.step)
            self.opt.zero_grad(set_to_none=True)
            self.scaler.scale(loss).backward()
            self.scaler.unscale_(self.opt)
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.clip)
            self.scaler.step(self.opt)
            self.scaler.update()
            self.step += 1
            value = float(loss.detach())
            self.history.append({"step": self.step, f"{self.tag}_loss": value})
            bar.update(1)
            bar.set_postfix_str(f"loss {value:.4f}")
            if self.every and self.step % self.every == 0:
                self.save()
            if self.max_seconds is not None and time.perf_counter() - t0 > self.max_seconds:
                break
        bar.close()
        self.save()
        self.model.eval()
        return self.history


def config_hash(config: dict) -> str:
    return hashlib.sha1(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()[:16]


# --- the deep method base -------------------------------------------------------------------
class DeepMethod(Method):
    """Base for deep methods: torch device and seeding, checkpoint state carrying the config,
    parameter count and FLOPs, batched inference helpers."""

    family = "deep"
    trains = True
    gpu_capable = True

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        torch.manual_seed(self.seed)
        self.batch_size = int(self.p.get("batch_size", 1))
        self.warmup_frames = max(1, self.batch_size)  # the first batch's yields carry its whole compute
        self.precision = "amp-fp16" if self.device.startswith("cuda") else "float32"
        self.build()

    def build(self) -> None:
        raise NotImplementedError

    def modules(self) -> dict[str, nn.Module]:
        raise NotImplementedError

    def state_dict(self) -> dict[str, Any]:
        return {"config": self.config, "config_hash": config_hash(self.p),
                **{k: m.state_dict() for k, m in self.modules().items()}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state.get("config_hash") != config_hash(self.p):
            raise BadInput(f"checkpoint of config {state.get('config')!r} with other parameters", self.name,
                           f"load a checkpoint made with --config {self.config} and the same --set values")
        for k, m in self.modules().items():
            m.load_state_dict(state[k])

    def trainer(self, model: nn.Module, lr: float, tag: str, betas=(0.9, 0.999), params=None, **kw: Any) -> Trainer:
        """A Trainer with the config's optimiser: Adam by default, SGD (momentum 0.9, the
        config's weight decay) where ``optimizer`` is ``sgd``."""
        params = list(model.parameters()) if params is None else params
        if self.p.get("optimizer", "adam") == "sgd":
            opt = torch.optim.SGD(params, lr=lr, momentum=0.9, weight_decay=float(self.p.get("weight_decay", 0.0)))
        else:
            opt = torch.optim.Adam(params, lr=lr, betas=betas, weight_decay=float(self.p.get("weight_decay", 0.0)))
        return Trainer(model, opt, seed=self.seed, device=self.device, tag=tag, config=self.p,
                       checkpoint_dir=Path(self.workdir) if self.workdir else None,
                       checkpoint_every=int(self.p.get("checkpoint_every", 200)),
                       max_seconds=self.p.get("max_train_seconds"), **kw)


def native(prob: torch.Tensor, shape: tuple[int, int]) -> np.ndarray:
    """N x 1 x h x w probabilities -> N x H x W float32 at the video's native size."""
    if prob.shape[-2:] != tuple(shape):
        prob = F.interpolate(prob.float(), size=shape, mode="bilinear", align_corners=False)
    return prob[:, 0].float().clamp(0, 1).cpu().numpy()


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


def load_vgg_weights(module: nn.Module, path: str | None) -> None:
    """Optional local pretrained weights (a state dict, loaded with weights_only=True):
    every tensor whose shape matches, in order, is copied; nothing is downloaded."""
    if not path:
        return
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001
        raise BadInput(f"cannot be read as a state dict ({type(e).__name__}: {e})", path,
                       "give a torch state dict of VGG16 convolution weights") from None
    src = [v for v in state.values() if hasattr(v, "shape")]
    dst = [p for p in module.state_dict().values()]
    k = 0
    with torch.no_grad():
        for t in dst:
            while k < len(src) and tuple(src[k].shape) != tuple(t.shape):
                k += 1
            if k == len(src):
                break
            t.copy_(src[k])
            k += 1
