"""Typed parameters: every registered method's declarations are well-formed and its configs
valid; bad values are refused in ``resolve`` (before anything is built) naming the parameter."""

from __future__ import annotations

import pytest

from bgbench.errors import BadInput, MethodUnavailable
from bgbench.method import METHODS, method_class
from bgbench.params import Param


def _classes():
    out = []
    for e in METHODS:
        try:
            out.append(method_class(e.name))
        except MethodUnavailable:
            pass
    return out


@pytest.mark.parametrize("cls", _classes(), ids=lambda c: c.name)
def test_every_config_of_every_method_is_valid(cls):
    for config in cls.configs:
        _, values = cls.resolve(config)
        assert set(values) == set(cls.params)
        for k, p in cls.param_specs().items():
            assert p.allowed() and p.help, (cls.name, k)


@pytest.mark.parametrize("name,key,value,says", [
    ("gmm_sg", "rho_rule", "bogus", "not allowed"),
    ("gmm_sg", "backend", "bogus", "not allowed"),
    ("gmm_sg", "alpha", "5", "outside (0, 1]"),
    ("gmm_sg", "alpha", "-0.1", "outside"),
    ("gmm_sg", "alpha", "nan", "not a finite number"),
    ("gmm_sg", "k", "2.5", "cannot read"),
    ("gmm_zivkovic", "detect_shadows", "maybe", "true or false"),
    ("frame_difference", "threshold", "0", "outside"),
    ("cdn_medal", "T", "50", "multiple of 49"),
    ("crossnet", "amp", "fp8", "not allowed"),
    ("crossnet", "channels", "4,0", "outside"),
    ("crossnet", "max_train_seconds", "soon", "cannot read"),
    ("bmn_bsn", "infer_batch", "0", "outside"),
])
def test_bad_values_are_refused_naming_the_parameter(name, key, value, says):
    cls = method_class(name)
    config = "smoke" if "smoke" in cls.configs else "default"
    with pytest.raises(BadInput) as e:
        cls.resolve(config, **{key: value})
    assert says in str(e.value) and f"{name}.{key}" in str(e.value)


def test_values_are_coerced_to_the_declared_type():
    _, v = method_class("gmm_sg").resolve("default", k="4", alpha="0.02", backend="numpy")
    assert v["k"] == 4 and isinstance(v["k"], int) and v["alpha"] == 0.02
    _, v = method_class("crossnet").resolve("smoke", channels="4,8", max_train_seconds="none")
    assert v["channels"] == (4, 8) and v["max_train_seconds"] is None


def test_param_spec_forms(tmp_path):
    assert Param.of((1, "h", "[1, 5]")).interval == "[1, 5]"
    assert Param.of(("a", "h", ("a", "b"))).choices == ("a", "b")
    p = Param(None, "a weights file", kind="file")
    assert p.check("none", "m.weights") is None
    with pytest.raises(BadInput, match="no such file"):
        p.check(str(tmp_path / "missing.pt"), "m.weights")
    f = tmp_path / "w.pt"
    f.write_bytes(b"x")
    assert p.check(str(f), "m.weights") == str(f)
    with pytest.raises(ValueError):
        Param(1, "h", interval="1..5")
