"""The RRAM cell: conductance levels, programming variation, read noise, stuck-at faults.

A :class:`Device` describes one cell technology. It knows the physics and statistics of a
single 1T1R cell and nothing about networks or arrays. All conductances are in microsiemens
(uS); a read current in microamperes is ``G_us * V``.

Read disturb (each read pulse nudges a cell toward a fixed state) is declared here and
applied by :mod:`xbar.devices.read_disturb`; off by default. Conductance relaxation (a
written cell's mean shift and spread growing with the log of the time since its write) is
declared here and applied by :mod:`xbar.devices.relaxation`; off by default. What the model
leaves out: temperature, non-linear I-V (the cell is an
ohmic conductance at the read voltage), wire resistance (IR drop) and sneak paths (the 1T1R
access transistor suppresses them).
"""

from __future__ import annotations

import math

from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np
from xbar.devices.programming import CellProgramming
from xbar.errors import ConfigError
from xbar.params import INF, fail, param, validate

VARIATION_MODELS = ("none", "gaussian", "lognormal", "table", "polynomial")
SIGMA_REFERENCES = ("level", "g_max", "range", "spacing")
READ_DISTURB_TARGETS = ("g_max", "g_min")
WEIGHT_MAPPINGS = ("", "differential", "offset")  # "": the device fixes none


def _fail(name: str, value: Any, allowed: str) -> None:
    fail("Device", name, value, allowed)


