"""Experiment files (issue 25, item 4): ``bgbench run --experiment FILE`` (TOML, the standard
library's tomllib): methods with configs and overrides, protocols with options, data, seed,
threshold, out; explicit command-line options win over the file, defaults do not; unknown keys
are refused naming the key and the file; the file's text is in meta and the MLflow parent; the
example in docs/experiments/ runs on real data."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("tomllib")  # Python >= 3.11
from conftest import CDNET, DATA, cli_error
from bgbench import experiment
from bgbench.cli import main
from bgbench.errors import BadInput

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "docs" / "experiments" / "classical_table.toml"
OFFICE = CDNET / "baseline" / "office"

FILE = """
seed = 3
threshold = 0.4
data = ["{data}"]
out = "{out}"
tracking = false
report = false

[methods.gmm_zivkovic]
set = {{ history = 20, var_threshold = 25.0 }}

[methods.frame_difference]
set = {{ threshold = 10 }}

[[protocols]]
name = "full"

[[protocols]]
name = "scene-specific"
rule = "n:20"
"""


def _write(tmp_path, text: str, name: str = "exp.toml") -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


def test_a_file_gives_methods_protocols_and_options_and_the_command_line_wins(tmp_path):
    path = _write(tmp_path, FILE.format(data="synthetic", out=tmp_path / "run"))
    exp = experiment.load(path)
    cfg = experiment.run_config(exp)
    assert [(s.name, dict(s.overrides)) for s in cfg.methods] == [
        ("gmm_zivkovic", {"history": 20, "var_threshold": 25.0}), ("frame_difference", {"threshold": 10})]
    assert cfg.protocols == (("full", {}), ("scene-specific", {"rule": "n:20"}))
    assert (cfg.seed, cfg.threshold, cfg.data, cfg.out, cfg.tracking) == (3, 0.4, ("synthetic",), tmp_path / "run", False)
    assert cfg.experiment["file"] == "exp.toml" and cfg.experiment["text"] == path.read_text()
    from bgbench import api

    p = api.prepare(cfg)
    assert [q.key for q in p.protocols["gmm_zivkovic"]] == ["full", "scene-specific[seed=3,rule=n:20]"]
    assert p.specs[0].resolved_params()["history"] == 20
    # explicit command-line values win; --methods replaces the list and keeps the file's set for a method in both
    cfg = experiment.run_config(exp, {"seed": 5, "methods": ["frame_difference"], "protocol_options": {"rule": "n:10"},
                                      "overrides": {"frame_difference": {"gap": "2"}}})
    assert cfg.seed == 5 and cfg.threshold == 0.4
    assert [(s.name, dict(s.overrides)) for s in cfg.methods] == [("frame_difference", {"threshold": 10, "gap": "2"})]
    p = api.prepare(cfg)
    assert [q.key for q in p.protocols["frame_difference"]] == ["full", "scene-specific[seed=5,rule=n:10]"]


def test_cli_options_left_at_their_defaults_do_not_override_the_file(tmp_path, monkeypatch):
    from bgbench import api, cli

    path = _write(tmp_path, FILE.format(data="synthetic", out=tmp_path / "run"))
    seen = []
    monkeypatch.setattr(api, "run", lambda cfg, echo=None, started=None, exiting=False: seen.append(cfg) or (
        _ for _ in ()).throw(KeyboardInterrupt()))
    assert main(["run", "--experiment", str(path)]) == 130
    assert main(["run", "--experiment", str(path), "--seed", "0", "--threshold", "0.5", "--set",
                 "gmm_zivkovic.history=7", "--protocol", "full", "--no-report", "--out", str(tmp_path / "o")]) == 130
    first, second = seen
    assert (first.seed, first.threshold, first.out) == (3, 0.4, tmp_path / "run")  # --seed 0 etc. not given
    assert (second.seed, second.threshold, second.out) == (0, 0.5, tmp_path / "o")  # given: even at the defaults
    assert dict(second.methods[0].overrides) == {"history": "7", "var_threshold": 25.0}
    assert second.protocols == ("full",) and second.report is False
    assert cli._explicit  # the helper the command uses


@pytest.mark.parametrize("text, words", [
    ("sed = 1\n", ["unknown key 'sed'", "seed"]),
    ("seed = 'one'\n", ["seed = 'one' is a str", "an integer"]),
    ("threshold = 2\n", ["threshold = 2.0 is not a number in [0, 1]"]),
    ("roi_policy = 'skip'\n", ["roi_policy = 'skip'", "from-groundtruth"]),
    ("[methods.knn]\nhistory = 3\n", ["unknown key 'history' in [methods.knn]", "set = {"]),
    ("[methods.knnn]\n", ["knnn", "knn"]),
    ("[[protocols]]\nname = 'full'\nrule = 'n:3'\n", ["unknown key 'rule' in protocol full"]),
    ("[[protocols]]\nname = 'cross-scene'\nfolds = 2\nseed = 4\n", ["unknown key 'seed'", "at the top"]),
    ("[[protocols]]\nrule = 'n:3'\n", ["protocols[0] has no name"]),
    ("[protocols]\nname = 'full'\n", ["array of tables", "[[protocols]]"]),
    ("data = [1]\n", ["data = [1] must name folders"]),
    ("seed = 1\nseed = 2\n", ["not valid TOML"]),
])
def test_bad_files_are_refused_naming_the_key_and_the_file(tmp_path, capsys, text, words):
    path = _write(tmp_path, text)
    with pytest.raises(BadInput) as e:
        experiment.load(path)
    msg = str(e.value)
    assert str(path) in msg and "fix:" in msg, msg
    for w in words:
        assert w in msg, msg
    line = cli_error(capsys, "run", "--experiment", str(path))  # the command: exit 2, one line
    assert str(path) in line
    assert "is not a file" in cli_error(capsys, "run", "--experiment", str(tmp_path / "none.toml"))


def test_the_example_file_parses_and_names_real_data():
    exp = experiment.load(EXAMPLE)
    assert [m for m, _, _ in exp.methods] == ["gmm_zivkovic", "knn", "frame_difference", "temporal_median"]
    assert exp.protocols == (("full", {}),) and exp.fields["data"] == ("../shared/data/CDnet2014",
                                                                      "../shared/data/SBI2015")
    from bgbench import api

    api.prepare(experiment.run_config(exp, {"out": Path("/tmp/unused-bgbench-out")}))  # every method and value checks


@pytest.fixture(scope="module")
def example_run(tmp_path_factory):
    """The example with --data narrowed to a 51-frame clip (run from the project root, which
    its data paths are relative to): (run folder, stdout)."""
    import os
    import subprocess
    import sys

    if not DATA.is_dir():
        pytest.skip("../shared/data is not present")
    out = tmp_path_factory.mktemp("example") / "run"
    r = subprocess.run([sys.executable, "-m", "bgbench.cli", "run", "--experiment", str(EXAMPLE), "--data", str(OFFICE),
                        "--out", str(out), "--no-report"], cwd=ROOT, capture_output=True, text=True,
                       env={**os.environ, "BGBENCH_TRACKING": "0"})
    assert r.returncode == 0, r.stderr
    return out, r.stdout


def test_the_example_runs_on_a_real_clip_with_the_files_parameters_and_text_in_meta(example_run):
    import hashlib

    out, table = example_run
    doc = json.loads((out / "results.json").read_text())
    meta = doc["meta"]
    text = EXAMPLE.read_text()
    assert meta["experiment"] == {"file": "classical_table.toml", "sha1": hashlib.sha1(text.encode()).hexdigest(),
                                  "text": text}
    assert meta["methods"]["gmm_zivkovic"]["history"] == 500 and meta["methods"]["knn"]["dist2_threshold"] == 400.0
    assert meta["data"] == [str(OFFICE)] and meta["seed"] == 0 and meta["threshold"] == 0.5
    assert sorted({j["method"] for j in doc["jobs"]}) == ["frame_difference", "gmm_zivkovic", "knn", "temporal_median"]
    assert all(j["status"] == "ok" and j["frames"] == 51 for j in doc["jobs"])
    assert "baseline" in table and "gmm_zivkovic" in table


@pytest.mark.slow
def test_the_experiment_reaches_the_mlflow_parent(example_run, tmp_path, monkeypatch):
    """The MLflow parent holds the file as experiment.toml, its name and SHA-1 as parameters,
    and is named by the run folder and what ran (a new SQLite store: ~15 s)."""
    from mlflow.tracking import MlflowClient

    from bgbench import tracking
    from bgbench.records.results import load_results

    out, _ = example_run
    text = EXAMPLE.read_text()
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    uri = f"sqlite:///{tmp_path / 'store.db'}"
    res = load_results(out)
    pid = tracking.log_run(res, out, uri)
    c = MlflowClient(tracking_uri=uri)
    run = c.get_run(pid)
    assert run.data.params["experiment.file"] == "classical_table.toml"
    assert run.data.params["experiment.sha1"] == res.meta.experiment["sha1"]
    assert "experiment.toml" in {a.path for a in c.list_artifacts(pid)}
    local = c.download_artifacts(pid, "experiment.toml", str(tmp_path))
    assert Path(local).read_text() == text
    assert run.info.run_name == "run · frame_difference, gmm_zivkovic, knn +1 more · full"
