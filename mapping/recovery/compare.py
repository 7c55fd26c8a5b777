"""RSA versus R-V-W (and the other recovery methods), in accuracy and in time.

For N chip instances (seeds), each method starts from the same one-shot-programmed cells:

========== ===============================================================================
software   the FP32 teacher
one-shot   the teacher programmed once (one pulse per cell, no verify)
bias-only  one-shot, then only digital biases and per-column gains trained on the chip
kd         a device-aware student (knowledge distillation) programmed once
rsa        one-shot + random sparse SRAM words trained on the chip
kd+rsa     kd + the same
osa        one-shot + SRAM words at importance-sampled (Fisher) positions
kd+osa     kd + the same
rvw        the teacher programmed by write-verify (every cell), no training
========== ===============================================================================

Times come from the SimPy engine (:mod:`xbar.timing`): programming (one-shot or R-V-W, from
the per-cell pulse counts the write-verify loop produced on that chip) and adaptation
(steps x (forward + backward + SRAM writes)). Knowledge distillation runs off chip before
programming and is reported, not added. The headline:
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
from xbar.mapping.recovery.techniques.sram import AdaptConfig, adapt, attach_sram, sram_words
from xbar.mapping.chip import Chip
from xbar.mapping.data.datasets import Dataset
from xbar.mapping.geometry import layer_specs
from xbar.mapping.recovery.techniques.kd import KDConfig, distill
from xbar.mapping.recovery.registry import MethodContext, method, method_names
from xbar.mapping.recovery.techniques.rvw import program_rvw, rvw_params, stuck_time_share
from xbar.mapping.data.workflow import calibration_inputs
from xbar.config import HardwareConfig, XbarConfig
from xbar.layout import check_device_mapping
from xbar.energy_config import AreaConfig, EnergyConfig
from xbar.timing import TimingConfig
from xbar.timing.adaptation import AdaptationConfig, adaptation_time
from xbar.timing.area import sram_area_fraction
from xbar.timing.energy import (adaptation_energy, conductance_sums, inference_energy,
                                one_shot_energy, programming_energy)
from xbar.timing.speedup import SPEEDUP_DEFINITION, accounting_label
from xbar.timing.programming import ProgrammingConfig, one_shot_time, programming_time
from xbar.backends import BACKENDS
from xbar.errors import ConfigError
from xbar.params import fail, param, validate

BUILTIN_METHODS = ("software", "one-shot", "bias-only", "kd", "rsa", "kd+rsa", "osa", "kd+osa",
                   "rvw")
METHODS = BUILTIN_METHODS + method_names()
"""Every method: works 1 and 2's, then the plug-ins of :mod:`xbar.mapping.recovery.registry`."""
FISHER_IMAGES = 256


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
            # a plug-in method's own costs (methods.MethodOutcome.costs), means over chips
            **{name: _mean(values) for name, values in self.costs.items()},
        }


def _mean(values: list[float]) -> float:
    return float(np.mean(values)) if values else 0.0


