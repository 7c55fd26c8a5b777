"""Work 3 (ITT-RNA, TCAD 2020; DATE 2017): its methods in ``xbar compare`` and its rows in
``xbar reproduce``.

Three methods, each on one chip instance (:mod:`xbar.mapping.recovery.registry`):

=====================  =========================================================================
fault-aware-map        test pass (:mod:`.techniques.fault_map`), rows matched to the map
                       (:mod:`.techniques.fault_aware`), the teacher programmed one-shot onto them
fault-aware-train      the same map and rows, the network retrained off device against the map
                       (:mod:`.techniques.fault_train`, with the layer-by-layer adjustment
                       for MLPs), then programmed one-shot
fault-aware+on-chip    fault-aware-train, then a few on-device retraining iterations that
                       rewrite cells (:mod:`.techniques.on_chip`)
=====================  =========================================================================

Costs (``MethodOutcome``): the test pass's two writes and two reads per cell are added to
programming (``program_s``, ``program_pj``, ``pulses``) and reported alone as ``test_s``;
matching and training run on the host and are reported as ``map_host_s`` and
``offline_train_host_s`` (wall seconds of this machine, not chip time); on-device retraining
is ``adapt_s`` (passes + rewrites) with ``rewrite_s``, ``rewrite_pulses``, ``rewrites`` and
``endurance_cycles_max`` / ``_mean`` (writes per cell: the test's 2, the programming's 1 and
the rewrites).

The stuck-at naming: our SA0 is stuck at g_min (the high-resistance state), SA1 stuck at g_max
(the low-resistance state), the JxCDC chip's 9.04 % : 1.75 %.

Its rows in ``xbar reproduce work3``: ITT-RNA's two claims beside the simulated losses.

Both rows run :func:`xbar.mapping.recovery.compare.compare` on the reproduce teacher (MNIST
LeNet-5; the digits CNN with ``--quick``) on the default hardware (differential pairs,
128 x 128 arrays) with one-shot and the three work 3 methods, and report the loss of the
whole flow, ``fault-aware+on-chip`` (test, matched rows, fault-aware training, a few
on-device retraining iterations), against the FP32 teacher:

* ``loss-stuck-20``: 20 % of cells stuck, SA0:SA1 = 9.04:1.75 (the JxCDC chip's split; our
  SA0 = stuck at g_min, the high-resistance state), no programming variation
  (:func:`xbar.mapping.recovery.itt_rna.stuck_device`); the paper: loss < 1 %;
* ``loss-variation``: lognormal variation ``G_level exp(theta)``, theta ~ N(0, sigma^2), at
  :data:`xbar.mapping.recovery.itt_rna.VARIATION_SIGMA` (the paper's sigma is not public; see
  docs/work3.md for the choice), no stuck cells; the paper: loss < 1.1 %. Its variance is
  split as the JxCDC preset splits it (``c2c_fraction``): the test pass can know only the
  device-to-device part, and every later write draws a fresh cycle-to-cycle part (the row's
  note says how much of the variance the map can know).

Budgets from the reproduce settings: fault-aware training runs ``min(kd_epochs, 2)`` epochs
per round; on-device retraining ``min(steps, 10)`` iterations (5 with ``quick``).
``settings.extra`` may hold ``work3_sigma`` (the variation row's sigma) and
``work3_stuck_rate``.
"""

from __future__ import annotations

import copy
import hashlib
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from xbar.devices import Device
from xbar.devices.presets import preset
from xbar.errors import ConfigError
from xbar.mapping.data.workflow import calibration_inputs
from xbar.mapping.recovery.techniques.fault_aware import (fault_aware_perms, folded_weights,
                                                          input_activity, program_mapped)
from xbar.mapping.recovery.published import published
from xbar.mapping.cells import chip_cells
from xbar.mapping.recovery.techniques.fault_map import layer_shapes, run_test_pass
from xbar.mapping.recovery.techniques.fault_train import FaultTrainConfig, fault_aware_train
from xbar.mapping.recovery.registry import (Method, MethodContext, MethodOutcome, Work, options_of,
                                            register, register_work)
from xbar.mapping.recovery.techniques.on_chip import OnChipConfig, retrain_on_chip

__all__ = ["JXCDC_SA0", "JXCDC_SA1", "REPRODUCE_METHODS", "VARIATION_SIGMA", "Work3Options",
           "device_rate", "rows", "stuck_device", "variation_device"]

