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

Against the authors' code (github.com/dongzhang89/HOFAM, TensorFlow 1.13; model.py and ops.py
read for this), ``arch=paper`` (the default) follows the paper and differs from that code in:
- activation order: conv + BN + ReLU after each encoder conv here; the code applies LeakyReLU
  0.2 *before* each conv (the first level neither normalised nor activated) and takes the
  skips pre-activation;
- normalisation: BatchNorm here; the code's ``batch_norm`` wrapper calls ``layer_norm`` (each
  frame over H, W, C; a scale and shift per channel);
- up-convolutions: kernel 4, stride 2, padding 1 here; the code's deconvolutions use the
  encoder's kernels reversed (3,3,5,5,5,5,7,7) with TensorFlow's 'SAME' padding, and its
  attention and fusion convs use the level's kernel, not 3x3;
- the bottleneck: here the decoder starts from concat(e8, op8); the code first fuses them with
  a 3x3 conv (``fusion0``, 2048 -> 1024 channels);
- dropout: here on every decoder level, before BN; the code applies it after the norm on the
  first three levels only, and also at test time (``tf.nn.dropout`` has no training switch,
  as in pix2pix, whose code it builds on); we segment without dropout;
- CmDFF's output order: concat(weighted skip, up) here, concat(up, weighted skip) in the code.
``arch=authors`` is that code's generator layer for layer (``AuthorsCrossNet``; 173.2M
parameters at ``paper`` against 127.5M), so their released checkpoint loads by name
(``weights=FILE`` after converting it to a dict of tensors; docs/deep.md). Two of the code's
training settings differ from the paper's text and are not followed by either arch: Adam lr
5e-4 (the text: 5e-5), and its CS-Focal weighting, guarded by ``if tf.greater(dice, 0.95) is
True``, which is never true for a graph tensor, so the code trained with the plain focal loss
(alpha 0.75, gamma 0); we use the paper's Eq. 6 (beta per frame, the code's per batch).

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

from bgbench.errors import BadInput
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