@dataclass(frozen=True)
class CompareSettings:
    """What to compare and how hard to try.

    Attributes:
        sram_ratio: Fraction of each mapped layer's weights given an SRAM word (RSA, OSA).
        chips: Chip instances; chip ``c`` has seed ``seed + c``.
        seed: The first chip's seed.
        methods: Methods to run, a subset of :data:`METHODS` without repeats (default: works 1
            and 2's, :data:`BUILTIN_METHODS`; the plug-ins of works 3-5 run when named).
        adapt: The adaptation budget and optimiser.
        kd: The distillation recipe.
        options: Settings of plug-in methods, by method name (each method documents the type
            it takes; a method not named here runs with its defaults).
        backend: Where chips run and KD and adaptation train (:data:`xbar.backends.BACKENDS`).
            ``"cpu"`` (the default) gives the same figures on every machine; ``"cuda"`` runs
            the MVMs (:mod:`xbar.kernel_torch`), KD, SRAM and bias-only adaptation on the
            GPU, equal in distribution to the CPU's, not bit-identical. Programming (the
            cells, R-V-W) stays on the host. The plug-in methods of works 3-5 run on the CPU
            whatever this says (each result row names its backend).
    """

    sram_ratio: float = param(0.05, unit="fraction", range=(0, 1, True, False),
                              note="0.05 = 5 % of each layer's weights",
                              doc="Fraction of each layer's weights in SRAM.")
    chips: int = param(3, unit="chips", range=(1, 1 << 62), doc="Chip instances.")
    seed: int = param(0, unit="-", range=(0, 2**32 - 1), doc="The first chip's seed.")
    methods: tuple[str, ...] = param(BUILTIN_METHODS, item=str,
                                     doc="Methods to run (default: works 1 and 2's).")
    adapt: AdaptConfig = AdaptConfig()
    kd: KDConfig = KDConfig()
    options: dict[str, Any] = field(default_factory=dict, compare=False)
    backend: str = param("cpu", choices=BACKENDS,
                         doc="Where chips run and KD and adaptation train.")

    def __post_init__(self) -> None:
        validate(self)
        stray = [k for k in self.options if k not in self.methods]
        if stray:
            fail("CompareSettings", "options", sorted(stray),
                 f"options only for methods being run ({', '.join(self.methods)})")
        unknown = [m for m in self.methods if m not in METHODS]
        if unknown:
            raise ConfigError(f"CompareSettings.methods: unknown method(s) {unknown}; valid: "
                              f"{', '.join(METHODS)}")
        if not self.methods or len(set(self.methods)) != len(self.methods):
            fail("CompareSettings", "methods", self.methods,
                 f"a non-empty list of distinct methods from {', '.join(METHODS)}")
        for name, klass in (("adapt", AdaptConfig), ("kd", KDConfig)):
            if not isinstance(getattr(self, name), klass):
                fail("CompareSettings", name, getattr(self, name), f"a {klass.__name__}")


