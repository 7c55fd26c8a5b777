"""The plug-in registry of recovery methods (works 3-5): names, errors, options."""

from __future__ import annotations

import pytest

from xbar.errors import ConfigError
from xbar.mapping.recovery.compare import BUILTIN_METHODS, METHODS, CompareSettings
from xbar.mapping.recovery.registry import Method, MethodOutcome, method, method_names, register


def test_every_registered_method_is_a_compare_method() -> None:
    assert METHODS[:len(BUILTIN_METHODS)] == BUILTIN_METHODS
    assert METHODS[len(BUILTIN_METHODS):] == method_names()
    for name in method_names():
        m = method(name)
        assert m.name == name and m.work in {"work3", "work4", "work5"} and m.summary


def test_unknown_and_duplicate_methods_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    from xbar.mapping.recovery import registry
    # register into a copy, so the test method does not outlive this test
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    with pytest.raises(ConfigError, match="unknown recovery method 'nope'"):
        method("nope")
    with pytest.raises(ConfigError, match="unknown method"):
        CompareSettings(methods=("one-shot", "nope"))
    first = Method("registry-test", "work9", "test", lambda ctx: MethodOutcome(None))
    register(first)
    register(first)  # the same object again is harmless
    with pytest.raises(ConfigError, match="registered twice"):
        register(Method("registry-test", "work8", "other", lambda ctx: MethodOutcome(None)))


def test_options_only_for_methods_being_run() -> None:
    with pytest.raises(ConfigError, match="options"):
        CompareSettings(methods=("one-shot",), options={"kd": 1})
