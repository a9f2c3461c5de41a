"""Protocols turn videos into train/test splits. They know nothing about methods.

- ``full``: no training; every video's scored frames are tested (CDnet's protocol for
  unsupervised methods).
- ``scene-specific``: one model per video; training frames from its labelled frames by a
  rule: ``first-half``, ``n:N`` (N random frames, seeded), ``fraction:F[,val:V]``.
- ``cross-scene``: k scene-disjoint folds balanced over categories and frame counts,
  categories excludable (``PTZ``), seeded; train on k-1 folds, test on the held-out one.
- ``sampled``: one model trained on a random fraction of every video's labelled frames,
  tested on the rest.
- ``transfer``: trained on source datasets, tested on target datasets (or single videos
  of them, by id: ``SBI2015/-/HighwayI``).

Every split is checked for leakage when built (``check_splits``); a violation raises.
"""

from __future__ import annotations

import zlib
from collections import defaultdict
from dataclasses import dataclass
from typing import Any, ClassVar, Sequence

import numpy as np

from .errors import BadInput, LeakageError
from .registry import Registry
from .video import Video

PROTOCOLS: Registry = Registry("protocol")
Part = tuple[tuple[str, tuple[int, ...]], ...]  # ((video id, frame ids), ...)


@dataclass(frozen=True)
class Split:
    name: str
    train: Part = ()
    test: Part = ()
    val: Part = ()

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name}
        for part in ("train", "val", "test"):
            items = getattr(self, part)
            if items or part != "val":
                out[part] = [{"video": v, "frames": list(f)} for v, f in items]
        return out

    @property
    def train_videos(self) -> set[str]:
        return {v for v, _ in self.train + self.val}


def _rng(seed: int, key: str) -> np.random.Generator:
    return np.random.default_rng([seed, zlib.crc32(key.encode())])


@dataclass
class Protocol:
    name: ClassVar[str] = ""
    trains_across_videos: ClassVar[bool] = False  # training videos differ from test videos
    tests_each_video_once: ClassVar[bool] = False  # folds: every video in exactly one test set
    seed: int = 0

    @property
    def key(self) -> str:
        """Name and options, e.g. ``scene-specific[rule=first-half,seed=0]``."""
        opts = ",".join(f"{k}={_fmt(v)}" for k, v in self.options().items())
        return f"{self.name}[{opts}]" if opts else self.name

    def options(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}

    def splits(self, videos: Sequence[Video]) -> list[Split]:
        out = self._splits(list(videos))
        check_splits(out, videos, self.trains_across_videos, self.tests_each_video_once)
        return out

    def _splits(self, videos: list[Video]) -> list[Split]:
        raise NotImplementedError


def _fmt(v: Any) -> str:
    return "+".join(map(str, v)) if isinstance(v, (list, tuple)) else str(v)


@PROTOCOLS.register("full")
@dataclass
class Full(Protocol):
    name: ClassVar[str] = "full"

    def options(self) -> dict[str, Any]:
        return {}

    def _splits(self, videos: list[Video]) -> list[Split]:
        return [Split("all", test=tuple((v.id, v.eval_frames) for v in videos))]


def _parse_rule(rule: str) -> tuple[str, dict[str, float]]:
    head, _, rest = rule.partition(":")
    try:
        if head == "first-half" and not rest:
            return head, {}
        if head == "n":
            return head, {"n": int(rest)}
        if head == "fraction":
            parts = rest.split(",")
            out = {"fraction": float(parts[0]), "val": 0.0}
            for p in parts[1:]:
                k, _, v = p.partition(":")
                if k != "val":
                    raise ValueError(p)
                out["val"] = float(v)
            if not (0 < out["fraction"] and out["val"] >= 0 and out["fraction"] + out["val"] < 1):
                raise ValueError(rest)
            return head, out
    except ValueError:
        pass
    raise BadInput(f"unknown training-frame rule {rule!r}", "--rule", "use first-half, n:N (e.g. n:200) or fraction:F[,val:V] (e.g. fraction:0.3,val:0.1)")