def compare(teacher: nn.Module, dataset: Dataset, device: Device | DeviceFile, xbar: XbarConfig,
            settings: CompareSettings = CompareSettings(),
            timing: TimingConfig = TimingConfig(),
            programming: ProgrammingConfig = ProgrammingConfig(),
            adaptation: AdaptationConfig = AdaptationConfig(),
            progress: Callable[[str], None] | None = None,
            student: nn.Module | None = None, energy: EnergyConfig | None = None,
            area: AreaConfig | None = None) -> dict[str, Any]:
    """Run every requested method on ``settings.chips`` chip instances; a JSON-ready dict.

    ``student``: an already distilled KD student (as :func:`xbar.mapping.recovery.techniques.kd.distill` returns for
    this teacher, data, device and settings), to skip distilling again.
    ``device``: a DeviceFile carries its write-verify loop to R-V-W (a bare Device gets the
    transfer rule, :func:`xbar.mapping.recovery.techniques.rvw.rvw_params`).
    ``energy``, ``area``: the ``[energy]`` and ``[area]`` sections (default: their defaults)
    for each method's energy to program and adapt and the SRAM area overhead.
    """
    from xbar.mapping.data.train import evaluate

    from xbar.kernel_torch import resolve_backend

    backend = resolve_backend(settings.backend)  # before any work: cuda without a GPU fails
    rvw_loop = rvw_params(device) if "rvw" in settings.methods else None
    device = device.device if isinstance(device, DeviceFile) else device
    check_device_mapping(device, xbar, "the hardware configuration")  # before any work

    say = progress or (lambda _: None)
    methods = settings.methods
    shape = tuple(dataset.input_shape)
    specs = layer_specs(teacher, shape)
    n_weights = sum(s.n_in * s.n_out for s in specs)
    results = {m: MethodResult(m) for m in methods}
    t_one = one_shot_time(specs, programming, xbar, timing).total_s
    hw = HardwareConfig.from_parts(xbar, timing=timing, programming=programming,
                                   adaptation=adaptation, energy=energy or EnergyConfig(),
                                   area=area or AreaConfig())
    e_one = one_shot_energy(specs, hw).total_pj
    kd_info: dict[str, Any] = {}
    plugins = {m: method(m) for m in methods if m not in BUILTIN_METHODS}
    wants_student = any(m.startswith("kd") for m in methods if m in BUILTIN_METHODS) or any(
        p.needs_student for p in plugins.values())
    if student is not None or not wants_student:
        student = student if wants_student else None
    else:
        say("distilling the device-aware student")
        student, kd_info = distill(teacher, dataset, device, xbar, settings.kd, settings.seed,
                                   backend=backend)
    x_test, y_test = dataset.x_test, dataset.y_test

    def timed_adapt(chip: Chip, words: list[int], extra_passes: int = 0) -> float:
        t = adaptation_time(specs, xbar, timing, adaptation, settings.adapt.steps,
                            settings.adapt.batch_size, words).total_s
        if extra_passes:  # Fisher measurement: forward + backward, no writes
            t += adaptation_time(specs, xbar, timing, adaptation, extra_passes,
                                 settings.adapt.batch_size, [0] * len(specs)).total_s
        return t

    def adapt_energy(chip: Chip, words: list[int], extra_passes: int = 0) -> float:
        g = chip_conductances(chip)
        # bias-only's words (a bias and a gain per column) are not weights: at most n_in n_out
        words = [min(w, s.n_in * s.n_out) for w, s in zip(words, specs)]
        e = adaptation_energy(specs, hw, settings.adapt.steps, settings.adapt.batch_size,
                              words, g).total_pj
        if extra_passes:
            e += adaptation_energy(specs, hw, extra_passes, settings.adapt.batch_size,
                                   [0] * len(specs), g, write=False).total_pj
        return e

    def chip_conductances(chip: Chip) -> list[float]:
        sums = conductance_sums(chip)
        return [sums.get(s.name, 0.0) for s in specs]

    def words_per_layer(chip: Chip) -> list[int]:
        by_name = {layer.layer_name: int(layer.sram_mask.sum()) if layer.sram_mask is not None
                   else 0 for layer in chip.layers}
        return [by_name.get(s.name, 0) for s in specs]

    if "software" in results:
        results["software"].accuracies.append(evaluate(teacher, x_test, y_test))
    for c in range(settings.chips):
        seed = settings.seed + c
        calib = calibration_inputs(dataset, seed=seed)

        def fresh(model: nn.Module, on: str = backend) -> Chip:
            chip = Chip.program(model, device, xbar, seed, "column", "", shape)
            chip.use_backend(on).calibrate(calib)
            return chip

        def fresh_cpu(model: nn.Module) -> Chip:  # the plug-ins' chips (see backend)
            return fresh(model, "cpu")

        base = fresh(teacher) if set(methods) & {"one-shot", "bias-only", "rsa", "osa"} \
            else None
        kd_base = fresh(student) if student is not None else None
        for name in methods:
            if name == "software":
                continue
            say(f"chip {c + 1}/{settings.chips}: {name}")
            start = time.perf_counter()
            r = results[name]
            source = kd_base if name.startswith("kd") else base
            adapt_s = adapt_pj = 0.0
            words = [0] * len(specs)
            if name in plugins:
                chip, adapt_s, adapt_pj, words = _run_plugin(r, plugins[name], MethodContext(
                    teacher, student, dataset, device, xbar, hw, specs, shape, seed, settings,
                    settings.options.get(name), fresh_cpu, t_one, e_one))
            elif name in ("one-shot", "kd"):
                chip = source
            elif name == "bias-only":
                chip = copy.deepcopy(source)
                adapt(chip, dataset, "bias", settings.adapt, seed)
                words = [2 * s.n_out for s in specs]  # a bias and a gain per column
                adapt_s = timed_adapt(chip, words)
                adapt_pj = adapt_energy(chip, words)
                r.sram_words = sum(words)
            elif name in ("rsa", "kd+rsa", "osa", "kd+osa"):
                chip = copy.deepcopy(source)
                fisher = name.endswith("osa")
                attach_sram(chip, settings.sram_ratio, adaptation.sram_word_bits,
                            "fisher" if fisher else "random", dataset, seed)
                adapt(chip, dataset, "sram", settings.adapt, seed)
                r.sram_words = sram_words(chip)
                fisher_steps = -(-FISHER_IMAGES // settings.adapt.batch_size) if fisher else 0
                words = words_per_layer(chip)
                adapt_s = timed_adapt(chip, words, fisher_steps)
                adapt_pj = adapt_energy(chip, words, fisher_steps)
                r.sram_area_fraction = sram_area_fraction(specs, words, hw)
            else:  # rvw
                chip = Chip.program(teacher, device, xbar, seed, "column", "", shape)
                counts = program_rvw(chip, rvw_loop, seed, programming.stopping_rule())
                chip.use_backend(backend).calibrate(calib)
                prog = programming_time(counts, programming, xbar, timing)
                for key, value in stuck_time_share(chip, counts, programming, xbar,
                                                   timing).items():
                    if not key.startswith("t_"):
                        r.costs.setdefault(key, []).append(value)
                r.program_s.append(prog.total_s)
                r.pulses.append(prog.total_pulses)
                r.program_pj.append(programming_energy(prog, hw).total_pj)
            if name not in plugins and name != "rvw":
                r.program_s.append(t_one)
                r.program_pj.append(e_one)
                r.pulses.append(int(sum(layer.matrix.n_cells for layer in chip.layers)))
            r.sram_bits = r.sram_words * adaptation.sram_word_bits
            r.adapt_s.append(adapt_s)
            r.adapt_pj.append(adapt_pj)
            r.inference_pj.append(inference_energy(
                specs, hw, chip_conductances(chip),
                words if name != "bias-only" else None).total_pj)
            r.backend = chip.backend
            r.accuracies.append(chip.evaluate(x_test, y_test))
            r.wall_s += time.perf_counter() - start
    rram_cells = (base or kd_base).n_cells if (base or kd_base) is not None else 0
    out = {m: results[m].summary(n_weights, rram_cells) for m in methods}
    if "software" in out:
        out["software"].update(program_s=0.0, adapt_s=0.0, time_s=0.0, pulses=0.0,
                               program_energy_j=0.0, adapt_energy_j=0.0, energy_j=0.0)
    speedup = None
    if "rvw" in out and "kd+rsa" in out and out["kd+rsa"]["time_s"] > 0:
        speedup = out["rvw"]["time_s"] / out["kd+rsa"]["time_s"]
    return {"methods": out, "speedup_rsa_vs_rvw": speedup,
            "speedup_definition": SPEEDUP_DEFINITION + " (kd+rsa; means over chips); "
                                  + accounting_label(programming, xbar),
            "speedup_accounting": accounting_label(programming, xbar),
            "n_weights": n_weights, "rram_cells": rram_cells, "kd": kd_info,
            "rvw_loop": rvw_loop.source if rvw_loop is not None else None,
            "rvw_stopping_rule": (programming.stopping_rule().label(rvw_loop)
                                  if rvw_loop is not None else None),
            "settings": {"sram_ratio": settings.sram_ratio, "chips": settings.chips,
                         "seed": settings.seed, "methods": list(methods),
                         "adapt_steps": settings.adapt.steps,
                         "adapt_batch": settings.adapt.batch_size,
                         "adapt_learning_rate": settings.adapt.learning_rate,
                         "sram_word_bits": adaptation.sram_word_bits,
                         "kd_epochs": settings.kd.epochs,
                         "kd_temperature": settings.kd.temperature,
                         "kd_alpha": settings.kd.alpha, "backend": backend},
            "one_shot_program_s": t_one}


def _run_plugin(r: MethodResult, plugin: Any, ctx: MethodContext
                ) -> tuple[Chip, float, float, list[int]]:
    """Run a plug-in method on one chip; record its programming cost and its own costs."""
    out = plugin.run(ctx)
    n_cells = int(sum(layer.matrix.n_cells for layer in out.chip.layers))
    r.program_s.append(ctx.one_shot_s if out.program_s is None else out.program_s)
    r.program_pj.append(ctx.one_shot_pj if out.program_pj is None else out.program_pj)
    r.pulses.append(n_cells if out.pulses is None else out.pulses)
    r.sram_words = out.sram_words
    for key, value in out.costs.items():
        r.costs.setdefault(key, []).append(float(value))
    words = out.words_per_layer or [0] * len(ctx.specs)
    if out.sram_area_fraction is not None:
        r.sram_area_fraction = out.sram_area_fraction
    elif any(words):
        r.sram_area_fraction = sram_area_fraction(ctx.specs, words, ctx.hardware)
    return out.chip, out.adapt_s, out.adapt_pj, words


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
                       "--sram-ratio or --steps)")
        out.append(f"{label} does not beat the bias-only control here: {100 * acc(name):.2f} % "
                   f"against {100 * control:.2f} % ({100 * diff:+.2f} points)"
                   + (": " + "; ".join(why) if why else "") + ".")
    return out
