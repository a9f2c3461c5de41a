"""Protocols turn videos into train/test splits. They know nothing about methods.

- ``full``: no training; every video's scored frames are tested (CDnet's protocol for
  unsupervised methods).
- ``scene-specific``: one model per video; training frames from its labelled frames by a
  rule: ``first-half``, ``n:N`` (N random frames, seeded), ``fraction:F[,val:V]``, or a
  published list: ``fgsegnet:50``, ``fgsegnet:200``, ``frames:FILE[#LIST]`` (bgbench.framelists;
  the key then carries ``frames=DIGEST``, the lists' content hash).
- ``cross-scene``: k scene-disjoint folds balanced over categories and frame counts,
  categories excludable (``PTZ``), seeded; train on k-1 folds, test on the held-out one.
- ``sampled``: one model trained on a random fraction of every video's labelled frames,
  tested on the rest.
- ``transfer``: trained on source datasets, tested on target datasets, with no retraining.
  A name selects a dataset (``CDnet2014``), a category (``CDnet2014/baseline``) or one video
  (``SBI2015/-/HighwayI``); dataset names compare case-insensitively. ``rule`` picks the
  training frames of each source video (``all``, or a scene-specific rule such as ``n:200``).

Every protocol takes ``formats``: only videos in those on-disk layouts enter it (e.g.
``("cdnet2014", "cdnet2012")``); the others are left out silently, as an excluded category is.

Options that can never work, whatever the data (an unreadable rule, a fraction outside
(0, 1), one fold, a transfer whose source and target name the same dataset), raise BadInput
when the protocol is built, before any data is read. A rule that cannot be met for one
video (too few labelled frames for ``n:N``, a fraction that leaves 0 frames to train or to
test), a cross-scene fold that would be empty, or a transfer name that matches nothing in
the data is a ``Skip`` with its reason: ``plan`` returns the splits it can make and the
skips; ``splits`` is the strict form and raises BadInput for the first skip. A video that a
published frame list cannot serve (not named in it, or lacking listed frames) is such a skip
marked ``bad_data``: refused like bad data unless ``--on-bad-data skip`` (bgbench.api).

Protocol options are the dataclass fields declared with ``option(...)`` (help, kind, bounds):
``option_specs()`` collects them for the command line and ``bgbench.api.PROTOCOL_OPTIONS``, and
``refuse_untaken`` refuses an option that none of the requested protocols takes.

Every split is checked for leakage when built (``check_splits``); a violation raises.
"""

from __future__ import annotations

import zlib
from collections import defaultdict
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar, Iterable, Sequence

import numpy as np

from bgbench.errors import BadInput, LeakageError
from bgbench.params import MAX_SEED
from bgbench.registry import Registry
from bgbench.data.video import Video

PROTOCOLS: Registry[type[Protocol]] = Registry("protocol")
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


@dataclass(frozen=True)
class Skip:
    """What a protocol cannot serve on the given data, and why: ``where`` is a video id, a
    fold name, or a name the protocol asked for (a transfer target not in the data)."""

    where: str
    reason: str
    fix: str = ""
    bad_data: bool = False  # the data cannot follow the protocol's rule (a published frame list)

    @property
    def message(self) -> str:
        return str(BadInput(self.reason, self.where, self.fix or None))

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"where": self.where, "reason": self.reason, "fix": self.fix, "error": self.message}
        return {**out, "bad_data": True} if self.bad_data else out


@dataclass(frozen=True)
class Planned:
    """A protocol on one set of videos: the splits it makes and what it had to skip."""

    splits: list[Split] = field(default_factory=list)
    skipped: list[Skip] = field(default_factory=list)



def _rng(seed: int, key: str) -> np.random.Generator:
    return np.random.default_rng([seed, zlib.crc32(key.encode())])


class _Unmet(Exception):
    """A rule that cannot be met for one video (becomes a Skip)."""

    def __init__(self, reason: str, fix: str, bad_data: bool = False):
        super().__init__(reason)
        self.reason, self.fix, self.bad_data = reason, fix, bad_data


