"""Published training-frame lists (--rule fgsegnet:N, frames:FILE[#LIST]) and protocol options
derived from the protocols' own fields (an option no requested protocol takes is refused)."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from dataclasses import dataclass

import pytest

from bgbench.cli import main
from bgbench.errors import BadInput
from bgbench.framelists import load, packaged_path
from bgbench.protocols import PROTOCOLS, Protocol, build_protocol, option, option_specs
from conftest import CDNET, DATA, HIGHWAY, ROOT, needs_data

SHARED_LISTS = DATA / "splits" / "fgsegnet_cdnet2014_train_frames.json"  # the reference, outside the package


def _published(video: str, n: str) -> list[int]:
    return sorted(json.loads(SHARED_LISTS.read_text())["frames"][video][n])


def _splits(capsys, *argv: str) -> tuple[int, object, str]:
    code = main(["splits", *argv])
    out, err = capsys.readouterr()
    return code, (json.loads(out) if code == 0 and "--json" in argv else out), err


# --- fgsegnet:N on real data ------------------------------------------------------------------
@needs_data
@pytest.mark.parametrize("n", ["200", "50"])
def test_fgsegnet_lists_exactly_the_published_training_frames(capsys, n):
    code, found, _ = _splits(capsys, "--protocol", "scene-specific", "--rule", f"fgsegnet:{n}", "--data", str(HIGHWAY),
                             "--json")
    assert code == 0
    (s,) = found
    (train,), (test,) = s["train"], s["test"]
    listed = _published("CDnet2014/baseline/highway", n)
    assert train["video"] == "CDnet2014/baseline/highway" and train["frames"] == listed and len(listed) == int(n)
    # the test frames are every other labelled frame: temporalROI 470-1700, all with ground truth
    assert test["frames"] == [f for f in range(470, 1701) if f not in set(listed)]
    assert len(test["frames"]) == 1231 - int(n) and not set(test["frames"]) & set(listed)


@needs_data
def test_packaged_lists_are_the_shared_file_byte_for_byte():
    assert packaged_path("fgsegnet_cdnet2014_train_frames.json").read_bytes() == SHARED_LISTS.read_bytes()
    fl = load("fgsegnet:200")
    assert len(fl.frames) == 53 and all(len(f) == 200 for f in fl.frames.values())


@needs_data
def test_a_clip_that_lacks_listed_frames_is_bad_data(capsys):
    office = CDNET / "baseline" / "office"  # 51 frames, 600-650: 2 of its 200 listed frames are there
    code, _, err = _splits(capsys, "--protocol", "scene-specific", "--rule", "fgsegnet:200", "--data", str(office))
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "CDnet2014/baseline/office: lacks 198 of the 200 frames that --rule fgsegnet:200 lists" in err
    assert "frames 600-650" in err and "--on-bad-data skip" in err
    # skipped, named, under --on-bad-data skip; the complete video beside it is served
    code, found, err = _splits(capsys, "--protocol", "scene-specific", "--rule", "fgsegnet:200", "--data",
                               str(CDNET / "baseline"), "--on-bad-data", "skip", "--json")
    assert code == 0 and [s["name"] for s in found] == ["CDnet2014:baseline:highway"]
    assert sorted(l.split(": ")[2] for l in err.splitlines() if l.startswith("bgbench: skipped: ")) == [
        "CDnet2014/baseline/PETS2006", "CDnet2014/baseline/office", "CDnet2014/baseline/pedestrians"]


@needs_data
def test_a_video_the_list_does_not_name_is_bad_data(capsys):
    code, _, err = _splits(capsys, "--protocol", "scene-specific", "--rule", "fgsegnet:50", "--data",
                           str(DATA / "UCSD" / "birds"))
    assert code == 2 and "UCSD/-/birds: has no entry in the frame list of --rule fgsegnet:50" in err and "fix:" in err


@needs_data
def test_run_refuses_bad_data_before_any_job_and_skips_it_when_asked(tmp_path, capsys):
    base = ["run", "--methods", "cdn_medal", "--config", "smoke", "--device", "cpu", "--no-report", "--no-tracking",
            "--data", str(CDNET / "baseline" / "office"), str(CDNET / "baseline" / "pedestrians")]
    assert main(base + ["--out", str(tmp_path / "a")]) == 2  # cdn_medal's own protocol: fgsegnet:200
    err = capsys.readouterr().err
    assert "lacks" in err and "fgsegnet:200" in err and not list((tmp_path / "a").glob("jobs/*"))
    assert main(base + ["--out", str(tmp_path / "b"), "--on-bad-data", "skip"]) == 2  # nothing left to run
    assert "no job can run" in capsys.readouterr().err


@needs_data
def test_transfer_trains_on_the_listed_frames(highway):
    from bgbench.data.formats import discover

    (birds,) = discover(DATA / "UCSD" / "birds")
    (s,) = build_protocol("transfer", source=("CDnet2014/baseline/highway",), target=("UCSD",),
                          rule="fgsegnet:200").splits([highway, birds])
    assert s.train == (("CDnet2014/baseline/highway", tuple(_published("CDnet2014/baseline/highway", "200"))),)


# --- frames:FILE -------------------------------------------------------------------------------
def _write(path, doc) -> str:
    path.write_text(json.dumps(doc))
    return str(path)


@needs_data
def test_frames_file_picks_its_list(tmp_path, highway):
    hw = "CDnet2014/baseline/highway"
    two = _write(tmp_path / "two.json", {"frames": {hw: {"a": [500, 501, 900], "b": [600]}}})
    (s,) = build_protocol("scene-specific", rule=f"frames:{two}#a").splits([highway])
    assert s.train == ((hw, (500, 501, 900)),) and len(s.test[0][1]) == 1231 - 3
    with pytest.raises(BadInput, match=r"two\.json.*more than one list.*#b"):
        build_protocol("scene-specific", rule=f"frames:{two}")
    with pytest.raises(BadInput, match="has no list 'c'"):
        build_protocol("scene-specific", rule=f"frames:{two}#c")
    # one list per entry (or a plain list): frames:FILE needs no #LIST; the dataset name is case-free
    one = _write(tmp_path / "one.json", {"frames": {"cdnet2014/baseline/highway": [700, 710]}})
    (s,) = build_protocol("scene-specific", rule=f"frames:{one}").splits([highway])
    assert s.train == ((hw, (700, 710)),)
    # a listed frame the video has but does not label (before temporalROI 470) is refused by name
    early = _write(tmp_path / "early.json", {"frames": {hw: [100, 700]}})
    (skip,) = build_protocol("scene-specific", rule=f"frames:{early}").plan([highway]).skipped
    assert skip.bad_data and skip.where == hw and "outside its labelled frames (temporal ROI 470-1700; e.g. 100)" in skip.reason


@pytest.mark.parametrize("doc, match", [
    ("{not json", "cannot be read as JSON"),
    ({"videos": {}}, 'no "frames" object'),
    ({"frames": {"D/c/v": {"200": [1, 1, 2]}}}, "names frame 1 twice"),
    ({"frames": {"D/c/v": {"200": [1, -2]}}}, "integers >= 0"),
    ({"frames": {"D/c/v": {"200": []}}}, "non-empty"),
    ({"frames": {"D/c/v": "1,2"}}, "is not a list"),
    # found by probing: two spellings of one video were picked by file order
    ({"frames": {"cdnet2014/c/v": [500, 501], "CDNET2014/c/v": [900, 901]}}, "names one video twice"),
])
def test_a_malformed_frames_file_is_refused_by_name(tmp_path, doc, match):
    f = tmp_path / "lists.json"
    f.write_text(doc if isinstance(doc, str) else json.dumps(doc))
    code = main(["splits", "--protocol", "scene-specific", "--rule", f"frames:{f}", "--data", str(tmp_path)])
    assert code == 2
    with pytest.raises(BadInput, match=match) as e:
        build_protocol("scene-specific", rule=f"frames:{f}")
    assert "lists.json" in str(e.value)


def test_unknown_lists_and_missing_files_are_refused():
    with pytest.raises(BadInput, match="fgsegnet:50 or fgsegnet:200"):
        build_protocol("scene-specific", rule="fgsegnet:100")
    with pytest.raises(BadInput, match="nope.json: frame-list file not found"):
        build_protocol("transfer", rule="frames:nope.json#200")


def test_the_key_carries_the_lists_content(tmp_path):
    doc = json.loads(packaged_path("fgsegnet_cdnet2014_train_frames.json").read_text())
    a = _write(tmp_path / "a.json", doc)
    b = _write(tmp_path / "b.json", {**doc, "about": "another note, same lists"})
    pa, pb = (build_protocol("scene-specific", rule=f"frames:{x}#200") for x in (a, b))
    fg = build_protocol("scene-specific", rule="fgsegnet:200")
    assert pa.options()["frames"] == pb.options()["frames"] == fg.options()["frames"]  # the selected frames only
    assert fg.key == f"scene-specific[seed=0,rule=fgsegnet:200,frames={fg.options()['frames']}]"
    doc["frames"]["CDnet2014/PTZ/zoomInZoomOut"]["200"][-1] += 1  # one frame of one video moved
    c = build_protocol("scene-specific", rule=f"frames:{_write(tmp_path / 'a.json', doc)}#200")
    assert c.options()["frames"] != pa.options()["frames"] and c.key != pa.key
    assert "frames" not in build_protocol("scene-specific", rule="n:200").options()


def test_cdn_medal_paper_protocol_is_fgsegnet_200():
    from bgbench.method import method_class

    cls = method_class("cdn_medal")
    assert cls.protocol_options["rule"] == "fgsegnet:200"
    assert all(o["rule"] == "fgsegnet:200" for _, o in cls.paper_protocols)


@pytest.mark.slow
def test_an_installed_wheel_ships_the_lists(tmp_path):
    """Built and unpacked outside the checkout, bgbench finds fgsegnet:200 inside itself."""
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", str(ROOT), "-w",
                    str(tmp_path / "w")], check=True, capture_output=True, cwd=tmp_path)
    (whl,) = (tmp_path / "w").glob("bgbench-*.whl")
    with zipfile.ZipFile(whl) as z:
        names = z.namelist()
        z.extractall(tmp_path / "site")
    assert "bgbench/data/splits/fgsegnet_cdnet2014_train_frames.json" in names and "bgbench/data/splits/SOURCE.md" in names
    code = ("import sys; sys.path.insert(0, sys.argv[1]); from bgbench.framelists import load; "
            "l = load('fgsegnet:200'); print(l.source, len(l.frames))")
    out = subprocess.run([sys.executable, "-P", "-c", code, str(tmp_path / "site")], capture_output=True, text=True,
                         cwd=tmp_path, check=True).stdout.split()
    assert out == [str(tmp_path / "site" / "bgbench" / "data" / "splits" / "fgsegnet_cdnet2014_train_frames.json"), "53"]


# --- protocol options from the protocols' fields ------------------------------------------------
def test_options_are_the_protocols_fields():
    from bgbench import api

    specs = option_specs()
    assert set(specs) == {"rule", "folds", "exclude", "fraction", "source", "target"} == set(api.PROTOCOL_OPTIONS)
    assert specs["rule"].protocols == ("scene-specific", "transfer") and specs["folds"].protocols == ("cross-scene",)
    assert dict(specs["folds"].bounds) == {"lo": 2, "hi": 1000} and specs["exclude"].kind == "csv"


def test_a_new_protocol_field_is_an_option_of_the_command(capsys):
    @dataclass
    class Windowed(Protocol):
        name = "test-windowed"
        window: int = option(5, "frames per window (default 5)", "int", eg="--window 5", lo=1)

    PROTOCOLS.register("test-windowed")(Windowed)
    try:
        assert "window" in option_specs()
        assert main(["splits", "-h"]) == 0
        assert "--window" in capsys.readouterr().out
        assert main(["splits", "--protocol", "test-windowed", "--window", "0"]) == 2
        assert "--window" in capsys.readouterr().err  # its bounds come from the field
    finally:
        del PROTOCOLS._entries["test-windowed"]


@pytest.mark.parametrize("argv, named", [
    (["splits", "--protocol", "sampled", "--folds", "5", "--rule", "n:3"], "--folds, --rule"),
    (["splits", "--protocol", "full", "--fraction", "0.1"], "--fraction"),
    (["run", "--methods", "temporal_median", "--rule", "n:3"], "--rule"),  # its own protocol is full
    (["run", "--methods", "temporal_median", "--protocol", "full", "--protocol", "sampled", "--folds", "2"], "--folds"),
])
def test_an_option_no_requested_protocol_takes_is_refused(tmp_path, capsys, argv, named):
    code = main(argv + ["--data", "synthetic"] + (["--out", str(tmp_path / "r")] if argv[0] == "run" else []))
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1 and f"error: {named}:" in err and "fix: drop" in err
    assert not (tmp_path / "r").exists()


def test_an_option_one_requested_protocol_takes_is_accepted(capsys):
    assert main(["splits", "--protocol", "sampled", "--fraction", "0.3", "--data", "synthetic"]) == 0
    assert "sampled: train 6 video(s)" in capsys.readouterr().out
