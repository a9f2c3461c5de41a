"""The method contract, for every method the registry holds (built-in and plug-in alike: the
list is the registry's, not a hand-kept one): on a real clip, each requested frame id once, in
order, at the video's H x W, float32 in [0, 1] or uint8 (value / 255), finite; the same maps
again for the same seed; nothing printed on stdout; nothing written to the working folder.
Deep methods run their ``smoke`` config after fitting on a few labelled frames."""

from __future__ import annotations

import numpy as np
import pytest

from bgbench.errors import BadInput, MethodUnavailable
from bgbench.method import METHODS, build_method
from conftest import CDNET, needs_data

CLIP = CDNET / "baseline" / "office"  # 51 real frames, 600..650, 360x240
REQUESTED = [612, 613, 620, 631, 644, 650]  # not contiguous, not from the first frame


def _names() -> list:
    out = []
    for e in sorted(METHODS, key=lambda e: e.name):
        slow = e.meta.get("family") == "deep" or e.name in ("subsense", "pawcs", "lobster", "pbas", "lsbp", "gsoc")
        out.append(pytest.param(e.name, marks=[pytest.mark.slow] if slow else []))
    return out


@pytest.fixture(scope="module")
def clip():
    from bgbench.data.formats import discover

    (v,) = discover(CLIP)
    return v


def _needs(name, clip, where) -> dict:
    """What a method needs that only its user can give: the masks reader, a results tree of
    0/255 masks (here: the clip's frames thresholded, written outside the working folder)."""
    if name != "masks":
        return {}
    import cv2

    scene = where / "masks-root" / "baseline" / "office"
    if not scene.is_dir():
        scene.mkdir(parents=True)
        for fid in clip.frame_ids:
            grey = cv2.cvtColor(clip.frame(fid), cv2.COLOR_BGR2GRAY)
            cv2.imwrite(str(scene / f"bin{fid:06d}.png"), ((grey > 128) * 255).astype(np.uint8))
    return {"root": str(where / "masks-root")}


def _maps(name, clip, where):
    from bgbench.data.video import LabelledFrames, TrainingSet

    try:
        m = build_method(name, config="smoke", seed=7, **_needs(name, clip, where))
    except MethodUnavailable as e:
        pytest.skip(f"{name} is unavailable here: {e}")
    except BadInput as e:  # a method that needs a value only its user can give (e.g. a folder of masks)
        pytest.skip(f"{name} needs a parameter to be built: {e}")
    if m.trains:
        m.fit(TrainingSet(train=(LabelledFrames(clip, [600, 602, 604, 606]),)))
    return list(m.segment(clip.view(), REQUESTED))


@needs_data
@pytest.mark.parametrize("name", _names())
def test_method_contract(name, clip, tmp_path, monkeypatch, capfd):
    work = tmp_path / "cwd"
    work.mkdir()
    monkeypatch.chdir(work)
    capfd.readouterr()
    first = _maps(name, clip, tmp_path)
    assert [fid for fid, _ in first] == REQUESTED  # each requested id once, in order
    h, w = clip.shape
    assert (h, w) == (240, 360)
    for fid, p in first:
        assert p.shape == (h, w), (fid, p.shape)
        assert p.dtype in (np.float32, np.uint8), p.dtype
        if p.dtype == np.float32:
            assert np.isfinite(p).all() and p.min() >= 0 and p.max() <= 1
    again = _maps(name, clip, tmp_path)
    for (fid, a), (_, b) in zip(first, again):
        assert np.array_equal(a, b), f"{name}: frame {fid} differs between two runs with seed 7"
    assert capfd.readouterr().out == ""
    assert list(work.iterdir()) == []
