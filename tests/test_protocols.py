"""Protocols: split sizes worked out by hand, seeding, fold balance, leakage checks."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from benchmark.cli import main
from benchmark.datasets import discover
from benchmark.errors import BadInput, LeakageError
from benchmark.protocols import Split, build_protocol, check_splits
from conftest import DATA, HIGHWAY, needs_data


@pytest.fixture(scope="module")
def many():
    """Real UCSD and SBI2015 scenes plus the synthetic ones: 30 videos, 7 categories."""
    vids = discover("synthetic")
    if DATA.is_dir():
        vids += discover(DATA / "UCSD") + discover(DATA / "SBI2015")
    return vids


@needs_data
def test_scene_specific_first_half(highway):
    (s,) = build_protocol("scene-specific").splits([highway])
    (vid, train), = s.train
    (_, test), = s.test
    assert vid == highway.id and s.name == "CDnet2014:baseline:highway"
    assert train == tuple(range(470, 1085)) and test == tuple(range(1085, 1701))  # 615 + 616 = 1231


@needs_data
def test_scene_specific_n_and_fraction(highway):
    (a,) = build_protocol("scene-specific", rule="n:200", seed=0).splits([highway])
    (b,) = build_protocol("scene-specific", rule="n:200", seed=0).splits([highway])
    (c,) = build_protocol("scene-specific", rule="n:200", seed=1).splits([highway])
    assert len(a.train[0][1]) == 200 and len(a.test[0][1]) == 1031
    assert a == b and a.train != c.train
    (f,) = build_protocol("scene-specific", rule="fraction:0.3,val:0.1").splits([highway])
    n_train, n_val, n_test = len(f.train[0][1]), len(f.val[0][1]), len(f.test[0][1])
    assert (n_train, n_val, n_test) == (round(0.3 * 1231), round(0.1 * 1231), 1231 - 369 - 123)
    assert not set(f.train[0][1]) & set(f.test[0][1]) and not set(f.val[0][1]) & set(f.test[0][1])
    with pytest.raises(BadInput, match="--rule"):
        build_protocol("scene-specific", rule="half")


def test_cross_scene_folds(many):
    splits = build_protocol("cross-scene", folds=3, seed=0).splits(many)
    assert [s.name for s in splits] == ["fold1", "fold2", "fold3"]
    tested = [v for s in splits for v, _ in s.test]
    assert sorted(tested) == sorted(v.id for v in many)  # every video tested exactly once
    for s in splits:
        assert not {v for v, _ in s.train} & {v for v, _ in s.test}
    # balanced over categories: each category's videos spread so fold counts differ by <= 1
    fold_of = {v: k for k, s in enumerate(splits) for v, _ in s.test}
    by_cat = Counter()
    for v in many:
        by_cat[(v.category or "-", fold_of[v.id])] += 1
    for cat in {v.category or "-" for v in many}:
        counts = [by_cat[(cat, k)] for k in range(3)]
        assert max(counts) - min(counts) <= 1, (cat, counts)
    frames = [sum(len(f) for _, f in s.test) for s in splits]
    assert max(frames) / min(frames) < 1.5, frames
    # seeded: the same seed gives the same folds
    assert splits == build_protocol("cross-scene", folds=3, seed=0).splits(many)


def test_cross_scene_exclude(many):
    splits = build_protocol("cross-scene", exclude=("shadow", "PTZ")).splits(many)
    tested = {v for s in splits for v, _ in s.test}
    assert "synthetic/shadow/shadow" not in tested and len(tested) == len(many) - 1
    with pytest.raises(BadInput, match="folds"):
        build_protocol("cross-scene", folds=3).splits(many[:2])


def test_sampled_and_transfer(many):
    (s,) = build_protocol("sampled", fraction=0.05).splits(many)
    for (v, tr), (v2, te) in zip(s.train, s.test):
        assert v == v2 and len(tr) == max(1, round(0.05 * (len(tr) + len(te)))) and not set(tr) & set(te)
    if DATA.is_dir():
        (t,) = build_protocol("transfer", source=("synthetic",), target=("UCSD",)).splits(many)
        assert t.name == "synthetic->UCSD"
        assert {v.split("/")[0] for v, _ in t.train} == {"synthetic"} and len(t.test) == 18
        (one,) = build_protocol("transfer", source=("UCSD",), target=("SBI2015/-/HighwayI",)).splits(many)
        assert [v for v, _ in one.test] == ["SBI2015/-/HighwayI"] and len(one.train) == 18
    with pytest.raises(BadInput, match="Nowhere"):
        build_protocol("transfer", source=("Nowhere",), target=("synthetic",)).splits(many)


def test_leakage_is_refused(many):
    v = many[0]
    leaky = [Split("x", train=((v.id, v.eval_frames[:5]),), test=((v.id, v.eval_frames[3:]),))]
    with pytest.raises(LeakageError, match="both trained and tested"):
        check_splits(leaky, many)
    across = [Split("x", train=((v.id, v.eval_frames[:5]),), test=((v.id, v.eval_frames[5:]),))]
    check_splits(across, many)  # fine within a scene ...
    with pytest.raises(LeakageError, match="also a training video"):
        check_splits(across, many, disjoint_videos=True)  # ... not across scenes
    twice = [Split("a", test=((v.id, v.eval_frames),)), Split("b", test=((v.id, v.eval_frames),))]
    with pytest.raises(LeakageError, match="more than once"):
        check_splits(twice, many, each_video_once=True)
    with pytest.raises(LeakageError, match="not labelled"):
        check_splits([Split("x", test=((v.id, (-5,)),))], many)


@needs_data
def test_splits_cli_json(capsys):
    assert main(["splits", "--protocol", "scene-specific", "--rule", "n:10", "--data", str(HIGHWAY), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out[0]["name"] == "CDnet2014:baseline:highway"
    assert out[0]["train"][0]["video"] == "CDnet2014/baseline/highway" and len(out[0]["train"][0]["frames"]) == 10
    assert len(out[0]["test"][0]["frames"]) == 1221
