"""What the on-disk adapters share: numbered file listings, temporal ROI, spatial ROI."""

from __future__ import annotations

import functools
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

from bgbench.errors import BadInput
from bgbench.data.imageio import image_size
from bgbench.data.video import ROI_POLICIES, Video

LAYOUT_FIX = "check the dataset layout (README, 'Data'), or name the layout with --format"


@dataclass(frozen=True)
class Naming:
    """One way a dataset names its numbered files: ``label`` for messages (e.g.
    ``in%06d.(jpg|png)``), ``regex`` with a group ``id`` (and ``ext``) matched against the
    whole file name, case-insensitively, and ``template`` to name a missing file."""

    label: str
    regex: str
    template: str  # str.format with the id and ext=, e.g. "in{:06d}{ext}"

    def match(self, name: str) -> re.Match | None:
        return _pattern(self.regex).fullmatch(name)


@functools.lru_cache(maxsize=64)
def _pattern(regex: str) -> re.Pattern:
    return re.compile(regex, re.IGNORECASE)


@dataclass
class Numbered:
    """Numbered files found in a folder under one naming: {id: file}, in id order."""

    files: dict[int, Path]
    naming: Naming
    folder: Path

    def name_of(self, i: int) -> Path:
        ext = next(iter(self.files.values())).suffix
        return self.folder / self.naming.template.format(i, ext=ext)


def numbered(folder: Path, namings: Naming | Sequence[Naming], what: str, fmt: str) -> Numbered:
    """The files in ``folder`` named by one of ``namings``; refuses an empty listing (naming
    the format and every pattern it accepts), two namings mixed in one folder, and two
    files for one id (in000001.jpg beside in000001.png)."""
    namings = (namings,) if isinstance(namings, Naming) else tuple(namings)
    accepted = " or ".join(n.label for n in namings)
    if not folder.is_dir():
        raise BadInput(f"{what} folder is missing (format {fmt} reads {what} matching {accepted} there)", folder,
                       LAYOUT_FIX)
    found: dict[Naming, dict[int, Path]] = {}
    with os.scandir(folder) as listing:  # names sorted as strings, file types from the listing: no stat per file
        entries = sorted(((e.name, e) for e in listing), key=lambda t: t[0])
    for name, entry in entries:
        for n in namings:
            m = n.match(name)
            if m and not entry.is_file() and not entry.is_dir():  # a FIFO, socket, device or broken link
                try:
                    mode = os.stat(folder / name).st_mode
                except OSError:
                    raise BadInput(f"is a broken link where {what} should be", folder / name,
                                   "restore the file it points to, or replace the link with the file") from None
                from bgbench.safefs import not_regular

                raise not_regular(folder / name, mode, f"replace it with the {what} file itself")
            if m and entry.is_file():
                have = found.setdefault(n, {})
                i = int(m.group("id"))
                if i in have:
                    raise BadInput(f"two {what} files have the id {i}: {have[i].name} and {name}", folder / name,
                                   "keep one file per id (remove the duplicate)")
                have[i] = folder / name
                break
    if not found:
        raise BadInput(f"no {what} in {folder.name}/ matching {accepted} (format {fmt})", folder, LAYOUT_FIX)
    if len(found) > 1:
        a, b = list(found)[:2]
        raise BadInput(f"holds {what} in two namings, {a.label} and {b.label}", folder,
                       "keep one naming per folder (the same frames twice, or two videos mixed?)")
    (naming, files), = found.items()
    return Numbered(dict(sorted(files.items())), naming, folder)


def check_contiguous(ids: dict[int, Path] | Numbered, name_of: Callable[[int], Path] | None = None,
                     what: str = "a frame") -> None:
    """Raise on the first gap in the numbering, naming the missing file."""
    if isinstance(ids, Numbered):
        name_of = name_of or ids.name_of
        ids = ids.files
    keys = list(ids)
    if keys[-1] - keys[0] + 1 != len(keys):
        have = set(keys)
        missing = next(i for i in range(keys[0], keys[-1]) if i not in have)
        n_missing = keys[-1] - keys[0] + 1 - len(keys)
        raise BadInput(
            f"{what} is missing ({n_missing} missing between {keys[0]} and {keys[-1]}): the numbering has a gap",
            name_of(missing),  # type: ignore[misc]  # a plain dict comes with name_of
            "restore the missing files from the dataset's archive",
        )


