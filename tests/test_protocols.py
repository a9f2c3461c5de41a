"""Protocols: split sizes worked out by hand, seeding, fold balance, leakage checks."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from bgbench.cli import main
from bgbench.data.formats import discover
from bgbench.errors import BadInput, LeakageError
from bgbench.protocols import Split, build_protocol, check_splits
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
    # a typo excluded nothing, silently (and, given, dropped the default PTZ): refused, naming it
    with pytest.raises(BadInput, match="--exclude: shadw: no video's category is named so"):
        build_protocol("cross-scene", exclude=("shadw",)).splits(many)
    assert build_protocol("cross-scene", exclude=("SHADOW", "thermal")).splits(many) == splits  # any case; CDnet's names


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


# --- what a protocol cannot serve: up-front BadInput, or a skip with its reason --------------
@pytest.fixture(scope="module")
def synth():
    return discover("synthetic")  # six CDnet-layout scenes, 70 labelled frames each


def test_keys_name_the_options_only():
    assert build_protocol("scene-specific").key == "scene-specific[seed=0,rule=first-half]"
    assert build_protocol("cross-scene").key == "cross-scene[seed=0,folds=3,exclude=PTZ]"
    assert build_protocol("transfer").key == "transfer[seed=0,source=CDnet2014,target=SBI2015+UCSD]"
    assert build_protocol("full").key == "full"
    # formats and transfer's rule only where they are set, so older keys stay as they were
    assert (build_protocol("cross-scene", formats=("cdnet2014",)).key
            == "cross-scene[seed=0,formats=cdnet2014,folds=3,exclude=PTZ]")
    assert build_protocol("transfer", rule="n:200").key.endswith(",rule=n:200]")


@pytest.mark.parametrize("name, options, where", [
    ("scene-specific", {"rule": "n:0"}, "--rule"),
    ("scene-specific", {"rule": "fraction:0.8,val:0.2"}, "--rule"),
    ("cross-scene", {"folds": 1}, "--folds"),
    ("sampled", {"fraction": 1.0}, "--fraction"),
    ("transfer", {"source": ("CDnet2014",), "target": ("cdnet2014/baseline",)}, "--target"),
    ("transfer", {"rule": "half"}, "--rule"),
    ("full", {"formats": ("cdnet2041",)}, "formats"),
])
def test_options_that_can_never_work_fail_before_any_data(name, options, where):
    with pytest.raises(BadInput) as e:
        build_protocol(name, **options)
    assert e.value.where == where


@pytest.mark.parametrize("rule, reason", [
    ("n:70", "has 70 labelled frame(s): rule n:70 needs at least 71 (70 to train, 1 to test)"),
    ("fraction:0.005", "a fraction 0.005 of them is 0 frames to train"),
    ("fraction:0.3,val:0.005", "a fraction 0.005 of them is 0 frames to validate"),
])
def test_scene_specific_rule_unmet_is_a_skip_per_video(synth, rule, reason):
    p = build_protocol("scene-specific", rule=rule)
    planned = p.plan(synth)
    assert planned.splits == [] and [s.where for s in planned.skipped] == [v.id for v in synth]
    assert all(reason in s.reason and s.fix for s in planned.skipped)
    with pytest.raises(BadInput, match="synthetic/baseline/moving"):
        p.splits(synth)  # the strict form names the first video
    ok = build_protocol("scene-specific", rule="n:69").plan(synth)  # 69 train + 1 test: just met
    assert not ok.skipped and all(len(s.test[0][1]) == 1 for s in ok.splits)


@needs_data
def test_fraction_that_leaves_nothing_to_test_skips_only_that_video(many):
    rain = [v for v in many if v.id == "UCSD/-/rain"]  # 14 labelled frames
    p = build_protocol("scene-specific", rule="fraction:0.9,val:0.05")  # 13 + 1 of 14
    planned = p.plan(rain + [v for v in many if v.dataset == "synthetic"])
    (skip,) = planned.skipped
    assert skip.where == "UCSD/-/rain" and "13 to train and 1 to validate leave none to test" in skip.reason
    assert len(planned.splits) == 6


def test_sampled_skips_a_video_whose_fraction_is_zero_frames(synth):
    planned = build_protocol("sampled", fraction=0.005).plan(synth)
    assert planned.splits == [] and len(planned.skipped) == 6 and "0 frames to train" in planned.skipped[0].reason


def test_cross_scene_empty_fold_and_lone_video(synth):
    planned = build_protocol("cross-scene", folds=3).plan(synth[:2])
    assert len(planned.splits) == 2
    tested = [v for s in planned.splits for v, _ in s.test]
    assert sorted(tested) == sorted(v.id for v in synth[:2])  # each tested once, trained on the other
    (empty,) = planned.skipped
    assert empty.where.startswith("fold") and "is empty: 2 video(s) cannot fill 3" in empty.reason
    lone = build_protocol("cross-scene").plan(synth[:1])
    assert lone.splits == [] and lone.skipped[0].where == synth[0].id and "only video" in lone.skipped[0].reason
    # a category exclusion that leaves nothing is no skip: the protocol was asked to leave it out
    assert build_protocol("cross-scene", exclude=("baseline",)).plan(synth[:1]) == type(lone)([], [])


def test_formats_filter_keeps_only_those_layouts(many):
    planned = build_protocol("cross-scene", formats=("cdnet2014",)).plan(many)
    tested = {v for s in planned.splits for v, _ in s.test}
    assert tested == {v.id for v in many if v.format == "cdnet2014"} and not planned.skipped


def test_transfer_target_not_in_the_data_is_a_skip(synth):
    p = build_protocol("transfer", source=("synthetic/baseline",), target=("Wallflower/-/Bootstrap", "Nowhere"))
    planned = p.plan(synth)
    assert planned.splits == [] and [k.where for k in planned.skipped] == ["Wallflower/-/Bootstrap", "Nowhere"]
    assert "is not in the data" in planned.skipped[0].reason and "synthetic" in planned.skipped[0].reason


@needs_data
def test_transfer_category_source_rule_and_absent_source(many):
    p = build_protocol("transfer", source=("synthetic/baseline",), target=("ucsd/-/rain", "Wallflower"), rule="n:20")
    planned = p.plan(many)
    (split,) = planned.splits
    assert [v for v, _ in split.train] == ["synthetic/baseline/moving"] and len(split.train[0][1]) == 20
    assert [v for v, _ in split.test] == ["UCSD/-/rain"]  # the dataset name compares case-insensitively
    assert [k.where for k in planned.skipped] == ["Wallflower"]
    gone = build_protocol("transfer", source=("CDnet2014/shadow/copyMachine",), target=("UCSD/-/rain",)).plan(many)
    assert gone.splits == [] and gone.skipped[0].where == "UCSD/-/rain"
    assert "transfer source 'CDnet2014/shadow/copyMachine' is not in the data" in gone.skipped[0].reason
    short = build_protocol("transfer", source=("synthetic/baseline",), target=("UCSD/-/rain",), rule="n:200").plan(many)
    assert short.splits == [] and [k.where for k in short.skipped] == ["synthetic/baseline/moving", "UCSD/-/rain"]


def test_planner_records_skips_and_refuses_a_run_with_nothing_to_do(synth, tmp_path):
    from bgbench.execution.runner import MethodSpec, RunOptions, plan

    opts = RunOptions(out=tmp_path)
    specs = [MethodSpec("temporal_median"), MethodSpec("frame_difference")]
    short = build_protocol("scene-specific", rule="n:69")
    impossible = build_protocol("scene-specific", rule="n:200")
    skipped: list[dict] = []
    tasks = plan(specs, {"temporal_median": [short, impossible], "frame_difference": [impossible]}, synth, opts,
                 skipped=skipped)
    assert len(tasks) == 6 and {t.protocol.key for t in tasks} == {short.key}
    assert len(skipped) == 6 and {s["protocol"] for s in skipped} == {impossible.key}
    assert skipped[0]["methods"] == ["temporal_median", "frame_difference"]
    assert {"where", "reason", "fix", "error"} <= set(skipped[0]) and skipped[0]["where"] == synth[0].id
    with pytest.raises(BadInput, match="rule n:200 needs at least 201"):
        plan(specs, {"temporal_median": [impossible], "frame_difference": []}, synth, opts)  # strict
    with pytest.raises(BadInput, match="no job can run"):
        plan(specs, {"temporal_median": [impossible], "frame_difference": []}, synth, opts, skipped=[])
