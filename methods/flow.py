"""3D hierarchical optical flow (3D-HOP, papers/004): for frame t, dense optical flow
between frame t and t - tau for tau = 1, 5, 10, one channel each (flow magnitude), stacked
as a 3-channel motion image. Frames with fewer than tau predecessors use the earliest frame.

The paper used SelFlow, which cannot be had offline: the backend is a parameter, OpenCV DIS
by default, Farneback selectable. Magnitudes are normalised by ``scale`` pixels (clipped to
1) and stored as uint8 in the frame cache, once per video, backend, size and scale.
"""

from __future__ import annotations

import numpy as np

from bgbench.data.video import VideoView

TAUS = (1, 5, 10)
BACKENDS = ("dis", "farneback")


def flow_magnitude(a: np.ndarray, b: np.ndarray, backend: str = "dis") -> np.ndarray:
    """|flow| from grey frame a to grey frame b (H x W float32, pixels)."""
    import cv2

    if backend == "dis":
        dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)  # type: ignore[attr-defined]  # not in cv2's stubs
        f = dis.calc(a, b, None)
    elif backend == "farneback":
        f = cv2.calcOpticalFlowFarneback(a, b, None, 0.5, 3, 15, 3, 5, 1.2, 0)  # type: ignore[call-overload]  # None: allocated
    else:
        raise ValueError(f"unknown flow backend {backend!r}; use one of {BACKENDS}")
    return np.sqrt(f[..., 0] ** 2 + f[..., 1] ** 2)


def hop(view: VideoView, size: tuple[int, int], backend: str = "dis", scale: float = 10.0) -> np.ndarray:
    """N x h x w x 3 uint8 3D-HOP of every frame of the video at ``size`` (width, height),
    computed once and cached."""
    import cv2

    def grey(k: int) -> np.ndarray:
        return cv2.cvtColor(view.frames([view.frame_ids[k]], size)[0], cv2.COLOR_BGR2GRAY)

    def compute(k: int) -> np.ndarray:
        now = grey(k)
        chans = [flow_magnitude(grey(max(k - tau, 0)), now, backend) for tau in TAUS]
        return np.clip(np.stack(chans, axis=-1) * (255.0 / scale), 0, 255).astype(np.uint8)

    w, h = size
    return view.derived(f"hop-{backend}-{w}x{h}", compute, (h, w, 3), scale, TAUS)
