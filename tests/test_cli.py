"""The command line's surface: a bare ``bgbench`` prints its help (it does not start a run),
``--version``, and help text on every option, positional and subcommand."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

from bgbench import __version__
from bgbench.cli import _parser, main


def _bgbench(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "bgbench.cli", *args], capture_output=True, text=True, timeout=60)


def test_bare_bgbench_prints_help_and_exits_0_quickly():
    t = time.perf_counter()
    r = _bgbench()
    took = time.perf_counter() - t
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("usage: bgbench") and "bgbench run" in r.stdout
    for cmd in ("run", "score", "report", "check", "list"):
        assert cmd in r.stdout
    assert "jobs ->" not in r.stderr  # nothing ran
    assert took < 20, f"a bare bgbench took {took:.1f} s"  # the quick suite takes minutes


def test_bare_bgbench_in_process(capsys):
    assert main([]) == 0
    assert capsys.readouterr().out.startswith("usage: bgbench")


def test_version():
    r = _bgbench("--version")
    assert r.returncode == 0 and r.stdout.strip() == f"bgbench {__version__}"


def _actions(parser: argparse.ArgumentParser, path: str = "bgbench"):
    for a in parser._actions:
        if isinstance(a, argparse._SubParsersAction):
            helps = {c.dest: c.help for c in a._choices_actions}
            for name, sub in a.choices.items():
                yield f"{path} {name}", helps.get(name)
                yield from _actions(sub, f"{path} {name}")
        else:
            yield f"{path} {'/'.join(a.option_strings) or a.dest}", a.help


def test_every_option_positional_and_command_has_help():
    missing = [where for where, h in _actions(_parser()) if not h or h == argparse.SUPPRESS]
    assert not missing, f"no help text: {missing}"


def test_suite_and_protocol_help_list_them_all():
    from bgbench.protocols import PROTOCOLS
    from bgbench.suites import SUITES

    run = next(a for a in _parser()._actions if isinstance(a, argparse._SubParsersAction)).choices["run"]
    opts = {a.dest: a for a in run._actions}
    assert "paper" in SUITES and all(s in opts["suite"].help for s in SUITES)
    assert all(p in opts["protocol"].help for p in PROTOCOLS.names())


def test_unknown_suite_is_a_usage_error(capsys):
    assert main(["run", "--suite", "nope"]) == 2  # returned, not raised: the same contract as every bad input
    assert "paper" in capsys.readouterr().err


def test_the_command_shortens_openblas_spin_before_numpy_loads():
    """``bgbench.cli`` sets OPENBLAS_THREAD_TIMEOUT (unless the user did) before anything imports
    NumPy, so the run and every process it starts skip OpenBLAS's ~0.1 s CPU spin at start."""
    code = "import os, sys\nimport bgbench.cli\nprint(os.environ.get('OPENBLAS_THREAD_TIMEOUT'), 'numpy' in sys.modules)"
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_THREAD_TIMEOUT"}
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert r.stdout.split() == ["4", "False"], r.stderr[-1000:]
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                       env={**env, "OPENBLAS_THREAD_TIMEOUT": "9"})
    assert r.stdout.split() == ["9", "False"], r.stderr[-1000:]
