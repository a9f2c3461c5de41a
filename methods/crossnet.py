"""CrossNet / HOFAM (papers/004): an appearance encoder (RGB) and a motion encoder (3D-HOP,
methods/flow.py), each of stride-2 conv + BN + ReLU levels (kernels 7,7,5,5,5,5,3,3;
channels 64..1024 in the authors' code), and a decoder of up-convolutions with a CmDFF
module per level:
    B_eop = conv3x3(ReLU(concat(E_i, Op_i)))        B_up = upconv(D_{i-1})
    B_w   = sigmoid(BN(conv3x3(ReLU(B_up))))        D_i  = concat(B_w * B_eop, BN(Dropout0.5(B_up)))
256x256 in, 256x256x1 sigmoid out (the network returns the logits). Loss 0.8 CS-Focal +
0.2 L1, CS-Focal = focal loss (alpha 0.75, gamma 0) whose foreground term is scaled by
beta = 0.25 min(1 / S(fg), 50), S(fg) the foreground area ratio of each frame (Eq. 6, per
frame), computed in float32 from the logits. Adam lr 5e-5, betas (0.95, 0.999), batch 16.
Training length: the paper's text says "batch size 16, and we run 16000 epochs"; a reading
of the authors' code makes each of those 16,000 loops 4 updates, and ``paper`` follows the
code: 64,000 steps of batch 16. Training frames, their 3D-HOP and label codes live on the
device (``Bank``); a step gathers its batch there, with no host-to-device copy of images.

Deviations (METHODS.md): optical flow from OpenCV DIS (Farneback selectable) instead of
SelFlow; ``cpu`` and ``smoke`` use fewer, narrower levels at smaller inputs; pixels outside
the ROI and labelled 85/170 are left out of the loss; shadow counts as background. The
transfer test uses UCSD and SBI2015 as stand-ins for the paper's LIMU and LASIESTA, which
are not in ../shared/data.
"""

from __future__ import annotations

from typing import Any, Iterator, Sequence

import numpy as np
import torch
from torch import nn

from bgbench.method import register_method
from bgbench.data.video import TrainingSet, VideoView

from .common import (DeepMethod, as_float, batches, code_targets, count_params, flops, focal_logits, label_codes,
                     native, step_rng, upload)
from .flow import hop

KERNELS = (7, 7, 5, 5, 5, 5, 3, 3)


