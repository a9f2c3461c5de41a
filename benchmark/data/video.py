"""The data model: a ``Video`` with ground truth, the ``VideoView`` methods segment
(no ground truth reachable from it), and the ``TrainingSet`` that ``fit`` receives.

A Video is a light, picklable description (paths and ids); pixels come from the
decoded-frame cache on first use, as uint8 in OpenCV's BGR channel order (what a plain
``cv2.imread`` gives, so wrapped OpenCV methods see exactly the pixels of a plain loop). Ground truth uses CDnet codes (bgbench.data.codes).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Callable, Sequence, cast

import numpy as np

from bgbench.data import codes
from bgbench.errors import BadInput, LeakageError
from bgbench.data.framecache import cached_stack
from bgbench.data.imageio import read_bgr, read_gray, read_label
from bgbench.scoring.metrics import Gathered, TruthIndex

ROI_POLICIES = ("error", "ignore", "from-groundtruth")
_VALID_LUT = np.zeros(256, bool)
_VALID_LUT[list(codes.VALID)] = True


def video_id(dataset: str, category: str | None, name: str) -> str:
    return f"{dataset}/{category or '-'}/{name}"


@dataclass(frozen=True)
class FrameSource:
    """The images of a video, decoded once into the cache. Holds no ground truth."""

    vid: str
    files: tuple[Path, ...]
    ids: tuple[int, ...]
    shape: tuple[int, int]  # (height, width)

    @cached_property
    def _pos(self) -> dict[int, int]:
        return {fid: k for k, fid in enumerate(self.ids)}

    @cached_property
    def _stacks(self) -> dict:
        return {}

    def __getstate__(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k != "_stacks"}  # memmaps reopen, never pickle

    def _stack(self, size: tuple[int, int] | None) -> np.ndarray:
        """The cached memmap at ``size``, opened once per process (the cache key stats
        every source file, which must not happen per call)."""
        key = None if size is None else cast("tuple[int, int]", tuple(size))
        if key not in self._stacks:
            self._stacks[key] = self._open_stack(key)
        return self._stacks[key]

    def _open_stack(self, size: tuple[int, int] | None) -> np.ndarray:
        h, w = self.shape
        if size is None or tuple(size) == (w, h):
            return cached_stack(f"{self.vid}-bgr", self.files, self._decode, (h, w, 3))
        native = self._stack(None)
        import cv2

        sw, sh = size
        pos = self._pos

        def resized(f: Path) -> np.ndarray:
            return cv2.resize(np.asarray(native[pos[self._file_id[f]]]), (sw, sh), interpolation=cv2.INTER_AREA)

        return cached_stack(f"{self.vid}-bgr{sw}x{sh}", self.files, resized, (sh, sw, 3), "resized")

    @cached_property
    def _file_id(self) -> dict[Path, int]:
        return dict(zip(self.files, self.ids))

    def _decode(self, f: Path) -> np.ndarray:
        img = read_bgr(f)
        if img.shape[:2] != self.shape:
            h, w = img.shape[:2]
            raise BadInput(
                f"is {w}x{h} but the video's frames are {self.shape[1]}x{self.shape[0]}",
                f,
                "every frame of a video must have one size; replace the file",
            )
        return img

    def positions(self, ids: Sequence[int]) -> np.ndarray:
        try:
            return np.fromiter((self._pos[i] for i in ids), dtype=np.int64, count=len(ids))
        except KeyError as e:
            raise BadInput(f"frame id {e.args[0]} is not in this video", self.vid) from None

    def frames(self, ids: Sequence[int], size: tuple[int, int] | None = None) -> np.ndarray:
        """N x H x W x 3 uint8 in OpenCV's BGR order (as decoded; flip the last axis for RGB);
        ``size`` = (width, height) resizes (cv2.INTER_AREA). A resized copy of the whole video
        is cached only when it is no larger than the native frames (``caches_resized``);
        a larger size is resized from the native cache per call: the same pixels, no
        upscaled copy on disk (two_stage_cnn's 961x961 copy of highway would be 4.7 GB)."""
        if size is not None and not self.caches_resized(size):
            import cv2

            native, sw, sh = self._stack(None), int(size[0]), int(size[1])
            pos = self.positions(ids)
            out = np.empty((len(pos), sh, sw, 3), np.uint8)
            for k, p in enumerate(pos):
                cv2.resize(np.asarray(native[p]), (sw, sh), dst=out[k], interpolation=cv2.INTER_AREA)
            return out
        return np.asarray(self._stack(size)[self.positions(ids)])

    def caches_resized(self, size: tuple[int, int]) -> bool:
        """Whether frames at ``size`` (width, height) come from a cached resized copy: only
        sizes with no more pixels than the native frames, so a video's resized copies never
        take more disk than its native one per size."""
        h, w = self.shape
        return int(size[0]) * int(size[1]) <= w * h

    def frame(self, i: int) -> np.ndarray:
        return np.asarray(self._stack(None)[self._pos[i]])

    def all_frames(self) -> np.ndarray:
        """The whole video as a read-only memmap, in id order."""
        return self._stack(None)

    def derived(self, name: str, compute: Callable[[int], np.ndarray], shape: tuple[int, ...], *extra: object) -> np.ndarray:
        key = ("derived", name, shape, extra)
        if key not in self._stacks:
            pos = {f: k for k, f in enumerate(self.files)}
            self._stacks[key] = cached_stack(f"{self.vid}-{name}", self.files, lambda f: compute(pos[f]), shape,
                                             name, *extra)
        return self._stacks[key]


class VideoView:
    """What ``Method.segment`` sees: frames, ids, ROI. Ground truth is not reachable."""

    __slots__ = ("id", "dataset", "category", "name", "frame_ids", "eval_frames", "unlabelled_frames",
                 "temporal_roi", "shape", "roi", "_source", "walked")

    def __init__(self, video: "Video | Clip"):
        self.walked = 0
  # frames handed out by method.frames_through (nonzero: the method walks the video; FPS)
        self.id, self.dataset, self.category, self.name = video.id, video.dataset, video.category, video.name
        self.frame_ids, self.eval_frames = video.frame_ids, video.eval_frames
        self.unlabelled_frames, self.temporal_roi = video.unlabelled_frames, video.temporal_roi
        self.shape, self.roi = video.shape, video.roi
        self._source = video.source

    def frame(self, i: int) -> np.ndarray:
        return self._source.frame(i)

    def frames(self, ids: Sequence[int], size: tuple[int, int] | None = None) -> np.ndarray:
        return self._source.frames(ids, size)

    def all_frames(self) -> np.ndarray:
        return self._source.all_frames()

    def derived(self, name: str, compute: Callable[[int], np.ndarray], shape: tuple[int, ...], *extra: object) -> np.ndarray:
        """N x ``shape`` uint8: ``compute(k)`` for the k-th frame, cached like the frames
        (keyed by the video's files, ``name`` and ``extra``; opened once), e.g. optical flow."""
        return self._source.derived(name, compute, shape, *extra)

    def position(self, fid: int) -> int:
        """Index of frame ``fid`` in ``frame_ids`` (and in ``all_frames()``)."""
        return self._source._pos[fid]

    def __reduce__(self):
        raise TypeError("a VideoView is not picklable: pass the Video and make the view where it is used")

    def __repr__(self) -> str:
        return f"VideoView({self.id}, {len(self.frame_ids)} frames)"


@dataclass(frozen=True)
class Video:
    dataset: str
    category: str | None
    name: str
    path: Path
    format: str
    frame_files: tuple[Path, ...]
    frame_ids: tuple[int, ...]
    gt_files: tuple[tuple[int, Path], ...]  # (frame id, file), only frames that have ground truth
    roi_file: Path | None
    temporal_roi: tuple[int, int]
    shape: tuple[int, int]  # (height, width)
    roi_policy: str = "error"
    roi_mismatch: str | None = None  # why the ROI file cannot be used, if it cannot
    gt_lut: tuple[int, ...] | None = None  # raw label value -> CDnet code (-1: not a label of the dataset)
    notes: tuple[str, ...] = field(default=())
    gt_colour: str = "refuse"  # a colour mask whose channels differ: refused, or "luma" (imageio.read_label)

    @property
    def id(self) -> str:
        return video_id(self.dataset, self.category, self.name)

    def __getstate__(self) -> dict:
        # jobs ship Videos to worker processes: the open memmaps stay behind and reopen there
        return {k: v for k, v in self.__dict__.items() if k not in ("source", "_gt_memmap", "truth_index")}

    @cached_property
    def source(self) -> FrameSource:
        return FrameSource(self.id, self.frame_files, self.frame_ids, self.shape)

    @cached_property
    def _gt_pos(self) -> dict[int, int]:
        return {fid: k for k, (fid, _) in enumerate(self.gt_files)}

    @cached_property
    def eval_frames(self) -> tuple[int, ...]:
        """Frames inside the temporal ROI that have ground truth: the scored frames."""
        a, b = self.temporal_roi
        return tuple(fid for fid, _ in self.gt_files if a <= fid <= b)

    @cached_property
    def unlabelled_frames(self) -> tuple[int, ...]:
        """Frames before the temporal ROI (never scored, free to use as reference)."""
        return tuple(fid for fid in self.frame_ids if fid < self.temporal_roi[0])

    @property
    def width(self) -> int:
        return self.shape[1]

    @property
    def height(self) -> int:
        return self.shape[0]

    def view(self) -> VideoView:
        return VideoView(self)

    def release(self) -> None:
        """Let go of this video's decoded arrays (frame, resized, derived and ground-truth
        memmaps): a long run keeps only the videos in use mapped. Next use reopens them from
        the cache; views made before keep theirs until they go."""
        from bgbench.data.framecache import release

        src = self.__dict__.pop("source", None)
        gt = self.__dict__.pop("_gt_memmap", None)
        self.__dict__.pop("truth_index", None)
        arrays = list(src.__dict__.get("_stacks", {}).values()) if src is not None else []
        release(arrays + ([gt] if gt is not None else []))

    @property
    def holds_arrays(self) -> bool:
        """Whether decoded arrays of this video are open (see ``release``)."""
        src = self.__dict__.get("source")
        return ("_gt_memmap" in self.__dict__ or "truth_index" in self.__dict__
                or bool(src is not None and src.__dict__.get("_stacks")))

    # --- pixels -------------------------------------------------------------------
    def frame(self, i: int) -> np.ndarray:
        return self.source.frame(i)

    def frames(self, ids: Sequence[int], size: tuple[int, int] | None = None) -> np.ndarray:
        return self.source.frames(ids, size)

    def _decode_gt(self, f: Path) -> np.ndarray:
        """Ground truth as CDnet codes. Without ``gt_lut`` the file must hold CDnet codes;
        with it, each raw value maps through the adapter's table, where -1 marks a value
        the dataset does not use (refused, so a stray 50 or 85 is never read as shadow or
        outside-ROI in a dataset whose masks are plain foreground masks)."""
        g = read_label(f, self.gt_colour)
        if g.shape != self.shape:
            raise BadInput(
                f"ground truth is {g.shape[1]}x{g.shape[0]} but the frames are {self.width}x{self.height}",
                f,
                "ground truth must have the frames' size; replace the file",
            )
        import cv2

        to_code, refused = self._gt_tables
        if cv2.countNonZero(cv2.LUT(g, refused)):  # a table lookup and a count: 25 us a frame, not 110
            vals = np.unique(g[refused[g] > 0]).tolist()
            if self.gt_lut is None:
                raise BadInput(
                    f"ground truth holds label values {vals[:8]} outside the CDnet codes {list(codes.VALID)}",
                    f,
                    "re-export the mask with exact CDnet codes (lossless PNG); if the scene is another dataset in "
                    "this layout, name its layout with --format (sbi2015, ucsd, wallflower)",
                )
            used = [v for v in range(256) if self.gt_lut[v] >= 0]
            fix = ("restore the mask from the dataset's archive (a lossless copy); a re-encoded or resized mask "
                   "has values in between")
            if set(vals) <= set(codes.VALID):  # CDnet's own codes: a CDnet scene read in another layout
                fix = (f"the values are CDnet2014 codes: if the scene is in CDnet2014's layout (here read as "
                       f"{self.format}), name it with --format cdnet2014; else {fix}")
            raise BadInput(
                f"ground truth holds label values {vals[:8]} that {self.format} ground truth does not use "
                f"(it uses {', '.join(map(str, used))})",
                f,
                fix,
            )
        return g if self.gt_lut is None else cv2.LUT(g, to_code)

    @cached_property
    def _gt_tables(self) -> tuple[np.ndarray, np.ndarray]:
        """(raw value -> CDnet code, raw value -> 255 if refused) as uint8 lookup tables."""
        lut = np.arange(256) if self.gt_lut is None else np.asarray(self.gt_lut)
        refused = ~_VALID_LUT[lut] if self.gt_lut is None else lut < 0
        return np.where(refused, 0, lut).astype(np.uint8), np.where(refused, 255, 0).astype(np.uint8)

    @cached_property
    def _gt_memmap(self) -> np.ndarray:
        files = tuple(f for _, f in self.gt_files)
        extra = (self.gt_lut,) if self.gt_colour == "refuse" else (self.gt_lut, self.gt_colour)
        return cached_stack(f"{self.id}-gt", files, self._decode_gt, self.shape, *extra)

    def _gt_stack(self) -> np.ndarray:
        return self._gt_memmap

    def gt(self, i: int) -> np.ndarray:
        return np.asarray(self._gt_stack()[self._gt_pos[i]])

    def gts(self, ids: Sequence[int]) -> np.ndarray:
        pos = [self._gt_pos[i] for i in ids]
        if pos and pos == list(range(pos[0], pos[0] + len(pos))):  # consecutive: a read-only view, like gt(i), no copy
            return np.asarray(self._gt_stack()[pos[0]:pos[0] + len(pos)])
        return np.asarray(self._gt_stack()[pos])

    @cached_property
    def truth_index(self) -> TruthIndex:
        """The ground truth gathered for scoring, once per video (``scoring.TruthIndex``)."""
        return TruthIndex(self._gt_stack(), self.roi)

    def truth(self, ids: Sequence[int]) -> list[Gathered]:
        """The ground truth of frames ``ids`` as ``VideoScore.add`` takes it."""
        return self.truth_index.batch([self._gt_pos[i] for i in ids])

    @cached_property
    def roi(self) -> np.ndarray:
        """H x W bool: the spatial region that is scored."""
        if self.roi_mismatch is None:
            if self.roi_file is None:
                return np.ones(self.shape, bool)
            return read_gray(self.roi_file) > 0
        if self.roi_policy == "ignore":
            return np.ones(self.shape, bool)
        if self.roi_policy == "from-groundtruth":
            g = self.gts(self.eval_frames)
            return (g != codes.OUTSIDE_ROI).any(axis=0)
        raise BadInput(
            self.roi_mismatch,
            self.roi_file,
            "restore the scene's ROI.bmp from the dataset's archive, or pass --roi-policy ignore (score every pixel; "
            "ground truth 85 stays excluded) or --roi-policy from-groundtruth (ROI = pixels the ground truth does not "
            "mark 85)",
        )

    def check(self) -> None:
        """Decode and validate everything now (frames, ground truth, ROI); raise BadInput,
        also for a video with nothing to score (``nothing_to_score``)."""
        self.source.all_frames()
        self._gt_stack()
        _ = self.roi
        why = self.nothing_to_score()
        if why is not None:
            where, text = why
            raise BadInput(f"{self.id} has nothing to score: {text}", where,
                           "give the video labelled frames inside its temporal ROI and a spatial ROI that marks "
                           "pixels, leave it out of --data, or pass --on-bad-data skip to run without it")

    def nothing_to_score(self) -> tuple[Path, str] | None:
        """(the file to blame, why) if no pixel of this video can be scored: no frame of the
        temporal ROI has ground truth, the spatial ROI marks no pixel, or every ROI pixel of
        every scored frame is ground truth 85 (outside ROI) or 170 (unknown). None otherwise
        (the scan stops at the first frame with a scored pixel: one frame, as a rule)."""
        a, b = self.temporal_roi
        troi_file = self.path / "temporalROI.txt"
        if not self.eval_frames:
            ids = [fid for fid, _ in self.gt_files]
            seen = (f"ground truth for frames {min(ids)}-{max(ids)}" if ids else "no ground truth") + (
                f"; frames {self.frame_ids[0]}-{self.frame_ids[-1]}")
            if troi_file.exists():
                return troi_file, f"no frame of the temporal ROI {a}-{b} has ground truth ({seen})"
            return self.path, f"no frame has ground truth ({seen})"
        roi = self.roi
        if not roi.any():
            src = (self.roi_file.name if self.roi_file is not None and self.roi_mismatch is None
                   else f"--roi-policy {self.roi_policy}")
            return (self.roi_file if self.roi_file is not None else self.path,
                    f"the spatial ROI ({src}) marks no pixel")
        import cv2

        scored = np.where(_VALID_LUT, 255, 0).astype(np.uint8)
        scored[[codes.OUTSIDE_ROI, codes.UNKNOWN]] = 0
        roi8 = roi.astype(np.uint8) * 255
        stack, pos = self._gt_stack(), self._gt_pos
        for fid in self.eval_frames:
            if cv2.countNonZero(cv2.bitwise_and(cv2.LUT(np.ascontiguousarray(stack[pos[fid]]), scored), roi8)):
                return None
        n = len(self.eval_frames)
        return (troi_file if troi_file.exists() else self.path,
                f"inside the spatial ROI every pixel of its {n} scored frame(s) ({self.eval_frames[0]}-"
                f"{self.eval_frames[-1]}) is ground truth {codes.OUTSIDE_ROI} (outside ROI) or {codes.UNKNOWN} (unknown)")


class ArraySource:
    """Frames held in memory (a decoded clip), with FrameSource's reading interface."""

    def __init__(self, frames: np.ndarray, ids: Sequence[int]):
        self._frames, self.ids = frames, tuple(ids)
        self._pos = {fid: k for k, fid in enumerate(self.ids)}
        self._derived: dict[tuple, np.ndarray] = {}

    def frame(self, i: int) -> np.ndarray:
        return self._frames[self._pos[i]]

    def frames(self, ids: Sequence[int], size: tuple[int, int] | None = None) -> np.ndarray:
        out = self._frames[[self._pos[i] for i in ids]]
        if size is not None and tuple(size) != (out.shape[2], out.shape[1]):
            import cv2

            out = np.stack([cv2.resize(f, tuple(size), interpolation=cv2.INTER_AREA) for f in out])
        return out

    def all_frames(self) -> np.ndarray:
        return self._frames

    def derived(self, name: str, compute: Callable[[int], np.ndarray], shape: tuple[int, ...], *extra: object) -> np.ndarray:
        key = (name, shape, extra)  # an in-memory clip: cached in memory, once per source
        if key not in self._derived:
            self._derived[key] = np.stack([compute(k) for k in range(len(self.ids))])
        return self._derived[key]


@dataclass
class Clip:
    """A video decoded into memory without ground truth (speed runs on .avi files)."""

    name: str
    frames_bgr: np.ndarray  # N x H x W x 3

    dataset = "clip"
    category = None

    @property
    def id(self) -> str:
        return video_id(self.dataset, self.category, self.name)

    @property
    def frame_ids(self) -> tuple[int, ...]:
        return tuple(range(1, len(self.frames_bgr) + 1))

    eval_frames = frame_ids

    @property
    def unlabelled_frames(self) -> tuple[int, ...]:
        return ()

    @property
    def temporal_roi(self) -> tuple[int, int]:
        return 1, len(self.frames_bgr)

    @property
    def shape(self) -> tuple[int, int]:
        return self.frames_bgr.shape[1:3]

    @property
    def roi(self) -> np.ndarray:
        return np.ones(self.shape, bool)

    @property
    def source(self) -> ArraySource:
        return ArraySource(self.frames_bgr, self.frame_ids)

    def view(self) -> VideoView:
        return VideoView(self)


class LabelledFrames:
    """One video's training material: its view, and ground truth of the allowed frames only."""

    __slots__ = ("view", "frames", "_video", "_allowed")

    def __init__(self, video: Video, frames: Sequence[int]):
        self._video = video
        self.frames = tuple(frames)
        self._allowed = frozenset(self.frames)
        self.view = video.view()

    @property
    def id(self) -> str:
        return self.view.id

    def gt(self, i: int) -> np.ndarray:
        if i not in self._allowed:
            raise LeakageError(f"{self.view.id}: frame {i} is not a training frame of this split")
        return self._video.gt(i)

    def gts(self, ids: Sequence[int]) -> np.ndarray:
        bad = [i for i in ids if i not in self._allowed]
        if bad:
            raise LeakageError(f"{self.view.id}: frames {bad[:5]} are not training frames of this split")
        return self._video.gts(ids)


@dataclass(frozen=True)
class TrainingSet:
    """What ``Method.fit`` receives: labelled training frames, and validation frames."""

    train: tuple[LabelledFrames, ...]
    val: tuple[LabelledFrames, ...] = ()

    @property
    def n_frames(self) -> int:
        return sum(len(x.frames) for x in self.train)
