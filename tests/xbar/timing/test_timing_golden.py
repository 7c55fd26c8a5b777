"""Golden cycle counts: the closed forms by hand, and the engine equal to them exactly."""

from __future__ import annotations

import pytest

from xbar.config import ADCConfig, ArrayConfig, DACConfig, HardwareConfig, TimingConfig, XbarConfig
from xbar.timing import (LayerSpec, network_cycles_layer_schedule, plan_layer, simulate,
                         tile_mvm_cycles)

X = XbarConfig()
T = TimingConfig()


def linear(name: str, n_in: int, n_out: int, signed: bool = False) -> LayerSpec:
    return LayerSpec(name, "linear", n_in, n_out, (n_in, 1, 1), (1, 1), signed_inputs=signed)


def conv(name: str, c_in: int, hw: int, c_out: int, k: int = 3, stride: int = 1, pad: int = 1,
         signed: bool = False, groups: int = 1) -> LayerSpec:
    out = (hw + 2 * pad - k) // stride + 1
    return LayerSpec(name, "conv", c_in // groups * k * k, c_out, (c_in, hw, hw), (out, out),
                     kernel=(k, k), stride=(stride, stride), padding=(pad, pad), groups=groups,
                     signed_inputs=signed)


# A small CNN: conv, 2x2 pool, strided conv, flatten, two Linear layers.
SMALL_CNN = [conv("c1", 3, 12, 20, signed=True), conv("c2", 20, 6, 40, stride=2),
             linear("f1", 40 * 3 * 3, 150), linear("f2", 150, 10)]


# --- one tile MVM, by hand -----------------------------------------------------------------
# defaults: t_r = 10, t_a = 10, 8 columns per ADC (c * t_a = 80), t_s = 1, S = 8 slices
@pytest.mark.parametrize("xbar,timing,kwargs,expected", [
    (X, T, {}, 10 + 80 + 1 + 7 * 80),                                   # 651
    (X, TimingConfig(overlap_read_convert=False), {}, 8 * (10 + 80 + 1)),  # 728
    (X, T, {"signed_inputs": True}, 10 + 80 + 1 + 15 * 80),             # two passes, S = 16
    (X, T, {"mvms": 3}, 10 + 80 + 1 + 23 * 80),                         # a burst streams
    (X, TimingConfig(overlap_read_convert=False), {"mvms": 3}, 24 * 91),
    (X, T, {"used_cols": 3}, 10 + 30 + 1 + 7 * 30),                     # 3 columns in use
    (X.replace(dac_bits_per_read=2), T, {}, 10 + 80 + 1 + 3 * 80),      # S = 4
    (X.replace(dac_bits_per_read=3), T, {}, 10 + 80 + 1 + 2 * 80),      # S = ceil(8/3) = 3
    (X.replace(adc_bits=4), T, {}, 10 + 48 + 1 + 7 * 48),               # t_a = 6
    (X.replace(adc_cols_per_adc=1), T, {}, 10 + 10 + 1 + 7 * 10),       # read = conversion
    (X, TimingConfig(clock_ghz=2.0), {}, 20 + 160 + 1 + 7 * 160),
    (X, TimingConfig(shift_add_cycles=100), {}, 10 + 80 + 100 + 7 * 100),  # adder-bound
])
def test_tile_mvm_by_hand(xbar: XbarConfig, timing: TimingConfig, kwargs: dict,
                          expected: int) -> None:
    assert tile_mvm_cycles(xbar, timing, **kwargs) == expected


def test_tiles_and_used_columns_follow_the_weight_mapping() -> None:
    p = plan_layer(linear("f", 300, 200), X, T)
    assert (p.row_tiles, p.col_tiles, p.n_tiles) == (3, 2, 6)
    assert [t.used_cols for t in p.tiles[:2]] == [128, 72]
    assert p.adcs == 6 * 2 * 16                          # array pairs, 16 ADCs per array
    off = XbarConfig(array=ArrayConfig(weight_mapping="offset"))
    assert plan_layer(linear("f", 10, 254), off, T).col_tiles == 2   # 127 weight columns
    q = plan_layer(linear("f", 10, 255), off, T)
    assert q.col_tiles == 3 and q.tiles[-1].used_cols == 1 + 1      # + reference column
    assert q.adcs == 3 * 1 * 16
    g = plan_layer(conv("g", 8, 5, 8, groups=4), X, T)
    assert (g.n_tiles, g.spec.n_in) == (4, 18)


# --- one layer and one network, by hand ----------------------------------------------------
def test_linear_layer_by_hand() -> None:
    # T_in = ceil(100 B / 32) = 4; MVM 651; one row tile: no reduction; post ceil(10/128) = 1
    assert network_cycles_layer_schedule([linear("f", 100, 10)]) == [4 + 651 + 0 + 1]
    assert simulate([linear("f", 100, 10)]).total_cycles == 656