def _enc(chans: Sequence[int]) -> nn.ModuleList:
    layers, cin = [], 3
    for k, c in zip(KERNELS[: len(chans)], chans):
        layers.append(nn.Sequential(nn.Conv2d(cin, c, k, stride=2, padding=k // 2), nn.BatchNorm2d(c), nn.ReLU(inplace=True)))
        cin = c
    return nn.ModuleList(layers)


class CmDFF(nn.Module):
    def __init__(self, c_skip: int, c_in: int, c: int):
        super().__init__()
        self.eop = nn.Conv2d(2 * c_skip, c, 3, padding=1)
        self.up = nn.ConvTranspose2d(c_in, c, 4, stride=2, padding=1)
        self.w = nn.Sequential(nn.ReLU(), nn.Conv2d(c, c, 3, padding=1), nn.BatchNorm2d(c), nn.Sigmoid())
        self.tail = nn.Sequential(nn.Dropout(0.5), nn.BatchNorm2d(c))

    def forward(self, e, op, d):
        b_eop = self.eop(torch.relu(torch.cat([e, op], 1)))
        b_up = self.up(d)
        return torch.cat([self.w(b_up) * b_eop, self.tail(b_up)], 1)


class CrossNetModel(nn.Module):
    def __init__(self, chans: Sequence[int]):
        super().__init__()
        self.app, self.mot = _enc(chans), _enc(chans)
        n = len(chans)
        # decoder level i (from n-2 down to 0) fuses encoder level i with the level above
        self.fuse = nn.ModuleList([CmDFF(chans[i], 2 * chans[i + 1], chans[i]) for i in reversed(range(n - 1))])
        self.out = nn.ConvTranspose2d(2 * chans[0], 1, 4, stride=2, padding=1)

    def forward(self, rgb, flow):
        es, ops = [], []
        a, m = rgb, flow
        for ea, em in zip(self.app, self.mot):
            a, m = ea(a), em(m)
            es.append(a)
            ops.append(m)
        d = torch.cat([es[-1], ops[-1]], 1)
        for mod, i in zip(self.fuse, reversed(range(len(es) - 1))):
            d = mod(es[i], ops[i], d)
        return self.out(d)  # logits: sigmoid gives the probability


def cs_focal_l1(logits, target, valid, alpha=0.75, gamma=0.0, w_focal=0.8, w_l1=0.2):
    """0.8 CS-Focal + 0.2 L1 from logits, in float32. beta is per frame (Eq. 6): S(fg) is
    each frame's foreground share of its valid pixels."""
    target, valid = target.float(), valid.float()
    dims = tuple(range(1, target.dim()))
    s_fg = (target * valid).sum(dims, keepdim=True) / valid.sum(dims, keepdim=True).clamp(min=1)
    beta = 0.25 * torch.clamp(1.0 / s_fg.clamp(min=1e-6), max=50.0)
    prob = torch.sigmoid(logits.float())
    l1 = ((prob - target).abs() * valid).sum() / valid.sum().clamp(min=1)
    return w_focal * focal_logits(logits, target, valid, alpha, gamma, fg_scale=beta) + w_l1 * l1


@register_method("crossnet")
class CrossNet(DeepMethod):
    """CrossNet/HOFAM: appearance and 3D-HOP motion encoders fused by CmDFF (papers/004)"""

    stage_steps = ("steps",)
    default_protocol = "sampled"
    protocol_options = {"fraction": 0.05}
    paper_protocols = (("transfer", {"source": ("CDnet2014",), "target": ("UCSD", "SBI2015")}),)
    temporal_context = 10
    params = {
        "size": (256, "square input size", "[16, inf)"),
        "channels": ((64, 128, 256, 512, 512, 512, 512, 1024), "encoder channels, one per stride-2 level", "[1, inf)"),
        "flow": ("dis", "optical-flow backend: dis or farneback", ("dis", "farneback")),
        "flow_scale": (10.0, "flow magnitude (pixels) mapped to 1", "(0, inf)"),
        "lr": (5e-5, "Adam learning rate", "(0, 1]"),
        "steps": (64000, "training steps (the authors' code: 16,000 loops x 4 updates)", "[0, inf)"),
        "batch_size": (16, "frames per training step", "[1, inf)"),
        "infer_batch": (32, "frames per inference batch", "[1, 4096]"),
    }
    configs = {
        "paper": {},
        "cpu": {"size": 128, "channels": (16, 32, 48, 64, 64, 96), "lr": 1e-3, "steps": 1500, "batch_size": 8,
                "infer_batch": 8},
        "smoke": {"size": 64, "channels": (4, 8, 8, 16), "lr": 1e-3, "steps": 3, "batch_size": 2,
                  "infer_batch": 2},
    }

    @property
    def input_size(self) -> tuple[int, int]:  # type: ignore[override]
        return int(self.p["size"]), int(self.p["size"])

    def build(self) -> None:
        self.net = CrossNetModel(tuple(int(c) for c in self.p["channels"])).to(self.device)

    def modules(self) -> dict[str, nn.Module]:
        return {"net": self.net}

    def describe(self) -> dict[str, Any]:
        s = int(self.p["size"])
        x = torch.zeros(1, 3, s, s, device=self.device)
        self.net.eval()
        return {"parameters": {"total": count_params(self.net)}, "flops": {"per_frame": flops(self.net, x, x)},
                "input_size": f"{s}x{s}"}

    def training_plan(self, sizes: Sequence[tuple[int, int, int]]) -> list[dict[str, Any]]:
        """Training stages for ``bgbench run --dry-run`` (bgbench.dryrun): per stage its steps
        and the forward FLOPs of one step through trained and frozen modules, by the FLOP counter
        of ``describe``. ``sizes``: (width, height, frames) of each training video."""
        per_frame = self.describe()["flops"]["per_frame"]
        return [{"stage": "CrossNet", "steps": int(self.p["steps"]),
                 "trained_flops": int(self.p["batch_size"]) * per_frame, "frozen_flops": 0}]

    def _motion(self, view: VideoView) -> np.ndarray:
        """The video's 3D-HOP at the input size (computed once, cached with the frames)."""
        return hop(view, self.input_size, self.p["flow"], float(self.p["flow_scale"]))

    @staticmethod
    def _images(x: torch.Tensor, flip: bool) -> torch.Tensor:
        """N x h x w x 3 uint8 on the device -> N x 3 x h x w float in [0, 1] (BGR -> RGB
        when ``flip``)."""
        return as_float((x.flip(-1) if flip else x).permute(0, 3, 1, 2))

    def fit(self, train: TrainingSet) -> None:
        items = list(train.train)
        size, bs = self.input_size, int(self.p["batch_size"])
        arrays = {
            "rgb": np.concatenate([it.view.frames(it.frames, size) for it in items]),
            "motion": np.concatenate([self._motion(it.view)[[it.view.position(f) for f in it.frames]] for it in items]),
            "codes": np.concatenate([label_codes(it, it.frames, size) for it in items]),
        }
        data = self.bank(arrays)
        n = len(arrays["codes"])

        def batch(step: int):
            rows = step_rng(self.seed, step, "crossnet").integers(0, n, bs)
            rgb = self._images(data.take("rgb", rows), flip=True)
            mot = self._images(data.take("motion", rows), flip=False)
            return rgb, mot, *code_targets(data.take("codes", rows)[:, None], ignore_shadow=False)

        def loss(b) -> torch.Tensor:
            rgb, mot, target, valid = b
            return cs_focal_l1(self.net(rgb, mot), target, valid)

        tr = self.trainer(self.net, float(self.p["lr"]), "crossnet", betas=(0.95, 0.999))
        self.history = self.train_stage(tr, int(self.p["steps"]), loss, "CrossNet", batch, data, bs)

    def segment(self, video: VideoView, frames: Sequence[int]) -> Iterator[tuple[int, np.ndarray]]:
        self.net.eval()
        motion = self._motion(video)
        for chunk in batches(sorted(frames), self.infer_batch):
            with self.infer():
                rgb = as_float(upload(video.frames(chunk, self.input_size), self.device))
                # upload() turns BGR into RGB; 3D-HOP's channels are tau = 1, 5, 10 in order: pre-flip them
                mot = as_float(upload(motion[[video.position(i) for i in chunk]][..., ::-1], self.device))
                out = native(torch.sigmoid(self.net(rgb, mot).float()), video.shape, self.device_maps)
            for fid, p in zip(chunk, out):
                yield fid, p
