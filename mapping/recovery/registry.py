"""The one registry of recovery methods and of the works they reproduce.

Every method ``xbar compare``, ``xbar sweep`` and ``xbar reproduce`` run is a :class:`Method`:
a name, the work it comes from, one line saying what it does, the dataclass of its options
(None: it takes none of its own) and a function that takes a :class:`MethodContext` (one chip
instance: the teacher, the data, the device, the hardware, the seed, a way to program a fresh
chip) and returns a :class:`MethodOutcome` (the programmed, recovered chip to evaluate, and
what recovering it cost on the chip and off it). Every work of the reference list is a
:class:`Work`: its name and the function that makes its rows of ``xbar reproduce``.

:data:`WORK_MODULES` names, for every work, the module that holds its options, methods and
rows; importing it calls :func:`register` and :func:`register_work`. :func:`method_names`,
:func:`method` and :func:`work` import those modules on first use, so every caller sees every
method:

============  =============================================================================
work1, work2  :mod:`xbar.mapping.recovery.charan2020` (JxCDC 2020 and DAC 2020: software,
              one-shot, bias-only, kd, rsa, kd+rsa, osa, kd+osa, rvw)
work3         :mod:`xbar.mapping.recovery.itt_rna` (ITT-RNA: fault-aware-map, -train, +on-chip)
work4         :mod:`xbar.mapping.recovery.correctnet` (CorrectNet: lipschitz, comp,
              lipschitz+comp)
work5         :mod:`xbar.mapping.recovery.lv2024` (Lv 2024: vat, chip-ft, io-kd)
============  =============================================================================

Method-specific settings travel in :attr:`CompareSettings.options
<xbar.mapping.recovery.compare.CompareSettings.options>` under the method's name, an instance
of the method's ``options_type`` (:func:`options_of` refuses anything else, naming the type);
a method given no options runs with its documented defaults. Works 1 and 2's methods take no
options of their own: they read the comparison's shared settings (``sram_ratio``, ``adapt``,
``kd``).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field, fields, is_dataclass
from typing import TYPE_CHECKING, Any, Callable

from xbar.errors import ConfigError

if TYPE_CHECKING:
    import numpy as np
    from torch import nn

    from xbar.config import HardwareConfig, XbarConfig
    from xbar.devices import Device
    from xbar.devices.write_verify import WriteVerifyParams
    from xbar.mapping.chip import Chip
    from xbar.mapping.data.base import Dataset
    from xbar.mapping.recovery.compare import CompareSettings
    from xbar.timing.network import LayerSpec

__all__ = ["Method", "MethodContext", "MethodOutcome", "WORK_MODULES", "Work", "method",
           "method_names", "options_json", "options_of", "register", "register_work", "work"]

WORK_MODULES: dict[str, str] = {"work1": "xbar.mapping.recovery.charan2020",
                                "work2": "xbar.mapping.recovery.charan2020",
                                "work3": "xbar.mapping.recovery.itt_rna",
                                "work4": "xbar.mapping.recovery.correctnet",
                                "work5": "xbar.mapping.recovery.lv2024"}
"""Every work (the reference list's numbering) and the module that holds its options, methods
and reproduce rows; importing the module registers them."""

_MODULE_ORDER = tuple(dict.fromkeys(WORK_MODULES.values()))
_REGISTRY: dict[str, "Method"] = {}
_WORKS: dict[str, "Work"] = {}
_loaded = False


@dataclass
class MethodContext:
    """What a method may use on one chip instance.

    Attributes:
        teacher: The trained FP32 network (never modified: copy it before training).
        student: The KD student (:func:`xbar.mapping.recovery.techniques.kd.distill`) when one
            was distilled for this comparison, else None.
        dataset: The data set (training split for anything trained, test split only for the
            final evaluation, which :func:`~xbar.mapping.recovery.compare.compare` does).
        device: The RRAM cell.
        hardware: The hardware: arrays and converters (``hardware.xbar``, also
            :attr:`xbar`), timing, programming, adaptation, energy, area.
        specs: The network's layer shapes (:func:`xbar.mapping.geometry.layer_specs`).
        shape: One input's shape.
        seed: This chip's seed (the chip's randomness and the method's).
        settings: The comparison's settings.
        options: This method's entry of ``settings.options``, an instance of its
            ``options_type`` (None: the defaults; :func:`options_of`).
        program: ``program(model)``: ``model`` programmed one-shot onto a chip with this seed
            and calibrated on the CPU backend (the same cells and calibration every method of
            this chip gets).
        one_shot_s, one_shot_pj: Time and energy of one one-shot programming of the network.
        backend: Where the comparison's own chips run (:attr:`base`, :attr:`kd_base`,
            R-V-W's), the resolved ``settings.backend``.
        calibration: This chip's calibration inputs (training images).
        base: The teacher programmed one-shot on this seed and calibrated on ``backend``,
            shared by the methods that start from it (copy it before changing it); None when
            no method run starts from it.
        kd_base: The same for the KD student (None without a student).
        rvw_loop: The write-verify loop R-V-W programs with (None when R-V-W is not run).
    """

    teacher: nn.Module
    student: nn.Module | None
    dataset: Dataset
    device: Device
    hardware: HardwareConfig
    specs: list[LayerSpec]
    shape: tuple[int, ...]
    seed: int
    settings: CompareSettings
    options: object | None
    program: Callable[[nn.Module], Chip]
    one_shot_s: float
    one_shot_pj: float
    backend: str = "cpu"
    calibration: np.ndarray | None = None
    base: Chip | None = None
    kd_base: Chip | None = None
    rvw_loop: WriteVerifyParams | None = None

    @property
    def xbar(self) -> XbarConfig:
        """The arrays and converters (``hardware.xbar``): what programming a chip takes."""
        return self.hardware.xbar


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
        chip: The chip to evaluate on the test set (None for a method that runs no chip,
            :attr:`Method.on_chip` False: then ``model`` is evaluated in software).
        model: The network evaluated in software when ``chip`` is None.
        program_s, program_pj, pulses: Programming time (s), energy (pJ) and write pulses;
            None: one one-shot programming (the context's ``one_shot_s``/``one_shot_pj``, one
            pulse per cell).
        adapt_s, adapt_pj: On-chip time (s) and energy (pJ) spent after programming (tests,
            rewrites, training passes), from the timing engine and the energy model.
        sram_words: SRAM words the method keeps (0: none).
        words_per_layer: SRAM weight words per layer (for inference energy and the SRAM's
            area), None: none.
        sram_area_fraction: The SRAM's area over the chip's when the method computes it
            itself (digital layers that are not per-layer weight words); None: from
            ``words_per_layer`` (:func:`xbar.timing.area.sram_area_fraction`).
        costs: Further named costs (means over chips are reported), e.g. ``"test_s"``,
            ``"offline_train_s"``, ``"rewrites"``; units in the name.
    """

    chip: Chip | None
    program_s: float | None = None
    program_pj: float | None = None
    pulses: int | None = None
    adapt_s: float = 0.0
    adapt_pj: float = 0.0
    sram_words: int = 0
    words_per_layer: list[int] | None = None
    sram_area_fraction: float | None = None
    costs: dict[str, float] = field(default_factory=dict)
    model: nn.Module | None = None


@dataclass(frozen=True)
class Method:
    """One registered recovery method.

    Attributes:
        name: The name users type (``--methods``), unique.
        work: The work it reproduces (a key of :data:`WORK_MODULES`).
        summary: One line: what it does.
        run: The method on one chip instance.
        needs_student: True if it uses the KD student (``compare`` then distils one).
        options_type: The dataclass of its ``CompareSettings.options`` entry, built with
            no arguments for the defaults (``xbar compare --option NAME.FIELD=VALUE`` starts
            from those), or None if the method takes no options of its own.
        start: ``"teacher"`` or ``"student"``: it starts from the shared one-shot chip of that
            network (:attr:`MethodContext.base` / :attr:`MethodContext.kd_base`), which
            ``compare`` then programs once per seed; None: it programs its own chips.
        on_chip: False for a method that runs no chip (the FP32 teacher in software): it runs
            once, not per chip, and costs nothing on chip.
    """

    name: str
    work: str
    summary: str
    run: Callable[[MethodContext], MethodOutcome]
    needs_student: bool = False
    options_type: type | None = None
    start: str | None = None
    on_chip: bool = True


@dataclass(frozen=True)
class Work:
    """One work of the reference list in ``xbar reproduce``.

    Attributes:
        name: ``"work1"`` ... (a key of :data:`WORK_MODULES`).
        title: Its authors, venue and year.
        rows: ``rows(settings, teacher, say, out)``: the work's rows beside the published
            figures (``settings``: :class:`~xbar.mapping.recovery.reproduce.ReproduceSettings`;
            ``teacher``: the reproduce teacher as
            :func:`xbar.mapping.data.workflow.load_teacher` returns it; ``say``: progress;
            ``out``: the result dict, where the work keeps its details under
            ``out["works"][name]``).
        cifar_rows: ``cifar_rows(settings, say, out)``: its CIFAR-10 rows (``xbar reproduce
            --cifar``), after every work's rows; one function shared by several works runs
            once for all of them. None: it has none.
    """

    name: str
    title: str
    rows: Callable[..., list[dict[str, Any]]]
    cifar_rows: Callable[..., list[dict[str, Any]]] | None = None


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
    if m.start not in (None, "teacher", "student"):
        raise ConfigError(f"Method {m.name!r}: start = {m.start!r} is invalid; allowed: "
                          "None, 'teacher' or 'student'")
    _REGISTRY[m.name] = m
    return m


def register_work(w: Work) -> Work:
    """Add ``w`` to the works; a second work of the same name is a programming error."""
    if w.name in _WORKS and _WORKS[w.name] is not w:
        raise ConfigError(f"work {w.name!r} is registered twice")
    _WORKS[w.name] = w
    return w


def _load() -> None:
    global _loaded
    if not _loaded:
        for name in _MODULE_ORDER:
            importlib.import_module(name)
        _loaded = True


def _order(name: str) -> tuple[int, int]:
    """A method's place: its work's module in :data:`WORK_MODULES` order, then registration
    order within the module (whichever module happened to be imported first)."""
    m = _REGISTRY[name]
    module = WORK_MODULES.get(m.work)
    return (_MODULE_ORDER.index(module) if module in _MODULE_ORDER else len(_MODULE_ORDER),
            list(_REGISTRY).index(name))


def method_names(work: str | None = None) -> tuple[str, ...]:
    """Every registered method's name (only ``work``'s when given), works in
    :data:`WORK_MODULES` order, each work's in registration order."""
    _load()
    return tuple(name for name in sorted(_REGISTRY, key=_order)
                 if work is None or _REGISTRY[name].work == work)


def method(name: str) -> Method:
    """The registered method ``name``, or a clear error listing the registered ones."""
    _load()
    if name not in _REGISTRY:
        raise ConfigError(f"unknown recovery method {name!r}; registered: "
                          f"{', '.join(method_names())}")
    return _REGISTRY[name]


def work(name: str) -> Work:
    """The registered work ``name`` (its module imported), or a clear error."""
    if name not in WORK_MODULES:
        raise ConfigError(f"unknown work {name!r}; allowed: {', '.join(WORK_MODULES)}")
    importlib.import_module(WORK_MODULES[name])
    return _WORKS[name]
