"""Device choice: ``auto`` is CUDA when torch sees a GPU, else the CPU."""

from __future__ import annotations

from .errors import BadInput

DEVICES = ("auto", "cpu", "cuda")


def resolve(device: str) -> str:
    if device not in DEVICES and not device.startswith("cuda:"):
        raise BadInput(f"unknown device {device!r}", "--device", "use auto, cpu, cuda or cuda:N")
    if device == "cpu":
        return "cpu"
    try:
        import torch
    except ImportError:
        if device == "auto":
            return "cpu"
        raise BadInput("CUDA was asked for but torch is not installed", "--device", "install torch or use --device cpu") from None
    if torch.cuda.is_available():
        return "cuda" if device == "auto" else device
    if device == "auto":
        return "cpu"
    raise BadInput("CUDA was asked for but no GPU is visible to torch", "--device", "use --device cpu or auto")