def read_temporal_roi(path: Path) -> tuple[int, int] | None:
    from bgbench.safefs import read_bytes

    if not os.path.lexists(path):
        return None
    try:
        raw = read_bytes(path, "write the scored frame range as 'first last' in a regular file")
        # a byte-order mark (Notepad writes one) is no part of the numbers
        text = raw.decode("utf-16") if raw[:2] in (b"\xff\xfe", b"\xfe\xff") else raw.decode("utf-8-sig")
        a, b = (int(x) for x in text.split()[:2])
    except FileNotFoundError:  # a dangling symlink
        raise BadInput("is a broken link", path, "restore it, or remove it to score every labelled frame") from None
    except UnicodeDecodeError:
        raise BadInput("is not text", path, "write the scored frame range as 'first last'") from None
    except ValueError:
        raise BadInput("does not hold two integers 'first last'", path, "write the scored frame range as 'first last'") from None
    return a, b


def check_temporal_roi(troi: tuple[int, int], first: int, last: int, path: Path, allow_one_past: bool = False) -> tuple[tuple[int, int], tuple[str, ...]]:
    a, b = troi
    notes: tuple[str, ...] = ()
    if allow_one_past and b == last + 1:
        notes = (f"{path.name} ends at {b}, one past the last frame {last}: read as {last}",)
        b = last
    if a > b:
        raise BadInput(f"temporal ROI {troi[0]}-{troi[1]} is reversed: its first frame comes after its last", path,
                       f"write 'first last' with first <= last, within {first} {last}")
    if a < first or b > last:
        raise BadInput(
            f"temporal ROI {troi[0]}-{troi[1]} is outside the frames {first}-{last}",
            path,
            f"write a range within {first} {last}",
        )
    return (a, b), notes


def temporal_roi(scene: Path, frames: dict[int, Path], gt: dict[int, Path], allow_one_past: bool
                 ) -> tuple[tuple[int, int], tuple[str, ...]]:
    """The scored frame range from ``scene/temporalROI.txt``, checked against the frames;
    without the file, every frame that has ground truth."""
    first, last = next(iter(frames)), next(reversed(frames))
    tfile = scene / "temporalROI.txt"
    troi = read_temporal_roi(tfile)
    if troi is None:
        return (max(first, min(gt)), min(last, max(gt))), ("no temporalROI.txt: every frame with ground truth is scored",)
    return check_temporal_roi(troi, first, last, tfile, allow_one_past)


ROI_NAMES = ("ROI.bmp", "ROI.png")  # lossless masks, in the order they are looked for
JPEG_ROI_NAMES = ("ROI.jpg", "ROI.jpeg")


def find_roi(scene: Path) -> tuple[Path | None, tuple[str, ...]]:
    """The scene's spatial ROI file and notes: ``ROI.bmp``, else ``ROI.png``, spelt in any
    case (a copy made on Windows or macOS may hold ``roi.bmp``: a case-blind file system never
    told them apart); else a JPEG ``ROI.jpg``, returned so that ``roi_mismatch`` refuses it
    (CDnet2014's is a picture of the scene with the region drawn over it, and any JPEG's
    edges are lossy); else None. Two spellings of one name are ambiguous: refused."""
    try:
        names = os.listdir(scene)
    except OSError:
        return None, ()
    for wanted in (*ROI_NAMES, *JPEG_ROI_NAMES):
        if wanted in names:
            return scene / wanted, ()
        found = sorted(n for n in names if n.lower() == wanted.lower())
        if len(found) > 1:
            raise BadInput(f"holds {' and '.join(found)}: which one is the spatial ROI is ambiguous", scene,
                           f"keep one of them, named {wanted}")
        if found:
            return scene / found[0], (f"spatial ROI read from {found[0]} (the dataset names it {wanted})",)
    return None, ()


