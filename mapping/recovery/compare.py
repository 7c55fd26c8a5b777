"""RSA versus R-V-W (and every other recovery method), in accuracy, time and energy.

:func:`compare` runs the named methods of the registry (:mod:`xbar.mapping.recovery.registry`;
works 1 and 2's software, one-shot, bias-only, kd, rsa, kd+rsa, osa, kd+osa, rvw in
:mod:`xbar.mapping.recovery.charan2020`, works 3-5's in :mod:`~xbar.mapping.recovery.itt_rna`,
:mod:`~xbar.mapping.recovery.correctnet`, :mod:`~xbar.mapping.recovery.lv2024`) on N chip
instances (seeds): for each chip it builds a
:class:`~xbar.mapping.recovery.registry.MethodContext` per method (with the shared one-shot
chips of the teacher and the KD student where a method starts from them), runs each method
and records its outcome (accuracy on the test set, programming and adaptation time and
energy, SRAM words and area, inference energy, the method's own costs).

Times come from the SimPy engine (:mod:`xbar.timing`). The headline:
``speedup = T_rvw / (T_one_shot + T_adapt(kd+rsa))``.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
from torch import nn

from xbar.devices import Device, DeviceFile
from xbar.mapping.recovery.techniques.sram import AdaptConfig
from xbar.mapping.chip import Chip
from xbar.mapping.data.base import Dataset
from xbar.mapping.geometry import layer_specs
from xbar.timing.network import LayerSpec
from xbar.mapping.recovery.techniques.kd import KDConfig, distill
from xbar.mapping.recovery.registry import MethodContext, MethodOutcome, method, method_names
from xbar.mapping.recovery.techniques.rvw import rvw_params
from xbar.mapping.data.workflow import calibration_inputs
from xbar.config import HardwareConfig
from xbar.layout import check_device_mapping
from xbar.timing.area import sram_area_fraction
from xbar.timing.energy import conductance_sums, inference_energy, one_shot_energy
from xbar.timing.speedup import SPEEDUP_DEFINITION, accounting_label
from xbar.timing.programming import one_shot_time
from xbar.backends import BACKENDS
from xbar.errors import ConfigError
from xbar.params import fail, param, validate

DEFAULT_METHODS = ("software", "one-shot", "bias-only", "kd", "rsa", "kd+rsa", "osa", "kd+osa",
                   "rvw")
"""What :class:`CompareSettings` runs unless told: works 1 and 2's methods."""


@dataclass
class MethodResult:
    """One method over the chips."""

    name: str
    accuracies: list[float] = field(default_factory=list)
    program_s: list[float] = field(default_factory=list)
    adapt_s: list[float] = field(default_factory=list)
    pulses: list[int] = field(default_factory=list)
    sram_words: int = 0
    sram_bits: int = 0
    wall_s: float = 0.0
    program_pj: list[float] = field(default_factory=list)
    adapt_pj: list[float] = field(default_factory=list)
    inference_pj: list[float] = field(default_factory=list)
    sram_area_fraction: float = 0.0
    costs: dict[str, list[float]] = field(default_factory=dict)
    backend: str = "cpu"

    def summary(self, n_weights: int, rram_cells: int) -> dict[str, Any]:
        acc = np.asarray(self.accuracies)
        prog = float(np.mean(self.program_s)) if self.program_s else 0.0
        adp = float(np.mean(self.adapt_s)) if self.adapt_s else 0.0
        return {
            "accuracy": float(acc.mean()), "accuracy_std": float(acc.std()),
            "accuracy_min": float(acc.min()), "accuracy_max": float(acc.max()),
            "accuracies": [float(a) for a in acc],
            "program_s": prog, "adapt_s": adp, "time_s": prog + adp,
            "pulses": float(np.mean(self.pulses)) if self.pulses else 0.0,
            "sram_words": self.sram_words, "sram_bits": self.sram_bits,
            "sram_fraction": self.sram_words / n_weights if n_weights else 0.0,
            "sram_bits_per_rram_cell": self.sram_bits / rram_cells if rram_cells else 0.0,
            "wall_s": self.wall_s,
            # energy (xbar.timing.energy): programming (pulses and verify reads), adaptation
            # (forward, backward, SRAM updates), one inference at the chip's own
            # conductances; the SRAM's area over the chip's (0 without SRAM words)
            "program_energy_j": _mean(self.program_pj) * 1e-12,
            "adapt_energy_j": _mean(self.adapt_pj) * 1e-12,
            "energy_j": (_mean(self.program_pj) + _mean(self.adapt_pj)) * 1e-12,
            "inference_energy_pj": _mean(self.inference_pj),
            "sram_area_fraction": self.sram_area_fraction,
            "backend": self.backend,  # where its chips ran (the resolved backend)
            # the method's own costs (registry.MethodOutcome.costs), means over chips
            **{name: _mean(values) for name, values in self.costs.items()},
        }


