"""Recovery methods beyond works 1 and 2, as plug-ins of :func:`xbar.mapping.recovery.compare.compare`.

Works 1 and 2's methods (one-shot, bias-only, KD, RSA, OSA, R-V-W) are written out in
:mod:`xbar.mapping.recovery.compare`. Every later work's method is a :class:`Method`: a name, the
work it comes from, one line saying what it does, and a function that takes a
:class:`MethodContext` (one chip instance: the teacher, the data, the device, the hardware,
the seed, a way to program a fresh chip) and returns a :class:`MethodOutcome` (the programmed,
recovered chip to evaluate, and what recovering it cost on the chip and off it).

A module that adds methods calls :func:`register` at import time and is named in
:data:`PLUGIN_MODULES`, so ``compare``, ``xbar compare --methods`` and ``xbar sweep`` see them
all; :func:`method_names` imports those modules on first use.

Method-specific settings travel in :attr:`CompareSettings.options
<xbar.mapping.recovery.compare.CompareSettings.options>` under the method's name (each plug-in
checks the type it expects and says what is allowed); a method given no options runs with its
documented defaults.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field, fields, is_dataclass
from typing import Any, Callable

from xbar.errors import ConfigError

__all__ = ["Method", "MethodContext", "MethodOutcome", "PLUGIN_MODULES", "method",
           "method_names", "options_json", "register"]

PLUGIN_MODULES: tuple[str, ...] = ("xbar.mapping.recovery.itt_rna",
                                  "xbar.mapping.recovery.correctnet",
                                  "xbar.mapping.recovery.lv2024")
"""Modules whose import registers methods (works 3, 4 and 5)."""

_REGISTRY: dict[str, "Method"] = {}
_loaded = False


@dataclass
class MethodContext:
    """What a method may use on one chip instance.

    Attributes:
        teacher: The trained FP32 network (never modified: copy it before training).
        student: The KD student (:func:`xbar.mapping.recovery.techniques.kd.distill`) when one was
            distilled for this comparison, else None.
        dataset: The data set (training split for anything trained, test split only for the
            final evaluation, which :func:`compare` does).
        device: The RRAM cell (:class:`xbar.devices.Device`).
        xbar: The crossbar configuration (:class:`xbar.config.XbarConfig`).
        hardware: The full hardware configuration (timing, programming, adaptation, energy,
            area), :class:`xbar.config.HardwareConfig`.
        specs: The network's layer shapes (:func:`xbar.mapping.geometry.layer_specs`).
        shape: One input's shape.
        seed: This chip's seed (the chip's randomness and the method's).
        settings: The :class:`~xbar.mapping.recovery.compare.CompareSettings`.
        options: This method's entry of ``settings.options`` (None: the defaults).
        program: ``program(model)``: ``model`` programmed one-shot onto a chip with this seed
            and calibrated (the same cells and calibration every method of this chip gets).
        one_shot_s, one_shot_pj: Time and energy of one one-shot programming of the network.
    """

    teacher: Any
    student: Any
    dataset: Any
    device: Any
    xbar: Any
    hardware: Any
    specs: list[Any]
    shape: tuple[int, ...]
    seed: int
    settings: Any
    options: Any
    program: Callable[[Any], Any]
    one_shot_s: float
    one_shot_pj: float


def options_of(ctx: MethodContext, klass: type, name: str = "") -> Any:
    """The method's options: ``ctx.options``, or ``klass()`` (the defaults) when None;
    anything else is refused naming ``klass`` (and the method ``name`` when given)."""
    if ctx.options is None:
        return klass()
    if not isinstance(ctx.options, klass):
        where = f"CompareSettings.options[{name!r}]" if name else "CompareSettings.options"
        raise ConfigError(f"{where} = {ctx.options!r} is invalid; allowed: a "
                          f"{klass.__name__} or None for its defaults")
    return ctx.options


@dataclass
class MethodOutcome:
    """A recovered chip and what recovering it cost.

    Attributes:
        chip: The chip to evaluate on the test set.
        program_s, program_pj, pulses: Programming time (s), energy (pJ) and write pulses;
            None: one one-shot programming (the context's ``one_shot_s``/``one_shot_pj``, one
            pulse per cell).
        adapt_s, adapt_pj: On-chip time (s) and energy (pJ) spent after programming (tests,
            rewrites, training passes), from the timing engine and the energy model.
        sram_words: SRAM words the method keeps (0: none).
        words_per_layer: SRAM words per layer (for inference energy), None: none.
        sram_area_fraction: The SRAM's area over the chip's when the method computes it
            itself (digital layers that are not per-layer weight words); None: from
            ``words_per_layer`` (:func:`xbar.timing.area.sram_area_fraction`).
        costs: Further named costs (means over chips are reported), e.g. ``"test_s"``,
            ``"offline_train_s"``, ``"rewrites"``; units in the name.
    """

    chip: Any
    program_s: float | None = None
    program_pj: float | None = None
    pulses: int | None = None
    adapt_s: float = 0.0
    adapt_pj: float = 0.0
    sram_words: int = 0
    words_per_layer: list[int] | None = None
    sram_area_fraction: float | None = None
    costs: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Method:
    """One registered recovery method.

    Attributes:
        name: The name users type (``--methods``), unique.
        work: The work it reproduces (``"work3"`` ...).
        summary: One line: what it does.
        run: The method on one chip instance.
        needs_student: True if it starts from the KD student (``compare`` then distils one).
        options_type: The dataclass of its ``CompareSettings.options`` entry, built with
            no arguments for the defaults (``xbar compare --option NAME.FIELD=VALUE`` starts
            from those), or None if the method takes no options.
    """

    name: str
    work: str
    summary: str
    run: Callable[[MethodContext], MethodOutcome]
    needs_student: bool = False
    options_type: type | None = None


def options_json(options: dict[str, Any]) -> dict[str, Any]:
    """``CompareSettings.options`` as plain JSON values (dataclasses as dicts of their
    fields, tuples as lists, anything else, e.g. a network, as its type's name), for results
    files and configuration hashes."""
    return {name: _plain(value) for name, value in sorted(options.items())}


def _plain(value: Any) -> Any:
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in fields(value) if f.init}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return f"<{type(value).__name__}>"


def register(m: Method) -> Method:
    """Add ``m`` to the registry; a second method of the same name is a programming error."""
    if m.name in _REGISTRY and _REGISTRY[m.name] is not m:
        raise ConfigError(f"recovery method {m.name!r} is registered twice "
                          f"({_REGISTRY[m.name].work} and {m.work})")
    _REGISTRY[m.name] = m
    return m


def _load() -> None:
    global _loaded
    if not _loaded:
        for name in PLUGIN_MODULES:
            importlib.import_module(name)
        _loaded = True


def method_names(work: str | None = None) -> tuple[str, ...]:
    """The registered methods' names (only ``work``'s when given), by work and, within a
    work, in registration order (so the order does not depend on which module happened to be
    imported first)."""
    _load()
    return tuple(name for name in sorted(_REGISTRY, key=lambda name: _REGISTRY[name].work)
                 if work is None or _REGISTRY[name].work == work)


def method(name: str) -> Method:
    """The registered method ``name``, or a clear error listing the registered ones."""
    _load()
    if name not in _REGISTRY:
        raise ConfigError(f"unknown recovery method {name!r}; registered plug-ins: "
                          f"{', '.join(_REGISTRY) or 'none'}")
    return _REGISTRY[name]