@dataclass(frozen=True)
class Device(CellProgramming):
    """One RRAM cell technology.

    Attributes:
        name: Short identifier, shown in listings and written into result files.
        g_min_us: Lowest conductance (high-resistance state, HRS) in uS; > 0.
        g_max_us: Highest conductance (low-resistance state, LRS) in uS; > g_min_us.
        n_levels: Number of programmable conductance levels, >= 2.
        levels_us: Explicit level conductances in uS, ascending, inside [g_min_us, g_max_us].
            Empty (the default) means ``n_levels`` levels spaced uniformly in conductance
            from g_min_us to g_max_us.
        variation: Programming variation, the scatter of a programmed cell around its
            level (split into a device-to-device and a cycle-to-cycle part by
            ``c2c_fraction``):
            ``"none"``;
            ``"gaussian"``: G = G_level + sigma * s * N(0, 1), where s is set by
            ``sigma_reference`` (the level itself, g_max, g_max - g_min, or the level
            spacing);
            ``"lognormal"``: G = G_level * exp(sigma * N(0, 1)) (sigma in natural-log units;
            the median is the level, the mean sits exp(sigma^2 / 2) above it);
            ``"table"``: G = mean_us[l] + std_us[l] * N(0, 1), a measured per-level table;
            ``"polynomial"``: G = G_level + sigma(G_level) * N(0, 1) with sigma in uS given by
            the polynomial ``sum_k sigma_poly_us[k] * x**k``, x = G_level / poly_g_ref_us.
            Every draw is then clipped to [g_min_us, g_max_us] (:meth:`landed`): the model
            takes g_min and g_max as hard bounds (no cell conducts less than its lowest state
            or more than its highest). That is intended, not a bug, but not neutral: a level
            on a bound loses the half of its spread beyond it (Gaussian: the cells' mean
            moves inward by 0.40 x the spread and their std falls to 0.58 x; lognormal at the
            presets' sigmas: 0.33-0.81 x). On differential pairs the idle cell of every pair
            sits at level 0 = g_min, so every nonzero weight shrinks toward zero by 0.40 x
            the idle cell's spread (over g_scale) and, with a spread the same at every level,
            its error std is 0.82 x what ``sigma`` implies (a zero weight's: 0.58 x); a weight
            at the top level loses its upward half too. At the presets' sigmas, in % of
            g_max - g_min against the same draws unclipped: the level-0 mean rises by 0.03
            (charan2020-jxcdc), 0.10 (charan2020-dac), 0.74 (wan2022), 1.1 (lv2024-mlc);
            the top level's mean falls by 4.0, 28 (lognormal 0.5: 15 % below the level
            itself), 1.1, 16. For lognormal the lower clip guards nothing physical (its
            draws are > 0 anyway): it encodes the assumption that g_min is a hard floor, as
            the upper clip does for g_max. Numbers and their effect on accuracy and its
            spread over chips: docs/variation.md.
        sigma: Relative spread for ``gaussian`` (a fraction, 0.1 = 10 %) or the log-space
            standard deviation for ``lognormal``; >= 0.
        sigma_reference: What the Gaussian sigma is relative to: ``"level"`` (multiplicative
            noise, sigma * G_level), ``"g_max"`` (sigma * g_max_us, the same for every level),
            ``"range"`` (sigma * (g_max_us - g_min_us)) or ``"spacing"`` (sigma times the
            spacing between adjacent levels, the same for every level: (g_max_us - g_min_us)
            / (n_levels - 1) for uniform levels, the mean spacing of ``levels_us`` otherwise,
            i.e. (levels_us[-1] - levels_us[0]) / (n_levels - 1)).
        c2c_fraction: The share of the programming variance that is cycle-to-cycle, in
            [0, 1]. Every model above is ``centre + spread * z`` (``lognormal``: in log
            space) with z ~ N(0, 1); z = sqrt(1 - f) * z_d2d + sqrt(f) * z_c2c, where z_d2d is
            the cell's own, fixed for the life of the chip (device-to-device: what a test
            pass can measure and every later write repeats), and z_c2c is drawn afresh at
            every write of the cell (cycle-to-cycle: one-shot programming, a rewrite). The
            total spread is the same for any f. Default 0.5: an assumption where a source gives
            only a total (HfO2 RRAM shows cycle-to-cycle spreads of the same order as
            device-to-device ones: Ambrogio et al., IEEE TED 61(8), 2014; Fantini et al.,
            IMW 2013; resistances correlate over only ~40 cycles: Chen et al., IEEE EDL
            37(6), 2016, doi 10.1109/LED.2016.2553370). Each preset states its own.
        level_mean_us: Per-level programmed mean conductance in uS (``table`` only).
        level_std_us: Per-level programmed standard deviation in uS (``table`` only).
        sigma_poly_us: Polynomial coefficients, lowest order first, in uS (``polynomial``).
        poly_g_ref_us: Normalising conductance x = G / poly_g_ref_us for the polynomial, uS.
        read_noise: Cycle-to-cycle read noise, relative standard deviation of the conductance
            seen by each read (a fraction: 0.01 = 1 %), drawn fresh on every read; >= 0.
        sa0_rate: Fraction of cells stuck at g_min_us (stuck-at-0, HRS), in [0, 1].
        sa1_rate: Fraction of cells stuck at g_max_us (stuck-at-1, LRS), in [0, 1];
            sa0_rate + sa1_rate <= 1. Stuck cells ignore programming.
        read_disturb_rate: Read disturb: the fraction of its distance to
            ``read_disturb_toward`` a healthy cell moves on every read pulse (0 = off), so
            G_n = G_* + (G_0 - G_*) (1 - rate)^n (:mod:`xbar.devices.read_disturb`).
        read_disturb_toward: The state read disturb pulls cells toward: ``"g_max"`` (LRS,
            reads of SET polarity) or ``"g_min"`` (HRS, reads of RESET polarity).
        relax_mean_us_per_ln_t: Relaxation: the mean shift of a healthy cell's conductance
            per unit of ln(age / relax_t0_s), in uS (negative: cells decay toward lower
            conductance); :mod:`xbar.devices.relaxation`.
        relax_std_us_per_ln_t: Relaxation: the growth of the cells' spread per unit of
            ln(age / relax_t0_s), in uS (>= 0).
        relax_std0_us: Relaxation: the spread at relax_t0_s, in uS (>= 0).
        relax_t0_s: Relaxation: the reference time t0, in seconds (ages below it count as
            t0); > 0 when any of the three relaxation figures is nonzero. All four zero (the
            default): no relaxation.
        weight_mapping: The weight mapping the device's source fixes: ``"offset"`` (one
            cell per weight against a reference column), ``"differential"`` (a cell pair), or
            empty (the default): none, the hardware decides. A chip whose
            ``ArrayConfig.weight_mapping`` contradicts it is refused
            (:func:`xbar.layout.check_device_mapping`); ``--device`` without ``--hw`` uses
            the hardware it implies (:func:`xbar.devices.presets.implied_hardware`).
        source: Where the numbers come from (paper, data set, or "user").
    """

    name: str = param("custom", doc="Short identifier, shown in listings and result files.")
    g_min_us: float = param(1.0, unit="uS", range=(0, INF, True, True),
                            note="a cell always leaks: R_off is finite",
                            doc="Lowest conductance (high-resistance state, HRS).")
    g_max_us: float = param(100.0, unit="uS", range=(0, INF, True, True),
                            note="and > g_min_us",
                            doc="Highest conductance (low-resistance state, LRS).")
    n_levels: int = param(16, unit="levels", range=(2, 65536),
                          doc="Number of programmable conductance levels.")
    levels_us: tuple[float, ...] = param(
        (), kind=tuple, item=float, unit="uS",
        note="n_levels ascending values inside [g_min_us, g_max_us]",
        doc="Explicit level conductances; empty: n_levels uniformly spaced levels.")
    variation: str = param("none", choices=VARIATION_MODELS,
                           doc="Programming variation model (split by c2c_fraction).")
    sigma: float = param(0.0, unit="fraction", range=(0, 10), note="a fraction, not a percent",
                         doc="Relative spread (gaussian) or log-space sigma (lognormal).")
    sigma_reference: str = param("level", choices=SIGMA_REFERENCES,
                                 doc="What the gaussian sigma is relative to (spacing: the "
                                     "mean spacing of adjacent levels).")
    c2c_fraction: float = param(0.5, unit="fraction", range=(0, 1),
                                note="0: all device-to-device; 1: all cycle-to-cycle",
                                doc="Share of the programming variance drawn afresh at every "
                                    "write (the rest is fixed per cell).")
    level_mean_us: tuple[float, ...] = param(
        (), kind=tuple, item=float, unit="uS", note="n_levels values; variation = table",
        doc="Per-level programmed mean conductance (variation = table).")
    level_std_us: tuple[float, ...] = param(
        (), kind=tuple, item=float, unit="uS", note="n_levels values >= 0; variation = table",
        doc="Per-level programmed standard deviation (variation = table).")
    sigma_poly_us: tuple[float, ...] = param(
        (), kind=tuple, item=float, unit="uS",
        note="lowest order first; variation = polynomial",
        doc="Coefficients of sigma(G) in uS (variation = polynomial).")
    poly_g_ref_us: float = param(0.0, unit="uS", range=(0, INF),
                                 note="> 0 when variation = polynomial",
                                 doc="Normalising conductance x = G / poly_g_ref_us.")
    read_noise: float = param(0.0, unit="fraction", range=(0, 1),
                              note="a fraction: 0.01 = 1 %",
                              doc="Read noise: relative sigma of the conductance on every read.")
    sa0_rate: float = param(0.0, unit="fraction", range=(0, 1),
                            note="a fraction, not a percent",
                            doc="Fraction of cells stuck at g_min_us (stuck-at-0, HRS).")
    sa1_rate: float = param(0.0, unit="fraction", range=(0, 1),
                            note="a fraction, not a percent; sa0_rate + sa1_rate <= 1",
                            doc="Fraction of cells stuck at g_max_us (stuck-at-1, LRS).")
    read_disturb_rate: float = param(0.0, unit="fraction", range=(0, 1),
                                     note="per read pulse, of the distance left; 0 = off",
                                     doc="Read disturb: fraction of the way to "
                                         "read_disturb_toward a cell moves per read.")
    read_disturb_toward: str = param("g_max", choices=READ_DISTURB_TARGETS,
                                     doc="The state read disturb pulls cells toward.")
    relax_mean_us_per_ln_t: float = param(
        0.0, unit="uS", range=(-1e6, 1e6),
        note="per unit of ln(age / relax_t0_s); negative: toward lower conductance",
        doc="Relaxation: mean conductance shift per unit of ln(age / t0).")
    relax_std_us_per_ln_t: float = param(
        0.0, unit="uS", range=(0, INF), note="per unit of ln(age / relax_t0_s)",
        doc="Relaxation: growth of the cells' spread per unit of ln(age / t0).")
    relax_std0_us: float = param(0.0, unit="uS", range=(0, INF),
                                 doc="Relaxation: the cells' spread at age t0.")
    relax_t0_s: float = param(0.0, unit="s", range=(0, INF),
                              note="> 0 when any relaxation figure is nonzero",
                              doc="Relaxation: reference time t0 (younger ages count as t0).")
    weight_mapping: str = param("", choices=WEIGHT_MAPPINGS, nonempty=False,
                                doc="The weight mapping the device's source fixes; empty: "
                                    "none, the hardware decides.")
    source: str = param("user", nonempty=False,
                        doc="Where the numbers come from (paper, data set, or user).")
    _levels: np.ndarray = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        validate(self)  # every field against its declaration: type, finiteness, range
        if not self.g_max_us > self.g_min_us:
            _fail("g_max_us", self.g_max_us, f"> g_min_us = {self.g_min_us} uS")
        if self.levels_us:
            lv = np.asarray(self.levels_us)
            if len(lv) != self.n_levels:
                _fail("levels_us", self.levels_us, f"exactly n_levels = {self.n_levels} values")
            if np.any(np.diff(lv) <= 0):
                _fail("levels_us", self.levels_us, "strictly ascending values")
            if lv[0] < self.g_min_us or lv[-1] > self.g_max_us:
                _fail("levels_us", self.levels_us,
                      f"values inside [g_min_us, g_max_us] = [{self.g_min_us}, {self.g_max_us}]")
            levels = lv
        else:
            levels = np.linspace(self.g_min_us, self.g_max_us, self.n_levels)
        object.__setattr__(self, "_levels", levels)
        if self.variation == "table":
            for name in ("level_mean_us", "level_std_us"):
                if len(getattr(self, name)) != self.n_levels:
                    _fail(name, getattr(self, name),
                          f"n_levels = {self.n_levels} values (required by variation='table')")
            if any(s < 0 for s in self.level_std_us):
                _fail("level_std_us", self.level_std_us, "values >= 0 uS")
            if any(not (self.g_min_us <= m <= self.g_max_us) for m in self.level_mean_us):
                _fail("level_mean_us", self.level_mean_us,
                      f"values inside [{self.g_min_us}, {self.g_max_us}] uS")
        if self.variation == "polynomial":
            if not self.sigma_poly_us:
                _fail("sigma_poly_us", self.sigma_poly_us,
                      "at least one coefficient (required by variation='polynomial')")
            if not self.poly_g_ref_us > 0:
                _fail("poly_g_ref_us", self.poly_g_ref_us, "> 0 uS")
            if np.any(self.sigma_at(levels) < 0):
                _fail("sigma_poly_us", self.sigma_poly_us,
                      "coefficients giving sigma >= 0 at every level")
        if self.sa0_rate + self.sa1_rate > 1:
            _fail("sa1_rate", self.sa1_rate, f"<= 1 - sa0_rate = {1 - self.sa0_rate}")
        if self.has_relaxation() and not self.relax_t0_s > 0:
            _fail("relax_t0_s", self.relax_t0_s,
                  "> 0 s when a relaxation figure (relax_mean_us_per_ln_t, "
                  "relax_std_us_per_ln_t, relax_std0_us) is nonzero")

    # ------------------------------------------------------------------ constructors
    @classmethod
    def from_resistance(cls, r_on_ohm: float, r_off_ohm: float, **kwargs: Any) -> "Device":
        """Build a device from its on (LRS) and off (HRS) resistance in ohms."""
        if not (r_on_ohm > 0):
            raise ConfigError(f"r_on_ohm = {r_on_ohm!r} is invalid; allowed: > 0 ohm")
        if not (r_off_ohm > r_on_ohm):
            raise ConfigError(f"r_off_ohm = {r_off_ohm!r} is invalid; allowed: > r_on_ohm "
                             f"= {r_on_ohm} ohm")
        return cls(g_min_us=1e6 / r_off_ohm, g_max_us=1e6 / r_on_ohm, **kwargs)

    def replace(self, **changes: Any) -> "Device":
        """A copy with some fields changed (validated again)."""
        values = {f.name: getattr(self, f.name) for f in fields(self) if f.init}
        unknown = set(changes) - set(values)
        if unknown:
            raise ConfigError(f"unknown Device field(s) {sorted(unknown)}; "
                             f"valid fields: {sorted(values)}")
        values.update(changes)
        return Device(**values)

    def to_dict(self) -> dict[str, Any]:
        """Every parameter, by field name (tuples as lists)."""
        out: dict[str, Any] = {}
        for f in fields(self):
            if f.init:
                v = getattr(self, f.name)
                out[f.name] = list(v) if isinstance(v, tuple) else v
        return out

    # ------------------------------------------------------------------ properties
    @property
    def levels(self) -> np.ndarray:
        """Nominal level conductances in uS, ascending (a copy)."""
        return self._levels.copy()

    @property
    def r_on_ohm(self) -> float:
        return 1e6 / self.g_max_us

    @property
    def r_off_ohm(self) -> float:
        return 1e6 / self.g_min_us

    @property
    def on_off_ratio(self) -> float:
        return self.g_max_us / self.g_min_us

    @property
    def is_ideal(self) -> bool:
        """True when programming is exact, reads neither noisy nor disturbing, no cell stuck."""
        return (self.variation == "none" or self._zero_spread()) and self.read_noise == 0 \
            and self.sa0_rate == 0 and self.sa1_rate == 0 and self.read_disturb_rate == 0 \
            and not self.has_relaxation()

    def has_relaxation(self) -> bool:
        """True when written cells relax with time (a relaxation figure is nonzero)."""
        return bool(self.relax_mean_us_per_ln_t or self.relax_std_us_per_ln_t
                    or self.relax_std0_us)

    def disturbed_by(self, reads_per_s: float) -> bool:
        """True when reading every cell ``reads_per_s`` times a second moves it (read
        disturb on, reads > 0). Raises ConfigError unless ``reads_per_s`` is a finite
        number >= 0."""
        rate = float(reads_per_s)
        if not math.isfinite(rate) or rate < 0:
            raise ConfigError(f"reads_per_s = {reads_per_s!r} is invalid; allowed: a finite "
                              "number of reads per second >= 0")
        return rate > 0 and self.read_disturb_rate > 0

    def ages(self, reads_per_s: float = 0.0) -> bool:
        """True when a programmed cell changes with time: it relaxes, or it is read
        ``reads_per_s`` times a second and read disturb moves it."""
        return self.disturbed_by(reads_per_s) or self.has_relaxation()

    def _zero_spread(self) -> bool:
        if self.variation in ("gaussian", "lognormal"):
            return self.sigma == 0
        if self.variation == "table":
            return all(s == 0 for s in self.level_std_us) and \
                np.allclose(self.level_mean_us, self._levels)
        if self.variation == "polynomial":
            return bool(np.all(self.sigma_at(self._levels) == 0))
        return True

    def sigma_at(self, g_us: np.ndarray) -> np.ndarray:
        """Programming standard deviation in uS at nominal conductance ``g_us``."""
        g = np.asarray(g_us, dtype=np.float64)
        if self.variation == "gaussian":
            ref = g if self.sigma_reference == "level" else self._sigma_scale_us()
            return self.sigma * np.broadcast_to(ref, g.shape)
        if self.variation == "polynomial":
            x = g / self.poly_g_ref_us
            return np.polynomial.polynomial.polyval(x, np.asarray(self.sigma_poly_us))
        if self.variation == "table":
            idx = self.nearest_level(g)
            return np.asarray(self.level_std_us)[idx]
        if self.variation == "lognormal":
            return g * np.sqrt(np.expm1(self.sigma ** 2)) * np.exp(self.sigma ** 2 / 2)
        return np.zeros_like(g)

    def _sigma_scale_us(self) -> float:
        """The uS a gaussian sigma of 1 means for the level-independent references."""
        if self.sigma_reference == "g_max":
            return self.g_max_us
        if self.sigma_reference == "spacing":   # mean spacing of adjacent levels
            return float(self._levels[-1] - self._levels[0]) / (self.n_levels - 1)
        return self.g_max_us - self.g_min_us   # range

    def summary(self) -> str:
        """One line with the key figures, for listings."""
        var = {"none": "none", "gaussian": f"gaussian {self.sigma:g} x {self.sigma_reference}",
               "lognormal": f"lognormal {self.sigma:g}", "table": "measured table",
               "polynomial": "sigma(G) polynomial"}[self.variation]
        if self.has_c2c() or (self.c2c_fraction == 0 and var != "none"):
            var += f" ({100 * (1 - self.c2c_fraction):g} % of its variance per cell)"
        relax = (f", relaxation {self.relax_mean_us_per_ln_t:.3g} ln(t/{self.relax_t0_s:g} s) "
                 f"uS +- ({self.relax_std_us_per_ln_t:.3g} ln(t/{self.relax_t0_s:g} s) + "
                 f"{self.relax_std0_us:.3g}) uS" if self.has_relaxation() else "")
        return (f"{self.g_min_us:.4g}-{self.g_max_us:.4g} uS, {self.n_levels} levels, "
                f"variation {var}, read noise {self.read_noise:g}, "
                f"SA0 {self.sa0_rate:g}, SA1 {self.sa1_rate:g}{relax}")