def layer_conductances(chip: Chip, specs: list[LayerSpec]) -> list[float]:
    """The sum of each layer's programmed conductances (uS), aligned with ``specs``; 0 for a
    layer the chip does not map (the energy model's ``g_sum_us``)."""
    sums = conductance_sums(chip)
    return [sums.get(s.name, 0.0) for s in specs]


def _mean(values: list[float]) -> float:
    return float(np.mean(values)) if values else 0.0


@dataclass(frozen=True)
class CompareSettings:
    """What to compare and how hard to try.

    Attributes:
        sram_ratio: Fraction of each mapped layer's weights given an SRAM word (RSA, OSA).
        chips: Chip instances; chip ``c`` has seed ``seed + c``.
        seed: The first chip's seed.
        methods: Methods to run, registered names
            (:func:`xbar.mapping.recovery.registry.method_names`) without repeats (default:
            works 1 and 2's, :data:`DEFAULT_METHODS`; works 3-5's run when named).
        adapt: The adaptation budget and optimiser.
        kd: The distillation recipe.
        age_s: Seconds after programming every chip is evaluated at: each method programs
            and adapts its chip at time 0, then the cells relax by the device's relaxation
            (:meth:`xbar.mapping.chip.Chip.age_to`; SRAM words, biases and gains do not);
            0 (the default): right after programming, as before.
        reads_per_s: Reads of every cell per second of inference while the chip ages: the
            device's read disturb on the same clock as its relaxation (each cell read
            ``reads_per_s x`` its age since its last write); 0 (the default): no disturb.
        options: Settings of methods that take options, by method name (each method's
            ``options_type``; a method not named here runs with its defaults).
        backend: Where chips run and KD and adaptation train (:data:`xbar.backends.BACKENDS`).
            ``"cpu"`` (the default) gives the same figures on every machine; ``"cuda"`` runs
            the MVMs (:mod:`xbar.kernel_torch`), KD, SRAM and bias-only adaptation on the
            GPU, equal in distribution to the CPU's, not bit-identical. Programming (the
            cells, R-V-W) stays on the host. The methods of works 3-5 run on the CPU
            whatever this says (each result row names its backend).
    """

    sram_ratio: float = param(0.05, unit="fraction", range=(0, 1, True, False),
                              note="0.05 = 5 % of each layer's weights",
                              doc="Fraction of each layer's weights in SRAM.")
    chips: int = param(3, unit="chips", range=(1, 1 << 62), doc="Chip instances.")
    seed: int = param(0, unit="-", range=(0, 2**32 - 1), doc="The first chip's seed.")
    methods: tuple[str, ...] = param(DEFAULT_METHODS, item=str,
                                     doc="Methods to run (default: works 1 and 2's).")
    adapt: AdaptConfig = AdaptConfig()
    kd: KDConfig = KDConfig()
    options: dict[str, Any] = field(default_factory=dict, compare=False)
    backend: str = param("cpu", choices=BACKENDS,
                         doc="Where chips run and KD and adaptation train.")
    age_s: float = param(0.0, unit="s", range=(0, 1e12),
                         note="0: right after programming",
                         doc="Seconds after programming the chips are evaluated at (the cells "
                             "relax by the device's relaxation; adaptation is done at "
                             "programming, SRAM words do not relax).")
    reads_per_s: float = param(0.0, unit="reads/s", range=(0, 1e12),
                               note="0: no read disturb while aging",
                               doc="Reads of every cell per second of inference while the "
                                   "chip ages (read disturb on the aging clock).")

    def __post_init__(self) -> None:
        validate(self)
        stray = [k for k in self.options if k not in self.methods]
        if stray:
            fail("CompareSettings", "options", sorted(stray),
                 f"options only for methods being run ({', '.join(self.methods)})")
        known = method_names()
        unknown = [m for m in self.methods if m not in known]
        if unknown:
            raise ConfigError(f"CompareSettings.methods: unknown method(s) {unknown}; valid: "
                              f"{', '.join(known)}")
        if not self.methods or len(set(self.methods)) != len(self.methods):
            fail("CompareSettings", "methods", self.methods,
                 f"a non-empty list of distinct methods from {', '.join(known)}")
        for name, klass in (("adapt", AdaptConfig), ("kd", KDConfig)):
            if not isinstance(getattr(self, name), klass):
                fail("CompareSettings", name, getattr(self, name), f"a {klass.__name__}")


