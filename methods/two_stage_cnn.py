"""Two-stage CNN (papers/001): background reconstruction, then multi-channel segmentation.

Stage 1 (Sec. 3.1): an encoder-decoder in the DCGAN / Context-Encoder pattern (stride-2
4x4 convs with batch norm and leaky ReLU down to a latent vector, transposed convs with
batch norm and ReLU back up, sigmoid output) reconstructs the clean background from the
frame at 128x128. Eq. 1: L_rec = sum_{i,j,c} (B_ijc - B*_ijc)^2, summed over pixels and
channels of an image (averaged over the images of a mini-batch), against a clean
background made from the training frames' ground truth.
Stage 2 (Sec. 3.2): a multi-channel FCN from VGG16 DeepLab-LargeFOV whose first layer takes
6 channels, the frame and the stage-1 background brought to the stage-2 size by a fixed
bilinear layer (Sec. 3.4). LargeFOV: 3x3 max-pools with padding 1 (pool1-3 stride 2, pool4
and pool5 stride 1, Caffe's ceil rounding), conv5 at dilation 2, fc6 3x3 at atrous rate 6
(the paper's change from 12), fc7 1x1, fc8 1x1 to 2 classes, dropout 0.5 after fc6 and
fc7; output stride 8. Eq. 2: softmax cross-entropy over pixels whose label is not ignored
(CDnet 85/170 and outside the ROI are ignored, shadow 50 is background).
Eq. 3: L = L_rec + lambda L_seg, lambda = 1. Training in three steps, SGD: stage 1 alone
(batch 4, lr 1e-4, 20k iterations), stage 2 with stage 1 frozen (batch 2, lr 1e-3, 6k),
both jointly (batch 1, lr 1e-5, 3k). Sec. 4.1: videos whose training frames all lack
foreground get 1 or 2 objects pasted in per training image.

Deviations (METHODS.md), each with its reason:
- Initialisation. The paper starts stage 2 from DeepLab's ImageNet weights (not available
  offline) and every other layer from N(0, 0.01). N(0, 0.01) for the 13 VGG convs is not
  a choice that trains: the output std is ~6e-10 at 961x961 and the first layer's gradient
  ~1e-10, so SGD at 1e-3 learns "all background" only. Without ``vgg_weights`` the VGG convs
  (conv1_1 included) and fc6/fc7, which stand for the pretrained layers, start from He
  (Kaiming) normal init (fan-in, ReLU gain), biases 0; the layers the paper initialises
  N(0, ``init_std``) itself, all of stage 1 and fc8, keep it (stage 1 trains from it thanks
  to its batch norm). ``init_std=None`` gives PyTorch's default there instead. From
  scratch, the paper's lr 1e-3 (meant for fine-tuning) learns, but slowly: at 64x48 on 40
  highway frames the stage-2 loss falls from 0.43 to 0.12 in 500 steps (the all-background
  prior is 0.21) and held-out F is 0 up to step 300, 0.05 at 400 and 0.35 at 500
  (tests/test_two_stage_cnn.py); give ``vgg_weights`` for the start the paper's 6k steps assume.
- Pretrained weights. ``vgg_weights=FILE`` takes a VGG16 state dict laid out as torchvision's
  (``features.0.weight`` ... ``features.28.bias``, all 26 conv tensors, loaded by name with
  ``weights_only=True``); the 6-channel conv1_1 starts from the RGB filters on both halves,
  each scaled by 0.5, so a frame equal to its background gives the pretrained response
  (the paper does not say how its new 6-channel layer starts). fc6/fc7 are not taken from
  the file: DeepLab subsamples VGG's fc layers into its 3x3 atrous fc6, which torchvision's
  layout does not hold. Inputs are normalised with ImageNet's mean and std (torchvision's
  convention, in RGB) rather than Caffe's BGR mean subtraction on 0-255.
- Loss scales. Eq. 1 is the sum over pixels and channels (per image, mean over the batch)
  on images in [0, 1]; the paper's SGD lr 1e-4 trains on it unchanged (at 128x128x3 on 40
  highway frames, batch 4, no clipping: 2424 at the start, 40.5 after 80 steps, falling
  every step), so the rate needs no rescaling. Eq. 2 is written as a sum too, but it is
  DeepLab's softmax loss, which normalises by the number of non-ignored pixels, and the
  paper's lr 1e-3 is DeepLab's for that normalised loss: L_seg is the mean over valid
  pixels.
- Optimiser details the paper leaves open, taken from DeepLab-LargeFOV's released solver
  and prototxt: SGD with momentum 0.9 and weight decay 5e-4; in stage 2 biases at 2x the
  rate without decay and fc8 at 10x (its bias 20x) (``deeplab_lr_mult``); a constant rate
  per step; no gradient clipping (``clip=None``).
- Stage 1's sizes are Context Encoders' (4x4 stride-2 convs from 64 channels doubling to
  512, a 4000-long latent vector, sigmoid output on images in [0, 1]); the paper gives none.
- The loss is computed on the logits upsampled bilinearly to the input size, not on labels
  shrunk to 1/8 as DeepLab's training does; probabilities are resized bilinearly from the
  stage-2 input size to the video's. Joint training (batch 1) keeps stage 1's batch-norm
  statistics frozen (its weights train): batch statistics of one image are noise.
- Copy-paste: the paper pastes PASCAL VOC objects (not available offline); ours are the
  connected components (8-connected, at least ``MIN_OBJECT_PIXELS`` at the stage-2 size)
  of the foreground of other training videos' training frames, pasted 1 or 2 per image at
  a random place that keeps the object inside the frame, their pixels labelled foreground
  (outside the ROI they stay ignored). Under the scene-specific protocol a fit sees one
  video, so a video with no foreground in its training half has no objects to paste and
  trains on background only (a warning says so).
- The clean background B* is the per-pixel temporal median of background observations in
  up to 100 training frames (the paper made them "manually ... according to their label
  maps"); stage 1 sees the frame resized from the stage-2 input (antialiased bilinear).
- ``paper`` keeps 961x961 and the paper's widths, steps, rates and batches; ``cpu`` and
  ``smoke`` are narrower and smaller and use Adam (no weight decay, no lr multipliers,
  gradient norm clipped at 5, PyTorch's default init for stage 1 and fc8).

The VGG16 loader by layer name is ``methods/vgg.py``'s, shared with siamese_fcn.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import Any, Callable, Iterator, NamedTuple, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from bgbench.data import codes
from bgbench.errors import BadInput
from bgbench.method import register_method
from bgbench.params import Param
from bgbench.data.video import TrainingSet, VideoView

from .vgg import VGG16_CONVS, load_vgg16  # noqa: F401 - VGG16_CONVS: the layout the loader maps
from .common import (VGG16, Bank, DeepMethod, as_float, batches, code_targets, count_params, epoch_rows, flops,
                     label_codes, masked_ce, native, resize_labels, step_rng, upload)

log = logging.getLogger(__name__)

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
MIN_OBJECT_PIXELS = 16  # smaller foreground components are not pasted (label noise)


# --- networks ------------------------------------------------------------------------------
class Reconstructor(nn.Module):
    """Stage 1: frame (size x size) -> background pre-activation (sigmoid gives the image)."""

    def __init__(self, base: int, size: int, latent: int):
        super().__init__()
        chans, layers, cin, s = [], [], 3, size
        c = base
        while s > 4:
            layers += [nn.Conv2d(cin, c, 4, stride=2, padding=1), nn.BatchNorm2d(c), nn.LeakyReLU(0.2, inplace=True)]
            chans.append(c)
            cin, c, s = c, min(c * 2, 8 * base), s // 2
        layers += [nn.Conv2d(cin, latent, s)]  # s x s -> 1 x 1: the latent vector
        self.enc = nn.Sequential(*layers)
        up = [nn.ConvTranspose2d(latent, cin, s), nn.BatchNorm2d(cin), nn.ReLU(inplace=True)]
        for c in reversed(chans[:-1]):
            up += [nn.ConvTranspose2d(cin, c, 4, stride=2, padding=1), nn.BatchNorm2d(c), nn.ReLU(inplace=True)]
            cin = c
        up += [nn.ConvTranspose2d(cin, 3, 4, stride=2, padding=1)]
        self.dec = nn.Sequential(*up)

    def forward(self, x):
        return self.dec(self.enc(x))


def largefov_front(cin: int, width: float) -> nn.Sequential:
    """VGG16's 13 convs in torchvision's ``features`` layout (same indices, so a torchvision
    state dict maps by name), with DeepLab-LargeFOV's pooling: 3x3 max-pools with padding 1,
    stride 2 after blocks 1-3 and stride 1 after blocks 4-5, conv5 at dilation 2."""
    layers: list[nn.Module] = []
    for b, (c, n) in enumerate(VGG16):
        c = max(4, int(round(c * width)))
        dil = 2 if b == 4 else 1
        for _ in range(n):
            layers += [nn.Conv2d(cin, c, 3, padding=dil, dilation=dil), nn.ReLU(inplace=True)]
            cin = c
        layers.append(nn.MaxPool2d(3, stride=2 if b < 3 else 1, padding=1, ceil_mode=True))
    return nn.Sequential(*layers)


class LargeFOV(nn.Module):
    """Stage 2: 6-channel DeepLab-LargeFOV; inputs in [0, 1] (RGB frame, RGB background),
    normalised inside; returns 2-class logits upsampled to the input size."""

    def __init__(self, width: float, fc: int, rate: int):
        super().__init__()
        self.front = largefov_front(6, width)
        c5 = max(4, int(round(512 * width)))
        self.fc = nn.Sequential(nn.Conv2d(c5, fc, 3, padding=rate, dilation=rate), nn.ReLU(inplace=True), nn.Dropout(0.5),
                                nn.Conv2d(fc, fc, 1), nn.ReLU(inplace=True), nn.Dropout(0.5), nn.Conv2d(fc, 2, 1))
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN * 2).view(1, 6, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD * 2).view(1, 6, 1, 1), persistent=False)

    def forward(self, x):
        h = self.fc(self.front((x - self.mean) / self.std))
        return F.interpolate(h, size=x.shape[-2:], mode="bilinear", align_corners=False)


class Joint(nn.Module):
    """Both stages, for the joint step: stage 1's batch-norm statistics stay frozen (its
    weights train), since the joint step's batch of one gives no usable statistics."""

    def __init__(self, rec: Reconstructor, seg: LargeFOV):
        super().__init__()
        self.rec, self.seg = rec, seg

    def train(self, mode: bool = True):
        super().train(mode)
        for m in self.rec.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.eval()
        return self


