"""The one VGG16 loader of the deep methods (siamese_fcn's front, two_stage_cnn's stage 2).

A local VGG16 state dict laid out as torchvision's (``features.N.weight`` / ``.bias`` for
the 13 convolutions at ``VGG16_CONVS``; a ``module.`` prefix, and a checkpoint wrapping it
in ``state_dict``, are accepted) is copied into a module's convolutions **by name**: the k-th
``nn.Conv2d`` of the module (in module order) takes ``features.{VGG16_CONVS[k]}``, so a
front with fewer convs (siamese_fcn's first 10) or other pooling (DeepLab-LargeFOV's) maps
the same way. Loaded with ``weights_only=True``; nothing is downloaded.

- A first conv with twice the file's input channels (two_stage_cnn's 6-channel conv1_1: frame
  and background) gets the RGB filters on both halves, each scaled by 0.5, so a frame equal
  to its background gives the pretrained response.
- Counted: the number of tensors copied is returned and logged.
- Refused (BadInput naming the file): an unreadable or unsafe file, one that is not a state
  dict, one with no tensor under these names, and any shape mismatch (another ``width`` than
  1.0: a partial copy of mismatched layers is never right). Tensors missing from the file
  leave those layers as initialised, with a warning naming the count.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import torch
from torch import nn

from bgbench.errors import BadInput

log = logging.getLogger(__name__)

# torchvision's VGG16 ``features``: the indices of its 13 convolutions (ReLUs and pools between)
VGG16_CONVS = (0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28)
FIX = "give a torch state dict of VGG16 in torchvision's layout (features.0.weight ... features.28.bias), at width 1.0"


def read_state(path: str | Path) -> dict[str, torch.Tensor]:
    """The file's state dict (``weights_only=True``), ``module.`` prefixes stripped."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - one clear message for a missing, foreign or unsafe file
        raise BadInput(f"cannot be read as a state dict ({type(e).__name__}: {str(e)[:200]})", path, FIX) from None
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise BadInput(f"holds a {type(state).__name__}, not a state dict", path, FIX)
    return {(k[len("module."):] if isinstance(k, str) and k.startswith("module.") else k): v for k, v in state.items()}


def load_vgg16(module: nn.Module, path: str | Path) -> int:
    """Copy VGG16 weights from ``path`` into ``module``'s convolutions by torchvision name
    (module docstring); return the number of tensors copied."""
    state = read_state(path)
    convs = [m for m in module.modules() if isinstance(m, nn.Conv2d)][:len(VGG16_CONVS)]
    plan, mismatched = [], []
    for conv, i in zip(convs, VGG16_CONVS):
        for kind in ("weight", "bias"):
            src = state.get(f"features.{i}.{kind}")
            if not torch.is_tensor(src):
                continue
            dst = getattr(conv, kind)
            if dst is None:
                continue
            if kind == "weight" and src.ndim == 4 and dst.shape[1] == 2 * src.shape[1]:
                src = torch.cat([src, src], 1) * 0.5  # frame and background halves
            if tuple(src.shape) != tuple(dst.shape):
                mismatched.append(f"features.{i}.{kind} {tuple(src.shape)} vs {tuple(dst.shape)}")
            else:
                plan.append((dst, src))
    if mismatched:
        raise BadInput(f"has VGG16 tensors whose shapes differ from the model's ({len(mismatched)}: "
                       f"{', '.join(mismatched[:3])})", path, FIX + " (the model's width must be 1.0)")
    if not plan:
        raise BadInput("holds no VGG16 convolution tensor under torchvision's names", path, FIX)
    with torch.no_grad():
        for dst, src in plan:
            dst.copy_(src.to(dst.dtype))
    total = 2 * len(convs)
    if len(plan) < total:
        warnings.warn(f"{path}: loaded {len(plan)} of {total} VGG16 tensors; the rest keep their initial values",
                      stacklevel=2)
    log.info("%s: loaded %d of %d VGG16 convolution tensors", path, len(plan), total)
    return len(plan)


def he_init(module: nn.Module) -> None:
    """He (Kaiming) normal init (fan-in, ReLU gain), biases 0, for every conv of ``module``:
    what stands in for the pretrained layers when no VGG16 file is given (papers' N(0, 0.01)
    or PyTorch's default leave a 10-conv ReLU stack with vanishing signal)."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
