"""BMN-BSN (papers/000): two nested U-Nets trained end to end. The Background Modeler
Network maps N reference frames of a scene (3N channels) to M background-model channels;
the Background Subtraction Network maps those M channels plus the target frame to two
classes (softmax). Cross-entropy ignores shadow, unknown and outside-ROI pixels. Each
training step takes one labelled target frame per batch item and N reference frames drawn
at random from the unlabelled part of the same video (before its temporal ROI).

Training passes over every target frame once per epoch, shuffled (a permutation per epoch
from the seed), as the paper does; ``epochs`` x target frames / batch steps in all. Training
frames, their label codes and each video's reference pool live on the device (``Bank``);
a step gathers its targets and references there.

Since the background model depends only on the scene, inference runs the BMN once per
video (N reference frames spread evenly over the unlabelled part) and caches it on the
device; the BSN then runs per batch of ``infer_batch`` frames (16 in ``paper``, where
training takes one target frame per step). ``describe`` states the resulting speed-up.

Deviations (METHODS.md): the paper does not give the U-Net's depth; we use the original
U-Net's 4 pooling steps in ``paper`` (so 320x240 divides evenly). Its protocol takes
CDnet-layout videos only (``formats``), as the paper's 3-fold cross-scene protocol is on
CDnet2014 alone: SBI2015 and UCSD have no unlabelled frames to draw references from. A
video with no unlabelled frames draws references from its training frames (images only). Frames are
resized to the input size and the foreground probability back to the native size.
"""

from __future__ import annotations

from typing import Any, Iterator, Sequence

import numpy as np
import torch
from torch import nn

from bgbench.method import register_method
from bgbench.data.video import TrainingSet, VideoView

from .common import (DeepMethod, UNet, as_float, batches, code_targets, count_params, epoch_rows, flops,
                     label_codes, masked_ce, native, reference_pool, step_rng, upload)


