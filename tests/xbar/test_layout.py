"""The weight-layout concept: one class per mapping scheme, used by every model."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import xbar
from xbar.analog import AnalogMatrix
from xbar.config import ArrayConfig, TimingConfig, XbarConfig
from xbar.devices import Device
from xbar.errors import ConfigError
from xbar.layout import DifferentialLayout, OffsetLayout, weight_layout
from xbar.timing.closed_form import plan_layer
from xbar.timing.network import LayerSpec
from xbar.timing.programming import LayerCells, column_layout, physical_columns

DEV = Device(name="q", g_min_us=1.0, g_max_us=100.0, n_levels=9)
SHAPES = [(1, 1), (5, 3), (17, 11), (9, 24)]       # (n_in, n_out)
GEOMETRIES = [(4, 2), (4, 3), (8, 5), (3, 16)]     # (rows, cols)


def _array(mapping: str, rows: int = 8, cols: int = 5) -> ArrayConfig:
    return ArrayConfig(rows=rows, cols=cols, weight_mapping=mapping)


def test_factory_picks_the_class_of_the_mapping() -> None:
    assert isinstance(weight_layout(_array("differential")), DifferentialLayout)
    assert isinstance(weight_layout(_array("offset")), OffsetLayout)
    assert isinstance(weight_layout(XbarConfig(array=_array("offset"))), OffsetLayout)
    assert xbar.weight_layout is weight_layout
    with pytest.raises(ConfigError, match="weight_layout needs an ArrayConfig .* got str"):
        weight_layout("offset")
    with pytest.raises(ConfigError, match="OffsetLayout lays out the 'offset' mapping; the "
                                          "array config says 'differential'"):
        OffsetLayout(_array("differential"))


def test_offset_needs_three_levels() -> None:
    two = Device(name="binary", n_levels=2)
    with pytest.raises(ConfigError, match="offset weight mapping needs a device with >= 3 "
                                          "levels .* 'binary' has 2"):
        weight_layout(_array("offset")).span_us(two)


@pytest.mark.parametrize("mapping", ["differential", "offset"])
@pytest.mark.parametrize("rows,cols", GEOMETRIES)
@pytest.mark.parametrize("n_in,n_out", SHAPES)
def test_every_model_sees_the_same_cells(mapping: str, rows: int, cols: int, n_in: int,
                                         n_out: int) -> None:
    """The analog model's cell matrix, the programming-time model's and the closed forms'
    column counts all come from the layout, and agree with one another."""
    if mapping == "offset" and cols < 2:
        pytest.skip("offset needs a reference column")
    config = XbarConfig(array=_array(mapping, rows, cols))
    layout = weight_layout(config)
    w = np.random.default_rng(n_in * 31 + n_out).standard_normal((n_out, n_in))
    m = AnalogMatrix.program(w, DEV, config, np.random.default_rng(0))
    cm = layout.columns(n_out)
    assert m.g_us.shape == layout.cell_shape(n_in, n_out) == (n_in, physical_columns(n_out, config))
    np.testing.assert_array_equal(m.pos_cols, cm.pos_cols)
    np.testing.assert_array_equal(m.neg_cols, cm.neg_cols)
    np.testing.assert_array_equal(m.tile_of_col, cm.array)
    array, line, n_arrays = column_layout(n_out, config)
    np.testing.assert_array_equal(array, cm.array)
    np.testing.assert_array_equal(line, cm.line)
    assert n_arrays == cm.n_arrays == layout.col_tiles(n_out) * layout.arrays_per_tile
    assert m.n_tiles == layout.row_tiles(n_in) * layout.col_tiles(n_out)
    # Each array's bit lines are packed from 0, and the closed forms count them alike.
    for a in range(cm.n_arrays):
        lines = np.sort(cm.line[cm.array == a])
        np.testing.assert_array_equal(lines, np.arange(len(lines)))
        assert len(lines) == layout.used_columns(n_out, a % layout.col_tiles(n_out)) <= cols
    spec = LayerSpec("fc", "linear", n_in, n_out, (n_in, 1, 1), (1, 1))
    plan = plan_layer(spec, config, TimingConfig())
    assert [t.used_cols for t in plan.tiles] == [
        layout.used_columns(n_out, ct) for _ in range(layout.row_tiles(n_in))
        for ct in range(layout.col_tiles(n_out))]
    assert plan.arrays_per_tile == layout.arrays_per_tile
    # The programming model accepts counts shaped like the analog model's cells.
    LayerCells("fc", n_in, n_out, m.target_levels, m.target_levels).check_layout(config)
    order = layout.tile_order(layout.row_tiles(n_in), n_out)
    assert sorted(order.tolist()) == list(range(layout.row_tiles(n_in) * cm.n_arrays))


@pytest.mark.parametrize("rows,cols", [(4, 3), (8, 5)])
def test_offset_reference_column_is_shared_by_its_arrays_weights(rows: int, cols: int) -> None:
    layout = weight_layout(_array("offset", rows, cols))
    n_out = 7
    cm = layout.columns(n_out)
    assert len(cm.ref_cols) == layout.col_tiles(n_out)
    # every weight subtracts the reference column of its own array, on the bit line after
    # the array's weight columns
    np.testing.assert_array_equal(cm.array[cm.neg_cols], cm.array[cm.pos_cols])
    assert set(cm.neg_cols.tolist()) == set(cm.ref_cols.tolist())
    for r in cm.ref_cols:
        weights = cm.pos_cols[cm.neg_cols == r]
        assert cm.line[r] == len(weights) == cm.line[weights].max() + 1
    w = np.random.default_rng(1).standard_normal((n_out, 6))
    lv = layout.target_levels(w, DEV, layout.scales(w, DEV))
    assert np.all(lv[:, cm.ref_cols] == OffsetLayout.reference_level(DEV))


def test_differential_pair_holds_the_weight_on_one_side() -> None:
    layout = weight_layout(_array("differential"))
    w = np.random.default_rng(2).standard_normal((6, 10))
    w[0, :3] = 0.0
    cm = layout.columns(6)
    lv = layout.target_levels(w, DEV, layout.scales(w, DEV))
    pos, neg = lv[:, cm.pos_cols].T, lv[:, cm.neg_cols].T
    assert np.all((pos == 0) | (neg == 0))
    assert np.all(pos[w > 0] >= 0) and np.all(neg[w > 0] == 0) and np.all(pos[w < 0] == 0)
    assert np.all(pos[w == 0] == 0) and np.all(neg[w == 0] == 0)
    assert cm.ref_cols.size == 0


@pytest.mark.parametrize("mapping", ["differential", "offset"])
@pytest.mark.parametrize("scale", ["column", "layer"])
def test_quantisation_error_is_at_most_half_a_level(mapping: str, scale: str) -> None:
    layout = weight_layout(_array(mapping))
    w = np.random.default_rng(3).standard_normal((9, 13))
    g_scale = layout.scales(w, DEV, scale)
    q = layout.effective_weights(DEV.levels[layout.target_levels(w, DEV, g_scale)], g_scale)
    step = DEV.levels[1] - DEV.levels[0]
    assert np.all(np.abs(q - w) <= step / 2 / g_scale[:, None] + 1e-12)
    np.testing.assert_allclose(layout.w_max(DEV, g_scale),
                               np.abs(w).max(axis=1) if scale == "column"
                               else np.full(9, np.abs(w).max()))


@pytest.mark.parametrize("mapping", ["differential", "offset"])
def test_numpy_and_torch_place_and_quantise_alike(mapping: str) -> None:
    """KD's tensors take the same levels as the chip's arrays (same arithmetic, float64)."""
    layout = weight_layout(_array(mapping, 4, 3))
    w = np.random.default_rng(4).standard_normal((7, 11)).astype(np.float32)
    w[1] = 0.0                                                  # an all-zero column
    wt = torch.from_numpy(w)
    s_np, s_t = layout.scales(w, DEV), layout.scales(wt, DEV)
    np.testing.assert_array_equal(s_t.numpy(), s_np)
    lv_np, lv_t = layout.target_levels(w, DEV, s_np), layout.target_levels(wt, DEV, s_t)
    assert lv_np.dtype == np.int32
    np.testing.assert_array_equal(lv_t.numpy(), lv_np)
    g = DEV.levels[lv_np].astype(np.float32)
    np.testing.assert_array_equal(layout.effective_weights(torch.from_numpy(g), s_t).numpy(),
                                  layout.effective_weights(g, s_np))