def roi_mismatch(roi_file: Path | None, shape: tuple[int, int]) -> str | None:
    if roi_file is None:
        return None
    if roi_file.suffix.lower() in (".jpg", ".jpeg"):
        return (f"{roi_file.name} is a JPEG, not a ROI mask (lossy edges widen the region; CDnet2014's ROI.jpg is a "
                "picture of the scene with the region drawn over it), and the scene has no ROI.bmp, which the "
                "official comparator reads")
    h, w = image_size(roi_file)
    if (h, w) != shape:
        return f"ROI is {w}x{h} but the frames are {shape[1]}x{shape[0]}"
    return None


def orphan_gt_notes(gt: dict[int, Path], frames: dict[int, Path]) -> tuple[str, ...]:
    """A note when ground-truth files have ids that no frame has: they are never scored. A
    clipped copy of a scene (frames cut, masks kept) reads this way, and so do masks numbered
    one off their frames, whose every pair would otherwise be scored shifted without a word."""
    orphans = sorted(set(gt) - set(frames))
    if not orphans:
        return ()
    return (f"{len(orphans)} ground-truth file(s) have no frame (first: {gt[orphans[0]].name}): not scored; if the "
            "masks are numbered off their frames, renumber them",)


def check_gt_cover(gt: dict[int, Path], troi: tuple[int, int], name_of: Callable[[int], Path]) -> None:
    missing = [i for i in range(troi[0], troi[1] + 1) if i not in gt]
    if missing:
        raise BadInput(
            f"ground truth is missing for {len(missing)} frame(s) of the temporal ROI {troi[0]}-{troi[1]}",
            name_of(missing[0]),
            "restore the ground-truth files, or narrow temporalROI.txt",
        )


def make_video(
    *,
    fmt: str,
    dataset: str,
    category: str | None,
    scene: Path,
    frames: dict[int, Path],
    gt: dict[int, Path],
    troi: tuple[int, int],
    roi_file: Path | None,
    roi_policy: str,
    notes: tuple[str, ...] = (),
    gt_lut: tuple[int, ...] | None = None,
    gt_colour: str = "refuse",
) -> Video:
    if roi_policy not in ROI_POLICIES:
        raise BadInput(f"unknown ROI policy {roi_policy!r}", "--roi-policy", f"use one of {', '.join(ROI_POLICIES)}")
    first_file = next(iter(frames.values()))
    shape = image_size(first_file)
    mismatch = roi_mismatch(roi_file, shape)
    video = Video(
        dataset=dataset,
        category=category,
        name=scene.name,
        path=scene,
        format=fmt,
        frame_files=tuple(frames.values()),
        frame_ids=tuple(frames),
        gt_files=tuple(gt.items()),
        roi_file=roi_file,
        temporal_roi=troi,
        shape=shape,
        roi_policy=roi_policy,
        roi_mismatch=mismatch,
        gt_lut=gt_lut,
        gt_colour=gt_colour,
        notes=notes + ((f"{mismatch}: --roi-policy {roi_policy}",) if mismatch and roi_policy != "error" else ()),
    )
    if mismatch and roi_policy == "error":
        _ = video.roi  # raises the BadInput that explains the choices
    return video


def label_lut(mapping: dict[int, int]) -> tuple[int, ...]:
    """A ground-truth table for ``Video.gt_lut``: raw value -> CDnet code; every value not
    in ``mapping`` is -1, refused on decoding (never read as a CDnet code by accident)."""
    return tuple(mapping.get(v, -1) for v in range(256))


def binarising_lut(threshold: int = 128) -> tuple[int, ...]:
    """Every raw value to 0 (below ``threshold``) or 255 (at or above): for anti-aliased
    hand-drawn masks, whose edge pixels hold values in between."""
    return tuple(0 if v < threshold else 255 for v in range(256))
