"""Published training-frame lists: the ``fgsegnet:N`` and ``frames:FILE[#LIST]`` rules.

A frame-list file is JSON of the form ::

    {"frames": {"CDnet2014/<category>/<scene>": {"50": [ids...], "200": [ids...]}, ...}}

(other top-level keys, e.g. ``source``, are free; an entry may also be a plain list of ids,
which is then its one list). Ids are the dataset's own frame numbers (CDnet numbering).

- ``fgsegnet:50`` / ``fgsegnet:200``: the lists FgSegNet's authors published for all 53
  CDnet2014 videos (shipped inside bgbench: ``bgbench/data/splits/``, see SOURCE.md there).
- ``frames:FILE#LIST``: list ``LIST`` (a key of every entry, e.g. ``200``) of any such file;
  ``frames:FILE`` where every entry holds exactly one list, and it is the same key everywhere
  (or entries are plain lists). Anything else is refused, naming the keys to pick from.

A list selects the training frames of a video (a video id matches an entry exactly, the
dataset name case-insensitively); every other labelled frame of the video is tested. A video
the list does not name, or one that lacks a listed frame (a 51-frame excerpt of a scene) or
whose listed frame is not labelled (outside its temporal ROI), cannot follow the rule: that is
bad data (``NotServed``), never silently replaced by another draw.

``FrameList.digest``: sha256 of the selected lists in canonical JSON (video ids sorted, ids
sorted), 16 hex digits. It enters the protocol key, so a list edited in any byte that changes
a selected frame is another protocol, and two rules that select the same frames (``fgsegnet:200``
and a copy of that file with ``#200``) have the same digest: published numbers are matched on it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Mapping

from bgbench.errors import BadInput

PACKAGED = {"fgsegnet": "fgsegnet_cdnet2014_train_frames.json"}  # rule head -> file in bgbench/data/splits/
HEADS = ("fgsegnet", "frames")
HELP = "fgsegnet:50, fgsegnet:200 (FgSegNet's published CDnet2014 lists) or frames:FILE[#LIST]"


class NotServed(Exception):
    """A video that a frame list cannot serve (bad data for this rule): reason and fix."""

    def __init__(self, reason: str, fix: str):
        super().__init__(reason)
        self.reason, self.fix = reason, fix


@dataclass(frozen=True)
class FrameList:
    rule: str  # as given, e.g. fgsegnet:200
    source: str  # the file it was read from
    list_key: str  # which list of each entry, e.g. "200"
    frames: Mapping[str, tuple[int, ...]]  # entry name (video id) -> sorted frame ids
    digest: str

    def lookup(self, video_id: str) -> tuple[int, ...] | None:
        if video_id in self.frames:
            return self.frames[video_id]
        ds, _, rest = video_id.partition("/")
        for k, v in self.frames.items():
            kds, _, krest = k.partition("/")
            if krest == rest and kds.lower() == ds.lower():
                return v
        return None

    def train_frames(self, video: Any) -> tuple[int, ...]:
        """The listed frames of ``video`` (a bgbench Video); NotServed where it cannot follow the list."""
        listed = self.lookup(video.id)
        leave = "or leave the video out of --data (or pass --on-bad-data skip)"
        if listed is None:
            listed_any = next(iter(self.frames.values()))
            raise NotServed(f"has no entry in the frame list of --rule {self.rule} ({self.source}, list "
                            f"{self.list_key!r}; entries are named like {next(iter(self.frames), '-')!r})",
                            f"use a list that names {video.id!r}, another --rule (e.g. n:{len(listed_any)}), " + leave)
        have = set(video.frame_ids)
        absent = [f for f in listed if f not in have]
        span = f"{min(have)}-{max(have)}" if have else "none"
        if absent:
            raise NotServed(f"lacks {len(absent)} of the {len(listed)} frames that --rule {self.rule} lists (e.g. "
                            f"{', '.join(map(str, absent[:5]))}; the video has frames {span}): it is not the whole "
                            "video the list was made for", f"give the complete video, use another --rule, " + leave)
        labelled = set(video.eval_frames)
        unlabelled = [f for f in listed if f not in labelled]
        if unlabelled:
            a, b = video.temporal_roi
            raise NotServed(f"has {len(unlabelled)} of the {len(listed)} frames that --rule {self.rule} lists outside "
                            f"its labelled frames (temporal ROI {a}-{b}; e.g. {', '.join(map(str, unlabelled[:5]))})",
                            "check the video's temporalROI.txt and ground truth, use another --rule, " + leave)
        if len(listed) >= len(labelled):
            raise NotServed(f"has {len(labelled)} labelled frame(s) and --rule {self.rule} trains on {len(listed)} of "
                            "them: none is left to test", "use another --rule, " + leave)
        return listed


def is_list_rule(rule: str) -> bool:
    return rule.partition(":")[0] in HEADS


def packaged_path(name: str) -> Path:
    """A frame-list file shipped with bgbench (``bgbench/data/splits/NAME``)."""
    from importlib.resources import files

    return Path(str(files("bgbench.data") / "splits" / name))


def load(rule: str) -> FrameList:
    """The FrameList of a ``fgsegnet:N`` or ``frames:FILE[#LIST]`` rule; BadInput naming the
    rule or file and the fix when it cannot be read."""
    head, _, rest = rule.partition(":")
    if head == "fgsegnet":
        path, key = packaged_path(PACKAGED["fgsegnet"]), rest
        if not key:
            raise BadInput(f"rule {rule!r} names no list", "--rule", "use fgsegnet:50 or fgsegnet:200")
    elif head == "frames":
        # FILE#LIST; a FILE whose own name holds '#' is taken whole when it exists
        file, key = (rest, "") if "#" in rest and Path(rest).expanduser().is_file() else rest.rpartition("#")[::2]
        if "#" not in rest:
            file, key = rest, ""
        if not file:
            raise BadInput(f"rule {rule!r} names no file", "--rule", "write frames:FILE or frames:FILE#LIST, e.g. "
                                                                      "frames:my_lists.json#200")
        path = Path(file).expanduser()
    else:
        raise BadInput(f"unknown frame-list rule {rule!r}", "--rule", "use " + HELP)
    try:
        st = path.stat()
    except OSError:
        raise BadInput("frame-list file not found", path, "give frames:FILE an existing JSON file") from None
    if not path.is_file():
        raise BadInput("is not a file", path, "give frames:FILE a JSON file")
    lists = _read(str(path.resolve()), st.st_size, st.st_mtime_ns)
    keys = sorted({k for entry in lists.values() for k in entry}, key=_num_first)
    if not key:
        if len(keys) != 1 or any(len(e) != 1 for e in lists.values()):
            raise BadInput(f"holds more than one list per video ({', '.join(keys)}): frames:FILE does not say which",
                           path, f"write frames:{path}#{keys[-1]}")
        key = keys[0]
    missing = [v for v, entry in lists.items() if key not in entry]
    if missing:
        if head == "fgsegnet":
            raise BadInput(f"FgSegNet published no list {key!r}", "--rule", f"use fgsegnet:{' or fgsegnet:'.join(keys)}")
        raise BadInput(f"has no list {key!r} for {missing[0]!r}" + (f" ({len(missing)} entries lack it)"
                                                                    if len(missing) > 1 else ""),
                       path, f"pick a list every entry has ({', '.join(k for k in keys if all(k in e for e in lists.values())) or 'none'}), or add it")
    frames = {v: entry[key] for v, entry in lists.items()}
    seen: dict[tuple[str, str], str] = {}
    for v in frames:  # a video is looked up with its dataset name in any case: two spellings would be a coin toss
        ds, _, rest = v.partition("/")
        if (ds.lower(), rest) in seen:
            raise BadInput(f"names one video twice, {seen[(ds.lower(), rest)]!r} and {v!r} (the dataset's name is "
                           "matched in any case)", path, "keep one entry per video")
        seen[(ds.lower(), rest)] = v
    canon = json.dumps({v: list(f) for v, f in sorted(frames.items())}, separators=(",", ":"))
    return FrameList(rule, str(path), key, frames, hashlib.sha256(canon.encode()).hexdigest()[:16])


def _num_first(k: str) -> tuple[int, int, str]:
    return (0, int(k), k) if k.isdigit() else (1, 0, k)


@lru_cache(maxsize=16)
def _read(path: str, size: int, mtime_ns: int) -> dict[str, dict[str, tuple[int, ...]]]:
    """{entry: {list key: sorted ids}} of a file (memoised by path, size and mtime)."""
    p = Path(path)
    try:
        doc = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise BadInput(f"cannot be read as JSON ({e})", p, "give frames:FILE a JSON file of the form "
                       '{"frames": {"DATASET/CATEGORY/SCENE": {"200": [ids...]}}}') from None
    form = 'write {"frames": {"DATASET/CATEGORY/SCENE": {"200": [ids...]}}}'
    if not isinstance(doc, dict) or not isinstance(doc.get("frames"), dict) or not doc["frames"]:
        raise BadInput('has no "frames" object naming videos', p, form)
    out: dict[str, dict[str, tuple[int, ...]]] = {}
    for vid, entry in doc["frames"].items():
        if isinstance(entry, list):
            entry = {"": entry}
        if not isinstance(entry, dict) or not entry:
            raise BadInput(f"entry {vid!r} is not a list of frame ids or an object of such lists", p, form)
        out[vid] = {}
        for k, ids in entry.items():
            if not isinstance(ids, list) or not ids or not all(isinstance(i, int) and not isinstance(i, bool)
                                                               and i >= 0 for i in ids):
                raise BadInput(f"list {k!r} of {vid!r} is not a non-empty list of frame ids (integers >= 0)", p, form)
            if len(set(ids)) != len(ids):
                dup = sorted({i for i in ids if ids.count(i) > 1})
                raise BadInput(f"list {k!r} of {vid!r} names frame {dup[0]} twice", p, "list each frame once")
            out[vid][k] = tuple(sorted(ids))
    return out
