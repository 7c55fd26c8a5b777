"""The event engine: contention for ADC groups, the pipelined schedule's line buffers, the
aggregation of bursts, determinism and bad input."""

from __future__ import annotations

import numpy as np
import pytest

from xbar.config import ArrayConfig, HardwareConfig, TimingConfig, XbarConfig
from xbar.timing import LayerSpec, network_cycles_layer_schedule, plan_layer, simulate


def linear(name: str, n_in: int, n_out: int) -> LayerSpec:
    return LayerSpec(name, "linear", n_in, n_out, (n_in, 1, 1), (1, 1))


def conv(name: str, c_in: int, hw: int, c_out: int, k: int = 3, pad: int = 1) -> LayerSpec:
    out = hw + 2 * pad - k + 1
    return LayerSpec(name, "conv", c_in * k * k, c_out, (c_in, hw, hw), (out, out),
                     kernel=(k, k), padding=(pad, pad))


def bursts(result, layer: int) -> list[tuple[int, int, int]]:
    """(tile, start, end) of a layer's bursts, in start order."""
    tl = result.timeline
    sel = np.flatnonzero(tl.layer == layer)
    rows = sorted(zip(tl.tile[sel], tl.start[sel], tl.start[sel] + tl.cycles[sel]),
                  key=lambda r: (r[1], r[0]))
    return [(int(a), int(b), int(c)) for a, b, c in rows]


def test_two_tiles_sharing_one_adc_group_serialise() -> None:
    # 100 -> 256: two column tiles of 128 columns, 651 cycles each; input arrives at cycle 4
    net = [linear("f", 100, 256)]
    alone = simulate(net)
    shared = simulate(net, HardwareConfig(timing=TimingConfig(tiles_per_adc_group=2)))
    assert bursts(alone, 0) == [(0, 4, 655), (1, 4, 655)]
    assert bursts(shared, 0) == [(0, 4, 655), (1, 655, 1306)]
    assert alone.total_cycles == 4 + 651 + 2            # post: ceil(256 / 128) = 2
    assert shared.total_cycles == 4 + 2 * 651 + 2
    assert shared.n_adcs == alone.n_adcs // 2


def test_shared_adc_group_alternates_tiles_row_by_row() -> None:
    # two 3-row conv tiles (16 outputs per 8-column array), one group: rows interleave
    xbar = XbarConfig(array=ArrayConfig(rows=128, cols=8))
    net = [conv("c", 1, 3, 16)]
    p = plan_layer(net[0], xbar, TimingConfig(tiles_per_adc_group=2))
    b = p.tiles[0].burst_cycles
    shared = HardwareConfig.from_parts(xbar, timing=TimingConfig(tiles_per_adc_group=2))
    got = bursts(simulate(net, shared), 0)
    t0 = got[0][1]
    assert got == [(i % 2, t0 + i * b, t0 + (i + 1) * b) for i in range(6)]


def test_pipelined_single_layer_batch_is_a_flow_shop() -> None:
    # per inference: input 4 cycles on the bus, MVM 651, post 1; the tile is the bottleneck
    result = simulate([linear("f", 100, 10)], schedule="pipelined", batch=4)
    assert result.total_cycles == 656
    assert result.completion_cycles == [656 + 651 * i for i in range(4)]
    assert result.throughput_inferences_per_s == pytest.approx(1e9 / 651)
    assert result.tile_utilisation == pytest.approx(4 * 651 / (656 + 3 * 651))