def init_weights(rec: Reconstructor, seg: LargeFOV, std: float | None) -> None:
    """He init for the layers the paper takes from DeepLab (VGG convs, fc6, fc7); N(0, std)
    for those it initialises so itself (stage 1, fc8); biases 0. ``std`` None: PyTorch's
    default for the latter."""
    pretrained_like: list[Any] = [m for m in seg.front if isinstance(m, nn.Conv2d)] + [seg.fc[0], seg.fc[3]]  # convs
    for m in pretrained_like:
        nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu")
        nn.init.zeros_(m.bias)
    if std is None:
        return
    for m in list(rec.modules()) + [seg.fc[6]]:
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(m.weight, 0.0, float(std))
            if m.bias is not None:
                nn.init.zeros_(m.bias)


# --- copy-paste -----------------------------------------------------------------------------
def find_objects(codes_stack: np.ndarray, min_pixels: int = MIN_OBJECT_PIXELS) -> tuple[np.ndarray, np.ndarray]:
    """Objects in N x H x W CDnet code maps: the 8-connected components of their foreground
    (255) with at least ``min_pixels`` pixels. Returns (labels N x H x W uint8, component k
    of frame n labelled k; at most 255 per frame, the largest kept) and a table K x 6 int64
    of (frame, label, y0, x0, y1, x1), the box exclusive at y1, x1."""
    import cv2

    labels = np.zeros(codes_stack.shape, np.uint8)
    table = []
    for n, c in enumerate(codes_stack):
        count, lab, stats, _ = cv2.connectedComponentsWithStats((c == codes.MOTION).astype(np.uint8), connectivity=8)
        comps = [k for k in range(1, count) if stats[k, cv2.CC_STAT_AREA] >= min_pixels]
        comps = sorted(comps, key=lambda k: -stats[k, cv2.CC_STAT_AREA])[:255]
        for new, k in enumerate(comps, start=1):
            labels[n][lab == k] = new
            x, y, w, h = (int(stats[k, j]) for j in (cv2.CC_STAT_LEFT, cv2.CC_STAT_TOP, cv2.CC_STAT_WIDTH,
                                                      cv2.CC_STAT_HEIGHT))
            table.append((n, new, y, x, y + h, x + w))
    return labels, np.asarray(table, np.int64).reshape(-1, 6)


