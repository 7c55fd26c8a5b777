"""``xbar reproduce``: every published figure of the works in REFERENCE.md beside the simulated one.

For each :class:`~xbar.mapping.recovery.published.Published` figure the run produces one row:
the paper's number and setting, the simulated number (mean and standard deviation over chip
instances) and setting, and the difference (simulated - published, in points for accuracies
and fractions; simulated / published for speedups). A figure this code cannot simulate yet
keeps its row with ``simulated = None`` and a note saying why, so nothing is silently left out.

The settings (REFERENCE.md; where the papers are silent, the project's choice):

* work 1 (JxCDC 2020): the ``charan2020-jxcdc`` cell (16 levels, sigma 0.1 x level, 9.04 % SA0,
  1.75 % SA1) on the default hardware (differential pairs); KD student, then RSA and KD+RSA at
  each SRAM fraction of :attr:`ReproduceSettings.fractions`; "SRAM needed" is the smallest
  fraction whose mean accuracy is within 1 point of the FP32 teacher;
* work 2 (DAC 2020): the ``charan2020-dac`` cell with the hardware its preset implies
  (:func:`xbar.devices.presets.preset_hardware`); one-shot for the collapse, KD + OSA at each
  fraction for the recovery; the area row is the SRAM storage of the smallest fraction that
  recovers, over the chip's area (:func:`xbar.timing.area.sram_area_fraction`, ``[area]``);
* speedup: ``T_rvw / (T_one_shot + T_adapt)`` of KD+RSA at 5 % SRAM under two accountings,
  ``full-chip`` (the default hardware: one write driver per bit line, one array programmed at
  a time) and ``cell-by-cell`` (the papers' R-V-W: one cell at a time per array, every pulse
  followed by a verify read through the column's shared ADC), at the lowest and highest RRAM
  write time of work 1 (6.5 us, 4.5 ms).

``quick`` runs the same on scikit-learn's digits with the digits CNN (a few minutes on 2
cores); the full run is MNIST LeNet-5. ``cifar`` adds the CIFAR-10 rows: VGG-16 on the cuda
backend (``backend``), the width-reduced ``vgg16-narrow`` otherwise.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from xbar.errors import ConfigError, MissingFileError
from xbar.mapping.recovery.published import Published, published
from xbar.mapping.recovery.speedup import ACCOUNTINGS, WRITE_TIMES_NS, speedup_sensitivity

__all__ = ["ReproduceSettings", "WORKS", "WORK_MODULES", "check_data", "reproduce", "row",
           "speedup_sensitivity"]

WORK_MODULES: dict[str, str] = {"work3": "xbar.mapping.recovery.itt_rna",
                               "work4": "xbar.mapping.recovery.correctnet",
                               "work5": "xbar.mapping.recovery.lv2024"}
"""Works 3-5: the module whose ``rows(settings, teacher, say, out)`` returns the work's rows
(``teacher``: the MNIST LeNet-5 (digits CNN with ``quick``) as
:func:`xbar.mapping.data.workflow.load_teacher` returns it; ``out``: the result dict, where
the work may keep its details under ``out["works"][work]``)."""
WORKS = ("work1", "work2") + tuple(WORK_MODULES)
EXTRA_KEYS = ("work3_sigma", "work3_stuck_rate", "work4_sigma", "work4_adc_sigma",
              "work4_comp_layers", "work5_images")
"""The knobs of works 3-5 that :attr:`ReproduceSettings.extra` may set (each work's module
documents and checks its own); any other key is refused rather than ignored."""
@dataclass(frozen=True)
class ReproduceSettings:
    """What to reproduce and how hard to try.

    Attributes:
        works: Works to reproduce, a subset of :data:`WORKS`.
        quick: Digits and the digits CNN instead of MNIST and LeNet-5.
        chips: Chip instances (seeds ``seed``, ``seed + 1``, ...).
        seed: First chip seed; the teacher is the zoo's (teacher seed 0).
        fractions: SRAM fractions tried for RSA, KD+RSA and KD+OSA.
        steps, batch: Adaptation budget per chip.
        kd_epochs: KD epochs.
        data_dir: Where MNIST lives (default: the usual search, see ``xbar simulate``).
        cifar: Also run the CIFAR-10 rows: VGG-16 at full size on the cuda backend, else the
            width-reduced ``vgg16-narrow`` (1/8 of every width), named in every row.
        cifar_test_limit: CIFAR-10 test images evaluated (N evenly strided over the test set,
            which the image-folder release orders by class; None: all 10,000).
        extra: Works 3-5's own knobs, by name (:data:`EXTRA_KEYS`).
        backend: Where chips run and KD and adaptation train
            (:attr:`CompareSettings.backend <xbar.mapping.recovery.compare.CompareSettings>`):
            ``"cpu"`` by default; with ``"cuda"`` (or ``"auto"`` on a machine with a GPU) the
            CIFAR-10 rows use the full VGG-16.
    """

    works: tuple[str, ...] = WORKS
    quick: bool = False
    chips: int = 2
    seed: int = 0
    fractions: tuple[float, ...] = (0.01, 0.03, 0.05, 0.08)
    steps: int = 200
    batch: int = 32
    kd_epochs: int = 10
    data_dir: str | None = None
    cifar: bool = False
    cifar_test_limit: int | None = 2000
    extra: dict[str, Any] = field(default_factory=dict, compare=False)
    backend: str = "cpu"

    def __post_init__(self) -> None:
        from xbar.backends import BACKENDS
        if self.backend not in BACKENDS:
            raise ConfigError(f"ReproduceSettings.backend = {self.backend!r} is invalid; "
                              f"allowed: one of {', '.join(BACKENDS)}")
        unknown = [w for w in self.works if w not in WORKS]
        if unknown or not self.works:
            raise ConfigError(f"works = {list(self.works)!r} is invalid; allowed: a non-empty "
                              f"subset of {list(WORKS)}")
        if len(set(self.works)) != len(self.works):
            raise ConfigError(f"works = {list(self.works)!r} names a work twice")
        for name in ("chips", "steps", "batch", "kd_epochs"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"ReproduceSettings.{name} = {value!r} is invalid; allowed: "
                                  "an integer >= 1")
        if self.cifar_test_limit is not None and (
                isinstance(self.cifar_test_limit, bool)
                or not isinstance(self.cifar_test_limit, int) or self.cifar_test_limit < 1):
            raise ConfigError(f"cifar_test_limit = {self.cifar_test_limit!r} is invalid; "
                              "allowed: None (all test images) or an integer >= 1")
        unknown_extra = sorted(set(self.extra) - set(EXTRA_KEYS))
        if unknown_extra:
            raise ConfigError(f"ReproduceSettings.extra: unknown key(s) {unknown_extra}; "
                              f"allowed: {', '.join(EXTRA_KEYS)}")
        if not self.fractions or any(not 0 < f <= 1 for f in self.fractions):
            raise ConfigError(f"fractions = {list(self.fractions)!r} is invalid; allowed: "
                              "fractions in (0, 1]")

    @property
    def model(self) -> str:
        return "digits-cnn" if self.quick else "lenet5"

    @property
    def dataset(self) -> str:
        return "digits" if self.quick else "mnist"


def row(pub: Published, simulated: float | None, std: float | None, setting: str,
        note: str = "", our_fp32: float | None = None) -> dict[str, Any]:
    """One row of the table: ``pub`` beside ``simulated`` (mean over chips, ``std``) with our
    ``setting`` and a ``note``. ``published`` is the paper's figure, None where it prints no
    number (its "baseline", "nearly complete"); the difference is simulated - published
    (points) or, for a speedup, simulated / published, None without a published figure.
    ``our_fp32``: for a figure the paper states against its own FP32 baseline, our FP32
    accuracy; the row's ``versus_our_fp32`` is then simulated - our_fp32 (None otherwise)."""
    value = pub.value
    if simulated is None or value is None:
        diff = None
    elif pub.kind == "speedup":
        diff = simulated / value
    else:
        diff = simulated - value
    return {"work": pub.work, "figure": pub.figure, "title": pub.title, "kind": pub.kind,
            "published": value, "published_high": pub.high, "published_text": pub.text,
            "published_setting": pub.setting, "simulated": simulated,
            "simulated_std": std, "setting": setting, "difference": diff,
            "versus_our_fp32": (None if simulated is None or our_fp32 is None
                                else simulated - our_fp32), "note": note}


