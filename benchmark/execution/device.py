"""Device choice: ``auto`` is CUDA when torch sees a GPU, else the CPU."""

from __future__ import annotations

from bgbench.errors import BadInput

DEVICES = ("auto", "cpu", "cuda")


def validate(device: str) -> str:
    """The device name checked for its form only (auto, cpu, cuda or cuda:N); no torch import."""
    if not isinstance(device, str) or not (device in DEVICES or (device.startswith("cuda:") and device[5:].isdigit())):
        raise BadInput(f"unknown device {device!r}", "--device", "use auto, cpu, cuda or cuda:N")
    return device


def resolve(device: str) -> str:
    validate(device)
    if device == "cpu":
        return "cpu"
    try:
        import torch
    except ImportError:
        if device == "auto":
            return "cpu"
        raise BadInput("CUDA was asked for but torch is not installed", "--device", "install torch or use --device cpu") from None
    if torch.cuda.is_available():
        n = torch.cuda.device_count()
        if device.startswith("cuda:") and int(device[5:]) >= n:
            raise BadInput(f"{device} was asked for but torch sees {n} GPU(s) (cuda:0..cuda:{n - 1})", "--device",
                           "use --device cuda, or a GPU index below the count")
        return "cuda" if device == "auto" else device
    if device == "auto":
        return "cpu"
    raise BadInput("CUDA was asked for but no GPU is visible to torch", "--device", "use --device cpu or auto")


def check_for(device: str, classes: dict) -> list[str]:
    """``device`` before any work: its form always, CUDA's presence for every method that can
    use it (``gpu_capable``). Returns the methods that run on the CPU whatever it says."""
    validate(device)
    if any(c.gpu_capable for c in classes.values()) and device != "auto":
        resolve(device)
    return [m for m, c in classes.items() if not c.gpu_capable]


def cpu_only_note(device: str, cpu_only: list[str]) -> str | None:
    """What to say when CUDA is asked for methods that have no GPU implementation."""
    if not (cpu_only and device.startswith("cuda")):
        return None
    return (f"bgbench: note: {', '.join(cpu_only)} {'runs' if len(cpu_only) == 1 else 'run'} on the CPU whatever "
            f"--device says (no GPU implementation)")


def synchronize(device: str) -> None:
    """Wait for ``device``'s queued work (CUDA), so that a clock read after it is honest."""
    if device.startswith("cuda"):
        import torch

        torch.cuda.synchronize(device)
