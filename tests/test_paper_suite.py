"""The paper suite: every deep method under its paper's protocols on the real data, what
the protocols cannot serve recorded as skips with their reasons, and the published numbers
shown beside ours only under the same protocol (reports/published.py)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from bgbench.cli import main
from bgbench.protocols import build_protocol
from conftest import needs_data
from bgbench.reports import leaderboard
from bgbench.reports.published import MISSING, PUBLISHED, REFERENCES, compare, options_match

DEEP = ("bmn_bsn", "two_stage_cnn", "cdn_medal", "siamese_fcn", "crossnet")


def _job(method, key, video, f, config="smoke"):
    """A job record as the runner writes it, with every metric equal to ``f``."""
    counts = {"tp": 10, "fp": 5, "tn": 80, "fn": 5, "shadow_errors": 0, "shadow_pixels": 0}
    hist = [0] * 256
    hist[200] = 10
    return {"method": method, "config": config, "protocol": key.split("[", 1)[0], "protocol_key": key, "split": "s",
            "video": video, "status": "ok", "frames": 1, "counts": counts, "dice": {"sum": 0.5, "frames": 1},
            "metrics": dict.fromkeys(("f_measure", "recall", "precision", "mean_dice"), f),
            "histograms": {"negative": hist, "shadow": [0] * 256, "positive": hist}, "timing": {"fps": 10.0}}


def _results(jobs, protocols):
    from records_helpers import results_of

    return results_of(jobs, protocols)


def test_published_numbers_read_from_the_papers():
    by = {(r.method, r.source, r.dataset, r.metric): r for r in REFERENCES}
    assert by[("crossnet", "papers/004 Table II", "CDnet2014", "f_measure")].overall == 0.9776
    assert by[("crossnet", "papers/004 Table II", "CDnet2014", "mean_dice")].overall == 0.9466
    assert by[("siamese_fcn", "papers/003 Tables 1-2", "CDnet2014", "f_measure")].overall == 0.98338
    bmn = by[("bmn_bsn", "papers/000 Table 1", "CDnet2014", "f_measure")]
    assert bmn.overall == 0.7188 and bmn.values["turbulence"] == pytest.approx(0.5544)
    # Table 1's overall is the mean of its ten category means
    assert np.mean(list(bmn.values.values())) == pytest.approx(0.7188, abs=5e-5)
    medal = by[("cdn_medal", "papers/002 Table III", "CDnet2014", "f_measure")]
    assert medal.values["lowFramerate"] == 0.9561 and "PTZ" not in medal.values and len(medal.values) == 10
    walls = {r.rows[0][0]: r.rows[0][1] for r in REFERENCES if r.method == "cdn_medal" and r.dataset == "Wallflower"}
    assert walls == {"Bootstrap": 0.7680, "LightSwitch": 0.5400, "WavingTrees": 0.8156, "Camouflage": 0.9700,
                     "ForegroundAperture": 0.8401, "TimeOfDay": 0.7429}
    assert PUBLISHED["subsense"]["baseline"] == pytest.approx(0.9503)
    # every deep method has its numbers, or says why not
    for m in DEEP:
        assert any(r.method == m for r in REFERENCES) or any(k[0] == m for k in MISSING), m


def test_reference_protocols_are_the_methods_paper_protocols():
    """The published entries name exactly the protocols the methods run under --suite paper."""
    from bgbench.method import method_class

    for m in DEEP:
        cls = method_class(m)
        protos = [build_protocol(cls.default_protocol, **cls.protocol_options)]
        protos += [build_protocol(p, **o) for p, o in cls.paper_protocols]
        for r in (r for r in REFERENCES if r.method == m and r.dataset in ("CDnet2014", "Wallflower")):
            assert any(p.name == r.protocol and options_match(p.options(), r.options) for p in protos), (m, r.source)


def test_published_shown_only_under_the_same_protocol(tmp_path):
    fg200 = build_protocol("scene-specific", rule="fgsegnet:200")
    half = build_protocol("scene-specific", rule="first-half")
    ok = _results([_job("cdn_medal", fg200.key, "CDnet2014/baseline/highway", 0.5)], [fg200])
    c = compare(ok, "scene-specific")
    h = c["header"]
    (f_row,) = [r for r in c["rows"] if r[h.index("metric")] == "f_measure"]
    assert f_row[0] == "cdn_medal[smoke]" and h[1:4] == ["baseline ours", "baseline published", "baseline gap"]
    assert f_row[1:4] == [0.5, 0.9615, pytest.approx(0.5 - 0.9615)]
    assert any("baseline 1 of 4" in n for n in c["footnotes"])  # one highway video vs the four-video category
    assert any("published overall is over 49 videos, ours over 1" in n for n in c["footnotes"])  # Table IV
    other = _results([_job("cdn_medal", half.key, "CDnet2014/baseline/highway", 0.5)], [half])
    assert compare(other, "scene-specific")["rows"] == []
    # papers/002 trained on FgSegNet's frames: 200 frames of bgbench's own draw are not its protocol,
    n200 = build_protocol("scene-specific", rule="n:200")
    assert compare(_results([_job("cdn_medal", n200.key, "CDnet2014/baseline/highway", 0.5)], [n200]),
                   "scene-specific")["rows"] == []
    # a copy of the lists under another name is (same frames), one frame moved is not
    from bgbench.framelists import packaged_path

    doc = json.loads(packaged_path("fgsegnet_cdnet2014_train_frames.json").read_text())
    (tmp_path / "copy.json").write_text(json.dumps(doc))
    doc["frames"]["CDnet2014/baseline/highway"]["200"][0] += 1
    (tmp_path / "moved.json").write_text(json.dumps(doc))
    for name, shown in (("copy", True), ("moved", False)):
        p = build_protocol("scene-specific", rule=f"frames:{tmp_path / name}.json#200")
        rows = compare(_results([_job("cdn_medal", p.key, "CDnet2014/baseline/highway", 0.5)], [p]), "scene-specific")["rows"]
        assert bool(rows) == shown, name
    # classical numbers are CDnet's full protocol: not beside a scene-specific run
    gmm = _results([_job("gmm_sg", half.key, "CDnet2014/baseline/highway", 0.5, config="default")], [half])
    assert compare(gmm, "scene-specific")["rows"] == []
    full = build_protocol("full")
    gmm = _results([_job("gmm_sg", "full", "CDnet2014/baseline/highway", 0.5, config="default")], [full])
    assert compare(gmm, "full")["rows"][0][2] == pytest.approx(0.8245)


def test_wallflower_pairings_match_per_video_and_the_leaderboard_shows_them():
    from bgbench.method import method_class

    cls = method_class("cdn_medal")
    pairs = [build_protocol(p, **o) for p, o in cls.paper_protocols]
    boot = next(p for p in pairs if p.target == ("Wallflower/-/Bootstrap",))
    jobs = [_job("cdn_medal", boot.key, "Wallflower/-/Bootstrap", 0.6),
            _job("cdn_medal", boot.key, "Wallflower/-/Camouflage", 0.9)]  # not Camouflage's pairing
    res = _results(jobs, pairs)
    c = compare(res, "transfer", "Wallflower")
    h = c["header"]
    (row,) = c["rows"]
    assert h[1:4] == ["Bootstrap ours", "Bootstrap published", "Bootstrap gap"] and len(h) == 4 + 8
    assert row[1:3] == [0.6, 0.7680] and row[h.index("published in")] == "papers/002 Table V"
    board = leaderboard.leaderboard(res, "transfer", "Wallflower")
    (lb,) = board["rows"]
    assert lb["published_f"] == 0.7680 and lb["published_source"] == "papers/002 Table V"


@pytest.mark.slow
@needs_data
def test_paper_suite_smoke_on_the_real_data(tmp_path):
    """`bgbench run --suite paper --config smoke` on ../shared/data: no failed job, every deep
    method under each of its paper's protocols that the data allows, the rest skipped with
    reasons. ``--roi-policy from-groundtruth`` admits CDnet2014 cameraJitter/traffic (its
    ROI.bmp does not match its frames), so BMN-BSN's CDnet-only cross-scene protocol has all
    six CDnet2014 videos (highway, traffic and the four 51-frame clips) and fills its 3 folds.
    The data: 6 CDnet2014 + 6 SBI2015 + 18 UCSD = 30 videos (Wallflower is not quick data)."""
    out = tmp_path / "paper"
    code = main(["run", "--suite", "paper", "--config", "smoke", "--roi-policy", "from-groundtruth", "--out", str(out),
                 "--no-tracking"])
    check_paper_run(out, code)


def check_paper_run(out, code: int = 0) -> None:
    """The assertions on a paper-suite run folder (also usable on a run made by hand)."""
    from bgbench.method import method_class

    res = json.loads((out / "results.json").read_text())
    failed = [(j["method"], j["protocol_key"], j["video"], j["error"]) for j in res["jobs"] if j["status"] != "ok"]
    assert code == 0 and not failed, failed

    expected = set()
    for m in DEEP:
        cls = method_class(m)
        expected.add((m, build_protocol(cls.default_protocol, **cls.protocol_options).key))
        expected |= {(m, build_protocol(p, **o).key) for p, o in cls.paper_protocols
                     if not any(t.startswith("Wallflower") for t in o.get("target", ()))}
    ran = {(j["method"], j["protocol_key"]) for j in res["jobs"]}
    assert ran == expected
    assert ("bmn_bsn", "cross-scene[seed=0,formats=cdnet2014+cdnet2012,folds=3,exclude=PTZ]") in ran
    assert ("siamese_fcn", "transfer[seed=0,source=CDnet2014/baseline,target=SBI2015/-/HighwayI]") in ran

    def videos(m, proto):
        return sorted(j["video"] for j in res["jobs"] if j["method"] == m and j["protocol"] == proto)  # by name

    # CDnet2014: highway, traffic and the four 51-frame clips (none is PTZ), 6 videos in 3 folds
    cdnet = sorted(v for v in res["meta"]["videos"] if v.startswith("CDnet2014/"))
    assert len(cdnet) == 6 and videos("bmn_bsn", "cross-scene") == cdnet
    assert videos("siamese_fcn", "transfer") == ["SBI2015/-/HighwayI"]
    assert len(videos("two_stage_cnn", "scene-specific")) == len(res["meta"]["videos"]) == 30
    assert len(videos("crossnet", "sampled")) == 30 and len(videos("crossnet", "transfer")) == 24
    assert videos("cdn_medal", "transfer") == []

    skips = res["meta"]["skipped"]
    assert all(s.get("protocol") for s in skips)  # no video failed validation here
    by = {(tuple(s["methods"]), s["protocol"].split("[")[0], s["where"]): s["reason"] for s in skips}
    # cdn_medal trains on FgSegNet's published CDnet2014 frames: other datasets have no list, and the
    # 51-frame CDnet2014 clips lack the listed frames (bad data, skipped as the quick data skips)
    short = {w for (m, p, w), why in by.items() if m == ("cdn_medal",) and p == "scene-specific"}
    clips = {f"CDnet2014/baseline/{s}" for s in ("PETS2006", "office", "pedestrians")}
    clips.add("CDnet2014/intermittentObjectMotion/abandonedBox")
    assert short == {v for v in res["meta"]["videos"] if not v.startswith("CDnet2014/")} | clips
    assert all("has no entry in the frame list of --rule fgsegnet:200" in by[("cdn_medal",), "scene-specific", w]
               for w in short - clips)
    assert all("frames that --rule fgsegnet:200 lists" in by[("cdn_medal",), "scene-specific", w] for w in clips)
    assert videos("cdn_medal", "scene-specific") == ["CDnet2014/baseline/highway", "CDnet2014/cameraJitter/traffic"]
    wall = {w: why for (m, p, w), why in by.items() if m == ("cdn_medal",) and p == "transfer"}
    assert set(wall) == {f"Wallflower/-/{s}" for s in ("Bootstrap", "Camouflage", "ForegroundAperture", "LightSwitch",
                                                       "TimeOfDay", "WavingTrees")}
    assert all("is not in the data" in why for why in wall.values())
    assert not [w for (m, p, w) in by if m == ("bmn_bsn",)]  # 6 CDnet2014 videos fill 3 folds
    assert len(skips) == len(short) + len(wall)

    # the published numbers beside ours, with the footnote that ours covers one video
    # one file per protocol variant (rules fgsegnet:200, fraction and first-half are not the same test pixels)
    pubs = {p.name: p.read_text() for p in (out / "report").glob("published_scene-specific_*_CDnet2014.md")}
    by_rule = {rule: next(t for n, t in pubs.items() if f"rule-{rule}" in n)
               for rule in ("fgsegnet-200", "fraction-0.3-val-0.1", "first-half")}
    assert "papers/002 Table III" in by_rule["fgsegnet-200"] and "baseline 1 of 4" in by_rule["fgsegnet-200"]
    assert "papers/003 Tables 1-2" in by_rule["fraction-0.3-val-0.1"]
    assert "two_stage_cnn[smoke]: no published number" in by_rule["first-half"]
    assert "papers/004 Table II" in (out / "report" / "published_sampled_CDnet2014.md").read_text()
    (fg,) = (out / "report").glob("leaderboard_scene-specific_rule-fgsegnet-200*_CDnet2014.md")
    assert "Skipped by the protocol" in fg.read_text() and "lacks 198 of the 200 frames" in fg.read_text()
