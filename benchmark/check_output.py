"""``bgbench check --json FILE`` and ``--junit FILE``: the gate's verdict for machines.

Both hold every checked item once: each F-measure compared (``check.compare_accuracy``: per
method label, protocol key, dataset and category, a one-category dataset by its overall
only) and each method's speed (``check.compare_speed``, in ``check.SPEED_UNIT``).

JSON (``schema`` "bgbench-check/1"): the run, the reference, the tolerances, ``accuracy``
and ``speed`` (the rows, every field), ``regressions`` (their count) and ``passed``.

JUnit XML: ``<testsuites>`` holding the suites ``accuracy`` and ``speed``, one
``<testcase>`` per checked item (``classname`` "accuracy.METHOD.PROTOCOL.DATASET" or
"speed", ``name`` the metric or the method), with a ``<failure>`` where the item is a
regression (its message: reference, current, delta and the changed parameters). An
improvement ("better", "faster") passes; its status is in ``<system-out>``.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from bgbench.records.results import clean

SCHEMA = "bgbench-check/1"


def regression(row: dict) -> bool:
    return str(row.get("status", "")).startswith(("REGRESSION", "NOT COMPARABLE"))


def _num(v: Any, spec: str = ".4f") -> str:
    return "-" if v is None else format(v, spec)


def document(run: Path | str, reference: Path | str, f_tol: float, speed_tol: float, acc: list[dict],
             spd: list[dict]) -> dict[str, Any]:
    from bgbench.check import SPEED_UNIT

    bad = sum(regression(r) for r in acc + spd)
    return {"schema": SCHEMA, "run": str(run), "reference": str(reference), "f_tol": f_tol, "speed_tol": speed_tol,
            "speed_unit": SPEED_UNIT, "accuracy": acc, "speed": spd, "checked": len(acc) + len(spd),
            "regressions": bad, "passed": bad == 0}


def write_json(doc: dict, path: Path) -> None:
    Path(path).write_text(json.dumps(clean(doc), indent=1, allow_nan=False) + "\n")


def _accuracy_case(r: dict) -> tuple[str, str, str]:
    cls = ".".join(["accuracy", *(str(r.get(k) or "-") for k in ("method", "protocol", "dataset"))])
    text = (f"{r['what']} {r['metric']}: reference {_num(r['reference'])}, current {_num(r['current'])}, "
            f"delta {_num(r['delta'], '+.4f')}: {r['status']}" + (f"; changed: {r['changed']}" if r["changed"] else ""))
    return cls, r["metric"], text


def _speed_case(r: dict) -> tuple[str, str, str]:
    rel = "-" if r["relative"] is None else f"{100 * r['relative']:+.1f}%"
    text = (f"{r['what']}: reference {_num(r['reference'], '.4g')} {r['unit']}, current "
            f"{_num(r['current'], '.4g')} {r['unit']}, change {rel}: {r['status']}"
            + (f"; changed: {r['changed']}" if r["changed"] else ""))
    return "speed", r["what"], text


def junit(doc: dict) -> ET.ElementTree:
    total = doc["checked"]
    root = ET.Element("testsuites", name="bgbench check", tests=str(total), failures=str(doc["regressions"]),
                      errors="0")
    for suite_name, rows, case in (("accuracy", doc["accuracy"], _accuracy_case), ("speed", doc["speed"], _speed_case)):
        suite = ET.SubElement(root, "testsuite", name=suite_name, tests=str(len(rows)),
                              failures=str(sum(regression(r) for r in rows)), errors="0", skipped="0")
        for r in rows:
            cls, name, text = case(r)
            tc = ET.SubElement(suite, "testcase", classname=cls, name=name)
            if regression(r):
                ET.SubElement(tc, "failure", message=text, type=str(r["status"])).text = text
            else:
                ET.SubElement(tc, "system-out").text = text
    ET.indent(root)
    return ET.ElementTree(root)


def write_junit(doc: dict, path: Path) -> None:
    junit(doc).write(path, encoding="utf-8", xml_declaration=True)
