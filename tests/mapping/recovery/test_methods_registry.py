"""The one registry of recovery methods and works: names, order, errors, options."""

from __future__ import annotations

import pytest

from xbar.errors import ConfigError
from xbar.mapping.recovery.compare import DEFAULT_METHODS, CompareSettings
from xbar.mapping.recovery.registry import (WORK_MODULES, Method, MethodOutcome, method,
                                            method_names, register, work)
from xbar.mapping.recovery.reproduce import WORKS

EVERY = ("software", "one-shot", "bias-only", "kd", "rsa", "kd+rsa", "osa", "kd+osa", "rvw",
         "fault-aware-map", "fault-aware-train", "fault-aware+on-chip",
         "lipschitz", "lipschitz+comp", "comp", "vat", "chip-ft", "io-kd")
"""Every method, in the order ``--methods all`` has always run them."""


def test_one_registry_holds_every_method_in_order() -> None:
    assert method_names() == EVERY
    assert method_names()[:len(DEFAULT_METHODS)] == DEFAULT_METHODS
    works = {"work1": ("software", "one-shot", "bias-only", "kd", "rsa", "kd+rsa", "rvw"),
             "work2": ("osa", "kd+osa"),
             "work3": ("fault-aware-map", "fault-aware-train", "fault-aware+on-chip"),
             "work4": ("lipschitz", "lipschitz+comp", "comp"),
             "work5": ("vat", "chip-ft", "io-kd")}
    for w, names in works.items():
        assert method_names(w) == names
        for name in names:
            m = method(name)
            assert m.name == name and m.work == w and m.summary
            # a method that starts from the student needs one distilled
            assert m.start != "student" or m.needs_student
    assert [n for n in EVERY if not method(n).on_chip] == ["software"]


def test_every_work_has_its_module_and_rows() -> None:
    assert WORKS == tuple(WORK_MODULES) == ("work1", "work2", "work3", "work4", "work5")
    for w in WORKS:
        registered = work(w)
        assert registered.name == w and registered.title and callable(registered.rows)
        assert registered.rows.__module__ == WORK_MODULES[w]
    assert work("work1").cifar_rows is work("work2").cifar_rows is not None
    with pytest.raises(ConfigError, match="unknown work 'work9'"):
        work("work9")


def test_method_order_does_not_depend_on_import_order(monkeypatch: pytest.MonkeyPatch) -> None:
    # as if work 5's module had been imported first, then work 3's, then the others
    from xbar.mapping.recovery import registry
    method_names()
    items = list(registry._REGISTRY.items())
    first = [kv for w in ("work5", "work3") for kv in items if kv[1].work == w]
    monkeypatch.setattr(registry, "_REGISTRY", dict(first + [kv for kv in items
                                                             if kv not in first]))
    assert list(registry._REGISTRY)[0] == "vat"
    assert method_names() == EVERY


def test_unknown_and_duplicate_methods_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    from xbar.mapping.recovery import registry
    # register into a copy, so the test method does not outlive this test
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    with pytest.raises(ConfigError, match="unknown recovery method 'nope'"):
        method("nope")
    with pytest.raises(ConfigError, match="unknown method"):
        CompareSettings(methods=("one-shot", "nope"))
    with pytest.raises(ConfigError, match="start = 'chip'"):
        register(Method("registry-test", "work9", "test", lambda ctx: MethodOutcome(None),
                        start="chip"))
    first = Method("registry-test", "work9", "test", lambda ctx: MethodOutcome(None))
    register(first)
    register(first)  # the same object again is harmless
    with pytest.raises(ConfigError, match="registered twice"):
        register(Method("registry-test", "work8", "other", lambda ctx: MethodOutcome(None)))


def test_options_only_for_methods_being_run() -> None:
    with pytest.raises(ConfigError, match="options"):
        CompareSettings(methods=("one-shot",), options={"kd": 1})
