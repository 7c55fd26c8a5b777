"""Area of the chip a network is mapped on, and of its adaptation SRAM, in closed form.

Per layer: its arrays (cells in F^2, one DAC per word line, periphery), its ADCs and their
shift-and-add units, its accumulator (when it has row tiles) and activation unit (one adder
lane per value per cycle), its input buffer (the whole input map, or ``line_buffer_rows`` rows
of it); for the chip, the interconnect (and shared accumulators). The adaptation SRAM and its
gradient units are an overhead on top (:func:`sram_area`, :func:`sram_area_fraction`). The
figures per unit are the ``[area]`` section (:class:`xbar.config.AreaConfig`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from xbar.config import HardwareConfig
from xbar.errors import ConfigError
from xbar.timing.closed_form import plan_network
from xbar.timing.events import layer_events
from xbar.timing.network import LayerSpec, check_chain

__all__ = ["AREA_COMPONENTS", "AreaReport", "chip_area", "sram_area", "sram_area_fraction"]

AREA_COMPONENTS = ("cells", "dac", "periphery", "adc", "shift_add", "accumulator", "post_op",
                   "buffer")


@dataclass
class AreaReport:
    """Area of the chip, per layer and component, in um^2 (``total_mm2`` for the chip)."""

    per_layer: dict[str, dict[str, float]]
    chip_um2: dict[str, float]

    @property
    def total_um2(self) -> float:
        return float(sum(sum(c.values()) for c in self.per_layer.values())
                     + sum(self.chip_um2.values()))

    @property
    def total_mm2(self) -> float:
        return self.total_um2 * 1e-6

    @property
    def by_component(self) -> dict[str, float]:
        out = {c: float(sum(layer[c] for layer in self.per_layer.values()))
               for c in AREA_COMPONENTS}
        out.update(self.chip_um2)
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"area_mm2": self.total_mm2, "area_by_component_um2": self.by_component,
                "area_per_layer": [{"name": n, "area_um2": sum(c.values()), **c}
                                   for n, c in self.per_layer.items()]}


def chip_area(specs: Sequence[LayerSpec], hw: HardwareConfig | None = None) -> AreaReport:
    """Area of the chip a network is mapped on (module docstring), without adaptation SRAM."""
    hw = hw or HardwareConfig()
    specs = list(specs)
    check_chain(specs)
    ar, t, x = hw.area, hw.timing, hw.xbar
    per_layer: dict[str, dict[str, float]] = {}
    reduce = False
    for p in plan_network(specs, x, t):
        arrays = p.n_tiles * p.arrays_per_tile
        buffer = p.input_bytes if not t.line_buffer_rows else min(
            p.input_bytes, t.line_buffer_rows * p.input_row_bytes)
        has_acc = p.row_tiles > 1
        reduce |= has_acc
        per_layer[p.spec.name] = {
            "cells": arrays * x.array.rows * x.array.cols * ar.cell_um2,
            "dac": arrays * x.array.rows * ar.dac_um2,
            "periphery": arrays * ar.array_periphery_um2,
            "adc": p.adcs * ar.adc_um2(x.adc.bits),
            "shift_add": p.adcs * ar.shift_add_um2,
            "accumulator": (t.accumulator_values_per_cycle * ar.adder_um2
                            if has_acc and not t.accumulator_units else 0.0),
            "post_op": t.post_op_values_per_cycle * ar.adder_um2,
            "buffer": buffer * ar.buffer_um2_per_byte,
        }
    chip = {"interconnect": t.interconnect_bytes_per_cycle * ar.interconnect_um2_per_byte,
            "shared_accumulators": (t.accumulator_units * t.accumulator_values_per_cycle
                                    * ar.adder_um2 if t.accumulator_units and reduce else 0.0)}
    return AreaReport(per_layer, chip)


def sram_area(specs: Sequence[LayerSpec], sram_words: int | Sequence[int] | Mapping[str, int],
              hw: HardwareConfig | None = None) -> dict[str, float]:
    """Area of the adaptation hardware, in um^2: the SRAM bits (cells and periphery) and one
    weight-gradient unit (``grad_macs_per_cycle`` MAC lanes) per layer holding SRAM words,
    plus a digital backward unit when ``backward = "digital"``. ``sram_words``: a total
    (spread over every layer) or per layer."""
    hw = hw or HardwareConfig()
    specs = list(specs)
    if isinstance(sram_words, bool) or (isinstance(sram_words, int) and sram_words < 0):
        raise ConfigError(f"sram_words = {sram_words!r} is invalid; allowed: an integer >= 0 "
                          "or one per layer")
    if isinstance(sram_words, int):
        total, layers = sram_words, (len(specs) if sram_words else 0)
    else:
        per = layer_events(specs, hw, sram_words)
        total, layers = sum(e.sram_words for e in per), sum(1 for e in per if e.sram_words)
    ad, ar = hw.adaptation, hw.area
    return {"sram_bits": total * ad.sram_word_bits * ar.sram_bit_um2,
            "gradient_units": layers * ad.grad_macs_per_cycle * ar.mac_um2,
            "digital_backward": (ad.digital_macs_per_cycle * ar.mac_um2
                                 if ad.backward == "digital" and total else 0.0)}


def sram_area_fraction(specs: Sequence[LayerSpec],
                       sram_words: int | Sequence[int] | Mapping[str, int],
                       hw: HardwareConfig | None = None, units: bool = False) -> float:
    """The adaptation SRAM's area (bit cells and periphery) as a fraction of the chip's area
    without it: the "area overhead" of works 1 and 2 (7.86 % for OSA in work 2, which does not
    break its figure down, so the storage alone is the comparable part). ``units=True`` adds
    the weight-gradient units (and a digital backward unit) that on-chip training needs."""
    hw = hw or HardwareConfig()
    parts = sram_area(specs, sram_words, hw)
    extra = parts["sram_bits"] + (parts["gradient_units"] + parts["digital_backward"]
                                  if units else 0.0)
    return extra / chip_area(specs, hw).total_um2