def _same_pads(size: int, k: int, stride: int) -> tuple[int, int]:
    """TensorFlow's ``padding='SAME'`` along one axis: the output is ceil(size / stride) and
    the padding it needs goes one more after than before when odd (PyTorch's symmetric
    padding would shift a stride-2 layer's samples by one pixel)."""
    out = -(-size // stride)
    total = max((out - 1) * stride + k - size, 0)
    return total // 2, total - total // 2


def conv_same(conv: nn.Conv2d, x: torch.Tensor) -> torch.Tensor:
    """``conv`` (built with padding 0) as ``tf.nn.conv2d(..., padding='SAME')``."""
    (kh, kw), (sh, sw) = conv.kernel_size, conv.stride
    top, bottom = _same_pads(x.shape[-2], kh, sh)
    left, right = _same_pads(x.shape[-1], kw, sw)
    return conv(nn.functional.pad(x, (left, right, top, bottom)))


def deconv_same(deconv: nn.ConvTranspose2d, x: torch.Tensor) -> torch.Tensor:
    """``deconv`` (padding 0) as ``tf.nn.conv2d_transpose`` with padding 'SAME' to stride x
    the size: the adjoint of ``conv_same`` from that size, i.e. the full transposed
    convolution cropped by the forward padding (tests/test_crossnet_authors.py checks the
    adjoint identity)."""
    (kh, kw), (sh, sw) = deconv.kernel_size, deconv.stride
    h, w = x.shape[-2] * sh, x.shape[-1] * sw
    top, _ = _same_pads(h, kh, sh)
    left, _ = _same_pads(w, kw, sw)
    return deconv(x)[..., top:top + h, left:left + w]


def _norm(c: int) -> nn.GroupNorm:
    """The authors' ``batch_norm`` wrapper, which calls ``tf.contrib.layers.layer_norm``: each
    frame normalised over (H, W, C), epsilon 1e-12, a scale and shift per channel, which is
    GroupNorm with one group."""
    return nn.GroupNorm(1, c, eps=1e-12)


class AuthorsCrossNet(nn.Module):
    """The generator of the HOFAM authors' code (github.com/dongzhang89/HOFAM, model.py,
    ``generator``), layer for layer, its layers named as the TensorFlow variable scopes so
    that their released checkpoint maps by name (``tf_names``):

    - encoders: ``e1 = conv(x)``, ``e_i = norm(conv(lrelu(e_{i-1})))``: LeakyReLU 0.2 *before*
      each conv, the first level neither normalised nor activated; kernels 7,7,5,5,5,5,3,3,
      stride 2, 'SAME';
    - ``fusion0 = conv3x3(lrelu(concat(e8, op8)))`` (the code's stride 2 on a 1x1 map is
      stride 1);
    - decoder level i: ``d = deconv(lrelu(D))``, ``att = norm(conv(lrelu(d)))`` (stride 1),
      ``d = norm(d)`` then dropout 0.5 on levels 1-3 only, ``fus = conv(lrelu(concat(e, op)))``
      (stride 1), ``D = concat(d, sigmoid(att) * fus)``; kernels 3,3,5,5,5,5,7 and the last
      deconv 7 (the encoder's reversed);
    - inputs scaled to [-1, 1] (the code's ``/ 127.5 - 1``); returns the logits.

    ``chans``: the encoder's channels (the code's ``ngf`` 64: 64..1024); decoder level i has the
    channels of encoder level n-i."""

    def __init__(self, chans: Sequence[int]):
        super().__init__()
        n = self.n = len(chans)
        layers: dict[str, nn.Module] = {}
        for i in range(n):
            cin = 3 if i == 0 else chans[i - 1]
            for kind in ("e", "op"):
                layers[f"g_{kind}{i + 1}_conv"] = nn.Conv2d(cin, chans[i], KERNELS[i], stride=2)
                if i:
                    layers[f"g_bn_{kind}{i + 1}"] = _norm(chans[i])
        # stride 1: the code's stride 2 on its 1x1 bottleneck is the same computation (one output,
        # padding 1 on each side), and a shallower config keeps the bottleneck's size
        layers["fusion0"] = nn.Conv2d(2 * chans[-1], chans[-1], 3)
        prev = chans[-1]
        for i in range(1, n):
            k, c = KERNELS[n - i], chans[n - 1 - i]
            layers[f"g_d{i}"] = nn.ConvTranspose2d(prev, c, k, stride=2)
            layers[f"g_attention{i}"] = nn.Conv2d(c, c, k)
            layers[f"g_bn_attention{i}"] = _norm(c)
            layers[f"g_bn_d{i}"] = _norm(c)
            layers[f"fusion{i}"] = nn.Conv2d(2 * c, c, k)
            prev = 2 * c
        layers[f"g_d{n}"] = nn.ConvTranspose2d(prev, 1, KERNELS[0], stride=2)
        self.layers = nn.ModuleDict(layers)

    def forward(self, rgb, flow):
        L, n = self.layers, self.n

        def lrelu(t):
            return nn.functional.leaky_relu(t, 0.2)

        x, o = rgb * 2 - 1, flow * 2 - 1
        es, ops = [], []
        for i in range(n):
            if i:
                x, o = lrelu(x), lrelu(o)
            x, o = conv_same(L[f"g_e{i + 1}_conv"], x), conv_same(L[f"g_op{i + 1}_conv"], o)
            if i:
                x, o = L[f"g_bn_e{i + 1}"](x), L[f"g_bn_op{i + 1}"](o)
            es.append(x)
            ops.append(o)
        d = conv_same(L["fusion0"], lrelu(torch.cat([es[-1], ops[-1]], 1)))
        for i in range(1, n):
            d = deconv_same(L[f"g_d{i}"], lrelu(d))
            att = L[f"g_bn_attention{i}"](conv_same(L[f"g_attention{i}"], lrelu(d)))
            d = L[f"g_bn_d{i}"](d)
            if i <= 3:
                d = nn.functional.dropout(d, 0.5, self.training)
            fus = conv_same(L[f"fusion{i}"], lrelu(torch.cat([es[n - 1 - i], ops[n - 1 - i]], 1)))
            d = torch.cat([d, torch.sigmoid(att) * fus], 1)
        return deconv_same(L[f"g_d{n}"], lrelu(d))


def tf_names(flat: dict[str, torch.Tensor], module: str = "net") -> dict[str, torch.Tensor]:
    """The authors' checkpoint (``generator/SCOPE/w|biases|gamma|beta``, as
    ``tf.train.load_checkpoint`` lists it; optimiser slots and counters ignored) under
    ``AuthorsCrossNet``'s names: ``w`` [kh, kw, in, out] (conv) or [kh, kw, out, in]
    (conv2d_transpose) -> PyTorch's [out, in, kh, kw] / [in, out, kh, kw], both
    ``permute(3, 2, 0, 1)``; ``biases`` and ``beta`` -> ``bias``, ``gamma`` -> ``weight``."""
    out: dict[str, torch.Tensor] = {}
    for name, t in flat.items():
        parts = name.split("/")
        if len(parts) != 3 or parts[0] != "generator" or parts[2] not in ("w", "biases", "gamma", "beta"):
            continue
        scope, var = parts[1], parts[2]
        key = {"w": "weight", "biases": "bias", "gamma": "weight", "beta": "bias"}[var]
        out[f"{module}.layers.{scope}.{key}"] = t.permute(3, 2, 0, 1).contiguous() if var == "w" else t
    return out


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
        "arch": ("paper", "paper: the network as the paper describes it (Fig. 2, Eqs. 1-4); authors: the "
                          "generator of the authors' code, layer for layer (pre-activation LeakyReLU, layer norm, "
                          "TF 'SAME' padding, their kernels and dropout), whose released checkpoint loads by name "
                          "(weights=FILE; docs/deep.md)", ("paper", "authors")),
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

    @classmethod
    def validate(cls, values: dict[str, Any]) -> None:
        levels, size = len(values["channels"]), int(values["size"])
        if levels > len(KERNELS):
            raise BadInput(f"{levels} encoder levels; the network has kernels for at most {len(KERNELS)}",
                           "crossnet.channels", f"give at most {len(KERNELS)} channel counts")
        if size % 2 ** levels:
            raise BadInput(f"size {size} is not a multiple of 2^{levels} (one halving per encoder level), so the "
                           "decoder cannot mirror the encoder", "crossnet.size",
                           f"use a multiple of {2 ** levels}, e.g. {max(1, round(size / 2 ** levels)) * 2 ** levels}")

    def build(self) -> None:
        chans = tuple(int(c) for c in self.p["channels"])
        net = AuthorsCrossNet(chans) if self.p["arch"] == "authors" else CrossNetModel(chans)
        self.net = net.to(self.device)

    def foreign_weights(self, flat: dict[str, torch.Tensor], path: str) -> tuple[str, dict[str, torch.Tensor]] | None:
        """The HOFAM authors' released TensorFlow checkpoint, converted to ``{variable name:
        tensor}`` (docs/deep.md, 'Pretrained models'): mapped by ``tf_names`` into the
        ``arch=authors`` network; refused for the paper's architecture, which has other layers."""
        if not any(k.startswith("generator/") for k in flat):
            return None
        if self.p["arch"] != "authors":
            raise BadInput("holds the HOFAM authors' TensorFlow variables (generator/...), whose layers are those of "
                           "their code, not the paper's architecture", path, "add --set crossnet.arch=authors")
        return "HOFAM authors' TensorFlow checkpoint", tf_names(flat)

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
