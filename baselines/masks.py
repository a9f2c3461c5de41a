"""Masks another tool wrote, read from a results tree and scored like any method's

``--set masks.root=DIR`` names the tree, laid out as the official CDnet comparator and
changedetection.net's uploader take it, one ``bin%06d.png`` per frame numbered like the
ground truth: ``DIR/CATEGORY/SCENE/`` (one dataset), ``DIR/DATASET/CATEGORY/SCENE/`` (a tree of
datasets, as ``bgbench run --save-masks`` writes under ``OUT/masks/METHOD/PROTOCOL/``),
``DIR/SCENE/`` (flat; also SBI2015 and UCSD, which have no categories), or ``DIR`` itself
holding one scene's masks. The files are found and read by the code ``bgbench score`` uses
(``bgbench.scoring.files``): the same folder rules, the same refusals (0/1 or 0/127 masks,
colour, another size), so a run of ``masks`` and ``bgbench score --data`` give the same counts.

Each job is keyed on the content of the mask files it reads (a SHA-1 over them, in its
fingerprint): replacing a mask and running again into the same ``--out`` recomputes that job,
and only that one. Its frames/s would be PNG decoding, so it records none: "n/a" in tables,
no point in the speed plot, left out of the CI speed gate.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np

from bgbench.errors import BadInput
from bgbench.method import Method, register_method
from bgbench.params import Param
from bgbench.data.video import VideoView

UNTIMED = "masks read from disk: no method ran, so there is no speed to report"


@register_method("masks")
class Masks(Method):
    """External masks from a results tree (CATEGORY/SCENE/bin%06d.png), scored as a method"""

    untimed = UNTIMED
    warmup_frames = 0
    params = {
        "root": Param(None, "the results tree: CATEGORY/SCENE/bin%06d.png (or DATASET/CATEGORY/SCENE, or SCENE) "
                            "under it", kind="str"),
        "probabilities": (False, "the masks are grey levels read as value/255 (thresholded like any method's "
                                 "output), not 0/255 masks"),
    }

    @classmethod
    def validate(cls, values: dict[str, Any]) -> None:
        root = values.get("root")
        if root is not None and not Path(root).is_dir():
            raise BadInput(f"{root} is not a folder", "masks.root",
                           "give the results tree's folder, e.g. --set masks.root=results/")

    @classmethod
    def _files(cls, params: dict[str, Any], video: Any, frames: Sequence[int]) -> dict[int, Path]:
        from bgbench.scoring.files import MASK_NAME, find_mask_folder

        if params.get("root") is None:
            raise BadInput("masks.root is not set: the masks method reads another tool's masks", "masks.root",
                           "name their results tree, e.g. --set masks.root=results/ (CATEGORY/SCENE/bin%06d.png)")
        folder = find_mask_folder(Path(params["root"]), video)
        names = {e.name for e in os.scandir(folder)}  # one listing, not a stat per mask
        files = {i: folder / MASK_NAME.format(i) for i in sorted(frames)}
        missing = [f for f in files.values() if f.name not in names]
        if missing:
            raise BadInput(f"is missing: {len(missing)} of the {len(files)} frames {video.id} is tested on have no "
                           f"mask in {folder}", missing[0], "write one bin%06d.png per tested frame, numbered like "
                           "the ground truth (bgbench score --partial scores a partial set)")
        return files

    @classmethod
    def job_inputs(cls, params: dict[str, Any], video: Any, frames: Sequence[int]) -> str:
        """SHA-1 over the frame ids and bytes of the mask files this job reads. Each file is
        also decoded and checked here, as the run is planned: a bad mask (0/1, colour, another
        size, cut short) refuses the run naming the file, as ``bgbench score`` does, instead of
        failing its job halfway."""
        from bgbench.execution.scoped import opencv_threads
        from bgbench.scoring.files import read_video_mask

        h = hashlib.sha1()
        probabilities = bool(params.get("probabilities"))
        with opencv_threads(1):  # small PNGs: threads cost more than they give
            for i, f in cls._files(params, video, frames).items():
                data = f.read_bytes()
                h.update(f"{i}:".encode())
                h.update(hashlib.sha1(data).digest())
                read_video_mask(f, video.shape, probabilities)
        return h.hexdigest()

    def segment(self, video: VideoView, frames: Sequence[int]) -> Iterator[tuple[int, np.ndarray]]:
        from bgbench.scoring.files import read_video_mask

        probabilities = bool(self.p["probabilities"])
        for fid, path in self._files(self.p, video, frames).items():
            # uint8 as read: value/255 (0/255 masks are foreground at any threshold in (0, 1])
            yield fid, read_video_mask(path, video.shape, probabilities)