def test_conv_layer_by_hand() -> None:
    # 2x6x6 input, 3x3 pad 1, 4 output channels: 6 rows of 6 positions; 4 columns in use
    # (c * t_a = 40); a row is a burst of 6 MVMs = 48 slices: 10 + 40 + 1 + 47 * 40 = 1931
    # T_in = ceil(72 / 32) = 3; post 6 * 1 per row; K = 6 rows
    spec = conv("c", 2, 6, 4)
    expected = 3 + (1931 + 0 + 6) + 5 * 1931
    assert network_cycles_layer_schedule([spec]) == [expected]
    assert simulate([spec]).total_cycles == expected


def test_row_tiles_add_a_reduction_stage_by_hand() -> None:
    # 300 inputs: 3 row tiles; reduction 2 * ceil(10/128) = 2 cycles; T_in = ceil(300/32) = 10
    assert network_cycles_layer_schedule([linear("f", 300, 10)]) == [10 + 651 + 2 + 1]
    # accumulator 4 values/cycle: 2 * ceil(10/4) = 6
    t = TimingConfig(accumulator_values_per_cycle=4)
    assert network_cycles_layer_schedule([linear("f", 300, 10)], X, t) == [10 + 651 + 6 + 1]


def test_duplication_by_hand() -> None:
    # 3 copies of a 6-wide row: 2 MVMs each: 10 + 40 + 1 + 15 * 40 = 651 per row
    spec = conv("c", 2, 6, 4)
    t = TimingConfig(duplication=3)
    p = plan_layer(spec, X, t)
    assert (p.copies, p.n_tiles, p.mvm_cycles) == (3, 3, 651)
    assert network_cycles_layer_schedule([spec], X, t) == [3 + 651 + 6 + 5 * 651]
    # 4 copies: 2, 2, 1, 1 MVMs; the row waits for the slowest; 100 copies are capped at 6
    assert plan_layer(spec, X, TimingConfig(duplication=4)).mvm_cycles == 651
    assert plan_layer(spec, X, TimingConfig(duplication=100)).copies == 6


# --- the engine equals the closed form, over configurations ------------------------------
CONFIGS = {
    "defaults": (X, T),
    "no-overlap": (X, TimingConfig(overlap_read_convert=False)),
    "offset": (XbarConfig(array=ArrayConfig(weight_mapping="offset")), T),
    "small-arrays": (XbarConfig(array=ArrayConfig(rows=16, cols=8),
                                adc=ADCConfig(cols_per_adc=3)), T),
    "multibit-dac": (XbarConfig(dac=DACConfig(input_bits=6, bits_per_read=4),
                                adc=ADCConfig(bits=5)), T),
    "shared-adcs": (XbarConfig(array=ArrayConfig(rows=32, cols=16)),
                    TimingConfig(tiles_per_adc_group=3)),
    "duplicated": (X, TimingConfig(duplication=4, duplicate_layers=("c1",))),
    "dup-shared": (XbarConfig(array=ArrayConfig(rows=64, cols=32)),
                   TimingConfig(duplication=2, tiles_per_adc_group=2)),
    "narrow-bus": (X, TimingConfig(interconnect_bytes_per_cycle=1, clock_ghz=0.7,
                                   accumulator_units=1, accumulator_values_per_cycle=3,
                                   post_op_values_per_cycle=5)),
}


@pytest.mark.parametrize("name", list(CONFIGS))
def test_engine_equals_closed_form_layer_by_layer(name: str) -> None:
    xbar, timing = CONFIGS[name]
    expected = network_cycles_layer_schedule(SMALL_CNN, xbar, timing)
    result = simulate(SMALL_CNN, HardwareConfig.from_parts(xbar, timing=timing), schedule="layer")
    assert result.total_cycles == sum(expected)
    assert [lt.cycles for lt in result.layers] == expected
    starts = [lt.start_cycle for lt in result.layers]
    assert starts == [sum(expected[:i]) for i in range(len(expected))]


def test_layer_schedule_runs_inferences_one_after_another() -> None:
    total = sum(network_cycles_layer_schedule(SMALL_CNN))
    result = simulate(SMALL_CNN, schedule="layer", batch=3)
    assert result.completion_cycles == [total, 2 * total, 3 * total]
    assert result.throughput_inferences_per_s == pytest.approx(1e9 / total)


def test_engine_equals_closed_form_on_a_torch_model() -> None:
    torch = pytest.importorskip("torch")
    from torch import nn

    from xbar.mapping.geometry import layer_specs
    model = nn.Sequential(nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                          nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 10))
    torch.manual_seed(0)
    specs = layer_specs(model, (1, 28, 28))
    assert simulate(specs).total_cycles == sum(network_cycles_layer_schedule(specs))
