"""Closed-form cycle counts: one tile MVM, one layer, a network run layer by layer.

These formulas are the specification the event engine is tested against (the golden tests
assert equality, cycle for cycle). Notation, all in whole clock cycles:

* ``t_r = ceil(t_read_ns * clock_ghz)``: one array read (one input bit-slice).
* ``t_a = ceil((adc.bits + 2) / adc_gsps * clock_ghz)``: one ADC conversion.
* ``c = min(adc.cols_per_adc, u)``: conversions per ADC per slice, where ``u`` is the number
  of bit lines in use in the array (weight columns, plus the reference column of the offset
  mapping, packed from column 0: :meth:`xbar.layout.WeightLayout.used_columns`); ADC ``i``
  serves columns ``i * cols_per_adc ...``, so the first ADC, the busiest, converts
  ``min(cols_per_adc, u)`` of them.
* ``t_s = shift_add_cycles``.
* ``S = passes * ceil(input_bits / bits_per_read)``: slices per MVM (passes = 2 for signed
  inputs).

A burst of ``m`` MVMs is ``N = m * S`` slices, each going through read -> conversions ->
shift-add. With ``overlap_read_convert`` these are a three-stage pipeline (a flow shop of
identical jobs)::

    burst(m) = t_r + c * t_a + t_s + (N - 1) * max(t_r, c * t_a, t_s)

and without it every slice runs alone::

    burst(m) = N * (t_r + c * t_a + t_s)

A layer runs its output rows (``K = H_out`` rows of ``n = W_out`` positions; a Linear layer is
``K = 1`` row of its vectors) through three stages, each a unit of its own:

* MVM: every tile does one burst of ``ceil(n / d)`` MVMs (``d`` copies of the tile set); tiles
  sharing one ADC group take turns, so the stage takes
  ``D_mvm = max over ADC groups of the sum of their tiles' bursts``.
* Reduction: ``D_acc = n * (R - 1) * ceil(n_out / accumulator_values_per_cycle)`` for ``R``
  row tiles (0 when R = 1).
* Activation/pooling: ``D_post = n * ceil(n_out / post_op_values_per_cycle)``.

Under the layer-by-layer schedule the layer first receives its whole input over the
interconnect, ``T_in = ceil(C_in * H_in * W_in * ceil(input_bits / 8) /
interconnect_bytes_per_cycle)``, then its rows flow through the three stages::

    layer = T_in + D_mvm + D_acc + D_post + (K - 1) * max(D_mvm, D_acc, D_post)

and one inference takes the sum over the layers (layers, and inferences, run one at a time,
so nothing contends and a batch of B takes B times as long).
"""

from __future__ import annotations

from dataclasses import dataclass

from xbar.config import TimingConfig, XbarConfig
from xbar.layout import weight_layout
from xbar.timing.network import LayerSpec, ceil_div


@dataclass(frozen=True)
class TilePlan:
    """One tile of a layer (an array pair in the differential mapping, one array in the offset
    mapping) and the work it does per output row.

    Attributes:
        index: Position in the layer's tile list (copy, group, row tile, column tile order).
        copy: Which duplicate of the layer's tile set it belongs to.
        group: Convolution group.
        row_tile: Which slice of the weight rows it holds.
        col_tile: Which slice of the outputs it holds.
        used_cols: Bit lines in use per array (weights plus the offset reference column).
        conversions: ADC conversions per ADC per slice, min(cols_per_adc, used_cols).
        mvms_per_row: MVMs it does per output row (its copy's share of the row).
        burst_cycles: Cycles of that burst, per the formula in this module.
        adc_group: Index of the ADC group it uses (within the layer).
    """

    index: int
    copy: int
    group: int
    row_tile: int
    col_tile: int
    used_cols: int
    conversions: int
    mvms_per_row: int
    burst_cycles: int
    adc_group: int


@dataclass(frozen=True)
class LayerPlan:
    """A layer laid out on tiles, with the per-row durations of its stages."""

    spec: LayerSpec
    copies: int
    row_tiles: int
    col_tiles: int
    tiles: tuple[TilePlan, ...]
    adc_groups: int
    adcs: int
    arrays_per_tile: int
    slices: int
    rows: int
    positions_per_row: int
    mvm_cycles: int
    acc_cycles: int
    post_cycles: int
    input_bytes: int
    input_row_bytes: int
    input_cycles: int

    @property
    def n_tiles(self) -> int:
        return len(self.tiles)

    @property
    def stage_cycles(self) -> tuple[int, int, int]:
        return (self.mvm_cycles, self.acc_cycles, self.post_cycles)


def activation_bytes(xbar: XbarConfig) -> int:
    """Bytes of one activation on the interconnect: ceil(input_bits / 8)."""
    return ceil_div(xbar.dac.input_bits, 8)


def slices_per_mvm(xbar: XbarConfig, signed_inputs: bool) -> int:
    """S = passes * ceil(input_bits / bits_per_read)."""
    return (2 if signed_inputs else 1) * xbar.dac.n_slices


