"""Siamese FCN (papers/003, in Chinese; METHODS.md summarises it).

Step 1: a fully-convolutional siamese network (a shared VGG16/DeepLabv2 front: its first 10
conv layers, two 2x2 pools, so 512 channels at 1/4 size) maps a background image and the
target image to features; an SPP-like head (3x3 and 5x5 pooling that keep the size,
concatenated with the input, 1x1 conv) refines them; the per-location Euclidean distance is
the similarity map. Contrastive loss over three pixel classes from overlaying the two
frames' ground truths (Y=0 foreground in one only, 1 foreground in both, 2 background):
L = 1/(2N) sum[(Y/2) D^2 + (1 - Y/2) max(m - D, 0)^2] + C(Y), C(Y) = (1 - Y) / tau.
Step 2: the distance map, rounded (to steps of ``round_step``) and upsampled to full size,
is added to the target image and normalised; a U-Net-like encoder-decoder (transposed
convs, skip concat) gives the mask; BCE. The steps train separately. Paper: SGD, weight
decay 5e-4, lr 1e-5, batch 4.

Deviations (METHODS.md): the background image is the training frame with the least
foreground (the paper picks it among test frames by their ground truth); a video with no
training frames (transfer) uses the per-pixel median of up to 50 of its frames (images
only). Features are L2-normalised per location, so D lies in [0, 2] and the margin m is 1;
tau = 1.5. Frames are resized to the input size and the probability back.
"""

from __future__ import annotations

from typing import Any, Iterator, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from benchmark.method import register_method
from benchmark.video import TrainingSet, VideoView

from .common import (VGG16, DeepMethod, UNet, batches, count_params, flops, load_vgg_weights, masked_bce, native,
                     step_rng, targets_at, to_tensor, vgg_layers)


class SiameseBranch(nn.Module):
    def __init__(self, width: float):
        super().__init__()
        self.front = vgg_layers(3, width, VGG16[:4], pools=(0, 1))  # 10 convs, 1/4 size
        c = max(4, int(round(512 * width)))
        self.head = nn.Conv2d(3 * c, c, 1)

    def forward(self, x):
        f = self.front(x)
        p3 = F.max_pool2d(F.pad(f, (1, 1, 1, 1), mode="replicate"), 3, stride=1)
        p5 = F.max_pool2d(F.pad(f, (2, 2, 2, 2), mode="replicate"), 5, stride=1)
        return F.normalize(self.head(torch.cat([f, p3, p5], 1)), dim=1)


