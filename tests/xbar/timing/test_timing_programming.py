"""Programming and adaptation time: hand-computed golden cases, the NumPy closed form against
a per-cell Python reference, the SimPy schedule against list scheduling, validation, TOML."""

from __future__ import annotations

import math
from collections import defaultdict

import numpy as np
import pytest

from xbar.config import (AdaptationConfig, ArrayConfig, HardwareConfig, ProgrammingConfig,
                         TimingConfig, XbarConfig, load_hardware)
from xbar.timing import LayerSpec, simulate
from xbar.timing.adaptation import adaptation_time, backward_cycles_per_layer, sram_words_per_layer
from xbar.timing.speedup import rsa_speedup
from xbar.timing.programming import (LayerCells, cells_one_shot, column_layout,
                                     list_schedule_cycles, one_shot_time, physical_columns,
                                     programming_time)

T = TimingConfig()
FAST = ProgrammingConfig(t_pulse_ns=10.0, t_verify_ns=1.0)   # t_p = 10, t_v = 1 cycles


def on(x: XbarConfig, prog: ProgrammingConfig = FAST, timing: TimingConfig = T
       ) -> HardwareConfig:
    """The hardware of arrays ``x`` programmed by ``prog`` on the clock of ``timing``."""
    return HardwareConfig.from_parts(x, programming=prog, timing=timing)


def xbar(rows: int, cols: int, mapping: str = "differential") -> XbarConfig:
    return XbarConfig(array=ArrayConfig(rows=rows, cols=cols, weight_mapping=mapping))


def linear(name: str, n_in: int, n_out: int) -> LayerSpec:
    return LayerSpec(name, "linear", n_in, n_out, (n_in, 1, 1), (1, 1))


