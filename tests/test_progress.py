"""A CI log (stderr not a terminal) gets a progress line at least every 30 s, driven here by a
fake clock; a run without real data says in one line that it fell back to the synthetic scenes
and where it looked; the package's licence is an SPDX string."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from bgbench.execution import progress
from bgbench.execution.progress import LogProgress


class Clock:
    def __init__(self):
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def test_a_log_gets_a_line_at_least_every_30_seconds_with_a_fake_clock():
    clock, lines = Clock(), []
    p = LogProgress(total=4, unit="job", desc="bgbench", clock=clock, write=lines.append, thread=False)
    assert p.tick() is False and lines == []  # nothing before anything happened or 30 s passed
    p.update(1)
    p.set_postfix_str("knn a ok")  # the first job done: one line at once
    assert lines == ["bgbench: 1/4 jobs (25%), 0 s; last: knn a ok"]
    clock.t += 10
    p.update(1)
    p.set_postfix_str("knn b ok")  # 10 s later: no line (at most one per 30 s from jobs)
    assert len(lines) == 1
    clock.t += 19.9
    assert p.tick() is False  # 29.9 s since the last line
    clock.t += 0.1
    assert p.tick() is True and lines[-1] == "bgbench: 2/4 jobs (50%), 30 s; last: knn b ok"
    for _ in range(3):  # a long job: nothing finishes, the heartbeat still prints every 30 s
        clock.t += 30
        assert p.tick() is True
    assert len(lines) == 5 and lines[-1].startswith("bgbench: 2/4 jobs (50%), 120 s")
    p.close()
    clock.t += 60
    assert p.tick() is False  # closed: silent


def test_the_heartbeat_thread_prints_without_any_job_finishing():
    import time

    lines = []
    p = LogProgress(total=2, interval=0.05, write=lines.append)
    try:
        deadline = time.monotonic() + 5
        while len(lines) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        p.close()
    assert len(lines) >= 2 and all(s.startswith("bgbench: 0/2 jobs (0%)") for s in lines)


def test_bar_is_a_log_progress_off_a_terminal_and_tqdm_on_one(monkeypatch):
    monkeypatch.setattr("sys.stderr", io.StringIO())  # a CI log: not a terminal
    b = progress.bar(total=3, unit="job", desc="bgbench", disable=None, leave=False)
    assert isinstance(b, LogProgress)
    b.close()

    class Tty(io.StringIO):
        def isatty(self):
            return True

    monkeypatch.setattr("sys.stderr", Tty())
    b = progress.bar(total=3, unit="job", desc="bgbench", disable=None, leave=False)
    assert not isinstance(b, LogProgress)
    b.close()


def test_a_run_without_real_data_says_it_fell_back_to_the_synthetic_scenes(tmp_path, monkeypatch):
    from bgbench import api, suites

    nowhere = [tmp_path / "a" / "data", tmp_path / "b" / "data"]
    monkeypatch.setattr(suites, "data_candidates", lambda: nowhere)
    note = suites.synthetic_fallback_note()
    assert note.count("\n") == 0 and "synthetic scenes" in note
    assert all(str(p) in note for p in nowhere) and "$BGBENCH_DATA" in note
    said: list[str] = []
    ran = []
    # no jobs: the note is said first
    monkeypatch.setattr(api, "_run_locked", lambda p, echo, started, exiting=False: ran.append(p.data))
    api.run(api.RunConfig.of(["frame_difference"], out=tmp_path / "run", tracking=False, report=False, jobs=1),
            echo=said.append)
    assert ran == [("synthetic",)]
    assert [s for s in said if "synthetic scenes" in s] == [note]
    # a data folder that holds none of the quick datasets is named as such
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setattr(suites, "data_candidates", lambda: [empty])
    assert f"{empty} holds none of CDnet2014, SBI2015, UCSD" in suites.synthetic_fallback_note()
    # with real data there is nothing to say
    monkeypatch.setattr(suites, "data_candidates", lambda: [Path(__file__).resolve().parents[1].parent / "shared" / "data"])
    if (suites.shared_data() or Path("/nonexistent")).joinpath("CDnet2014").is_dir():
        assert suites.synthetic_fallback_note() is None


def test_the_licence_is_an_spdx_string():
    tomllib = pytest.importorskip("tomllib")
    py = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())
    assert py["project"]["license"] == "MIT"
    req = py["build-system"]["requires"][0]
    assert req.startswith("setuptools>=") and int(req.split(">=")[1]) >= 77  # PEP 639 license expressions


@pytest.mark.parametrize("arg, code", [("--minimal", 0), ("", 0), ("--bogus", 2)])
def test_ci_setup_reads_its_arguments(arg, code, tmp_path):
    """.ci/setup's argument loop alone (the install itself is not run here)."""
    import subprocess

    text = (Path(__file__).resolve().parents[1] / ".ci" / "setup").read_text()
    assert subprocess.run(["bash", "-n", "-c", text]).returncode == 0
    loop = text[text.index("MINIMAL=0"):text.index("done\n") + 5]
    r = subprocess.run(["bash", "-c", f"set -- {arg}\n{loop}\necho MINIMAL=$MINIMAL"], capture_output=True, text=True)
    assert r.returncode == code, r.stderr
    if code == 0:
        assert r.stdout.strip() == f"MINIMAL={1 if arg == '--minimal' else 0}"
    else:
        assert "unknown argument '--bogus'" in r.stderr
    # --minimal skips the test-only extras: pytest, chromium and LaTeX are each behind MINIMAL
    assert text.count('if [ "$MINIMAL" != 1 ] &&') == 2 and "install -q -e .\n" in text