def test_pipelined_consumer_starts_when_its_window_is_in_the_line_buffer() -> None:
    # conv -> conv, 3x3 pad 1: the second layer's first output row reads input rows 0 and 1,
    # so it starts when the first layer's row 1 is activated and sent (2x6x... 6 wide rows)
    net = [conv("a", 2, 6, 4), conv("b", 4, 6, 4)]
    result = simulate(net, schedule="pipelined")
    first = plan_layer(net[0], XbarConfig(), TimingConfig())
    second = plan_layer(net[1], XbarConfig(), TimingConfig())
    a, b = bursts(result, 0), bursts(result, 1)
    row1_done = a[1][2] + first.post_cycles
    send_row = -(-second.input_row_bytes // 32)
    assert b[0][1] == row1_done + send_row
    # row r of b needs row r + 1 of a (the last row needs only row 5)
    for r in range(1, 5):
        assert b[r][1] >= a[r + 1][2] + first.post_cycles + send_row
    layer = sum(network_cycles_layer_schedule(net))
    assert result.total_cycles < layer


def test_pooling_between_layers_maps_rows_in_proportion() -> None:
    # a 1x1 conv on 4 rows, pooled 2x2 to 2 rows, then a linear layer needing everything
    a = LayerSpec("a", "conv", 1, 2, (1, 4, 4), (4, 4))
    b = LayerSpec("b", "conv", 2, 2, (2, 2, 2), (2, 2))
    c = linear("c", 8, 3)
    result = simulate([a, b, c], schedule="pipelined")
    ra, rb, rc = bursts(result, 0), bursts(result, 1), bursts(result, 2)
    assert rb[0][1] > ra[1][2] and rb[0][1] < ra[2][2]   # after a's row 1, before row 2
    assert rc[0][1] > rb[-1][2]


@pytest.mark.parametrize("schedule", ["layer", "pipelined"])
def test_one_timeout_per_tile_per_row(schedule: str) -> None:
    net = [conv("a", 3, 8, 20), conv("b", 20, 8, 300), linear("f", 300 * 64, 10)]
    result = simulate(net, schedule=schedule, batch=2)
    n_bursts = sum(plan_layer(s, XbarConfig(), TimingConfig()).n_tiles * s.out_hw[0]
                   for s in net)
    assert len(result.timeline.start) == 2 * n_bursts
    # every event is a burst, a row's handshake or a transfer: bounded by a small multiple
    assert result.events_processed < 8 * 3 * n_bursts


def test_pipelined_is_faster_and_deterministic() -> None:
    net = [conv("a", 3, 10, 16), conv("b", 16, 10, 32), linear("f", 32 * 100, 10)]
    lay = simulate(net, schedule="layer", batch=3)
    pip = simulate(net, schedule="pipelined", batch=3)
    assert pip.total_cycles < lay.total_cycles
    assert pip.throughput_inferences_per_s > lay.throughput_inferences_per_s
    again = simulate(net, schedule="pipelined", batch=3)
    assert again.to_dict() | {"wall_s": 0} == pip.to_dict() | {"wall_s": 0}


def test_bounded_line_buffer() -> None:
    net = [conv("a", 3, 10, 16), conv("b", 16, 10, 32), linear("f", 32 * 100, 10)]
    free = simulate(net, schedule="pipelined", batch=2)
    tight = simulate(net, HardwareConfig(timing=TimingConfig(line_buffer_rows=10)),
                     schedule="pipelined", batch=2)
    assert tight.total_cycles >= free.total_cycles
    assert tight.makespan_cycles >= free.makespan_cycles
    with pytest.raises(ValueError, match=r"line_buffer_rows = 2 is too small for layer 'a'"):
        simulate(net, HardwareConfig(timing=TimingConfig(line_buffer_rows=2)), schedule="pipelined")
    # the layer schedule buffers whole maps and ignores the line buffer
    assert simulate(net, HardwareConfig(timing=TimingConfig(line_buffer_rows=2))).total_cycles == \
        sum(network_cycles_layer_schedule(net))


def test_shared_accumulator_pool_contends_under_pipelining() -> None:
    net = [linear("f1", 300, 300), linear("f2", 300, 300)]
    own = simulate(net, schedule="pipelined", batch=3)
    pooled = HardwareConfig(timing=TimingConfig(accumulator_units=1,
                                                accumulator_values_per_cycle=1))
    pool = simulate(net, pooled, schedule="pipelined", batch=3)
    assert pool.makespan_cycles > own.makespan_cycles


def test_bad_input_is_refused() -> None:
    net = [linear("f", 10, 10)]
    with pytest.raises(ValueError, match="schedule = 'fast' is invalid"):
        simulate(net, schedule="fast")
    with pytest.raises(ValueError, match="batch = 0 is invalid"):
        simulate(net, batch=0)
    with pytest.raises(ValueError, match="no Linear or Conv2d"):
        simulate([])
    with pytest.raises(ValueError, match="duplicate layer name 'f'"):
        simulate(net + net)
    with pytest.raises(ValueError, match=r"LayerSpec 'x': kind = 'pool'"):
        LayerSpec("x", "pool", 1, 1, (1, 1, 1), (1, 1))
    with pytest.raises(ValueError, match=r"LayerSpec 'x': n_in = 0"):
        LayerSpec("x", "linear", 0, 1, (1, 1, 1), (1, 1))
    with pytest.raises(ValueError, match="stride"):
        LayerSpec("x", "conv", 9, 1, (1, 3, 3), (1, 1), stride=(0, 1))


def test_layer_spec_round_trips_through_a_dict() -> None:
    spec = conv("c", 2, 6, 4)
    assert LayerSpec.from_dict(spec.to_dict()) == spec