JXCDC_SA0 = 0.0904
"""Stuck at g_min (HRS) in the JxCDC chip (work 1): our SA0."""
JXCDC_SA1 = 0.0175
"""Stuck at g_max (LRS) in the JxCDC chip: our SA1."""
VARIATION_SIGMA = 0.5
"""Lognormal sigma of the variation row (the paper's is not public; module docs/work3.md)."""
REPRODUCE_METHODS = ("one-shot", "fault-aware-map", "fault-aware-train", "fault-aware+on-chip")
"""What ``xbar reproduce work3`` runs: one-shot and this work's three methods."""


@dataclass(frozen=True)
class Work3Options:
    """Settings of the work 3 methods (``CompareSettings.options[name]``).

    Attributes:
        spare_rows: Spare word lines per layer offered to the matching (at most the unused
            rows of its last row tile).
        activity: Weight the matching cost by each input's mean square on calibration images
            (False: every input alike).
        train: The fault-aware training recipe.
        on_chip: The on-device retraining budget.
    """

    spare_rows: int = 0
    activity: bool = True
    train: FaultTrainConfig = field(default_factory=FaultTrainConfig)
    on_chip: OnChipConfig = field(default_factory=OnChipConfig)

    def __post_init__(self) -> None:
        if isinstance(self.spare_rows, bool) or not isinstance(self.spare_rows, int) \
                or self.spare_rows < 0:
            raise ConfigError(f"Work3Options.spare_rows = {self.spare_rows!r} is invalid; "
                              "allowed: an integer >= 0")
        if not isinstance(self.activity, bool):
            raise ConfigError(f"Work3Options.activity = {self.activity!r} is invalid; "
                              "allowed: true or false")
        if not isinstance(self.train, FaultTrainConfig):
            raise ConfigError(f"Work3Options.train must be a FaultTrainConfig; got "
                              f"{type(self.train).__name__}")
        if not isinstance(self.on_chip, OnChipConfig):
            raise ConfigError(f"Work3Options.on_chip must be an OnChipConfig; got "
                              f"{type(self.on_chip).__name__}")


def stuck_device(rate: float = 0.2) -> Device:
    """The JxCDC cell (16 levels, 1.11-166.7 uS) with only stuck-at faults, ``rate`` of all
    cells, split SA0 : SA1 = 9.04 : 1.75 (no programming variation: the stuck-at claim alone)."""
    if not 0 <= rate <= 1:
        raise ConfigError(f"stuck-at rate = {rate!r} is invalid; allowed: a fraction in [0, 1]")
    share = JXCDC_SA0 / (JXCDC_SA0 + JXCDC_SA1)
    return preset("charan2020-jxcdc").replace(
        name=f"work3-saf{rate:g}", variation="none", sigma=0.0, sa0_rate=rate * share,
        sa1_rate=rate * (1 - share), source="charan2020-jxcdc levels; stuck-at rate scaled, "
        "SA0:SA1 = 9.04:1.75 (work 3's stuck-at sweep)")


def variation_device(sigma: float = VARIATION_SIGMA) -> Device:
    """The JxCDC cell with only lognormal variation ``G_level * exp(theta)``, theta ~ N(0,
    sigma^2) (DATE 2017's model), no stuck cells."""
    return preset("charan2020-jxcdc").replace(
        name=f"work3-lognormal{sigma:g}", variation="lognormal", sigma=sigma, sa0_rate=0.0,
        sa1_rate=0.0, source="charan2020-jxcdc levels; lognormal variation (work 3)")


class _Mapped:
    """One chip tested and its rows matched: what every work 3 method starts from."""

    def __init__(self, ctx: MethodContext, opts: Work3Options) -> None:
        start = time.perf_counter()
        self.ctx, self.opts = ctx, opts
        self.calib = calibration_inputs(ctx.dataset, seed=ctx.seed)
        base = ctx.program(ctx.teacher)
        self.cells = chip_cells(ctx.seed, layer_shapes(base), ctx.device, ctx.xbar,
                                opts.spare_rows)
        self.fmap = run_test_pass(self.cells, ctx.device, ctx.hardware, ctx.seed)
        act = input_activity(base, self.calib) if opts.activity else None
        self.perms, self.errors = fault_aware_perms(folded_weights(ctx.teacher), self.fmap,
                                                    ctx.device, ctx.xbar, act)
        self.map_host_s = time.perf_counter() - start

    def program(self, model: Any) -> Any:
        c = self.ctx
        chip = program_mapped(model, c.device, c.xbar, c.seed, self.perms, self.opts.spare_rows,
                              "column", c.shape, cells=self.cells)
        chip.calibrate(self.calib)
        return chip

    def outcome(self, chip: Any, **costs: float) -> MethodOutcome:
        c, f = self.ctx, self.fmap
        n = chip.n_cells
        ratio = (self.errors["error_matched"] / self.errors["error_identity"]
                 if self.errors["error_identity"] > 0 else 1.0)
        base = {"test_s": f.test_s, "test_pj": f.test_pj, "map_host_s": self.map_host_s,
                "expected_error_ratio": ratio, "endurance_cycles_max": 3.0,
                "endurance_cycles_mean": 3.0}
        base.update(costs)
        return MethodOutcome(chip, program_s=c.one_shot_s + f.test_s,
                             program_pj=c.one_shot_pj + f.test_pj, pulses=n + 2 * f.cells,
                             costs=base)