def burst_cycles(m: int, slices: int, conversions: int, t_read: int, t_adc: int,
                 t_shift_add: int, overlap: bool) -> int:
    """Cycles of ``m`` back-to-back MVMs of ``slices`` slices on one tile."""
    n = m * slices
    if n <= 0:
        return 0
    stages = (t_read, conversions * t_adc, t_shift_add)
    if overlap:
        return sum(stages) + (n - 1) * max(stages)
    return n * sum(stages)


def tile_mvm_cycles(xbar: XbarConfig, timing: TimingConfig, used_cols: int | None = None,
                    signed_inputs: bool = False, mvms: int = 1) -> int:
    """Cycles of ``mvms`` MVMs on one tile with ``used_cols`` bit lines in use (default:
    all of them)."""
    used = xbar.array.cols if used_cols is None else used_cols
    return burst_cycles(mvms, slices_per_mvm(xbar, signed_inputs),
                        min(xbar.adc.cols_per_adc, used), timing.read_cycles(),
                        timing.adc_cycles(xbar.adc.bits), timing.shift_add_cycles,
                        timing.overlap_read_convert)


def plan_layer(spec: LayerSpec, xbar: XbarConfig, timing: TimingConfig) -> LayerPlan:
    """Lay one layer out on tiles and compute its per-row stage durations."""
    rows, n = spec.out_hw
    copies = min(timing.duplicates(spec.name, spec.kind), n)
    r_tiles, c_tiles = spec.row_tiles(xbar), spec.col_tiles(xbar)
    layout = weight_layout(xbar.array)
    out_per_group = spec.n_out // spec.groups
    slices = slices_per_mvm(xbar, spec.signed_inputs)
    t_r, t_a = timing.read_cycles(), timing.adc_cycles(xbar.adc.bits)
    g = timing.tiles_per_adc_group
    tiles: list[TilePlan] = []
    for copy in range(copies):
        m = len(range(copy, n, copies))
        for grp in range(spec.groups):
            for rt in range(r_tiles):
                for ct in range(c_tiles):
                    used = layout.used_columns(out_per_group, ct)
                    conv = min(xbar.adc.cols_per_adc, used)
                    idx = len(tiles)
                    tiles.append(TilePlan(
                        index=idx, copy=copy, group=grp, row_tile=rt, col_tile=ct,
                        used_cols=used, conversions=conv, mvms_per_row=m,
                        burst_cycles=burst_cycles(m, slices, conv, t_r, t_a,
                                                  timing.shift_add_cycles,
                                                  timing.overlap_read_convert),
                        adc_group=idx // g))
    n_groups = ceil_div(len(tiles), g)
    group_sums = [0] * n_groups
    for t in tiles:
        group_sums[t.adc_group] += t.burst_cycles
    arrays = layout.arrays_per_tile
    act = activation_bytes(xbar)
    c_in, _, w_in = spec.in_chw
    in_bytes = spec.in_elements * act
    return LayerPlan(
        spec=spec, copies=copies, row_tiles=r_tiles, col_tiles=c_tiles, tiles=tuple(tiles),
        adc_groups=n_groups, adcs=n_groups * arrays * ceil_div(xbar.array.cols,
                                                                xbar.adc.cols_per_adc),
        arrays_per_tile=arrays, slices=slices, rows=rows, positions_per_row=n,
        mvm_cycles=max(group_sums),
        acc_cycles=(n * (r_tiles - 1) * ceil_div(spec.n_out, timing.accumulator_values_per_cycle)
                    if r_tiles > 1 else 0),
        post_cycles=n * ceil_div(spec.n_out, timing.post_op_values_per_cycle),
        input_bytes=in_bytes, input_row_bytes=c_in * w_in * act,
        input_cycles=ceil_div(in_bytes, timing.interconnect_bytes_per_cycle))


def plan_network(layers: list[LayerSpec] | tuple[LayerSpec, ...], xbar: XbarConfig,
                 timing: TimingConfig) -> list[LayerPlan]:
    return [plan_layer(spec, xbar, timing) for spec in layers]


def layer_cycles_layer_schedule(plan: LayerPlan) -> int:
    """T_in + D_mvm + D_acc + D_post + (K - 1) * max(D_mvm, D_acc, D_post); a recurrent
    layer's K steps do not overlap: T_in + K * (D_mvm + D_acc + D_post)."""
    d = plan.stage_cycles
    if plan.spec.kind == "recurrent":
        return plan.input_cycles + plan.rows * sum(d)
    return plan.input_cycles + sum(d) + (plan.rows - 1) * max(d)


def network_cycles_layer_schedule(layers: list[LayerSpec] | tuple[LayerSpec, ...],
                                  xbar: XbarConfig | None = None,
                                  timing: TimingConfig | None = None) -> list[int]:
    """Per-layer cycles of one inference under the layer-by-layer schedule (sum = latency)."""
    xbar = xbar or XbarConfig()
    timing = timing or TimingConfig()
    return [layer_cycles_layer_schedule(p) for p in plan_network(layers, xbar, timing)]
