"""ADC-power-aware quantisation (CorrectNet+, Eldebiky et al., TCAD 2024): per-layer ADC bits.

CorrectNet+ chooses the quantisation (cell levels and ADC resolution) for robustness to
variation and for total ADC power. Here: a greedy search over each mapped layer's ADC
resolution that minimises the ADC energy of one inference subject to an accuracy floor
under variation, measured on programmed chips.

The hardware side:

* A chip is programmed once per chip seed (:meth:`xbar.mapping.chip.Chip.program` takes one
  :class:`~xbar.config.XbarConfig` for every layer); :func:`set_adc_bits` then gives each
  layer's matrix a copy of the configuration with its own ``adc.bits``. The kernel reads the
  resolution from the matrix's configuration on every MVM, so this is the chip's ADC
  resolution for that layer (``tests/test_work4_adc.py`` checks it against a chip programmed
  at that resolution throughout). The calibrated ADC ranges are peak currents, the same at
  every resolution, so the chip need not be recalibrated (also tested).
* ADC energy per layer and inference from the energy model (:mod:`xbar.timing.energy`): the
  layer's conversions (which do not depend on the resolution) times the energy of one
  conversion at the layer's bits (``[energy]``: MNSIM 2.0's power table, interpolated
  log-linearly, times (bits + 2) / rate by default). At a fixed inference rate, power is this
  energy times the rate, so the change in total ADC power is the change in this sum. The
  conversion time also shrinks with the bits (the closed forms of
  :mod:`xbar.timing.closed_form`): the latency is reported beside it.

The search (:func:`search_adc_bits`): on ``chips`` chips and ``images`` training images
(held out of nothing: the test set is never looked at), the reference is every layer at
``max_bits``; the floor is the reference's mean accuracy minus ``max_drop``. Starting from the
reference, each round tries lowering one layer by one bit, in order of the ADC energy that
saves (largest first), and keeps the first move whose mean accuracy stays at or above the
floor; a layer whose move failed is not tried again (lowering other layers only adds error).
It stops when no move is left. At most (layers x (max_bits - min_bits) + layers) evaluations.
The accuracy a reader compares is measured afterwards, apart from the search:
:func:`held_out_accuracy` scores the chosen bits and the uniform reference on the test set,
on the same chips (:attr:`ADCSearchResult.test_accuracy`).

Cell levels: in this simulator one weight is one differential pair (or one cell against a
reference column), never bit-sliced over several cells, so the level count changes no ADC
conversion count; ``levels`` lets the search try other level counts for robustness (each a
separately programmed set of chips) and keeps the cheapest feasible one (ties: more levels).
CorrectNet+'s search method is not public; this greedy descent is the project's choice.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from torch import nn

from xbar.config import HardwareConfig
from xbar.devices import Device
from xbar.errors import ConfigError
from xbar.mapping.chip import Chip
from xbar.mapping.data.base import Dataset
from xbar.mapping.data.workflow import calibration_inputs
from xbar.mapping.geometry import layer_specs
from xbar.params import Params, param
from xbar.timing.closed_form import network_cycles_layer_schedule
from xbar.timing.energy import inference_energy

__all__ = ["ADCSearchConfig", "ADCSearchResult", "adc_energy_table", "adc_latency_ns",
           "held_out_accuracy", "search_adc_bits", "set_adc_bits"]


@dataclass(frozen=True)
class ADCSearchConfig(Params):
    """The search's settings.

    Attributes:
        max_bits: The reference resolution every layer starts from (the uniform baseline).
        min_bits: The lowest resolution a layer may get.
        max_drop: How far (a fraction: 0.01 = 1 point) the mean accuracy may fall below the
            reference's on the same chips and images.
        chips: Chip instances the accuracy is averaged over (seeds seed, seed + 1, ...).
        images: Training images the accuracy is measured on (a seeded random subset).
        levels: Cell level counts to try (empty: only the device's own).
    """

    SECTION = "adc_search"

    max_bits: int = param(8, unit="bits", range=(2, 16), doc="Uniform reference resolution.")
    min_bits: int = param(2, unit="bits", range=(1, 16), doc="Lowest resolution of a layer.")
    max_drop: float = param(0.01, unit="fraction", range=(0, 1),
                            doc="Accuracy the search may give up against the reference.")
    chips: int = param(2, unit="chips", range=(1, 1000), doc="Chips averaged over.")
    images: int = param(500, unit="images", range=(1, 10**7),
                        doc="Training images the accuracy is measured on.")
    levels: tuple[float, ...] = param((), kind=tuple, item=float, unit="levels",
                                      nonempty=False,
                                      doc="Cell level counts to try (empty: the device's).")

    def check(self) -> None:
        if self.min_bits > self.max_bits:
            raise ConfigError(f"ADCSearchConfig.min_bits = {self.min_bits} is invalid; "
                              f"allowed: at most max_bits = {self.max_bits}")
        for n in self.levels:
            if n != int(n) or n < 2:
                raise ConfigError(f"ADCSearchConfig.levels = {list(self.levels)} is invalid; "
                                  "allowed: integers >= 2")


@dataclass
class ADCSearchResult:
    """What the search found (energies in pJ per inference, latencies in ns).

    ``reference_accuracy``, ``floor`` and ``accuracy`` are on the search's training images;
    ``test_accuracy`` and ``reference_test_accuracy`` (None until :func:`held_out_accuracy`
    fills them) on the test set, at the chosen bits and at the uniform reference.
    """

    bits: dict[str, int]
    levels: int
    reference_accuracy: float
    floor: float
    accuracy: float
    reference_adc_pj: float
    adc_pj: float
    reference_latency_ns: float
    latency_ns: float
    evaluations: int
    wall_s: float
    history: list[dict[str, Any]] = field(default_factory=list)
    test_accuracy: float | None = None
    reference_test_accuracy: float | None = None
    test_images: int | None = None

    @property
    def power_change(self) -> float:
        """(ADC energy per inference - the reference's) / the reference's: the change in
        total ADC power at a fixed inference rate."""
        return self.adc_pj / self.reference_adc_pj - 1.0

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["power_change"] = self.power_change
        return out


def _bits_list(chip: Chip, bits: Sequence[int] | Mapping[str, int]) -> list[int]:
    names = [layer.layer_name for layer in chip.layers]
    if isinstance(bits, Mapping):
        unknown = sorted(set(bits) - set(names))
        if unknown:
            raise ConfigError(f"ADC bits for unknown layer(s) {unknown}; the chip's layers: "
                              f"{names}")
        values = [bits.get(n, layer.matrix.config.adc.bits)
                  for n, layer in zip(names, chip.layers)]
    else:
        values = list(bits)
        if len(values) != len(names):
            raise ConfigError(f"{len(values)} ADC resolutions for {len(names)} layers; give one "
                              "per layer, in the chip's order")
    for n, b in zip(names, values):
        if isinstance(b, bool) or not isinstance(b, (int, np.integer)) or not 1 <= b <= 16:
            raise ConfigError(f"ADC bits of layer {n!r} = {b!r} is invalid; allowed: an "
                              "integer in [1, 16]")
    return [int(b) for b in values]


def set_adc_bits(chip: Chip, bits: Sequence[int] | Mapping[str, int]) -> None:
    """Give each layer of ``chip`` its own ADC resolution (a sequence in layer order, or a
    mapping by layer name; layers not named keep theirs). The conductances and calibrated
    ranges stay; each matrix gets a new configuration object."""
    for layer, b in zip(chip.layers, _bits_list(chip, bits)):
        if layer.matrix.config.adc.bits != b:
            layer.matrix.config = layer.matrix.config.replace(adc_bits=b)


def adc_energy_table(specs: Sequence[Any], hw: HardwareConfig, bits: Sequence[int]
                     ) -> dict[int, list[float]]:
    """ADC energy of each layer in one inference, in pJ, at each resolution of ``bits``."""
    out = {}
    for b in bits:
        e = inference_energy(specs, hw.replace(adc=dataclasses.replace(hw.adc, bits=int(b))))
        out[int(b)] = [e.per_layer[s.name]["adc"] for s in specs]
    return out


def adc_latency_ns(specs: Sequence[Any], hw: HardwareConfig, bits: Sequence[int]) -> float:
    """Latency of one inference (layer-by-layer schedule, closed form) with layer ``i`` at
    ``bits[i]`` ADC bits, in ns."""
    total = 0
    for i, (s, b) in enumerate(zip(specs, bits)):
        x = hw.xbar.replace(adc_bits=int(b))
        total += network_cycles_layer_schedule(list(specs), x, hw.timing)[i]
    return total / hw.timing.clock_ghz


def _device_with_levels(device: Device, n: int) -> Device:
    if n == device.n_levels:
        return device
    if device.levels_us or device.variation == "table":
        raise ConfigError(f"device {device.name!r} has explicit levels (levels_us or a measured "
                          "table): its level count cannot be changed by the ADC search; leave "
                          "ADCSearchConfig.levels empty")
    return dataclasses.replace(device, n_levels=int(n), name=f"{device.name}-{int(n)}lv")


def _accuracy(chips: list[Chip], x: np.ndarray, y: np.ndarray) -> float:
    return float(np.mean([c.evaluate(x, y) for c in chips]))


def _chips(model: nn.Module, dataset: Dataset, device: Device, xbar: Any, chips: int,
           seed: int) -> list[Chip]:
    """``chips`` programmed and calibrated chips (seeds seed, seed + 1, ...) on training
    images, as the search builds them."""
    shape = tuple(dataset.input_shape)
    out = []
    for c in range(chips):
        chip = Chip.program(model, device, xbar, seed + c, "column", "", shape)
        chip.calibrate(calibration_inputs(dataset, seed=seed + c))
        out.append(chip)
    return out


def held_out_accuracy(model: nn.Module, dataset: Dataset, device: Device, hw: HardwareConfig,
                      result: ADCSearchResult, config: ADCSearchConfig = ADCSearchConfig(),
                      seed: int = 0) -> ADCSearchResult:
    """``result`` with its test-set accuracies: the mean over the search's chips (the same
    seeds, programmed and calibrated as the search did) of the accuracy on every test image
    at the chosen bits and level count, and at the uniform reference (``max_bits``, the
    device's levels). The search never sees the test set; this only reports it."""
    xbar = hw.xbar.replace(adc_bits=config.max_bits)
    x, y = dataset.x_test, dataset.y_test
    reference = _accuracy(_chips(model, dataset, device, xbar, config.chips, seed), x, y)
    chosen = _chips(model, dataset, _device_with_levels(device, result.levels), xbar,
                    config.chips, seed)
    for chip in chosen:
        set_adc_bits(chip, result.bits)
    return dataclasses.replace(result, test_accuracy=_accuracy(chosen, x, y),
                               reference_test_accuracy=reference, test_images=len(y))


def search_adc_bits(model: nn.Module, dataset: Dataset, device: Device, hw: HardwareConfig,
                    config: ADCSearchConfig = ADCSearchConfig(), seed: int = 0,
                    say: Any = None) -> ADCSearchResult:
    """The per-layer ADC bits (and level count) of least ADC energy above the accuracy floor
    (module docstring). ``hw``: the hardware (its ``adc.bits`` is replaced by the search)."""
    if not isinstance(config, ADCSearchConfig):
        raise ConfigError(f"search_adc_bits needs an ADCSearchConfig; got "
                          f"{type(config).__name__}")
    say = say or (lambda _: None)
    start = time.perf_counter()
    shape = tuple(dataset.input_shape)
    specs = layer_specs(model, shape)
    table = adc_energy_table(specs, hw, range(config.min_bits, config.max_bits + 1))
    rng = np.random.default_rng(np.random.SeedSequence([seed, 41]))
    idx = np.sort(rng.choice(len(dataset.x_train), min(config.images, len(dataset.x_train)),
                             replace=False))
    x, y = dataset.x_train[idx], dataset.y_train[idx]
    xbar = hw.xbar.replace(adc_bits=config.max_bits)
    n_layers = len(specs)
    evaluations = 0

    def chips_for(dev: Device) -> list[Chip]:
        return _chips(model, dataset, dev, xbar, config.chips, seed)

    reference_chips = chips_for(device)
    reference = _accuracy(reference_chips, x, y)
    evaluations += 1
    floor = reference - config.max_drop
    history: list[dict[str, Any]] = []
    best: tuple[float, int, list[int], float] | None = None
    for n_levels in sorted({int(n) for n in config.levels} or {device.n_levels}, reverse=True):
        chips = reference_chips if n_levels == device.n_levels else chips_for(
            _device_with_levels(device, n_levels))
        bits = [config.max_bits] * n_layers
        for chip in chips:
            set_adc_bits(chip, bits)
        acc = reference if chips is reference_chips else _accuracy(chips, x, y)
        evaluations += chips is not reference_chips
        if acc < floor:
            history.append({"levels": n_levels, "bits": list(bits), "accuracy": acc,
                            "accepted": False})
            continue
        frozen: set[int] = set()
        while True:
            moves = [i for i in range(n_layers) if i not in frozen and
                     bits[i] > config.min_bits]
            moves.sort(key=lambda i: table[bits[i] - 1][i] - table[bits[i]][i])
            if not moves:
                break
            accepted = False
            for i in moves:
                trial = list(bits)
                trial[i] -= 1
                for chip in chips:
                    set_adc_bits(chip, trial)
                a = _accuracy(chips, x, y)
                evaluations += 1
                ok = a >= floor
                history.append({"levels": n_levels, "bits": trial, "accuracy": a,
                                "accepted": ok})
                say(f"ADC search: {n_levels} levels, bits {trial}: {100 * a:.2f} % "
                    f"({'kept' if ok else 'below the floor'})")
                if ok:
                    bits, acc, accepted = trial, a, True
                    break
                frozen.add(i)
            if not accepted:
                break
        energy = sum(table[b][i] for i, b in enumerate(bits))
        if best is None or energy < best[0] - 1e-9:
            best = (energy, n_levels, bits, acc)
    if best is None:
        raise ConfigError(f"no level count of {list(config.levels)} reaches the accuracy floor "
                          f"({100 * floor:.2f} %) at {config.max_bits} ADC bits")
    energy, n_levels, bits, acc = best
    ref_energy = sum(table[config.max_bits])
    return ADCSearchResult(
        bits={s.name: b for s, b in zip(specs, bits)}, levels=n_levels,
        reference_accuracy=reference, floor=floor, accuracy=acc,
        reference_adc_pj=ref_energy, adc_pj=energy,
        reference_latency_ns=adc_latency_ns(specs, hw, [config.max_bits] * n_layers),
        latency_ns=adc_latency_ns(specs, hw, bits), evaluations=evaluations,
        wall_s=time.perf_counter() - start, history=history)