def option(default: Any, help: str, kind: str = "str", eg: str = "", **bounds: Any) -> Any:
    """A protocol option: a dataclass field the command line offers (``--NAME``) with its help,
    its kind (``str``, ``int``, ``float`` or ``csv``: a comma-separated tuple) and, for
    numbers, bounds (``lo``, ``hi``, ``lo_open``, ``hi_open``) and an example (``eg``)."""
    return field(default=default, metadata={"option": {"help": help, "kind": kind, "eg": eg, **bounds}})


@dataclass
class Protocol:
    name: ClassVar[str] = ""
    trains_across_videos: ClassVar[bool] = False  # training videos differ from test videos
    tests_each_video_once: ClassVar[bool] = False  # folds: every video in exactly one test set
    quiet_defaults: ClassVar[tuple[str, ...]] = ("formats",)  # options left out of the key at their default
    seed: int = 0
    formats: tuple[str, ...] = ()  # on-disk layouts taken (e.g. cdnet2014); () takes every video

    def __post_init__(self) -> None:
        if isinstance(self.seed, bool) or not isinstance(self.seed, (int, np.integer)) or not 0 <= self.seed <= MAX_SEED:
            raise BadInput(f"seed {self.seed!r} is not an integer in [0, {MAX_SEED}]", "--seed", "e.g. --seed 0")
        if isinstance(self.formats, str):
            self.formats = (self.formats,)
        self.formats = tuple(f.lower() for f in self.formats)
        if self.formats:
            from bgbench.data.formats import FORMATS

            for f in self.formats:
                if f not in FORMATS:
                    raise BadInput(f"unknown dataset format {f!r} in formats", "formats",
                                   f"use some of {', '.join(FORMATS.names())}")
        self.validate()

    def validate(self) -> None:
        """Raise BadInput for options that cannot work whatever the data."""

    @property
    def key(self) -> str:
        """Name and options, e.g. ``scene-specific[seed=0,rule=first-half]``."""
        opts = ",".join(f"{k}={_fmt(v)}" for k, v in self.options().items())
        return f"{self.name}[{opts}]" if opts else self.name

    def options(self) -> dict[str, Any]:
        """The options (dataclass fields, not class metadata); those in ``quiet_defaults`` only
        where they differ from their default, so adding such an option keeps old keys. A rule
        that is a published frame list adds ``frames``: the digest of the lists it selects."""
        out = {f.name: getattr(self, f.name) for f in fields(self)
               if not (f.name in self.quiet_defaults and getattr(self, f.name) == f.default)}
        lists = getattr(self, "_frame_list", None)
        return {**out, "frames": lists.digest} if lists is not None else out

    @classmethod
    def takes(cls, name: str) -> bool:
        """Whether this protocol has the option ``name`` (a field declared with ``option``)."""
        return any(f.name == name and "option" in f.metadata for f in fields(cls))

    def plan(self, videos: Sequence[Video]) -> Planned:
        """The splits this protocol can make on ``videos`` and, for what it cannot serve, the skips."""
        kept = [v for v in videos if not self.formats or v.format in self.formats]
        splits, skipped = self._plan(kept)
        check_splits(splits, videos, self.trains_across_videos, self.tests_each_video_once)
        return Planned(splits, skipped)

    def splits(self, videos: Sequence[Video]) -> list[Split]:
        """Strict: the splits, or BadInput for the first video, fold or name that cannot be served."""
        p = self.plan(videos)
        if p.skipped:
            s = p.skipped[0]
            raise BadInput(s.reason, s.where, s.fix or None)
        if not p.splits:
            raise BadInput(f"protocol {self.key} has no video to test", "--data",
                           "give videos the protocol takes" + (f" (formats {', '.join(self.formats)})" if self.formats else ""))
        return p.splits

    def _plan(self, videos: list[Video]) -> tuple[list[Split], list[Skip]]:
        raise NotImplementedError


def _fmt(v: Any) -> str:
    return "+".join(map(str, v)) if isinstance(v, (list, tuple)) else str(v)