# The last chip's map and trained network, shared by the methods of one chip instance
# (``compare`` runs every method of a seed in turn): testing, matching and training the same
# chip twice would give the same result; their host seconds are reported with each method.
_LAST: dict[str, Any] = {}


def _key(ctx: MethodContext, opts: Work3Options) -> tuple[Any, ...]:
    # a digest of every weight and training array (not id(): ids are reused)
    h = hashlib.blake2b(digest_size=16)
    for name, v in ctx.teacher.state_dict().items():
        h.update(name.encode())
        h.update(np.ascontiguousarray(v.detach().cpu().numpy()).tobytes())
    weights = h.hexdigest()
    h = hashlib.blake2b(digest_size=16)
    for arr in (ctx.dataset.x_train, ctx.dataset.y_train):
        h.update(np.ascontiguousarray(arr).tobytes())
    data = (ctx.dataset.name, ctx.dataset.x_train.shape, h.hexdigest())
    return (weights, data, ctx.seed, ctx.device, ctx.xbar, repr(ctx.hardware.to_dict()), opts,
            ctx.shape)


def _mapped(ctx: MethodContext) -> _Mapped:
    opts: Work3Options = options_of(ctx, Work3Options)
    key = _key(ctx, opts)
    if _LAST.get("key") != key:
        _LAST.clear()
        _LAST.update(key=key, mapped=_Mapped(ctx, opts))
    m: _Mapped = _LAST["mapped"]
    m.ctx = ctx
    return m


def _run_map(ctx: MethodContext) -> MethodOutcome:
    m = _mapped(ctx)
    return m.outcome(m.program(ctx.teacher))


def _train(m: _Mapped) -> tuple[Any, dict[str, Any]]:
    if "trained" not in _LAST:
        c = m.ctx
        _LAST["trained"] = fault_aware_train(c.teacher, c.dataset, c.device, c.xbar, m.fmap,
                                             m.perms, m.opts.train, c.seed, "column",
                                             m.program)
    model, info = _LAST["trained"]
    return copy.deepcopy(model), info


def _run_train(ctx: MethodContext) -> MethodOutcome:
    m = _mapped(ctx)
    model, info = _train(m)
    return m.outcome(m.program(model), offline_train_host_s=info["offline_train_host_s"],
                     reduced_weights=float(info["reduced"]), held_weights=float(info["held"]))


def _run_on_chip(ctx: MethodContext) -> MethodOutcome:
    m = _mapped(ctx)
    model, info = _train(m)
    chip = m.program(model)
    known = [lm.stuck[np.arange(lay.matrix.n_in) if lay.layer_name not in chip.row_perms
                      else chip.row_perms[lay.layer_name]]
             for lm, lay in zip(m.fmap.layers, chip.layers)]
    wv = None
    if m.opts.on_chip.rewrite_mode == "write-verify":
        from xbar.mapping.recovery.techniques.rvw import rvw_params
        wv = rvw_params(ctx.device)
    res = retrain_on_chip(chip, ctx.dataset, folded_weights(model), known,
                          m.opts.on_chip, ctx.hardware, ctx.specs, ctx.seed, wv)
    writes = np.concatenate([w.reshape(-1) for w in res.writes_per_cell]) + 3
    out = m.outcome(chip, offline_train_host_s=info["offline_train_host_s"],
                    reduced_weights=float(info["reduced"]), held_weights=float(info["held"]),
                    rewrites=float(res.rewrites), rewrite_pulses=float(res.pulses),
                    rewrite_s=res.rewrite_s, onchip_pass_s=res.pass_s,
                    endurance_cycles_max=float(writes.max()),
                    endurance_cycles_mean=float(writes.mean()))
    out.adapt_s = res.rewrite_s + res.pass_s
    out.adapt_pj = res.rewrite_pj + res.pass_pj
    return out


register(Method("fault-aware-map", "work3", "test the chip, match weight rows to crossbar rows "
                "by bipartite matching on the fault map, program one-shot", _run_map,
                options_type=Work3Options))
