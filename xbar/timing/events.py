"""What each layer of a mapped network does in one inference: event counts in closed form.

Counts come from the same layer plan the timing engine runs
(:func:`xbar.timing.closed_form.plan_layer`), per burst and per layer, never one event per
cell or cycle; the notation (``P``, ``S``, ``A``, ``m_t``, ``K``, ``u_t``, ``r_t``) and what
each event costs are in :mod:`xbar.timing.energy`. Energy (:mod:`xbar.timing.energy`) and
the adaptation SRAM's area (:mod:`xbar.timing.area`) both read these counts, so they live in
this module of their own, which neither of them is imported by.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from xbar.config import HardwareConfig
from xbar.errors import ConfigError
from xbar.timing.closed_form import LayerPlan, activation_bytes, plan_network
from xbar.timing.network import LayerSpec, check_chain

__all__ = ["LayerEvents", "layer_events", "per_layer_values"]


@dataclass(frozen=True)
class LayerEvents:
    """What one layer does in one inference (the closed forms of
    :mod:`xbar.timing.energy`).

    Attributes:
        name: Layer name.
        macs: Multiply-accumulates of the layer (P n_in n_out).
        cells: Cells of one copy of its tile set (weights, G- and reference columns).
        cell_reads: Cell reads (a cell read once per array read).
        array_reads: Array reads (one input slice on one array).
        word_line_drives: DAC word-line drives.
        conversions: ADC conversions (each followed by one shift-and-add).
        accumulations: Partial-sum additions of the row-tile reduction.
        post_ops: Activation/pooling operations.
        buffer_bytes: Bytes written into and read from its input buffer.
        interconnect_bytes: Bytes of its input carried by the interconnect.
        sram_words: Its adaptation SRAM words.
        sram_word_reads: SRAM word reads of the digital MVM beside the arrays.
        slices: Slices per MVM (S).
        positions: Output positions (P).
    """

    name: str
    macs: int
    cells: int
    cell_reads: int
    array_reads: int
    word_line_drives: int
    conversions: int
    accumulations: int
    post_ops: int
    buffer_bytes: int
    interconnect_bytes: int
    sram_words: int
    sram_word_reads: int
    slices: int
    positions: int


def _events(plan: LayerPlan, hw: HardwareConfig, words: int) -> LayerEvents:
    spec, rows_per_array = plan.spec, hw.array.rows
    a, k = plan.arrays_per_tile, plan.rows
    cell_reads = array_reads = drives = conversions = 0
    cells = 0
    for t in plan.tiles:
        r_t = min(rows_per_array, spec.n_in - t.row_tile * rows_per_array)
        n = t.mvms_per_row * k * plan.slices * a
        array_reads += n
        drives += n * r_t
        conversions += n * t.used_cols
        cell_reads += n * r_t * t.used_cols
        if t.copy == 0:
            cells += a * r_t * t.used_cols
    p = spec.positions
    return LayerEvents(
        name=spec.name, macs=p * spec.n_in * spec.n_out, cells=cells, cell_reads=cell_reads,
        array_reads=array_reads, word_line_drives=drives, conversions=conversions,
        accumulations=p * (plan.row_tiles - 1) * spec.n_out, post_ops=p * spec.n_out,
        buffer_bytes=plan.input_bytes + p * spec.n_in * spec.groups * activation_bytes(hw.xbar),
        interconnect_bytes=plan.input_bytes, sram_words=words, sram_word_reads=p * words,
        slices=plan.slices, positions=p)


def per_layer_values(specs: Sequence[LayerSpec], values: Any, what: str, default: Any) -> list[Any]:
    """``values`` per layer: None (the default), a sequence aligned with ``specs`` or a
    mapping by layer name."""
    if values is None:
        return [default] * len(specs)
    if isinstance(values, Mapping):
        unknown = sorted(set(values) - {s.name for s in specs})
        if unknown:
            raise ConfigError(f"{what}: unknown layer name(s) {unknown}; the network's layers: "
                              f"{[s.name for s in specs]}")
        return [values.get(s.name, default) for s in specs]
    values = list(values)
    if len(values) != len(specs):
        raise ConfigError(f"{what}: {len(values)} values for {len(specs)} layers; give one "
                          "per layer, in the network's order")
    return values


def layer_events(specs: Sequence[LayerSpec], hw: HardwareConfig | None = None,
                 sram_words: Sequence[int] | Mapping[str, int] | None = None
                 ) -> list[LayerEvents]:
    """Event counts of each layer in one inference (``sram_words``: per layer, default 0)."""
    hw = hw or HardwareConfig()
    specs = list(specs)
    check_chain(specs)
    words = per_layer_values(specs, sram_words, "sram_words", 0)
    for s, w in zip(specs, words):
        if isinstance(w, bool) or not isinstance(w, int) or not 0 <= w <= s.n_in * s.n_out:
            raise ConfigError(f"sram_words of layer {s.name!r} = {w!r} is invalid; allowed: an "
                              f"integer in [0, {s.n_in * s.n_out}] (its weights)")
    plans = plan_network(specs, hw.xbar, hw.timing)
    return [_events(p, hw, w) for p, w in zip(plans, words)]