def draw_pastes(rng: np.random.Generator, targets: Sequence[int] | np.ndarray, table: np.ndarray, shape: tuple[int, int]
                ) -> list[tuple[int, int, int, int]]:
    """The pastes of one batch (host side: indices only): for each batch position in
    ``targets``, 1 or 2 distinct objects of ``table``, each with a shift (dy, dx) that keeps
    its box inside an H x W frame. Returns (batch position, object, dy, dx) tuples."""
    H, W = shape
    out: list[tuple[int, int, int, int]] = []
    if not len(table):
        return out
    for pos in targets:
        n = int(rng.integers(1, 3))
        for obj in rng.choice(len(table), size=min(n, len(table)), replace=False):
            _, _, y0, x0, y1, x1 = (int(v) for v in table[int(obj)])
            out.append((int(pos), int(obj), int(rng.integers(-y0, H - y1 + 1)), int(rng.integers(-x0, W - x1 + 1))))
    return out


def paste(frames: torch.Tensor, codes_: torch.Tensor, src_frames: torch.Tensor, src_labels: torch.Tensor,
          label: torch.Tensor | int, at: int, dy: int, dx: int) -> None:
    """In place, on the device: paste the object ``label`` of a source (frame H x W x 3,
    labels H x W), shifted by (dy, dx), into batch image ``at`` (frames B x H x W x 3
    uint8, codes B x H x W uint8); its pixels become foreground except where the code says
    outside the ROI (85)."""
    mask = torch.roll(src_labels == label, shifts=(dy, dx), dims=(0, 1))
    img = torch.roll(src_frames, shifts=(dy, dx), dims=(0, 1))
    frames[at] = torch.where(mask[..., None], img, frames[at])
    c = codes_[at]
    codes_[at] = torch.where(mask & (c != codes.OUTSIDE_ROI), torch.full_like(c, codes.MOTION), c)