WORK2_GAP = ("What closes the gap (docs/work2.md, LeNet-5 at 6 % = 7.70 % area): not the "
             "fraction (3 -> 12 % buys ~1 point); the adaptation budget and rate (1000 x 64 "
             "at 2 word steps, one Fisher budget over all layers: 97.31 %), and the reading "
             "of the reference column (programmed exactly or write-verified, KD trained "
             "against it: 97.83 %; 3000 steps 98.06 %); the noise-free KD student is itself "
             "98.23 %, so within 1 point of FP32 is not reached with any lever tried.")


def _needed(by_fraction: dict[float, dict[str, Any]], method: str, target: float
            ) -> float | None:
    """Smallest fraction whose mean accuracy reaches ``target``; None if none does."""
    for f in sorted(by_fraction):
        if by_fraction[f]["methods"][method]["accuracy"] >= target:
            return f
    return None


def check_data(settings: ReproduceSettings) -> None:
    """Before the first work runs: the data every requested work needs is there (CIFAR-10
    for ``cifar``; the main data set is the teacher's, loaded first anyway), so that a
    missing file does not discard the works run before it.

    Raises:
        MissingFileError: Naming the option that asks for the data and what to put where.
    """
    from xbar.mapping.data.cifar import find_cifar10

    if settings.cifar:
        try:
            find_cifar10(settings.data_dir)
        except MissingFileError as exc:
            raise MissingFileError(f"--cifar needs the CIFAR-10 data (checked before any work "
                                   f"runs): {exc}") from None


