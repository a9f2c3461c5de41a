"""BMN-BSN (papers/000): two nested U-Nets trained end to end. The Background Modeler
Network maps N reference frames of a scene (3N channels) to M background-model channels;
the Background Subtraction Network maps those M channels plus the target frame to two
classes (softmax). Cross-entropy ignores shadow, unknown and outside-ROI pixels. Each
training step takes one labelled target frame per batch item and N reference frames drawn
at random from the unlabelled part of the same video (before its temporal ROI).

Since the background model depends only on the scene, inference runs the BMN once per
video (N reference frames spread evenly over the unlabelled part) and caches it; the BSN
then runs per batch of frames. ``describe`` states the resulting speed-up from FLOPs.

Deviations (METHODS.md): the paper does not give the U-Net's depth; we use the original
U-Net's 4 pooling steps in ``paper`` (so 320x240 divides evenly). A video with no
unlabelled frames draws references from its training frames (images only). Frames are
resized to the input size and the foreground probability back to the native size.
"""

from __future__ import annotations

from typing import Any, Iterator, Sequence

import numpy as np
import torch
from torch import nn

from benchmark.method import register_method
from benchmark.video import TrainingSet, VideoView

from .common import (DeepMethod, UNet, batches, count_params, flops, masked_ce, native, reference_pool,
                     step_rng, targets_at, to_tensor)


@register_method("bmn_bsn")
class BMNBSN(DeepMethod):
    """BMN-BSN: background-modelling U-Net nested with a segmentation U-Net (papers/000)"""

    default_protocol = "cross-scene"
    protocol_options = {"folds": 3, "exclude": ("PTZ",)}
    params = {
        "N": (16, "reference frames into the BMN"),
        "M": (12, "background-model channels"),
        "K": (64, "channels of the first U-Net block (doubling per level)"),
        "depth": (4, "U-Net pooling steps (not given in the paper; the original U-Net's 4)"),
        "width": (320, "input width"),
        "height": (240, "input height"),
        "lr": (1e-5, "Adam learning rate"),
        "epochs": (5.0, "passes over the training target frames"),
        "steps": (0, "training steps; 0: epochs x target frames / batch"),
        "batch_size": (1, "target frames per step and per inference batch"),
        "max_train_seconds": (None, "stop training after this many seconds (None: no limit)"),
        "checkpoint_every": (200, "steps between training checkpoints"),
    }
    configs = {
        "paper": {},
        "cpu": {"N": 6, "M": 6, "K": 8, "depth": 3, "width": 160, "height": 120, "lr": 1e-3, "batch_size": 4,
                "steps": 1500, "max_train_seconds": 480.0},
        "smoke": {"N": 2, "M": 2, "K": 4, "depth": 2, "width": 64, "height": 48, "lr": 1e-3, "steps": 3},
    }

    @property
    def input_size(self) -> tuple[int, int]:  # type: ignore[override]
        return int(self.p["width"]), int(self.p["height"])

    def build(self) -> None:
        n, m, k, d = (int(self.p[x]) for x in ("N", "M", "K", "depth"))
        self.bmn = UNet(3 * n, m, k, d).to(self.device)
        self.bsn = UNet(m + 3, 2, k, d).to(self.device)
        self._model_cache: dict[str, torch.Tensor] = {}

    def modules(self) -> dict[str, nn.Module]:
        return {"bmn": self.bmn, "bsn": self.bsn}

    def describe(self) -> dict[str, Any]:
        w, h = self.input_size
        n, m = int(self.p["N"]), int(self.p["M"])
        f_bmn = flops(self.bmn, torch.zeros(1, 3 * n, h, w, device=self.device))
        f_bsn = flops(self.bsn, torch.zeros(1, m + 3, h, w, device=self.device))
        return {"parameters": {"bmn": count_params(self.bmn), "bsn": count_params(self.bsn),
                               "total": count_params(self.bmn) + count_params(self.bsn)},
                "flops": {"bmn": f_bmn, "bsn_per_frame": f_bsn,
                          "speedup_from_caching_the_background_model": (f_bmn + f_bsn) / f_bsn},
                "input_size": f"{w}x{h}"}

    def _refs(self, view: VideoView, pool: Sequence[int], rng: np.random.Generator | None) -> torch.Tensor:
        n = int(self.p["N"])
        if rng is None:  # inference: evenly spread
            idx = np.linspace(0, len(pool) - 1, n).round().astype(int)
        else:
            idx = rng.choice(len(pool), n, replace=len(pool) < n)
        x = to_tensor(view.frames([pool[i] for i in idx], self.input_size), self.device)  # N x 3 x h x w
        return x.reshape(1, -1, *x.shape[-2:])

    def _forward(self, refs: torch.Tensor, frames: torch.Tensor) -> torch.Tensor:
        model = self.bmn(refs)
        return self.bsn(torch.cat([model.expand(len(frames), -1, -1, -1), frames], 1))

    def fit(self, train: TrainingSet) -> None:
        items = list(train.train)
        pool = [(it, fid) for it in items for fid in it.frames]
        refs = {it.view.id: reference_pool(it.view, it.frames) for it in items}
        bs = int(self.p["batch_size"])
        steps = int(self.p["steps"]) or max(1, int(float(self.p["epochs"]) * len(pool) / bs))
        w, h = self.input_size
        joint = nn.ModuleDict({"bmn": self.bmn, "bsn": self.bsn})

        def loss(step: int) -> torch.Tensor:
            rng = step_rng(self.seed, step, "bmn-bsn")
            total = 0.0
            picks = [pool[int(i)] for i in rng.integers(0, len(pool), bs)]
            for item, fid in picks:  # one scene per item: its own references
                r = self._refs(item.view, refs[item.view.id], rng)
                x = to_tensor(item.view.frames([fid], (w, h)), self.device)
                t, v = targets_at(item, fid, (w, h), ignore_shadow=True)
                total = total + masked_ce(self._forward(r, x), torch.from_numpy(t)[None].to(self.device),
                                          torch.from_numpy(v.astype(np.float32))[None].to(self.device))
            return total / bs

        tr = self.trainer(joint, float(self.p["lr"]), "bmn_bsn")
        self.history = tr.run(steps, loss, "BMN-BSN")
        self._model_cache.clear()

    @torch.no_grad()
    def segment(self, video: VideoView, frames: Sequence[int]) -> Iterator[tuple[int, np.ndarray]]:
        self.bmn.eval()
        self.bsn.eval()
        if video.id not in self._model_cache:
            pool = reference_pool(video, video.frame_ids)
            self._model_cache[video.id] = self.bmn(self._refs(video, pool, None))
        model = self._model_cache[video.id]
        for chunk in batches(sorted(frames), max(1, int(self.p["batch_size"]))):
            x = to_tensor(video.frames(chunk, self.input_size), self.device)
            logits = self.bsn(torch.cat([model.expand(len(chunk), -1, -1, -1), x], 1))
            prob = torch.softmax(logits.float(), dim=1)[:, 1:2]
            for fid, p in zip(chunk, native(prob, video.shape)):
                yield fid, p