@PROTOCOLS.register("scene-specific")
@dataclass
class SceneSpecific(Protocol):
    name: ClassVar[str] = "scene-specific"
    rule: str = "first-half"

    def __post_init__(self) -> None:
        _parse_rule(self.rule)

    def _splits(self, videos: list[Video]) -> list[Split]:
        kind, opt = _parse_rule(self.rule)
        out = []
        for v in videos:
            ev = list(v.eval_frames)
            n = len(ev)
            val: list[int] = []
            if kind == "first-half":
                if n < 2:
                    raise BadInput(f"has {n} scored frame(s): too few to split in halves", v.path, "leave it out of --data")
                train, test = ev[: n // 2], ev[n // 2:]
            else:
                if kind == "n":
                    n_train, n_val = int(opt["n"]), 0
                else:
                    n_train, n_val = max(1, round(opt["fraction"] * n)), round(opt["val"] * n)
                if n_train + n_val >= n:
                    raise BadInput(f"has {n} scored frames: {n_train + n_val} for training leave none to test", v.path,
                                   "lower n/fraction in --rule or leave the video out")
                perm = _rng(self.seed, v.id).permutation(n)
                train = sorted(ev[i] for i in perm[:n_train])
                val = sorted(ev[i] for i in perm[n_train:n_train + n_val])
                test = sorted(ev[i] for i in perm[n_train + n_val:])
            out.append(Split(v.id.replace("/", ":"), train=((v.id, tuple(train)),), test=((v.id, tuple(test)),),
                             val=((v.id, tuple(val)),) if val else ()))
        return out


@PROTOCOLS.register("cross-scene")
@dataclass
class CrossScene(Protocol):
    name: ClassVar[str] = "cross-scene"
    trains_across_videos: ClassVar[bool] = True
    tests_each_video_once: ClassVar[bool] = True
    folds: int = 3
    exclude: tuple[str, ...] = ("PTZ",)

    def _splits(self, videos: list[Video]) -> list[Split]:
        excluded = {c.lower() for c in self.exclude}
        kept = [v for v in videos if (v.category or "-").lower() not in excluded]
        if len(kept) < self.folds:
            raise BadInput(f"{len(kept)} video(s) cannot fill {self.folds} scene-disjoint folds", "--folds",
                           "give more videos to --data or lower --folds")
        fold_of = assign_folds(kept, self.folds, self.seed)
        out = []
        for k in range(self.folds):
            test = tuple((v.id, v.eval_frames) for v in kept if fold_of[v.id] == k)
            train = tuple((v.id, v.eval_frames) for v in kept if fold_of[v.id] != k)
            out.append(Split(f"fold{k + 1}", train=train, test=test))
        return out


def assign_folds(videos: Sequence[Video], k: int, seed: int) -> dict[str, int]:
    """Scene-disjoint folds: within each category, the largest videos first, each to the fold
    with the fewest videos of that category, then the fewest frames (ties broken by a seeded
    draw), so folds are balanced over categories and frame counts."""
    rng = _rng(seed, "folds")
    by_cat: dict[str, list[Video]] = defaultdict(list)
    for v in sorted(videos, key=lambda v: v.id):
        by_cat[v.category or "-"].append(v)
    n_cat = defaultdict(lambda: np.zeros(k, int))
    frames = np.zeros(k, int)
    fold_of: dict[str, int] = {}
    for cat in sorted(by_cat, key=lambda c: (-len(by_cat[c]), c)):
        vids = by_cat[cat]
        tiebreak = rng.permutation(len(vids))
        for i in sorted(range(len(vids)), key=lambda i: (-len(vids[i].eval_frames), tiebreak[i])):
            order = sorted(range(k), key=lambda f: (n_cat[cat][f], frames[f], rng.random()))
            f = order[0]
            fold_of[vids[i].id] = f
            n_cat[cat][f] += 1
            frames[f] += len(vids[i].eval_frames)
    return fold_of


@PROTOCOLS.register("sampled")
@dataclass
class Sampled(Protocol):
    name: ClassVar[str] = "sampled"
    fraction: float = 0.05

    def _splits(self, videos: list[Video]) -> list[Split]:
        if not 0 < self.fraction < 1:
            raise BadInput(f"fraction {self.fraction} is not in (0, 1)", "--fraction", "e.g. --fraction 0.05")
        train, test = [], []
        for v in videos:
            ev = list(v.eval_frames)
            n_train = max(1, round(self.fraction * len(ev)))
            if n_train >= len(ev):
                raise BadInput(f"has {len(ev)} scored frame(s): none left to test", v.path, "leave it out of --data")
            perm = _rng(self.seed, v.id).permutation(len(ev))
            train.append((v.id, tuple(sorted(ev[i] for i in perm[:n_train]))))
            test.append((v.id, tuple(sorted(ev[i] for i in perm[n_train:]))))
        return [Split("sampled", train=tuple(train), test=tuple(test))]


@PROTOCOLS.register("transfer")
@dataclass
class Transfer(Protocol):
    name: ClassVar[str] = "transfer"
    trains_across_videos: ClassVar[bool] = True
    source: tuple[str, ...] = ("CDnet2014",)
    target: tuple[str, ...] = ("SBI2015", "UCSD")

    def _splits(self, videos: list[Video]) -> list[Split]:
        def picks(names, opt):
            out = [v for v in videos if v.dataset in names or v.id in names]
            for n in names:
                if not any(v.dataset == n or v.id == n for v in videos):
                    raise BadInput(f"{n!r} is not among the loaded datasets {sorted({v.dataset for v in videos})} "
                                   "or their video ids", opt, "name a dataset (or a video id) given to --data")
            return out

        src, tgt = picks(self.source, "--source"), picks(self.target, "--target")
        if {v.dataset for v in src} & {v.dataset for v in tgt}:
            raise BadInput("source and target share a dataset", "--target", "transfer needs distinct datasets")
        train = tuple((v.id, v.eval_frames) for v in src)
        test = tuple((v.id, v.eval_frames) for v in tgt)
        return [Split(f"{'+'.join(self.source)}->{'+'.join(self.target)}", train=train, test=test)]


def check_splits(splits: Sequence[Split], videos: Sequence[Video], disjoint_videos: bool = False,
                 each_video_once: bool = False) -> None:
    """Raise LeakageError if any split tests on a frame (or, across scenes, a video) it
    trains on, or if a split names a frame that is not a scored frame of its video."""
    known = {v.id: set(v.eval_frames) for v in videos}
    for s in splits:
        train: dict[str, set[int]] = defaultdict(set)
        for vid, frames in s.train + s.val:
            train[vid].update(frames)
        for vid, frames in s.train + s.val + s.test:
            if vid not in known:
                raise LeakageError(f"split {s.name}: unknown video {vid}")
            stray = set(frames) - known[vid]
            if stray:
                raise LeakageError(f"split {s.name}: {vid} frames {sorted(stray)[:5]} are not labelled frames")
        for vid, frames in s.test:
            both = train.get(vid, set()) & set(frames)
            if both:
                raise LeakageError(f"split {s.name}: {vid} frames {sorted(both)[:5]} are both trained and tested on")
            if disjoint_videos and vid in train:
                raise LeakageError(f"split {s.name}: test video {vid} is also a training video")
    if each_video_once:
        tested = [vid for s in splits for vid, _ in s.test]
        if len(tested) != len(set(tested)):
            raise LeakageError("folds test a video more than once")


def build_protocol(name: str, **options: Any) -> Protocol:
    cls = PROTOCOLS.get(name)
    fields = set(cls.__dataclass_fields__)
    return cls(**{k: v for k, v in options.items() if k in fields and v is not None})