def compare(teacher: nn.Module, dataset: Dataset, device: Device | DeviceFile,
            hw: HardwareConfig, settings: CompareSettings | None = None,
            progress: Callable[[str], None] | None = None,
            student: nn.Module | None = None) -> dict[str, Any]:
    """Run every requested method on ``settings.chips`` chip instances; a JSON-ready dict.

    ``settings``: what to compare (None: :class:`CompareSettings`' defaults).
    ``hw``: the hardware (arrays and converters, timing, programming, adaptation, energy,
    area), e.g. :func:`xbar.config.load_hardware`'s.
    ``student``: an already distilled KD student (as
    :func:`xbar.mapping.recovery.techniques.kd.distill` returns for this teacher, data, device
    and settings), to skip distilling again.
    ``device``: a DeviceFile carries its write-verify loop to R-V-W (a bare Device gets the
    transfer rule, :func:`xbar.mapping.recovery.techniques.rvw.rvw_params`).
    """
    from xbar.mapping.data.train import evaluate

    from xbar.kernel_torch import resolve_backend

    settings = CompareSettings() if settings is None else settings
    if not isinstance(hw, HardwareConfig):
        raise ConfigError(f"compare: hw is a {type(hw).__name__}; allowed: a HardwareConfig "
                          "(xbar.config.load_hardware or HardwareConfig.from_parts)")
    backend = resolve_backend(settings.backend)  # before any work: cuda without a GPU fails
    rvw_loop = rvw_params(device) if "rvw" in settings.methods else None
    device = device.device if isinstance(device, DeviceFile) else device
    xbar = hw.xbar
    check_device_mapping(device, xbar, "the hardware configuration")  # before any work
    from xbar.mapping.data.workflow import check_output_width
    check_output_width(teacher, dataset, "teacher", "compare(teacher=...):")
    if student is not None:
        check_output_width(student, dataset, "student", "compare(student=...):")

    say = progress or (lambda _: None)
    methods = settings.methods
    chosen = {name: method(name) for name in methods}
    shape = tuple(dataset.input_shape)
    specs = layer_specs(teacher, shape)
    n_weights = sum(s.n_in * s.n_out for s in specs)
    results = {m: MethodResult(m) for m in methods}
    t_one = one_shot_time(specs, hw).total_s
    e_one = one_shot_energy(specs, hw).total_pj
    kd_info: dict[str, Any] = {}
    wants_student = any(m.needs_student for m in chosen.values())
    if student is not None or not wants_student:
        student = student if wants_student else None
    else:
        say("distilling the device-aware student")
        student, kd_info = distill(teacher, dataset, device, xbar, settings.kd, settings.seed,
                                   backend=backend)
    x_test, y_test = dataset.x_test, dataset.y_test

    def context(seed: int, program: Callable[[nn.Module], Chip], **chip_state: Any
                ) -> MethodContext:
        return MethodContext(teacher=teacher, student=student, dataset=dataset, device=device,
                             hardware=hw, specs=specs, shape=shape, seed=seed,
                             settings=settings, options=None, program=program,
                             one_shot_s=t_one, one_shot_pj=e_one, backend=backend,
                             rvw_loop=rvw_loop, **chip_state)

    for name, m in chosen.items():
        if not m.on_chip:  # the teacher in software: once, not per chip
            out = m.run(context(settings.seed, _no_chip))
            if out.model is None:
                raise RuntimeError(f"method {name!r} runs no chip but returned no model")
            results[name].accuracies.append(evaluate(out.model, x_test, y_test))
    base = kd_base = None
    for c in range(settings.chips):
        seed = settings.seed + c
        calib = calibration_inputs(dataset, seed=seed)

        def fresh(model: nn.Module, on: str = backend) -> Chip:
            chip = Chip.program(model, device, xbar, seed, "column", "", shape)
            chip.use_backend(on).calibrate(calib)
            return chip

        def fresh_cpu(model: nn.Module) -> Chip:  # works 3-5's chips (see backend)
            return fresh(model, "cpu")

        base = fresh(teacher) if any(m.start == "teacher" for m in chosen.values()) else None
        kd_base = fresh(student) if student is not None else None
        for name, m in chosen.items():
            if not m.on_chip:
                continue
            say(f"chip {c + 1}/{settings.chips}: {name}")
            start = time.perf_counter()
            ctx = context(seed, fresh_cpu, calibration=calib, base=base, kd_base=kd_base)
            ctx.options = settings.options.get(name)
            chip = _record(results[name], m.run(ctx), ctx)
            results[name].accuracies.append(chip.evaluate(x_test, y_test))
            results[name].wall_s += time.perf_counter() - start
    rram_cells = (base or kd_base).n_cells if (base or kd_base) is not None else 0
    out = {m: results[m].summary(n_weights, rram_cells) for m in methods}
    for name, m in chosen.items():
        if not m.on_chip:
            out[name].update(program_s=0.0, adapt_s=0.0, time_s=0.0, pulses=0.0,
                             program_energy_j=0.0, adapt_energy_j=0.0, energy_j=0.0)
    speedup = None
    if "rvw" in out and "kd+rsa" in out and out["kd+rsa"]["time_s"] > 0:
        speedup = out["rvw"]["time_s"] / out["kd+rsa"]["time_s"]
    programming = hw.programming
    return {"methods": out, "speedup_rsa_vs_rvw": speedup,
            "speedup_definition": SPEEDUP_DEFINITION + " (kd+rsa; means over chips); "
                                  + accounting_label(hw),
            "speedup_accounting": accounting_label(hw),
            "n_weights": n_weights, "rram_cells": rram_cells, "kd": kd_info,
            "rvw_loop": rvw_loop.source if rvw_loop is not None else None,
            "rvw_stopping_rule": (programming.stopping_rule().label(rvw_loop)
                                  if rvw_loop is not None else None),
            "settings": {"sram_ratio": settings.sram_ratio, "chips": settings.chips,
                         "seed": settings.seed, "methods": list(methods),
                         "adapt_steps": settings.adapt.steps,
                         "adapt_batch": settings.adapt.batch_size,
                         "adapt_learning_rate": settings.adapt.learning_rate,
                         "sram_word_bits": hw.adaptation.sram_word_bits,
                         "kd_epochs": settings.kd.epochs,
                         "kd_temperature": settings.kd.temperature,
                         "kd_alpha": settings.kd.alpha, "backend": backend,
                         "age_s": settings.age_s, "reads_per_s": settings.reads_per_s},
            "one_shot_program_s": t_one}


