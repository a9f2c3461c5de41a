"""Registries (lazy, duplicate-safe, helpful on typos) and the ground-truth firewall."""

from __future__ import annotations

import pickle

import pytest

from bgbench.errors import BadInput, LeakageError
from bgbench.catalog import class_meta, static_meta
from bgbench.method import METHODS, Method, build_method, method_class
from bgbench.registry import Registry
from bgbench.data.video import LabelledFrames


def test_registry_duplicates_and_suggestions():
    r = Registry("thing")
    r.register_lazy("alpha", "json:dumps")
    with pytest.raises(ValueError, match="twice"):
        r.register_lazy("alpha", "json:loads")
    with pytest.raises(BadInput, match="did you mean alpha"):
        r.get("alpah")
    import json

    assert r.get("alpha") is json.dumps


def test_static_metadata_matches_the_classes():
    """What the catalogue reads from the source, without importing, is what the imported
    class says, for every registered method (built-in ones all read statically)."""
    checked = 0
    for entry in METHODS:
        if entry.target is None:
            continue  # registered directly by a test module
        static = static_meta(entry.target)  # no fallback to importing
        try:
            cls = method_class(entry.name)
        except BadInput:  # an optional dependency that is not installed here
            continue
        assert issubclass(cls, Method)
        assert static == class_meta(cls), entry.name
        assert static["summary"] and static["family"] in ("classical", "deep"), entry.name
        checked += 1
    assert checked >= 14


def test_method_parameters_are_checked():
    m = build_method("gmm_zivkovic", history="200", detect_shadows="false")
    assert m.p["history"] == 200 and m.p["detect_shadows"] is False
    with pytest.raises(BadInput, match="no parameter 'histroy'"):
        build_method("gmm_zivkovic", histroy=3)
    with pytest.raises(BadInput, match="gmm_zivkovic.history"):
        build_method("gmm_zivkovic", history="many")
    with pytest.raises(BadInput, match="did you mean gmm_zivkovic"):
        build_method("gmm_zivkovik")
    assert "gmm_zivkovic" in METHODS.names()
    # optional parameters (default None) read numbers from the command line
    _, p = method_class("cdn_medal").resolve("smoke", max_train_seconds="300")
    assert p["max_train_seconds"] == 300
    assert method_class("cdn_medal").resolve("smoke", max_train_seconds="none")[1]["max_train_seconds"] is None


def test_segment_view_has_no_ground_truth():
    from bgbench.data.formats import discover

    v = discover("synthetic")[0]
    view = v.view()
    assert not hasattr(view, "gt") and not hasattr(view, "gts") and not hasattr(view, "_video")
    assert view.frame(v.eval_frames[0]).shape == (*v.shape, 3)
    with pytest.raises(AttributeError):
        view.extra = 1  # __slots__: nothing can be attached to it either
    with pytest.raises(TypeError, match="not picklable"):
        pickle.dumps(view)


def test_fit_sees_only_training_frames():
    from bgbench.data.formats import discover

    v = discover("synthetic")[0]
    item = LabelledFrames(v, v.eval_frames[:3])
    assert item.gt(v.eval_frames[0]).shape == v.shape
    assert item.gts(v.eval_frames[:3]).shape == (3, *v.shape)
    with pytest.raises(LeakageError, match="not a training frame"):
        item.gt(v.eval_frames[5])
    with pytest.raises(LeakageError):
        item.gts(v.eval_frames[:6])
