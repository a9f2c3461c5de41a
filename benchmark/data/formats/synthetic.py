"""A seeded generator of scenes in the CDnet2014 layout with exactly known ground truth.

One scene per difficulty the field tests: moving objects (baseline), cast shadows,
dynamic background, camera jitter, illumination change and intermittent object motion.
Ground truth follows CDnet's conventions: 255 object, 50 hard shadow, 170 a one-pixel
band on object borders, 85 outside the ROI (a 4-pixel frame border) and on every frame
before the temporal ROI.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bgbench.data import codes
from bgbench.data.framecache import cache_root

GENERATOR_VERSION = 1
SCENES = (
    ("baseline", "moving"),
    ("shadow", "shadow"),
    ("dynamicBackground", "dynamic"),
    ("cameraJitter", "jitter"),
    ("illumination", "illumination"),
    ("intermittentObjectMotion", "intermittent"),
)


@dataclass
class _Obj:
    y: float
    x: float
    vy: float
    vx: float
    h: int
    w: int
    color: np.ndarray
    stop: tuple[int, int] | None = None  # frames during which it stands still

    def pos(self, t: int) -> tuple[int, int]:
        moving = t
        if self.stop is not None:
            a, b = self.stop
            moving = t if t < a else (a if t < b else t - (b - a))
        return int(round(self.y + self.vy * moving)), int(round(self.x + self.vx * moving))


def _texture(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    import cv2

    small = rng.uniform(60, 200, size=(max(2, h // 12), max(2, w // 12), 3)).astype(np.float32)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)


def render_scene(kind: str, seed: int, size: tuple[int, int] = (160, 120), n_frames: int = 100, first_scored: int = 31):
    """Yield (frame id, RGB uint8, ground truth uint8) for frame ids 1..n_frames."""
    import cv2

    rng = np.random.default_rng([seed, SCENES.index(next(s for s in SCENES if s[1] == kind))])
    w, h = size
    m = 8  # canvas margin, for jitter
    H, W = h + 2 * m, w + 2 * m
    bg = _texture(rng, H, W)
    objs = [
        _Obj(y=m + rng.uniform(15, h - 45), x=-20.0, vy=rng.uniform(-0.2, 0.2), vx=rng.uniform(1.8, 2.6),
             h=int(rng.integers(16, 26)), w=int(rng.integers(18, 30)), color=rng.uniform(0, 255, 3)),
        _Obj(y=m + rng.uniform(15, h - 45), x=W + 5.0, vy=rng.uniform(-0.2, 0.2), vx=-rng.uniform(1.5, 2.2),
             h=int(rng.integers(12, 20)), w=int(rng.integers(12, 20)), color=rng.uniform(0, 255, 3)),
    ]
    if kind == "intermittent":
        objs[0].stop = (45, 75)
    yy, xx = np.mgrid[0:H, 0:W]
    roi = np.zeros((h, w), bool)
    roi[4:-4, 4:-4] = True
    for t in range(1, n_frames + 1):
        img = bg.copy()
        if kind == "dynamic":  # a waving band on the left: water or leaves
            band = xx < W // 3
            wave = 28 * np.sin(0.45 * yy + 0.8 * t + 0.3 * xx)
            img[band] += wave[band][:, None]
        obj_mask = np.zeros((H, W), bool)
        shadow_mask = np.zeros((H, W), bool)
        for o in objs:
            y, x = o.pos(t)
            sl = (slice(max(y, 0), max(y + o.h, 0)), slice(max(x, 0), max(x + o.w, 0)))
            if kind == "shadow":
                shadow_mask[max(y + 5, 0):max(y + o.h + 5, 0), max(x + 7, 0):max(x + o.w + 7, 0)] = True
            obj_mask[sl] = True
        shadow_mask &= ~obj_mask
        img[shadow_mask] *= 0.5
        for o in objs:
            y, x = o.pos(t)
            sl = (slice(max(y, 0), max(y + o.h, 0)), slice(max(x, 0), max(x + o.w, 0)))
            img[sl] = o.color + 12 * np.sin(0.7 * yy[sl] + 0.5 * xx[sl])[..., None]
        if kind == "illumination":
            img *= 1.0 + 0.35 * np.sin(2 * np.pi * t / 60.0)
        img += rng.normal(0, 2.5, img.shape)
        dy, dx = (rng.integers(-3, 4, 2) if kind == "jitter" else (0, 0))
        crop = (slice(m + dy, m + dy + h), slice(m + dx, m + dx + w))
        frame = np.clip(img[crop], 0, 255).astype(np.uint8)
        fg = obj_mask[crop].astype(np.uint8)
        gt = np.full((h, w), codes.STATIC, np.uint8)
        gt[shadow_mask[crop]] = codes.SHADOW
        gt[fg > 0] = codes.MOTION
        k = np.ones((3, 3), np.uint8)
        border = (cv2.dilate(fg, k) > 0) & ~(cv2.erode(fg, k) > 0)
        gt[border] = codes.UNKNOWN
        gt[~roi] = codes.OUTSIDE_ROI
        if t < first_scored:
            gt[:] = codes.OUTSIDE_ROI
        yield t, frame, gt


def write_scenes(out: Path, seed: int = 0, n_frames: int = 100, first_scored: int = 31) -> Path:
    """Write every synthetic scene under ``out/synthetic`` in the CDnet2014 layout."""
    import cv2

    root = Path(out) / "synthetic"
    for category, kind in SCENES:
        scene = root / category / kind
        (scene / "input").mkdir(parents=True, exist_ok=True)
        (scene / "groundtruth").mkdir(parents=True, exist_ok=True)
        for t, frame, gt in render_scene(kind, seed, n_frames=n_frames, first_scored=first_scored):
            cv2.imwrite(str(scene / "input" / f"in{t:06d}.jpg"), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR),
                        [cv2.IMWRITE_JPEG_QUALITY, 95])
            cv2.imwrite(str(scene / "groundtruth" / f"gt{t:06d}.png"), gt)
        roi = np.zeros(gt.shape, np.uint8)
        roi[4:-4, 4:-4] = 255
        cv2.imwrite(str(scene / "ROI.bmp"), roi)
        (scene / "temporalROI.txt").write_text(f"{first_scored} {n_frames}\n")
    return root


def ensure_synthetic(seed: int = 0) -> Path:
    """The built-in synthetic dataset, generated once into the cache."""
    final = cache_root() / f"synthetic-v{GENERATOR_VERSION}-seed{seed}"
    if not (final / "synthetic").is_dir():
        tmp = final.with_name(f"{final.name}.{os.getpid()}.tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        write_scenes(tmp, seed)
        from bgbench.data.framecache import SYNTHETIC_MARK

        (tmp / SYNTHETIC_MARK).write_text("written by bgbench: `bgbench cache clear` may delete this folder\n")
        try:
            os.replace(tmp, final)
        except OSError:  # another process won the race
            shutil.rmtree(tmp, ignore_errors=True)
    return final / "synthetic"


class Synthetic:
    """Registered as the ``synthetic`` format: generates, then reads as cdnet2014."""

    name = "synthetic"

    def is_scene(self, path: Path) -> bool:
        return False