register(Method("fault-aware-train", "work3", "fault-aware-map, then retrain off device with "
                "the chip's map in the loop (held, reduced and frozen weights; layer-by-layer "
                "for MLPs), program one-shot", _run_train,
                options_type=Work3Options))
register(Method("fault-aware+on-chip", "work3", "fault-aware-train, then a few on-device "
                "retraining iterations that rewrite cells", _run_on_chip,
                options_type=Work3Options))



def _extra(settings: Any, name: str, default: float, lo: float, hi: float) -> float:
    value = settings.extra.get(name, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not lo <= value <= hi:
        raise ConfigError(f"ReproduceSettings.extra[{name!r}] = {value!r} is invalid; allowed: "
                          f"a number in [{lo}, {hi}]")
    return float(value)


def rows(settings: Any, teacher: Any, say: Callable[[str], None], out: dict[str, Any]
         ) -> list[dict[str, Any]]:
    """The work 3 rows (module docstring)."""
    from xbar.config import load_hardware
    from xbar.mapping.recovery.compare import CompareSettings, compare
    from xbar.mapping.recovery.reproduce import row

    s = settings
    sigma = _extra(s, "work3_sigma", VARIATION_SIGMA, 0.0, 10.0)
    rate = _extra(s, "work3_stuck_rate", 0.2, 0.0, 1.0)
    hw = load_hardware("default")
    fp32 = teacher.software_accuracy
    opts = Work3Options(train=FaultTrainConfig(epochs=min(s.kd_epochs, 2)),
                        on_chip=OnChipConfig(iterations=min(s.steps, 5 if s.quick else 10)))
    methods = REPRODUCE_METHODS
    where = f"{s.model} on {s.dataset}"
    details: dict[str, Any] = {"sigma": sigma, "stuck_rate": rate, "fp32": fp32}
    result = []
    for fig, device, what in (
            ("loss-stuck-20", stuck_device(rate),
             f"{rate:.0%} stuck (SA0 {device_rate(rate, 0):.2%} at g_min/HRS, SA1 "
             f"{device_rate(rate, 1):.2%} at g_max/LRS), no variation"),
            ("loss-variation", variation_device(sigma),
             f"lognormal sigma {sigma:g} (sigma/mu {_ratio(sigma):.2f}), no stuck cells")):
        say(f"work3 {fig}: {', '.join(methods)}")
        cs = CompareSettings(chips=s.chips, seed=s.seed, methods=methods,
                             options={m: opts for m in methods if m != "one-shot"},
                             backend=s.backend)
        res = compare(teacher.model, teacher.dataset, device, hw, cs)
        m = res["methods"]
        full = m["fault-aware+on-chip"]
        losses = {k: fp32 - v["accuracy"] for k, v in m.items()}
        details[fig] = {"device": device.to_dict(), "methods": m, "losses": losses}
        note = ("loss = FP32 - accuracy of the whole flow (fault-aware+on-chip); losses of "
                f"one-shot {losses['one-shot']:.2%}, fault-aware-map "
                f"{losses['fault-aware-map']:.2%}, fault-aware-train "
                f"{losses['fault-aware-train']:.2%}; test {full['test_s'] * 1e3:.3g} ms, "
                f"{full['rewrites']:.0f} rewrites ({full['rewrite_s'] * 1e3:.3g} ms), "
                f"endurance max {full['endurance_cycles_max']:.0f} writes per cell")
        if device.has_c2c():
            f = device.c2c_fraction
            note += (f"; what the test pass can know: the device-to-device part of the "
                     f"variation, {1 - f:.0%} of its variance (c2c_fraction {f:g}: every write, "
                     "the test's own included, adds a fresh cycle-to-cycle draw); the map keeps "
                     f"{1 - f:g} x the measured log deviation")
        result.append(row(published("work3", fig), losses["fault-aware+on-chip"],
                          full["accuracy_std"],
                          f"{device.name}: {what}; {where}, {s.chips} chip(s); FP32 "
                          f"{fp32:.2%}", note))
    out["works"]["work3"] = details
    return result


def device_rate(rate: float, which: int) -> float:
    """The SA0 (``which`` 0) or SA1 (1) rate of :func:`stuck_device` at ``rate``."""
    d = stuck_device(rate)
    return d.sa0_rate if which == 0 else d.sa1_rate


def _ratio(sigma: float) -> float:
    """sigma / mu of a lognormal exp(sigma N(0, 1)): sqrt(exp(sigma^2) - 1)."""
    import math
    return math.sqrt(math.expm1(sigma * sigma))


register_work(Work("work3", "Song et al., ITT-RNA, IEEE TCAD 2020", rows))