@register_method("bmn_bsn")
class BMNBSN(DeepMethod):
    """BMN-BSN: background-modelling U-Net nested with a segmentation U-Net (papers/000)"""

    stage_steps = ("steps",)
    default_protocol = "cross-scene"
    protocol_options = {"folds": 3, "exclude": ("PTZ",), "formats": ("cdnet2014", "cdnet2012")}
    params = {
        "N": (16, "reference frames into the BMN", "[1, inf)"),
        "M": (12, "background-model channels", "[1, inf)"),
        "K": (64, "channels of the first U-Net block (doubling per level)", "[1, inf)"),
        "depth": (4, "U-Net pooling steps (not given in the paper; the original U-Net's 4)", "[1, 8]"),
        "width": (320, "input width", "[8, inf)"),
        "height": (240, "input height", "[8, inf)"),
        "lr": (1e-5, "Adam learning rate", "(0, 1]"),
        "epochs": (5.0, "passes over the training target frames", "(0, inf)"),
        "steps": (0, "training steps; 0: epochs x target frames / batch", "[0, inf)"),
        "batch_size": (1, "target frames per training step", "[1, inf)"),
        "infer_batch": (16, "frames per inference batch", "[1, 4096]"),
    }
    configs = {
        "paper": {},
        "cpu": {"N": 6, "M": 6, "K": 8, "depth": 3, "width": 160, "height": 120, "lr": 1e-3, "batch_size": 4,
                "steps": 1500, "infer_batch": 8},
        "smoke": {"N": 2, "M": 2, "K": 4, "depth": 2, "width": 64, "height": 48, "lr": 1e-3, "steps": 3,
                  "infer_batch": 2},
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

    def training_plan(self, sizes: Sequence[tuple[int, int, int]]) -> list[dict[str, Any]]:
        """Training stages for ``bgbench run --dry-run`` (bgbench.dryrun): per stage its steps
        and the forward FLOPs of one step through trained and frozen modules, by the FLOP counter
        of ``describe``. ``sizes``: (width, height, frames) of each training video."""
        d = self.describe()["flops"]
        bs = int(self.p["batch_size"])
        rows = sum(n for *_, n in sizes)
        steps = int(self.p["steps"]) or max(1, int(float(self.p["epochs"]) * rows / bs))  # as fit counts them
        return [{"stage": "BMN-BSN", "steps": steps, "trained_flops": bs * (d["bmn"] + d["bsn_per_frame"]),
                 "frozen_flops": 0}]

    @staticmethod
    def _images(x: torch.Tensor) -> torch.Tensor:
        """... x h x w x 3 uint8 BGR on the device -> ... x 3 x h x w float RGB in [0, 1]."""
        return as_float(x.flip(-1).movedim(-1, -3))

    def _infer_refs(self, view: VideoView, pool: Sequence[int]) -> torch.Tensor:
        """1 x 3N x h x w: N reference frames spread evenly over the pool."""
        idx = np.linspace(0, len(pool) - 1, int(self.p["N"])).round().astype(int)
        x = as_float(upload(view.frames([pool[i] for i in idx], self.input_size), self.device))
        return x.reshape(1, -1, *x.shape[-2:])

    def _forward(self, refs: torch.Tensor, frames: torch.Tensor) -> torch.Tensor:
        model = self.bmn(refs)
        return self.bsn(torch.cat([model.expand(len(frames), -1, -1, -1), frames], 1))

    def fit(self, train: TrainingSet) -> None:
        items = list(train.train)
        size, n, bs = self.input_size, int(self.p["N"]), int(self.p["batch_size"])
        arrays = {"frames": np.concatenate([it.view.frames(it.frames, size) for it in items]),
                  "codes": np.concatenate([label_codes(it, it.frames, size) for it in items])}
        pools = [reference_pool(it.view, it.frames) for it in items]
        arrays.update({f"r{k}": it.view.frames(pool, size) for k, (it, pool) in enumerate(zip(items, pools))})
        data = self.bank(arrays)
        video_of = np.concatenate([np.full(len(it.frames), k) for k, it in enumerate(items)])
        rows_total = len(video_of)
        steps = int(self.p["steps"]) or max(1, int(float(self.p["epochs"]) * rows_total / bs))
        joint = nn.ModuleDict({"bmn": self.bmn, "bsn": self.bsn})

        def batch(step: int):
            rows = epoch_rows(self.seed, step, bs, rows_total, "bmn-bsn")
            rng = step_rng(self.seed, step, "bmn-bsn-refs")
            refs: list[torch.Tensor] = []
            for r in rows:  # each target frame with references of its own scene
                k = int(video_of[r])
                m = len(pools[k])
                refs.append(data.take(f"r{k}", rng.choice(m, n, replace=m < n)))  # N x h x w x 3
            stacked = self._images(torch.stack(refs))  # B x N x 3 x h x w
            x = self._images(data.take("frames", rows))
            return stacked.flatten(1, 2), x, *code_targets(data.take("codes", rows), ignore_shadow=True)

        def loss(b) -> torch.Tensor:
            refs, x, target, valid = b
            logits = self.bsn(torch.cat([self.bmn(refs), x], 1))
            return masked_ce(logits, target, valid)

        tr = self.trainer(joint, float(self.p["lr"]), "bmn_bsn")
        self.history = self.train_stage(tr, steps, loss, "BMN-BSN", batch, data, bs)
        self._model_cache.clear()

    def segment(self, video: VideoView, frames: Sequence[int]) -> Iterator[tuple[int, np.ndarray]]:
        self.bmn.eval()
        self.bsn.eval()
        with self.infer():
            if video.id not in self._model_cache:
                self._model_cache[video.id] = self.bmn(self._infer_refs(video, reference_pool(video, video.frame_ids)))
            model = self._model_cache[video.id]
        for chunk in batches(sorted(frames), self.infer_batch):
            with self.infer():
                x = as_float(upload(video.frames(chunk, self.input_size), self.device))
                logits = self.bsn(torch.cat([model.expand(len(chunk), -1, -1, -1).to(x.dtype), x], 1))
                out = native(torch.softmax(logits.float(), dim=1)[:, 1:2], video.shape, self.device_maps)
            for fid, p in zip(chunk, out):
                yield fid, p