# --------------------------------------------------------------------------- reference
def naive_arrays(cells: LayerCells, x: XbarConfig, drivers: int, t_p: int, t_v: int,
                 sync: str) -> list[tuple[int, int, int, int]]:
    """Per array in mapping order: (cycles, pulses, reads, cells), one cell at a time."""
    rows, wc = x.array.rows, x.array.weight_cols
    n_out = cells.n_out
    n_ct = -(-n_out // wc)
    work: dict[tuple[int, int], dict[int, dict[int, int]]] = defaultdict(
        lambda: defaultdict(lambda: defaultdict(int)))       # array -> driver -> row -> cycles
    count: dict[tuple[int, int], list[int]] = defaultdict(lambda: [0, 0, 0])
    for c in range(cells.pulses.shape[1]):
        if x.array.weight_mapping == "differential":
            j = c if c < n_out else c - n_out
            a, line = (j // wc if c < n_out else n_ct + j // wc), j % wc
        elif c < n_out:
            a, line = c // wc, c % wc
        else:
            a = c - n_out
            line = sum(1 for j in range(n_out) if j // wc == a)
        for i in range(cells.n_in):
            p, r = int(cells.pulses[i, c]), int(cells.reads[i, c])
            key = (i // rows, a)
            work[key][line % drivers][i] += p * t_p + r * t_v
            count[key][0] += p
            count[key][1] += r
            count[key][2] += 1
    out = []
    for rt in range(-(-cells.n_in // rows)):
        arrays = [a for ct in range(n_ct) for a in
                  ((ct, n_ct + ct) if x.array.weight_mapping == "differential" else (ct,))]
        for a in arrays:
            drv = work[(rt, a)]
            if sync == "row":
                rows_of = {i for d in drv.values() for i in d}
                cyc = sum(max(d.get(i, 0) for d in drv.values()) for i in rows_of)
            else:
                cyc = max(sum(d.values()) for d in drv.values())
            out.append((cyc, *count[(rt, a)]))
    return out


# --------------------------------------------------------------------------- golden, by hand
# Two arrays (one differential pair, 2 rows x 4 bit lines), 2 drivers per array: driver 0
# serves bit lines 0 and 2, driver 1 bit lines 1 and 3. A cell costs 10 p + r = 11 p + 1.
PAIR = xbar(2, 4)
P = np.array([[1, 2, 3, 4, 0, 0, 0, 0],
              [5, 0, 1, 0, 2, 2, 2, 2]])
PAIR_CELLS = LayerCells("fc", 2, 4, P, P + 1)
# G+ cell cycles: row 0: 12 23 34 45, row 1: 56 1 12 1.   G-: row 0: 1 1 1 1, row 1: 23 x 4.
# row sync:    G+ = max(12+34, 23+45) + max(56+12, 1+1) = 68 + 68 = 136;   G- = 2 + 46 = 48
# independent: G+ = max(12+34+56+12, 23+45+1+1) = 114;                     G- = 48


@pytest.mark.parametrize("sync,slots,expected", [
    ("row", 1, 136 + 48), ("row", 0, 136), ("row", 2, 136),
    ("independent", 1, 114 + 48), ("independent", 0, 114),
])
def test_two_arrays_two_drivers_by_hand(sync: str, slots: int, expected: int) -> None:
    prog = FAST.replace(drivers_per_array=2, arrays_at_once=slots, driver_sync=sync)
    r = programming_time([PAIR_CELLS], on(PAIR, prog))
    assert r.total_cycles == expected
    assert r.total_s == pytest.approx(expected * 1e-9)
    assert (r.total_pulses, r.total_reads, r.total_cells, r.n_arrays) == (24, 40, 16, 2)
    assert r.array_cycles.tolist() == ([136, 48] if sync == "row" else [114, 48])
    busy = 12 + 23 + 34 + 45 + 56 + 1 + 12 + 1 + 4 * 1 + 4 * 23          # 280
    assert r.driver_utilisation == pytest.approx(busy / (2 * 2 * expected))
    assert r.active_driver_utilisation == pytest.approx(busy / (2 * sum(r.array_cycles)))
    assert r.layers[0].pulses == 24 and r.layers[0].seconds == pytest.approx(expected * 1e-9)


def test_one_slot_serialises_arrays_in_mapping_order() -> None:
    r = programming_time([PAIR_CELLS], on(PAIR, FAST.replace(drivers_per_array=2)))
    assert r.array_start_cycles.tolist() == [0, 136]                  # G+, then G-


def test_arrays_at_once_limit() -> None:
    # five one-array layers (offset mapping, 1 weight column + reference), 3 pulses each
    x = xbar(1, 2, "offset")
    layers = [LayerCells(f"l{k}", 1, 1, np.array([[3, 0]]), np.array([[0, 0]]))
              for k in range(5)]
    for slots, end, starts in [(1, 150, [0, 30, 60, 90, 120]), (2, 90, [0, 0, 30, 30, 60]),
                               (5, 30, [0] * 5), (0, 30, [0] * 5)]:
        r = programming_time(layers, on(x, FAST.replace(arrays_at_once=slots)))
        assert r.total_cycles == end == math.ceil(5 / (slots or 5)) * 30
        assert r.array_start_cycles.tolist() == starts
        assert r.slot_utilisation == pytest.approx(150 / (min(slots or 5, 5) * end))


def test_longest_first_order() -> None:
    x = xbar(1, 2, "offset")
    layers = [LayerCells(f"l{k}", 1, 1, np.array([[p, 0]]), np.array([[0, 0]]))
              for k, p in enumerate((1, 1, 2))]
    fifo = programming_time(layers, on(x, FAST.replace(arrays_at_once=2)))
    lpt = programming_time(layers, on(x, FAST.replace(arrays_at_once=2,
                                                      array_order="longest-first")))
    assert (fifo.total_cycles, lpt.total_cycles) == (30, 20)
    assert lpt.array_start_cycles.tolist() == [0, 10, 0]


@pytest.mark.parametrize("drivers", [0, 1, 16, 100])
def test_one_shot_is_cells_over_drivers_times_pulse(drivers: int) -> None:
    prog = ProgrammingConfig(drivers_per_array=drivers)          # t_p = 6500 cycles
    x = XbarConfig()
    r = one_shot_time([linear("fc", 128, 128)], on(x, prog))
    d = drivers or 128
    per_array = 128 * math.ceil(128 / d) * 6500
    assert r.array_cycles.tolist() == [per_array] * 2
    assert r.total_cycles == 2 * per_array
    if 128 % d == 0:
        assert per_array == 128 * 128 // d * 6500                   # cells / drivers * t_p
    assert (r.total_pulses, r.total_reads, r.method) == (2 * 128 * 128, 0, "one-shot")


def test_one_shot_ragged_tiles() -> None:
    # 200 x 100 on 128 x 128 pairs: row tiles of 128 and 72 rows, 100 bit lines in use
    prog = ProgrammingConfig(drivers_per_array=16, arrays_at_once=0)
    r = one_shot_time([linear("fc", 200, 100)], HardwareConfig(programming=prog, timing=T))
    assert r.array_cycles.tolist() == [128 * 7 * 6500] * 2 + [72 * 7 * 6500] * 2
    assert r.total_cycles == 128 * 7 * 6500
    assert r.total_cells == 200 * 200


def test_one_shot_equals_explicit_counts() -> None:
    x = xbar(16, 8, "offset")
    spec = linear("fc", 40, 20)
    n_phys = physical_columns(20, x)
    ones = LayerCells("fc", 40, 20, np.ones((40, n_phys), np.int32),
                      np.zeros((40, n_phys), np.int32))
    prog = ProgrammingConfig(drivers_per_array=3, arrays_at_once=2)
    a = one_shot_time([spec], on(x, prog))
    b = programming_time([ones], on(x, prog))
    assert a.array_cycles.tolist() == b.array_cycles.tolist()
    assert a.total_cycles == b.total_cycles


def test_offset_reference_column_sits_after_the_weights() -> None:
    array, line, n = column_layout(5, xbar(4, 4, "offset"))       # 3 weight columns per array
    assert n == 2
    assert array.tolist() == [0, 0, 0, 1, 1, 0, 1]
    assert line.tolist() == [0, 1, 2, 0, 1, 3, 2]
    array, line, n = column_layout(5, xbar(4, 4))
    assert (n, array.tolist(), line.tolist()) == (4, [0, 0, 0, 0, 1, 2, 2, 2, 2, 3],
                                                  [0, 1, 2, 3, 0, 0, 1, 2, 3, 0])


# --------------------------------------------------------------------------- vs reference
@pytest.mark.parametrize("mapping", ["differential", "offset"])
@pytest.mark.parametrize("sync", ["row", "independent"])
@pytest.mark.parametrize("drivers", [1, 2, 3, 0])
def test_closed_form_equals_per_cell_reference(mapping: str, sync: str, drivers: int,
                                               rng: np.random.Generator) -> None:
    x = xbar(7, 5, mapping)
    layers = []
    for k, (n_in, n_out) in enumerate([(15, 11), (7, 4), (3, 1)]):
        n_phys = physical_columns(n_out, x)
        p = rng.integers(0, 40, (n_in, n_phys)).astype(np.int32)
        layers.append(LayerCells(f"l{k}", n_in, n_out, p, p + rng.integers(0, 3, p.shape)))
    prog = ProgrammingConfig(t_pulse_ns=7.0, t_verify_ns=2.0, drivers_per_array=drivers,
                             driver_sync=sync, arrays_at_once=3)
    r = programming_time(layers, on(x, prog))
    ref = [a for c in layers for a in naive_arrays(c, x, drivers or 5, 7, 2, sync)]
    assert r.array_cycles.tolist() == [a[0] for a in ref]
    assert r.total_pulses == sum(a[1] for a in ref)
    assert r.total_reads == sum(a[2] for a in ref)
    assert r.total_cells == sum(a[3] for a in ref) == sum(c.n_cells for c in layers)
    assert r.total_cycles == list_schedule_cycles([a[0] for a in ref], 3)
    for lp, c in zip(r.layers, layers):
        assert (lp.pulses, lp.reads) == (int(c.pulses.sum()), int(c.reads.sum()))


def test_events_do_not_grow_with_pulses(rng: np.random.Generator) -> None:
    x = xbar(8, 8)
    p = rng.integers(0, 5, (20, physical_columns(10, x)))
    few = programming_time([LayerCells("l", 20, 10, p, p + 1)], on(x))
    many = programming_time([LayerCells("l", 20, 10, 1000 * p, 1000 * p + 1)], on(x))
    assert few.events_processed == many.events_processed <= 6 * few.n_arrays


def test_deterministic(rng: np.random.Generator) -> None:
    x = xbar(8, 8)
    p = rng.integers(0, 50, (30, physical_columns(12, x)))
    cells = [LayerCells("l", 30, 12, p, p + 1)]
    prog = ProgrammingConfig(arrays_at_once=3, drivers_per_array=3)
    a, b = (programming_time(cells, on(x, prog)).to_dict() for _ in range(2))
    a.pop("wall_s"), b.pop("wall_s")
    assert a == b


def test_clock_rounds_durations_up() -> None:
    r = programming_time([PAIR_CELLS], on(PAIR, ProgrammingConfig(t_pulse_ns=2.2, t_verify_ns=0.3),
                                       TimingConfig(clock_ghz=2.0)))
    assert (r.pulse_cycles, r.verify_cycles) == (5, 1)             # ceil(4.4), ceil(0.6)
    assert r.total_s == pytest.approx(r.total_cycles * 0.5e-9)


# --------------------------------------------------------------------------- adaptation
def test_sram_writes_are_words_over_ports_times_write() -> None:
    spec = linear("fc", 64, 32)
    adapt = AdaptationConfig(t_sram_write_ns=3.0, sram_ports=3, grad_macs_per_cycle=8)
    r = adaptation_time([spec], HardwareConfig(timing=T, adaptation=adapt), steps=4, batch=2,
                        sram_words=[1000])
    f = simulate([spec], HardwareConfig(timing=T), "layer", 2, timeline=False).makespan_cycles
    write = math.ceil(1000 / 3) * 3                                  # 334 writes of 3 cycles
    grad = math.ceil(2 * 1 * 1000 / 8)
    assert r.layers[0].write_cycles == write and r.sram_write_cycles == write
    assert (r.forward_cycles, r.backward_cycles) == (f, grad)
    assert r.step_cycles == f + grad + write and r.write_tail_cycles == write
    assert r.total_cycles == 4 * (f + grad + write)
    assert (r.sram_words, r.sram_bits) == (1000, 8000)


# Three Linear layers, digital backward (10 MACs/cycle), gradient units of 4 MACs/cycle,
# batch 2, SRAM words 50/100/7 on 2 ports of 3-cycle writes:
#   D = [0, ceil(2*20*30/10) = 120, ceil(2*30*5/10) = 30]
#   G = [ceil(2*50/4) = 25, ceil(2*100/4) = 50, ceil(2*7/4) = 4]
#   U = [25*3 = 75, 50*3 = 150, 4*3 = 12]
#   gradients ready: a2 = F, a1 = F + 30, a0 = F + 150; gradients done F+4, F+80, F+175
NET = [linear("a", 10, 20), linear("b", 20, 30), linear("c", 30, 5)]
WORDS = [50, 100, 7]
BASE = AdaptationConfig(backward="digital", digital_macs_per_cycle=10, grad_macs_per_cycle=4,
                        sram_ports=2, t_sram_write_ns=3.0)


@pytest.mark.parametrize("banks,overlap,after_forward", [
    ("per-layer", True, 250),            # max(F+4+12, F+80+150, F+175+75)
    ("per-layer", False, 175 + 150),     # all gradients, then the longest bank
    ("shared", False, 175 + 75 + 150 + 12),
    ("shared", True, 305),               # c: F+4..16; b: F+80..230; a waits, F+230..305
])
def test_adaptation_step_by_hand(banks: str, overlap: bool, after_forward: int) -> None:
    adapt = BASE.replace(sram_banks=banks, overlap_updates=overlap)
    r = adaptation_time(NET, HardwareConfig(timing=T, adaptation=adapt), steps=3, batch=2,
                        sram_words=WORDS)
    f = simulate(NET, HardwareConfig(timing=T), "layer", 2, timeline=False).makespan_cycles
    assert [la.propagate_cycles for la in r.layers] == [0, 120, 30]
    assert [la.grad_cycles for la in r.layers] == [25, 50, 4]
    assert [la.write_cycles for la in r.layers] == [75, 150, 12]
    assert [la.grad_ready_cycle for la in r.layers] == [f + 150, f + 30, f]
    assert r.forward_cycles == f and r.backward_cycles == 175
    assert r.step_cycles == f + after_forward
    assert r.write_tail_cycles == after_forward - 175
    assert r.total_cycles == 3 * r.step_cycles
    assert r.total_s == pytest.approx(r.total_cycles * 1e-9)


def test_transposed_read_backward_is_a_signed_forward_pass() -> None:
    adapt = AdaptationConfig(backward_read_factor=1.5)
    d = backward_cycles_per_layer(NET, HardwareConfig(timing=T, adaptation=adapt), batch=4)
    signed = [LayerSpec(s.name, s.kind, s.n_in, s.n_out, s.in_chw, s.out_hw,
                        signed_inputs=True) for s in NET]
    per_layer = [lt.cycles for lt in simulate(signed, HardwareConfig(timing=T)).layers]
    assert d == [0] + [math.ceil(1.5 * 4 * c) for c in per_layer[1:]]


def test_forward_uses_the_inference_schedule() -> None:
    specs = [LayerSpec("c1", "conv", 27, 8, (3, 8, 8), (8, 8), (3, 3), padding=(1, 1)),
             LayerSpec("c2", "conv", 72, 8, (8, 8, 8), (8, 8), (3, 3), padding=(1, 1))]
    for sched in ("layer", "pipelined"):
        hw = HardwareConfig(timing=T, adaptation=AdaptationConfig(forward_schedule=sched))
        r = adaptation_time(specs, hw, steps=1, batch=3, sram_words=[5, 5])
        assert r.forward_cycles == simulate(specs, hw, sched, 3).makespan_cycles


def test_adaptation_deterministic_and_dict() -> None:
    a, b = (adaptation_time(NET, HardwareConfig(adaptation=BASE), steps=2, batch=2,
                            sram_words=WORDS).to_dict() for _ in range(2))
    a.pop("wall_s"), b.pop("wall_s")
    assert a == b
    assert a["hardware"]["adaptation"]["sram_ports"] == 2
    assert [la["name"] for la in a["layers"]] == ["a", "b", "c"]


def test_sram_words_per_layer_and_speedup() -> None:
    assert sram_words_per_layer(NET, 0.05) == [10, 30, 8]           # round(0.05 * n_in n_out)
    assert sram_words_per_layer(NET, 0.0) == [0, 0, 0]
    x = xbar(4, 4)
    rvw = programming_time([LayerCells("a", 4, 4, np.full((4, 8), 9), np.full((4, 8), 10))],
                           on(x))
    one = one_shot_time([linear("a", 4, 4)], on(x))
    ad = adaptation_time([linear("a", 4, 4)], on(x), steps=1, batch=1, sram_words=[1])
    s = rsa_speedup(rvw, one, ad)
    assert s.rsa_s == pytest.approx(one.total_s + ad.total_s)
    assert s.speedup == pytest.approx(rvw.total_s / (one.total_s + ad.total_s))
    assert "T_rvw / (T_one_shot + T_adapt)" in s.to_dict()["definition"]


# --------------------------------------------------------------------------- validation
@pytest.mark.parametrize("cls,field,value,allowed", [
    (ProgrammingConfig, "t_pulse_ns", -1.0, "(0, 1e+09] ns"),
    (ProgrammingConfig, "t_verify_ns", float("nan"), "(0, 1e+09] ns"),
    (ProgrammingConfig, "drivers_per_array", 2.5, "[0, 65536]"),
    (ProgrammingConfig, "arrays_at_once", -1, "(0: no limit)"),
    (ProgrammingConfig, "driver_sync", "async", "('row', 'independent')"),
    (ProgrammingConfig, "array_order", "random", "('mapping', 'longest-first')"),
    (AdaptationConfig, "t_sram_write_ns", 0, "(0, 1e+06] ns"),
    (AdaptationConfig, "sram_ports", 0, "[1, 1048576]"),
    (AdaptationConfig, "sram_banks", "one", "('per-layer', 'shared')"),
    (AdaptationConfig, "overlap_updates", "yes", "true or false"),
    (AdaptationConfig, "backward", "analog", "('transposed-read', 'digital')"),
    (AdaptationConfig, "grad_macs_per_cycle", True, "[1, 1073741824]"),
    (AdaptationConfig, "forward_schedule", "fast", "('layer', 'pipelined')"),
])
def test_config_errors_name_field_value_and_range(cls: type, field: str, value: object,
                                                  allowed: str) -> None:
    with pytest.raises(ValueError) as exc:
        cls(**{field: value})
    msg = str(exc.value)
    assert f"{cls.__name__}.{field} = {value!r}" in msg and allowed in msg


def test_call_time_errors() -> None:
    with pytest.raises(ValueError, match=r"drivers_per_array = 5 .*\[0, 4\].*4 bit lines"):
        programming_time([PAIR_CELLS], on(PAIR, FAST.replace(drivers_per_array=5)))
    with pytest.raises(ValueError, match="8 physical columns, but 6 expected.*'offset'"):
        programming_time([PAIR_CELLS], on(xbar(2, 4, "offset"), FAST))
    with pytest.raises(ValueError, match="empty"):
        programming_time([], on(PAIR))
    with pytest.raises(ValueError, match=r"duplicate layer name\(s\) \['fc'\]"):
        programming_time([PAIR_CELLS, PAIR_CELLS], on(PAIR))
    with pytest.raises(ValueError, match="dtype float64.*integer array"):
        LayerCells("x", 2, 4, P.astype(float), P)
    with pytest.raises(ValueError, match=r"shape \(8,\).*\(n_in, n_phys\) = \(2, n_phys\)"):
        LayerCells("x", 2, 4, P[0], P[0])
    with pytest.raises(ValueError, match=r"negative count \(-1\)"):
        LayerCells("x", 2, 4, P - 1, P)
    with pytest.raises(ValueError, match="differ in shape"):
        LayerCells("x", 2, 4, P, P[:, :4])
    with pytest.raises(ValueError, match="steps = 0 is invalid; allowed: an integer >= 1"):
        adaptation_time(NET, steps=0)
    with pytest.raises(ValueError, match=r"sram_words has 2 entries; allowed: one per layer "
                                         r"\(3: a, b, c\)"):
        adaptation_time(NET, sram_words=[1, 2])
    with pytest.raises(ValueError, match="sram_words for layer 'b' = -1"):
        adaptation_time(NET, sram_words=[1, -1, 2])
    with pytest.raises(ValueError, match=r"fraction = 5 is invalid; allowed: a number in \[0"):
        sram_words_per_layer(NET, 5)


def test_grouped_conv_is_one_cell_matrix_per_group() -> None:
    spec = LayerSpec("dw", "conv", 9, 4, (4, 6, 6), (6, 6), (3, 3), padding=(1, 1), groups=2)
    cells = cells_one_shot([spec], XbarConfig())
    assert [(c.name, c.n_in, c.n_out) for c in cells] == [("dw/g0", 9, 2), ("dw/g1", 9, 2)]


# --------------------------------------------------------------------------- TOML
def test_toml_round_trip(tmp_path) -> None:
    prog = ProgrammingConfig(t_pulse_ns=4.5e6, drivers_per_array=8, arrays_at_once=0,
                             driver_sync="independent")
    adapt = AdaptationConfig(sram_ports=4, overlap_updates=False, backward="digital")
    path = tmp_path / "hw.toml"
    path.write_text("[array]\nrows = 64\n\n" + prog.to_toml() + "\n" + adapt.to_toml())
    hw = load_hardware(path)
    assert (hw.programming, hw.adaptation) == (prog, adapt)
    assert load_hardware(None).programming == ProgrammingConfig()
    assert load_hardware("default").adaptation == AdaptationConfig()
    assert hw.array.rows == 64
    path.write_text("[programming]\nt_pulse_us = 3\n")
    with pytest.raises(ValueError, match=r"unknown field\(s\) \['t_pulse_us'\] in "
                                         r"\[programming\]; valid fields"):
        load_hardware(path)
    path.write_text("[adaptation]\nsram_ports = 0\n")
    with pytest.raises(ValueError, match="AdaptationConfig.sram_ports = 0"):
        load_hardware(path)