def _no_chip(model: nn.Module) -> Chip:
    raise RuntimeError("a method that runs no chip (on_chip=False) cannot program one")


def _record(r: MethodResult, out: MethodOutcome, ctx: MethodContext) -> Chip:
    """One method's outcome on one chip into ``r``: programming (one one-shot programming
    unless the method says otherwise), SRAM, adaptation, inference energy, its own costs;
    returns the chip to evaluate on the test set (which :func:`compare` alone does)."""
    chip = out.chip
    if chip is None:
        raise RuntimeError(f"method {r.name!r} returned no chip")
    hw, specs = ctx.hardware, ctx.specs
    n_cells = int(sum(layer.matrix.n_cells for layer in chip.layers))
    r.program_s.append(ctx.one_shot_s if out.program_s is None else out.program_s)
    r.program_pj.append(ctx.one_shot_pj if out.program_pj is None else out.program_pj)
    r.pulses.append(n_cells if out.pulses is None else out.pulses)
    r.sram_words = out.sram_words
    r.sram_bits = r.sram_words * hw.adaptation.sram_word_bits
    for key, value in out.costs.items():
        r.costs.setdefault(key, []).append(float(value))
    words = out.words_per_layer
    if out.sram_area_fraction is not None:
        r.sram_area_fraction = out.sram_area_fraction
    elif words is not None:
        r.sram_area_fraction = sram_area_fraction(specs, words, hw)
    r.adapt_s.append(out.adapt_s)
    r.adapt_pj.append(out.adapt_pj)
    r.inference_pj.append(inference_energy(specs, hw, layer_conductances(chip, specs),
                                           words).total_pj)
    r.backend = chip.backend
    age, reads = ctx.settings.age_s, ctx.settings.reads_per_s
    if age > 0 and chip.device.ages(reads):
        # adapted at programming, then it ages; a copy: other methods start from this chip
        chip = copy.deepcopy(chip).age_to(age, reads)
    return chip