@PROTOCOLS.register("full")
@dataclass
class Full(Protocol):
    name: ClassVar[str] = "full"

    def options(self) -> dict[str, Any]:
        return {"formats": self.formats} if self.formats else {}

    def _plan(self, videos: list[Video]) -> tuple[list[Split], list[Skip]]:
        return ([Split("all", test=tuple((v.id, v.eval_frames) for v in videos))] if videos else []), []


_RULE_HELP = ("use first-half, n:N (e.g. n:200), fraction:F[,val:V] (e.g. fraction:0.3,val:0.1), fgsegnet:50, "
              "fgsegnet:200 or frames:FILE[#LIST]")


def _parse_rule(rule: str, allow_all: bool = False) -> tuple[str, dict[str, float]]:
    from bgbench import framelists

    if not isinstance(rule, str):
        raise BadInput(f"training-frame rule {rule!r} is not text", "--rule", _RULE_HELP)
    head, _, rest = rule.partition(":")
    if framelists.is_list_rule(rule):
        framelists.load(rule)  # BadInput naming the rule or the file
        return "list", {}
    try:
        if head in ("first-half", "all") and not rest and (head != "all" or allow_all):
            return head, {}
        if head == "n":
            n = int(rest)
            if n < 1:
                raise ValueError(rest)
            return head, {"n": n}
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
    raise BadInput(f"unknown training-frame rule {rule!r}", "--rule", ("all, or " if allow_all else "") + _RULE_HELP)