class TrainingData(NamedTuple):
    bank: Bank
    batch: Callable[[int, int, str], tuple[torch.Tensor, ...]]
    video: np.ndarray  # training row -> index of its video in the TrainingSet
    objects: np.ndarray  # the paste table of ``find_objects`` (rows index the bank's src_f/src_l)


def _three(value: Any, name: str) -> tuple:
    """A per-step setting: a 3-tuple, or one value for all three steps."""
    v = tuple(value) if isinstance(value, (tuple, list)) else (value,)
    v = v * 3 if len(v) == 1 else v
    if len(v) != 3:
        raise BadInput(f"needs 3 values (one per training step), got {len(v)}", f"two_stage_cnn.{name}",
                       "give three comma-separated values, e.g. 20000,6000,3000")
    return v


@register_method("two_stage_cnn")
class TwoStageCNN(DeepMethod):
    """Two-stage CNN: background reconstruction + VGG16 DeepLab-LargeFOV segmentation (papers/001)"""

    # One parameter sets the iterations of all three training steps: ``steps`` is a 3-tuple
    # (stage 1, stage 2, joint); a single number sets the three to the same count.
    stage_steps = ("steps",)
    default_protocol = "scene-specific"
    protocol_options = {"rule": "first-half"}
    params = {
        "rec_size": (128, "stage-1 input and output size (a power of 2)", "[8, 4096]"),
        "rec_base": (64, "stage-1 first-layer channels", "[1, inf)"),
        "latent": (4000, "stage-1 latent vector length", "[1, inf)"),
        "width": (1.0, "VGG16 channel multiplier for stage 2", "(0, 4]"),
        "fc": (1024, "fc6/fc7 channels", "[1, inf)"),
        "atrous": (6, "fc6 atrous rate", "[1, 64]"),
        "input_width": (961, "stage-2 input width", "[8, 8192]"),
        "input_height": (961, "stage-2 input height", "[8, 8192]"),
        "lam": (1.0, "lambda: weight of the segmentation loss", "[0, inf)"),
        "optimizer": ("sgd", "sgd (paper; momentum 0.9) or adam", ("sgd", "adam")),
        "weight_decay": (5e-4, "weight decay (DeepLab's solver; the paper does not say)", "[0, 1)"),
        "clip": Param(None, "gradient-norm clipping (none: no clipping, as in the paper)", interval="(0, inf)",
                      kind="number"),
        "deeplab_lr_mult": (True, "stage 2 with DeepLab-LargeFOV's lr multipliers (biases 2x, no decay; fc8 10x/20x)"),
        "init_std": Param(0.01, "N(0, std) initial weights of stage 1 and fc8 (none: PyTorch's default)",
                          interval="(0, 1]", optional=True),
        "steps": ((20000, 6000, 3000), "iterations of the three training steps (one number: all three)", "[0, inf)"),
        "lrs": ((1e-4, 1e-3, 1e-5), "learning rates of the three steps", "(0, 1]"),
        "batches": ((4, 2, 1), "batch sizes of the three steps", "[1, inf)"),
        "infer_batch": (4, "frames per inference batch", "[1, 4096]"),
        "vgg_weights": Param(None, "optional local VGG16 state dict (torchvision's layout) for stage 2; none by default",
                         kind="weights"),
    }
    configs = {
        "paper": {},
        "cpu": {"rec_size": 64, "rec_base": 16, "latent": 128, "width": 0.25, "fc": 128, "input_width": 160,
                "input_height": 120, "optimizer": "adam", "weight_decay": 0.0, "clip": 5.0, "deeplab_lr_mult": False,
                "init_std": None, "steps": (300, 3000, 400), "lrs": (2e-3, 2e-4, 5e-5), "batches": (8, 4, 4),
                "infer_batch": 8},
        "smoke": {"rec_size": 32, "rec_base": 4, "latent": 16, "width": 0.0625, "fc": 8, "input_width": 64,
                  "input_height": 48, "optimizer": "adam", "weight_decay": 0.0, "clip": 5.0, "deeplab_lr_mult": False,
                  "init_std": None, "steps": (2, 2, 2), "lrs": (1e-3, 1e-3, 1e-4), "batches": (2, 2, 1),
                  "infer_batch": 2},
    }

    @classmethod
    def validate(cls, values: dict[str, Any]) -> None:
        for k in ("steps", "lrs", "batches"):
            _three(values[k], k)
        s = values["rec_size"]
        if s & (s - 1):
            raise BadInput(f"rec_size = {s} is not a power of 2 (stride-2 convolutions down to 4x4)",
                           "two_stage_cnn.rec_size", "give 32, 64 or 128 (the paper's)")

    @property
    def input_size(self) -> tuple[int, int]:  # type: ignore[override]
        return int(self.p["input_width"]), int(self.p["input_height"])

    def build(self) -> None:
        self.rec = Reconstructor(int(self.p["rec_base"]), int(self.p["rec_size"]), int(self.p["latent"])).to(self.device)
        self.seg = LargeFOV(float(self.p["width"]), int(self.p["fc"]), int(self.p["atrous"])).to(self.device)
        init_weights(self.rec, self.seg, self.p["init_std"])
        self.weights_loaded = load_vgg16(self.seg.front, self.p["vgg_weights"]) if self.p["vgg_weights"] else 0

    def modules(self) -> dict[str, nn.Module]:
        return {"rec": self.rec, "seg": self.seg}

    def describe(self) -> dict[str, Any]:
        w, h = self.input_size
        s = int(self.p["rec_size"])
        self.rec.eval()
        self.seg.eval()
        return {"parameters": {"stage1": count_params(self.rec), "stage2": count_params(self.seg),
                               "total": count_params(self.rec) + count_params(self.seg)},
                "flops": {"stage1_per_frame": flops(self.rec, torch.zeros(1, 3, s, s, device=self.device)),
                          "stage2_per_frame": flops(self.seg, torch.zeros(1, 6, h, w, device=self.device))},
                "input_size": f"{w}x{h}", "pretrained_tensors": self.weights_loaded}

    def training_plan(self, sizes: Sequence[tuple[int, int, int]]) -> list[dict[str, Any]]:
        """Training stages for ``bgbench run --dry-run`` (bgbench.dryrun): per stage its steps
        and the forward FLOPs of one step through trained and frozen modules, by the FLOP counter
        of ``describe``. ``sizes``: (width, height, frames) of each training video."""
        d = self.describe()["flops"]
        rec, seg = d["stage1_per_frame"], d["stage2_per_frame"]
        steps = [int(v) for v in _three(self.p["steps"], "steps")]
        bss = [int(v) for v in _three(self.p["batches"], "batches")]
        # step 2 runs stage 1 frozen (no gradient); the joint step trains both
        return [{"stage": "stage 1", "steps": steps[0], "trained_flops": bss[0] * rec, "frozen_flops": 0},
                {"stage": "stage 2", "steps": steps[1], "trained_flops": bss[1] * seg, "frozen_flops": bss[1] * rec},
                {"stage": "joint", "steps": steps[2], "trained_flops": bss[2] * (rec + seg), "frozen_flops": 0}]

    # --- the network -----------------------------------------------------------------------
    def _shrink(self, x: torch.Tensor) -> torch.Tensor:
        """Stage-2-size images (float32) -> stage 1's size (antialiased bilinear, float32)."""
        s = int(self.p["rec_size"])
        return x if x.shape[-2:] == (s, s) else F.interpolate(x, size=(s, s), mode="bilinear", align_corners=False,
                                                               antialias=True)

    def _segment(self, x: torch.Tensor, bg: torch.Tensor) -> torch.Tensor:
        """Stage 2 on frames x and stage-1 backgrounds bg (float32, [0, 1]); the fixed bilinear
        layer brings bg to the frames' size."""
        bg_up = F.interpolate(bg, size=x.shape[-2:], mode="bilinear", align_corners=False)
        return self.seg(torch.cat([x, bg_up], 1))

    def _forward(self, frames: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """frames N x 3 x H x W float32 in [0, 1] -> (background at rec_size x rec_size in [0, 1],
        float32; 2-class logits at H x W)."""
        bg = torch.sigmoid(self.rec(self._shrink(frames)).float())
        return bg, self._segment(frames, bg)

    @staticmethod
    def rec_loss(pre: torch.Tensor, clean: torch.Tensor) -> torch.Tensor:
        """Eq. 1 in float32: squared error summed over pixels and channels, mean over images."""
        return ((torch.sigmoid(pre.float()) - clean.float()) ** 2).sum(dim=(1, 2, 3)).mean()

    @staticmethod
    def clean_background(item, size: tuple[int, int], limit: int = 100) -> np.ndarray:
        """Per-pixel temporal median of background observations in the training frames."""
        ids = list(item.frames)
        ids = [ids[int(i)] for i in np.linspace(0, len(ids) - 1, min(limit, len(ids))).round()]
        frames = item.view.frames(ids, size).astype(np.float32)
        gts = np.stack([resize_labels(item.gt(f), size) for f in ids])
        bgmask = (gts == codes.STATIC) | (gts == codes.SHADOW)
        masked = np.where(bgmask[..., None], frames, np.nan)
        with warnings.catch_warnings():  # pixels never seen as background: filled just below
            warnings.simplefilter("ignore", RuntimeWarning)
            med = np.nanmedian(masked, axis=0)
        fallback = np.median(frames, axis=0)
        return np.where(np.isnan(med), fallback, med).astype(np.uint8)

    # --- training ----------------------------------------------------------------------------
    def param_groups(self, model: nn.Module, lr: float) -> list[dict[str, Any]]:
        """The optimiser's parameter groups. With ``deeplab_lr_mult`` stage 2 takes
        DeepLab-LargeFOV's multipliers: biases at 2x the rate and without weight decay, fc8 at
        10x (its bias 20x); stage 1 and everything without it at the base rate."""
        wd = float(self.p["weight_decay"])
        if not self.p["deeplab_lr_mult"]:
            return [{"params": list(model.parameters())}]
        fc8 = {id(p) for p in self.seg.fc[6].parameters()}
        seg = {id(p) for p in self.seg.parameters()}
        groups: dict[tuple[float, float], list] = {}
        for name, p in model.named_parameters():
            bias = name.endswith("bias")
            mult = (20.0 if bias else 10.0) if id(p) in fc8 else (2.0 if bias else 1.0) if id(p) in seg else 1.0
            decay = 0.0 if bias and id(p) in seg else wd
            groups.setdefault((mult, decay), []).append(p)
        return [{"params": ps, "lr": lr * m, "weight_decay": d} for (m, d), ps in groups.items()]

    def training_data(self, train: TrainingSet) -> TrainingData:
        """The fit's bank (frames at the stage-2 size, label codes, clean backgrounds, paste
        sources; all uint8) and ``batch(step, size, salt) -> (x, clean, target, valid)``,
        gathered on the device from (seed, step) alone: the rows are
        ``epoch_rows(seed, step, size, len(video), salt)``."""
        items = list(train.train)
        w, h = self.input_size
        s = int(self.p["rec_size"])
        frames = [it.view.frames(it.frames, (w, h)) for it in items]  # uint8 BGR at the stage-2 size
        lcodes = [label_codes(it, it.frames, (w, h)) for it in items]  # uint8, 85 outside the ROI
        vid = np.concatenate([np.full(len(it.frames), k, np.int64) for k, it in enumerate(items)])
        arrays: dict[str, Any] = {"f": np.concatenate(frames), "c": np.concatenate(lcodes),
                                  "bg": np.stack([self.clean_background(it, (s, s)) for it in items])}
        # copy-paste (Sec. 4.1): videos whose training frames all lack foreground get 1 or 2
        # objects per image, cut from the other training videos' foreground
        empty = [k for k, c in enumerate(lcodes) if not (c == codes.MOTION).any()]
        table = np.zeros((0, 6), np.int64)
        if empty:
            offsets = np.cumsum([0] + [len(c) for c in lcodes])
            src = [k for k in range(len(items)) if k not in empty]
            if src:
                src_rows = np.concatenate([np.arange(offsets[k], offsets[k + 1]) for k in src])
                labels, table = find_objects(arrays["c"][src_rows])
                keep = np.unique(table[:, 0])  # only frames that hold an object
                remap = np.full(len(src_rows), -1, np.int64)
                remap[keep] = np.arange(len(keep))
                arrays["src_f"] = arrays["f"][src_rows[keep]]
                arrays["src_l"] = labels[keep]
                table[:, 0] = remap[table[:, 0]]
            if not len(table):
                warnings.warn(f"{', '.join(items[k].id for k in empty)}: no foreground in the training frames and "
                              "no object in other training videos to paste; training on background only",
                              stacklevel=3)
        needs_paste = np.isin(vid, empty) if len(table) else np.zeros(len(vid), bool)
        data = self.bank(arrays)
        n = len(vid)

        def batch(step: int, bs: int, salt: str):
            rows = epoch_rows(self.seed, step, bs, n, salt)
            pastes = draw_pastes(step_rng(self.seed, step, f"paste|{salt}"), np.flatnonzero(needs_paste[rows]),
                                 table, (h, w))
            f, c = data.take("f", rows), data.take("c", rows)
            if pastes:
                f, c = f.clone(), c.clone()
                for at, obj, dy, dx in pastes:
                    r, lab = int(table[obj, 0]), int(table[obj, 1])
                    paste(f, c, data.take("src_f", [r])[0], data.take("src_l", [r])[0], lab, at, dy, dx)
            x = as_float(f.flip(-1).permute(0, 3, 1, 2))  # RGB, N x 3 x H x W
            clean = as_float(data.take("bg", vid[rows]).flip(-1).permute(0, 3, 1, 2))
            return (x, clean, *code_targets(c, ignore_shadow=False))

        return TrainingData(data, batch, vid, table)

    def fit(self, train: TrainingSet) -> None:
        data, batch, _, _ = self.training_data(train)
        steps = [int(v) for v in _three(self.p["steps"], "steps")]
        lrs = [float(v) for v in _three(self.p["lrs"], "lrs")]
        bss = [int(v) for v in _three(self.p["batches"], "batches")]
        lam = float(self.p["lam"])
        clip = float("inf") if self.p["clip"] is None else float(self.p["clip"])

        def stage1_loss(b) -> torch.Tensor:
            x, clean, _, _ = b
            return self.rec_loss(self.rec(self._shrink(x)), clean)

        def stage2_loss(b) -> torch.Tensor:
            x, _, t, v = b
            with torch.no_grad():
                bg = torch.sigmoid(self.rec(self._shrink(x)).float())
            return masked_ce(self._segment(x, bg), t, v)

        def joint_loss(b) -> torch.Tensor:
            x, clean, t, v = b
            pre = self.rec(self._shrink(x))
            logits = self._segment(x, torch.sigmoid(pre.float()))
            return self.rec_loss(pre, clean) + lam * masked_ce(logits, t, v)

        def run(model, k, tag, loss, desc):
            tr = self.trainer(model, lrs[k], tag, clip=clip, params=self.param_groups(model, lrs[k]))
            return self.train_stage(tr, steps[k], loss, desc, lambda step: batch(step, bss[k], tag), data, bss[k])

        self.history = run(self.rec, 0, "stage1", stage1_loss, "two-stage 1/3")
        self.rec.eval()  # frozen in step 2: batch-norm statistics too
        self.history += run(self.seg, 1, "stage2", stage2_loss, "two-stage 2/3")
        self.history += run(Joint(self.rec, self.seg), 2, "joint", joint_loss, "two-stage 3/3")
        self.rec.eval()
        self.seg.eval()

    # --- inference -----------------------------------------------------------------------------
    def segment(self, video: VideoView, frames: Sequence[int]) -> Iterator[tuple[int, np.ndarray]]:
        self.rec.eval()
        self.seg.eval()
        for chunk in batches(sorted(frames), self.infer_batch):
            with self.infer():
                _, logits = self._forward(as_float(upload(video.frames(chunk, self.input_size), self.device)))
                out = native(torch.softmax(logits.float(), dim=1)[:, 1:2], video.shape, self.device_maps)
            for fid, p in zip(chunk, out):
                yield fid, p