def story(result: dict[str, Any], margin: float = 0.005) -> list[str]:
    """The seeds' story told honestly, one sentence per claim, from a :func:`compare` result.

    Checks the claims works 1 and 2 make on this run's own numbers: KD lifts one-shot; the
    proposed sparse adaptation (KD+RSA, KD+OSA) beats the trivial control (bias-only: the same
    data and budget on the digital biases and per-column gains alone, no SRAM); where a claim
    fails the sentence says so and gives the reason the numbers support. ``margin``: a
    difference smaller than this (a fraction; default half a point) counts as a tie.
    """
    m = result["methods"]
    out: list[str] = []

    def acc(name: str) -> float | None:
        return m[name]["accuracy"] if name in m else None

    fp32 = acc("software")
    kd_info = result.get("kd") or {}
    if acc("kd") is not None and acc("one-shot") is not None:
        gain = acc("kd") - acc("one-shot")
        out.append(f"KD {'lifts' if gain > margin else 'does not lift'} one-shot: "
                   f"{100 * acc('kd'):.2f} % against {100 * acc('one-shot'):.2f} % "
                   f"({100 * gain:+.2f} points).")
        if kd_info.get("learned") is False:
            out.append(f"KD: {kd_info.get('reason', 'the student did not learn')}; the KD rows "
                       "show a student that failed to learn this device.")
    control = acc("bias-only")
    for name, label in (("kd+rsa", "KD+RSA"), ("kd+osa", "KD+OSA"), ("rsa", "RSA"),
                        ("osa", "OSA")):
        if acc(name) is None or control is None:
            continue
        diff = acc(name) - control
        if diff > margin:
            out.append(f"{label} beats the bias-only control: {100 * acc(name):.2f} % against "
                       f"{100 * control:.2f} % ({100 * diff:+.2f} points).")
            continue
        why = []
        if fp32 is not None and fp32 - control < 0.01:
            why.append(f"bias-only alone is within 1 point of FP32 ({100 * fp32:.2f} %): this "
                       "device's error is mostly a per-column offset and gain, which the digital "
                       "biases and gains absorb without any SRAM")
        if name.startswith("kd") and kd_info.get("learned") is False:
            why.append(f"the KD student did not learn this device, so {label} starts from a "
                       "failed student")
        if fp32 is not None and acc(name) < fp32 - 0.05:
            words = m[name].get("sram_fraction", 0.0)
            why.append(f"with {100 * words:.1f} % of weights in SRAM and this budget, sparse "
                       "words cannot undo errors spread over every weight (try a larger "
                       "CompareSettings.sram_ratio or AdaptConfig.steps)")
        out.append(f"{label} does not beat the bias-only control here: {100 * acc(name):.2f} % "
                   f"against {100 * control:.2f} % ({100 * diff:+.2f} points)"
                   + (": " + "; ".join(why) if why else "") + ".")
    return out