def take_frames(video: Video, rule: str, seed: int, lists: Any = None) -> tuple[list[int], list[int], list[int]]:
    """(train, val, test) frame ids of one video's labelled frames by a scene-specific rule;
    raises _Unmet when the rule cannot be met for this video (``bad_data`` for a published
    frame list the video cannot follow; ``lists``: the rule's FrameList, read once by the protocol)."""
    kind, opt = _parse_rule(rule, allow_all=True)
    ev = list(video.eval_frames)
    n = len(ev)
    if kind == "list":
        from bgbench import framelists

        try:
            listed = set((lists or framelists.load(rule)).train_frames(video))
        except framelists.NotServed as e:
            raise _Unmet(e.reason, e.fix, bad_data=True) from None
        return [f for f in ev if f in listed], [], [f for f in ev if f not in listed]
    if kind == "all":
        if not n:
            raise _Unmet("has no labelled frame in its temporal ROI", "leave it out of --data")
        return ev, [], []
    if kind == "first-half":
        if n < 2:
            raise _Unmet(f"has {n} labelled frame(s): first-half needs at least 2", "leave it out of --data")
        return ev[: n // 2], [], ev[n // 2:]
    if kind == "n":
        n_train, n_val = int(opt["n"]), 0
        if n_train >= n:
            raise _Unmet(f"has {n} labelled frame(s): rule {rule} needs at least {n_train + 1} ({n_train} to train, "
                         "1 to test)", f"lower N in --rule, or leave the video out")
    else:
        n_train, n_val = round(opt["fraction"] * n), round(opt["val"] * n)
        if n_train == 0:
            raise _Unmet(f"has {n} labelled frame(s): a fraction {opt['fraction']:g} of them is 0 frames to train",
                         "raise the fraction in --rule, or leave the video out")
        if opt["val"] > 0 and n_val == 0:
            raise _Unmet(f"has {n} labelled frame(s): a fraction {opt['val']:g} of them is 0 frames to validate",
                         "raise val in --rule, or leave the video out")
        if n_train + n_val >= n:
            raise _Unmet(f"has {n} labelled frame(s): {n_train} to train and {n_val} to validate leave none to test",
                         "lower the fractions in --rule, or leave the video out")
    perm = _rng(seed, video.id).permutation(n)
    train = sorted(ev[i] for i in perm[:n_train])
    val = sorted(ev[i] for i in perm[n_train:n_train + n_val])
    test = sorted(ev[i] for i in perm[n_train + n_val:])
    return train, val, test


@PROTOCOLS.register("scene-specific")
@dataclass
class SceneSpecific(Protocol):
    name: ClassVar[str] = "scene-specific"
    rule: str = option("first-half", "first-half | n:N | fraction:F[,val:V] | fgsegnet:50 | fgsegnet:200 | "
                                     "frames:FILE[#LIST] (default first-half)")

    def validate(self) -> None:
        _parse_rule(self.rule)
        self._frame_list = _frame_list(self.rule)

    def _plan(self, videos: list[Video]) -> tuple[list[Split], list[Skip]]:
        out, skipped = [], []
        for v in videos:
            try:
                train, val, test = take_frames(v, self.rule, self.seed, self._frame_list)
            except _Unmet as e:
                skipped.append(Skip(v.id, e.reason, e.fix, e.bad_data))
                continue
            out.append(Split(v.id.replace("/", ":"), train=((v.id, tuple(train)),), test=((v.id, tuple(test)),),
                             val=((v.id, tuple(val)),) if val else ()))
        return out, skipped


# CDnet2014's categories: names --exclude takes even where the data holds none of them
CDNET_CATEGORIES = ("badWeather", "baseline", "cameraJitter", "dynamicBackground", "intermittentObjectMotion",
                    "lowFramerate", "nightVideos", "PTZ", "shadow", "thermal", "turbulence")


@PROTOCOLS.register("cross-scene")
@dataclass
class CrossScene(Protocol):
    name: ClassVar[str] = "cross-scene"
    trains_across_videos: ClassVar[bool] = True
    tests_each_video_once: ClassVar[bool] = True
    folds: int = option(3, "number of scene-disjoint folds (default 3)", "int", eg="--folds 3", lo=2, hi=1000)
    exclude: tuple[str, ...] = option(("PTZ",), "categories left out, comma-separated (default PTZ)", "csv")

    def validate(self) -> None:
        if isinstance(self.exclude, str):
            self.exclude = (self.exclude,)
        self.exclude = tuple(self.exclude)
        if int(self.folds) < 2:
            raise BadInput(f"{self.folds} fold(s): cross-scene trains on the other folds, so it needs at least 2",
                           "--folds", "e.g. --folds 3")

    def _plan(self, videos: list[Video]) -> tuple[list[Split], list[Skip]]:
        excluded = {c.lower() for c in self.exclude}
        have = sorted({v.category or "-" for v in videos})
        known = {c.lower() for c in (*have, *CDNET_CATEGORIES)}
        unknown = [c for c in self.exclude if c.lower() not in known]
        if unknown:  # a typo would exclude nothing (and, given, drop the default PTZ too)
            raise BadInput(f"{', '.join(unknown)}: no video's category is named so (the categories: {', '.join(have)})",
                           "--exclude", "give category names as the data spells them (any case), comma-separated")
        kept = [v for v in videos if (v.category or "-").lower() not in excluded]
        fix = "give more videos to --data (or admit skipped ones, e.g. with --roi-policy), or lower --folds"
        if len(kept) < 2:
            return [], [Skip(v.id, "is the only video the protocol takes: cross-scene trains on other videos and "
                                   "there is none", fix) for v in kept]
        fold_of = assign_folds(kept, self.folds, self.seed)
        out, skipped = [], []
        for k in range(self.folds):
            test = tuple((v.id, v.eval_frames) for v in kept if fold_of[v.id] == k)
            train = tuple((v.id, v.eval_frames) for v in kept if fold_of[v.id] != k)
            if not test:
                skipped.append(Skip(f"fold{k + 1}", f"is empty: {len(kept)} video(s) cannot fill {self.folds} "
                                                    "scene-disjoint folds (every video is still tested once)", fix))
                continue
            out.append(Split(f"fold{k + 1}", train=train, test=test))
        return out, skipped


def assign_folds(videos: Sequence[Video], k: int, seed: int) -> dict[str, int]:
    """Scene-disjoint folds: within each category, the largest videos first, each to the fold
    with the fewest videos of that category, then the fewest frames (ties broken by a seeded
    draw), so folds are balanced over categories and frame counts."""
    rng = _rng(seed, "folds")
    by_cat: dict[str, list[Video]] = defaultdict(list)
    for v in sorted(videos, key=lambda v: v.id):
        by_cat[v.category or "-"].append(v)
    n_cat: defaultdict[str, np.ndarray] = defaultdict(lambda: np.zeros(k, int))
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
    fraction: float = option(0.05, "fraction of labelled frames that train (default 0.05)", "float",
                             eg="--fraction 0.05", lo=0, hi=1, lo_open=True, hi_open=True)

    def validate(self) -> None:
        if not 0 < float(self.fraction) < 1:
            raise BadInput(f"fraction {self.fraction} is not in (0, 1)", "--fraction", "e.g. --fraction 0.05")

    def _plan(self, videos: list[Video]) -> tuple[list[Split], list[Skip]]:
        train, test, skipped = [], [], []
        for v in videos:
            ev = list(v.eval_frames)
            n_train = round(self.fraction * len(ev))
            if n_train == 0 or n_train >= len(ev):
                what = "0 frames to train" if n_train == 0 else "no frame to test"
                skipped.append(Skip(v.id, f"has {len(ev)} labelled frame(s): a fraction {self.fraction:g} of them "
                                          f"leaves {what}", "change --fraction, or leave the video out"))
                continue
            perm = _rng(self.seed, v.id).permutation(len(ev))
            train.append((v.id, tuple(sorted(ev[i] for i in perm[:n_train]))))
            test.append((v.id, tuple(sorted(ev[i] for i in perm[n_train:]))))
        return ([Split("sampled", train=tuple(train), test=tuple(test))] if test else []), skipped


def selects(name: str, video: Video) -> bool:
    """Whether a transfer name (``DATASET``, ``DATASET/CATEGORY`` or ``DATASET/CATEGORY/VIDEO``;
    ``-`` for no category; the dataset case-insensitive) selects ``video``."""
    parts = name.split("/")
    if not 1 <= len(parts) <= 3 or parts[0].lower() != video.dataset.lower():
        return False
    if len(parts) >= 2 and parts[1] != (video.category or "-"):
        return False
    return len(parts) < 3 or parts[2] == video.name


@PROTOCOLS.register("transfer")
@dataclass
class Transfer(Protocol):
    name: ClassVar[str] = "transfer"
    trains_across_videos: ClassVar[bool] = True
    quiet_defaults: ClassVar[tuple[str, ...]] = ("formats", "rule")
    source: tuple[str, ...] = option(("CDnet2014",), "training datasets (default CDnet2014)", "csv")
    target: tuple[str, ...] = option(("SBI2015", "UCSD"), "test datasets (default SBI2015,UCSD)", "csv")
    # training frames of each source video: all, or a scene-specific rule (n:200, fgsegnet:200, ...)
    rule: str = option("all", "the source videos' training frames: all or a scene-specific rule (default all)")

    def validate(self) -> None:
        self.source = (self.source,) if isinstance(self.source, str) else tuple(self.source)
        self.target = (self.target,) if isinstance(self.target, str) else tuple(self.target)
        if not self.source or not self.target:
            raise BadInput("transfer needs a source and a target", "--source" if not self.source else "--target",
                           "e.g. --source CDnet2014 --target SBI2015,UCSD")
        shared = {n.split("/")[0].lower() for n in self.source} & {n.split("/")[0].lower() for n in self.target}
        if shared:
            raise BadInput(f"source and target share the dataset {sorted(shared)[0]!r}", "--target",
                           "transfer tests on datasets it did not train on")
        _parse_rule(self.rule, allow_all=True)
        self._frame_list = _frame_list(self.rule)

    def _plan(self, videos: list[Video]) -> tuple[list[Split], list[Skip]]:
        loaded = sorted({v.dataset for v in videos})

        def absent(name: str, role: str) -> Skip:
            return Skip(name, f"is not in the data: no loaded video matches this transfer {role} (datasets loaded: "
                              f"{', '.join(loaded) or 'none'})", f"give its folder to --data, or change --{role}")

        skipped: list[Skip] = []
        tgt: list[Video] = []
        for n in self.target:
            found = [v for v in videos if selects(n, v)]
            if not found:
                skipped.append(absent(n, "target"))
            tgt += [v for v in found if v.id not in {t.id for t in tgt}]
        if not tgt:
            return [], skipped
        missing = [n for n in self.source if not any(selects(n, v) for v in videos)]
        src = [v for v in videos if any(selects(n, v) for n in self.source)]
        train = []
        for v in src:
            try:
                frames = take_frames(v, self.rule, self.seed, self._frame_list)[0]
            except _Unmet as e:
                skipped.append(Skip(v.id, f"cannot train the transfer: {e.reason}", e.fix, e.bad_data))
                continue
            train.append((v.id, tuple(frames)))
        if missing or not train:
            why = (f"its transfer source {missing[0]!r} is not in the data" if missing
                   else "no source video can give training frames")
            fix = "give the source's folder to --data, or change --source" if missing else "change --rule or --source"
            return [], skipped + [Skip(v.id, f"cannot be tested: {why}", fix) for v in tgt]
        test = tuple((v.id, v.eval_frames) for v in tgt)
        return [Split(f"{'+'.join(self.source)}->{'+'.join(self.target)}", train=tuple(train), test=test)], skipped


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


def _frame_list(rule: str) -> Any:
    from bgbench import framelists

    return framelists.load(rule) if framelists.is_list_rule(rule) else None


@dataclass(frozen=True)
class OptionSpec:
    """One protocol option as the command line offers it: its kind and bounds, and the help of
    each protocol that takes it."""

    name: str
    kind: str
    eg: str
    bounds: tuple[tuple[str, Any], ...]
    helps: tuple[tuple[str, str], ...]  # (protocol, help)

    @property
    def protocols(self) -> tuple[str, ...]:
        return tuple(p for p, _ in self.helps)

    @property
    def help(self) -> str:
        return "; ".join(f"{p}: {h}" for p, h in self.helps)


def option_specs() -> dict[str, OptionSpec]:
    """Every protocol option, from the registered protocols' own fields, in registry order."""
    found: dict[str, dict[str, Any]] = {}
    for entry in PROTOCOLS:
        cls = entry.resolve()
        for f in fields(cls):
            meta = f.metadata.get("option")
            if meta is None:
                continue
            spec = found.setdefault(f.name, {"kind": meta["kind"], "eg": meta.get("eg", ""), "helps": [],
                                             "bounds": tuple(sorted((k, v) for k, v in meta.items()
                                                                    if k not in ("help", "kind", "eg")))})
            if spec["kind"] != meta["kind"]:
                raise TypeError(f"protocol option {f.name} has two kinds ({spec['kind']}, {meta['kind']})")
            spec["helps"].append((cls.name, meta["help"]))
    return {k: OptionSpec(k, v["kind"], v["eg"], v["bounds"], tuple(v["helps"])) for k, v in found.items()}


def refuse_untaken(options: Iterable[str], protocols: Sequence[str]) -> None:
    """BadInput for options that none of ``protocols`` (names) takes, naming every such
    option, the protocols that do take each, and the options the requested ones take."""
    specs = option_specs()
    classes = [PROTOCOLS.get(p) for p in dict.fromkeys(protocols)]
    options = list(dict.fromkeys(options))
    unknown = [o for o in options if o not in specs]
    if unknown:
        raise BadInput(f"unknown protocol option {unknown[0]!r}", "protocol_options", f"use {', '.join(specs)}")
    untaken = [o for o in options if not any(c.takes(o) for c in classes)]
    if not untaken:
        return
    names = ", ".join(c.name for c in classes)
    taken = [o for o in specs if any(c.takes(o) for c in classes)]
    opts = ", ".join(f"--{o}" for o in untaken)
    whose = "; ".join(f"--{o} is an option of {', '.join(specs[o].protocols)}" for o in untaken)
    raise BadInput(f"no protocol asked for ({names}) takes {opts} ({whose})", opts,
                   f"drop {opts}; {names} take(s) " + (", ".join(f"--{o}" for o in taken) if taken else "no option")
                   + " (or ask with --protocol for a protocol that takes them)")


def build_protocol(name: str, **options: Any) -> Protocol:
    """A protocol by name; options it does not take (and None values) are left out."""
    cls = PROTOCOLS.get(name)
    taken = {f.name for f in fields(cls)}
    return cls(**{k: v for k, v in options.items() if k in taken and v is not None})