def reproduce(settings: ReproduceSettings,
              progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Run the reproduction; a JSON-ready dict with ``rows`` and ``sensitivity``."""
    from xbar.config import load_hardware
    from xbar.devices.presets import preset, preset_hardware
    from xbar.mapping.data.workflow import load_teacher
    from xbar.mapping.recovery.compare import CompareSettings, compare
    from xbar.mapping.recovery.techniques.kd import KDConfig, distill
    from xbar.mapping.recovery.techniques.sram import AdaptConfig

    from xbar.kernel_torch import resolve_backend

    say = progress or (lambda _: None)
    s = settings
    backend = resolve_backend(s.backend)  # before any work: cuda without a GPU fails here
    check_data(s)
    say(f"teacher: {s.model} on {s.dataset}")
    teacher = load_teacher(s.model, s.dataset, s.data_dir, backend=backend)
    ds = teacher.dataset
    fp32 = teacher.software_accuracy
    split = getattr(ds, "note", "") or ""
    where = f"{s.model} on {s.dataset}" + (f" ({split})" if split else "")
    adapt_cfg = AdaptConfig(steps=s.steps, batch_size=s.batch)
    kd_cfg = KDConfig(epochs=s.kd_epochs)
    rows: list[dict[str, Any]] = []
    out: dict[str, Any] = {"rows": rows, "fp32_accuracy": fp32, "model": s.model,
                           "dataset": s.dataset, "chips": s.chips, "seed": s.seed,
                           "fractions": list(s.fractions), "steps": s.steps,
                           "batch": s.batch, "kd_epochs": s.kd_epochs, "works": {},
                           "backend": backend}
    budget = f"{s.steps} steps x batch {s.batch}, {s.chips} chips"

    def run_work(device_name: str, methods: tuple[str, ...], sweep_methods: tuple[str, ...]
                 ) -> tuple[Any, dict[str, Any], dict[float, dict[str, Any]], str]:
        device = preset(device_name)
        hw_name = preset_hardware(device_name)
        hw = load_hardware(hw_name)
        say(f"{device_name}: distilling the student")
        student, kd_info = distill(teacher.model, ds, device, hw.xbar, kd_cfg, s.seed,
                                   backend=backend)
        common = dict(timing=hw.timing, programming=hw.programming, adaptation=hw.adaptation,
                      student=student)
        cs = CompareSettings(chips=s.chips, seed=s.seed, methods=methods, adapt=adapt_cfg,
                             kd=kd_cfg, backend=backend)
        say(f"{device_name}: {', '.join(methods)}")
        base = compare(teacher.model, ds, device, hw.xbar, cs, **common)
        base["kd"] = kd_info
        by_fraction = {}
        for f in s.fractions:
            say(f"{device_name}: {', '.join(sweep_methods)} at {f:.0%} SRAM")
            cs_f = CompareSettings(sram_ratio=f, chips=s.chips, seed=s.seed,
                                   methods=sweep_methods, adapt=adapt_cfg, kd=kd_cfg,
                                   backend=backend)
            by_fraction[f] = compare(teacher.model, ds, device, hw.xbar, cs_f, **common)
        return hw, base, by_fraction, f"{device_name}, hardware {hw_name!r}"

    if "work1" in s.works:
        hw, base, by_f, dev_setting = run_work("charan2020-jxcdc",
                                               ("software", "one-shot", "kd", "rvw"),
                                               ("rsa", "kd+rsa"))
        m = base["methods"]
        rows.append(row(published("work1", "fp32-mnist"), fp32, 0.0, where,
                         "" if not s.quick else "quick run: digits CNN on digits"))
        f5 = min(s.fractions, key=lambda f: abs(f - 0.05))
        kdr = by_f[f5]["methods"]["kd+rsa"]
        rows.append(row(published("work1", "kd-rsa-mnist"), kdr["accuracy"], kdr["accuracy_std"],
                         f"{dev_setting}, {f5:.0%} SRAM, {budget}; our FP32 {fp32:.2%}",
                         "compare to our FP32 too: the gap to FP32 is what carries over; "
                         f"one-shot {m['one-shot']['accuracy']:.2%}, KD "
                         f"{m['kd']['accuracy']:.2%}, R-V-W {m['rvw']['accuracy']:.2%}"))
        target = fp32 - 0.01
        for fig, method in (("rsa-sram-mnist", "rsa"), ("kd-rsa-sram-mnist", "kd+rsa")):
            need = _needed(by_f, method, target)
            tried = ", ".join(f"{f:.0%}: {by_f[f]['methods'][method]['accuracy']:.2%}"
                              for f in sorted(by_f))
            rows.append(row(published("work1", fig), need, None,
                             f"{dev_setting}; within 1 point of FP32; tried {tried}",
                             "" if need is not None else
                             f"no tried fraction reached FP32 - 1 point ({target:.2%})"))
        say("speedup sensitivity")
        budgets = tuple(dict.fromkeys(((s.steps, s.batch), (50, 16), (600, 64))))

        def rvw_accuracy(chip: Any) -> float:
            from xbar.mapping.data.workflow import calibration_inputs
            chip.use_backend(backend).calibrate(calibration_inputs(ds, seed=chip.seed))
            return chip.evaluate(ds.x_test, ds.y_test)

        sens = speedup_sensitivity(teacher.model, tuple(ds.input_shape),
                                   preset("charan2020-jxcdc"), hw.xbar, load_hardware,
                                   s.chips, s.seed, budgets=budgets, evaluate=rvw_accuracy)
        out["sensitivity"] = sens
        for rule in ("loop-cap", "abort-8"):
            for acc in ACCOUNTINGS:
                for t_ns in (WRITE_TIMES_NS[0], WRITE_TIMES_NS[-1]):
                    r = next(x for x in sens if x["accounting"] == acc and x["rule"] == rule
                             and x["write_time_ns"] == t_ns and x["steps"] == s.steps
                             and x["batch"] == s.batch)
                    rows.append(row(
                        published("work1", "speedup"), r["speedup"], None,
                        f"{acc} accounting, write {t_ns / 1000:g} us per pulse; stopping rule "
                        f"{rule}: {r['rule_label']}; KD+RSA 5 % SRAM, {s.steps} x {s.batch}; "
                        f"T_rvw {r['t_rvw_s']:.3g} s, T_one_shot {r['t_one_shot_s']:.3g} s, "
                        f"T_adapt {r['t_adapt_s']:.3g} s",
                        f"speedup = T_rvw / (T_one_shot + T_adapt); stuck cells "
                        f"({100 * r['stuck_cells']:.1f} % of cells) take "
                        f"{100 * r['stuck_time_share']:.0f} % of T_rvw and "
                        f"{100 * r['stuck_pulse_share']:.0f} % of its pulses; R-V-W accuracy "
                        f"{100 * r['rvw_accuracy']:.2f} %, healthy cells left outside their "
                        f"window {100 * r['healthy_outside_window']:.2f} %"))
        if not s.cifar:
            rows.append(row(published("work1", "kd-rsa-cifar10"), None, None, "not run",
                             "CIFAR-10 runs with --cifar (VGG-16 with --backend cuda, a "
                             "width-reduced VGG-16 otherwise)"))
        out["works"]["work1"] = {"base": base, "by_fraction": {str(k): v
                                                               for k, v in by_f.items()}}
    if "work2" in s.works:
        hw, base, by_f, dev_setting = run_work("charan2020-dac",
                                               ("software", "one-shot", "kd"), ("kd+osa",))
        m = base["methods"]
        rows.append(row(published("work2", "collapse-mnist"), m["one-shot"]["accuracy"],
                         m["one-shot"]["accuracy_std"], f"{dev_setting}, {where}"))
        if not s.cifar:
            rows.append(row(published("work2", "collapse-cifar10"), None, None, "not run",
                             "CIFAR-10 runs with --cifar (VGG-16 with --backend cuda, a "
                             "width-reduced VGG-16 otherwise)"))
        need = _needed(by_f, "kd+osa", fp32 - 0.01)
        f_at = need if need is not None else max(s.fractions)
        r = by_f[f_at]["methods"]["kd+osa"]
        tried = ", ".join(f"{f:.0%}: {by_f[f]['methods']['kd+osa']['accuracy']:.2%}"
                          for f in sorted(by_f))
        rows.append(row(published("work2", "kd-osa-mnist"), r["accuracy"], r["accuracy_std"],
                         f"{dev_setting}, KD+OSA at {f_at:.0%} of weights in SRAM, {budget}; "
                         f"tried {tried}; baseline = our FP32 ({fp32:.2%})",
                         "the paper gives no number (it restores its 'baseline'): "
                         f"{100 * (r['accuracy'] - fp32):+.2f} points against our FP32 "
                         f"teacher ({fp32:.2%}); KD alone {m['kd']['accuracy']:.2%}. "
                         + WORK2_GAP, our_fp32=fp32))
        from xbar.mapping.geometry import layer_specs
        from xbar.timing.area import sram_area_fraction
        from xbar.timing.adaptation import sram_words_per_layer

        specs = layer_specs(teacher.model, tuple(ds.input_shape))
        area_at = {f: sram_area_fraction(specs, sram_words_per_layer(specs, f), hw)
                   for f in s.fractions}
        if need is not None:
            rows.append(row(published("work2", "osa-area"), area_at[need], None,
                             f"{dev_setting}: SRAM storage (bit cells + periphery, "
                             f"{hw.adaptation.sram_word_bits}-bit words) for KD+OSA at "
                             f"{need:.0%} of weights, the smallest fraction within 1 point of "
                             f"FP32, over the chip's area ([area] defaults)",
                             "area by fraction tried: " + ", ".join(
                                 f"{f:.0%}: {100 * a:.2f} %" for f, a in sorted(area_at.items()))))
        else:
            rows.append(row(published("work2", "osa-area"), None, None,
                             f"{dev_setting}: no tried SRAM fraction brought KD+OSA within 1 "
                             "point of FP32",
                             "area of the SRAM by fraction tried: " + ", ".join(
                                 f"{f:.0%}: {100 * a:.2f} %" for f, a in sorted(area_at.items()))))
        out["works"]["work2"] = {"base": base, "by_fraction": {str(k): v
                                                               for k, v in by_f.items()}}
    for work in s.works:
        if work in WORK_MODULES:
            say(f"{work}")
            rows.extend(importlib.import_module(WORK_MODULES[work]).rows(s, teacher, say, out))
    if s.cifar:
        rows.extend(_cifar_rows(s, say, out))
    return out


def _cifar_rows(s: ReproduceSettings, say: Callable[[str], None],
                out: dict[str, Any]) -> list[dict[str, Any]]:
    """The CIFAR-10 rows: work 1's KD+RSA at 5 % and work 2's collapse, on VGG-16 on the cuda
    backend and on the width-reduced ``vgg16-narrow`` otherwise (named in each row)."""
    import dataclasses

    from xbar.config import load_hardware
    from xbar.devices.presets import preset, preset_hardware
    from xbar.mapping.data.workflow import load_teacher
    from xbar.mapping.recovery.compare import CompareSettings, compare
    from xbar.mapping.recovery.techniques.kd import KDConfig
    from xbar.mapping.recovery.techniques.sram import AdaptConfig

    from xbar.kernel_torch import resolve_backend

    backend = resolve_backend(s.backend)
    full = backend == "cuda"
    model = "vgg16" if full else "vgg16-narrow"
    label = ("VGG-16 (cuda backend)" if full else
             f"width-reduced VGG-16 (vgg16-narrow: 1/8 of every width, {backend} backend)")
    say(f"CIFAR-10: teacher {model}")
    teacher = load_teacher(model, "cifar10", s.data_dir, backend=backend)
    ds = teacher.dataset
    if s.cifar_test_limit is not None and s.cifar_test_limit < len(ds.y_test):
        # An evenly strided subset: the image-folder test set is ordered by class, so the
        # first N images would hold only the first classes.
        idx = np.linspace(0, len(ds.y_test) - 1, s.cifar_test_limit).round().astype(int)
        ds = dataclasses.replace(ds, x_test=ds.x_test[idx], y_test=ds.y_test[idx])
    from xbar.mapping.data.train import evaluate
    fp32 = evaluate(teacher.model, ds.x_test, ds.y_test)
    where = (f"{label} on CIFAR-10 ({len(ds.y_test)} test images), FP32 {fp32:.2%}, "
             f"{s.chips} chips")
    adapt_cfg = AdaptConfig(steps=s.steps, batch_size=s.batch)
    kd_cfg = KDConfig(epochs=s.kd_epochs)
    rows = []
    out["cifar"] = {"model": model, "label": label, "fp32_accuracy": fp32,
                    "test_images": len(ds.y_test)}
    if "work1" in s.works:
        hw = load_hardware(preset_hardware("charan2020-jxcdc"))
        say("CIFAR-10: work 1, KD+RSA at 5 %")
        res = compare(teacher.model, ds, preset("charan2020-jxcdc"), hw.xbar,
                      CompareSettings(sram_ratio=0.05, chips=s.chips, seed=s.seed,
                                      methods=("one-shot", "kd", "kd+rsa"), adapt=adapt_cfg,
                                      kd=kd_cfg, backend=backend),
                      hw.timing, hw.programming, hw.adaptation)
        m = res["methods"]
        rows.append(row(published("work1", "kd-rsa-cifar10"), m["kd+rsa"]["accuracy"],
                         m["kd+rsa"]["accuracy_std"],
                         f"{where}; charan2020-jxcdc, 5 % SRAM, {s.steps} x {s.batch}",
                         f"our FP32 {fp32:.2%} (paper 93.35 %); one-shot "
                         f"{m['one-shot']['accuracy']:.2%}, KD {m['kd']['accuracy']:.2%}"))
        out["cifar"]["work1"] = res
    if "work2" in s.works:
        hw = load_hardware(preset_hardware("charan2020-dac"))
        say("CIFAR-10: work 2, one-shot on the DAC 2020 cell")
        res = compare(teacher.model, ds, preset("charan2020-dac"), hw.xbar,
                      CompareSettings(chips=s.chips, seed=s.seed, methods=("one-shot",),
                                      adapt=adapt_cfg, kd=kd_cfg, backend=backend),
                      hw.timing, hw.programming, hw.adaptation)
        m = res["methods"]
        rows.append(row(published("work2", "collapse-cifar10"), m["one-shot"]["accuracy"],
                         m["one-shot"]["accuracy_std"],
                         f"{where}; charan2020-dac, hardware {preset_hardware('charan2020-dac')!r}",
                         "10 classes: chance is 10 %"))
        out["cifar"]["work2"] = res
    return rows