def distance(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return torch.sqrt(((a - b) ** 2).sum(1, keepdim=True) + 1e-8)


def contrastive(d: torch.Tensor, y: torch.Tensor, valid: torch.Tensor, margin: float = 1.0, tau: float = 1.5):
    per = (y / 2) * d ** 2 + (1 - y / 2) * torch.clamp(margin - d, min=0) ** 2 + (1 - y) / tau
    return (per * valid).sum() / (2 * valid.sum().clamp(min=1))


@register_method("siamese_fcn")
class SiameseFCN(DeepMethod):
    """Siamese FCN: VGG16 front, SPP head, distance map, then a U-Net mask (papers/003)"""

    default_protocol = "scene-specific"
    protocol_options = {"rule": "fraction:0.3,val:0.1"}
    paper_protocols = (("transfer", {"source": ("CDnet2014",), "target": ("SBI2015/-/HighwayI",)}),)
    params = {
        "width": (1.0, "VGG16 channel multiplier (1: 64..512)"),
        "unet_base": (32, "U-Net first-block channels"),
        "unet_depth": (4, "U-Net pooling steps"),
        "input_width": (320, "input width"),
        "input_height": (240, "input height"),
        "margin": (1.0, "contrastive margin m (features are unit length)"),
        "round_step": (0.1, "the distance map is rounded to multiples of this before fusion"),
        "optimizer": ("sgd", "sgd (paper) or adam"),
        "weight_decay": (5e-4, "weight decay"),
        "lr": (1e-5, "learning rate of both steps"),
        "steps1": (10000, "siamese training steps"),
        "steps2": (10000, "U-Net training steps"),
        "batch_size": (4, "pairs per step and frames per inference batch"),
        "weights": (None, "optional local VGG16 state dict for the front (weights_only); none by default"),
        "max_train_seconds": (None, "stop each step after this many seconds (None: no limit)"),
        "checkpoint_every": (200, "steps between training checkpoints"),
    }
    configs = {
        "paper": {},
        "cpu": {"width": 0.125, "unet_base": 8, "unet_depth": 3, "input_width": 160, "input_height": 120,
                "optimizer": "adam", "weight_decay": 0.0, "lr": 1e-3, "steps1": 400, "steps2": 1200,
                "max_train_seconds": 200.0},
        "smoke": {"width": 0.0625, "unet_base": 4, "unet_depth": 2, "input_width": 64, "input_height": 48,
                  "optimizer": "adam", "weight_decay": 0.0, "lr": 1e-3, "steps1": 3, "steps2": 3, "batch_size": 2},
    }

    @property
    def input_size(self) -> tuple[int, int]:  # type: ignore[override]
        return int(self.p["input_width"]), int(self.p["input_height"])

    def build(self) -> None:
        self.branch = SiameseBranch(float(self.p["width"])).to(self.device)
        load_vgg_weights(self.branch.front, self.p["weights"])
        self.unet = UNet(3, 1, int(self.p["unet_base"]), int(self.p["unet_depth"])).to(self.device)
        self.bg_frames: dict[str, int] = {}
        self._bg_cache: dict[str, torch.Tensor] = {}

    def modules(self) -> dict[str, nn.Module]:
        return {"branch": self.branch, "unet": self.unet}

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "bg_frames": dict(self.bg_frames)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.bg_frames = {k: int(v) for k, v in state.get("bg_frames", {}).items()}

    def describe(self) -> dict[str, Any]:
        w, h = self.input_size
        x = torch.zeros(1, 3, h, w, device=self.device)
        return {"parameters": {"siamese": count_params(self.branch), "unet": count_params(self.unet),
                               "total": count_params(self.branch) + count_params(self.unet)},
                "flops": {"siamese_per_frame": flops(self.branch, x), "unet_per_frame": flops(self.unet, x)},
                "input_size": f"{w}x{h}"}

    def _background(self, view: VideoView) -> torch.Tensor:
        if view.id not in self._bg_cache:
            size = self.input_size
            if view.id in self.bg_frames:
                img = view.frames([self.bg_frames[view.id]], size)
            else:
                ids = list(view.frame_ids)
                pick = [ids[int(i)] for i in np.linspace(0, len(ids) - 1, min(50, len(ids))).round()]
                img = np.median(view.frames(pick, size), axis=0).astype(np.uint8)[None]
            self._bg_cache[view.id] = to_tensor(img, self.device)
        return self._bg_cache[view.id]

    def _fuse(self, x: torch.Tensor, d: torch.Tensor) -> torch.Tensor:
        step = float(self.p["round_step"])
        d = torch.round(d / step) * step
        d = F.interpolate(d, size=x.shape[-2:], mode="bilinear", align_corners=False)
        fused = x + d
        return fused / fused.amax(dim=(1, 2, 3), keepdim=True).clamp(min=1e-6)

    def fit(self, train: TrainingSet) -> None:
        items = list(train.train)
        size = self.input_size
        for it in items:  # the background image: the training frame with the least foreground
            fg = [int((it.gt(f) == 255).sum()) for f in it.frames]
            self.bg_frames[it.view.id] = it.frames[int(np.argmin(fg))]
        self._bg_cache.clear()
        pool = [(it, f) for it in items for f in it.frames]
        bs = int(self.p["batch_size"])
        margin = float(self.p["margin"])

        def pairs(step: int, salt: str):
            rng = step_rng(self.seed, step, salt)
            return [pool[int(i)] for i in rng.integers(0, len(pool), bs)]

        def siamese_loss(step: int) -> torch.Tensor:
            total = 0.0
            for it, fid in pairs(step, "siamese"):
                bgid = self.bg_frames[it.view.id]
                x = to_tensor(it.view.frames([fid], size), self.device)
                fb, ft = self.branch(self._background(it.view)), self.branch(x)
                d = distance(fb, ft)
                hs = (d.shape[-1], d.shape[-2])
                t_t, v_t = targets_at(it, fid, hs, ignore_shadow=False)
                t_b, v_b = targets_at(it, bgid, hs, ignore_shadow=False)
                y = np.where((t_t > 0) & (t_b > 0), 1.0, np.where((t_t > 0) | (t_b > 0), 0.0, 2.0)).astype(np.float32)
                valid = torch.from_numpy((v_t & v_b).astype(np.float32))[None, None].to(self.device)
                total = total + contrastive(d, torch.from_numpy(y)[None, None].to(self.device), valid, margin)
            return total / bs

        tr = self.trainer(self.branch, float(self.p["lr"]), "siamese")
        self.history = tr.run(int(self.p["steps1"]), siamese_loss, "siamese step 1")
        self.branch.eval()

        def unet_loss(step: int) -> torch.Tensor:
            xs, ts, vs = [], [], []
            for it, fid in pairs(step, "unet"):
                x = to_tensor(it.view.frames([fid], size), self.device)
                with torch.no_grad():
                    d = distance(self.branch(self._background(it.view)), self.branch(x))
                xs.append(self._fuse(x, d))
                t, v = targets_at(it, fid, size, ignore_shadow=False)
                ts.append(torch.from_numpy(t))
                vs.append(torch.from_numpy(v.astype(np.float32)))
            prob = torch.sigmoid(self.unet(torch.cat(xs)))
            return masked_bce(prob, torch.stack(ts)[:, None].to(self.device), torch.stack(vs)[:, None].to(self.device))

        tr = self.trainer(self.unet, float(self.p["lr"]), "unet")
        self.history = self.history + tr.run(int(self.p["steps2"]), unet_loss, "siamese step 2")

    @torch.no_grad()
    def segment(self, video: VideoView, frames: Sequence[int]) -> Iterator[tuple[int, np.ndarray]]:
        self.branch.eval()
        self.unet.eval()
        fb = self.branch(self._background(video))
        for chunk in batches(sorted(frames), int(self.p["batch_size"])):
            x = to_tensor(video.frames(chunk, self.input_size), self.device)
            d = distance(fb.expand(len(chunk), -1, -1, -1), self.branch(x))
            prob = torch.sigmoid(self.unet(self._fuse(x, d)))
            for fid, p in zip(chunk, native(prob, video.shape)):
                yield fid, p
