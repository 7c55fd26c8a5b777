"""Work 3 (ITT-RNA / DATE 2017): the chip's cells, the test pass, fault-aware mapping and the
chip file's permutation."""

from __future__ import annotations

import itertools
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from torch import nn

from xbar.config import ArrayConfig, HardwareConfig, ProgrammingConfig, TimingConfig, XbarConfig
from xbar.devices.presets import preset
from xbar.errors import ConfigError, FileFormatError
from xbar.layout import weight_layout
from xbar.mapping.chip import Chip
from xbar.mapping.recovery.techniques.fault_aware import (check_perm, expected_error, fault_aware_perms,
                                               folded_weights, match_rows, program_mapped,
                                               row_costs)
from xbar.mapping.cells import chip_cells, spare_capacity
from xbar.mapping.recovery.techniques.fault_map import (cost_of_test_pass, layer_shapes,
                                                        run_test_pass)
from xbar.mapping.recovery.itt_rna import stuck_device

XB = XbarConfig(array=ArrayConfig(rows=16, cols=16))
SHAPE = (1, 5, 8)


def tiny_mlp(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(40, 12), nn.ReLU(), nn.Linear(12, 5)).eval()


def inputs(n: int = 64, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).random((n, *SHAPE), dtype=np.float32)


def tile_perm(n_in: int, rows: int, seed: int, limit: int | None = None) -> np.ndarray:
    """A random permutation of each row tile's rows (the last tile up to ``limit``)."""
    rng = np.random.default_rng(seed)
    limit = n_in if limit is None else limit
    perm = np.empty(n_in, np.int64)
    for lo in range(0, n_in, rows):
        logical = np.arange(lo, min(lo + rows, n_in))
        physical = np.arange(lo, min(lo + rows, limit))
        perm[logical] = rng.permutation(physical)[:len(logical)]
    return perm


def test_permuted_chip_is_exact_with_an_ideal_device() -> None:
    model, dev, x = tiny_mlp(), preset("ideal"), inputs()
    plain = Chip.program(model, dev, XB, seed=3, input_shape=SHAPE)
    perms = [tile_perm(lay.matrix.n_in, XB.array.rows, k) for k, lay in enumerate(plain.layers)]
    assert any(not np.array_equal(p, np.arange(len(p))) for p in perms)
    permuted = program_mapped(model, dev, XB, 3, perms, shape=SHAPE)
    for chip in (plain, permuted):
        chip.calibrate(x)
    assert np.array_equal(plain.predict(x), permuted.predict(x))
    assert set(permuted.row_perms) == {lay.layer_name for lay in permuted.layers}


def test_identity_mapping_is_chip_program_and_cells_follow_the_permutation() -> None:
    model, dev = tiny_mlp(), stuck_device(0.3).replace(variation="lognormal", sigma=0.3)
    plain = Chip.program(model, dev, XB, seed=5, input_shape=SHAPE)
    same = program_mapped(model, dev, XB, 5, [np.arange(lay.matrix.n_in) for lay in plain.layers],
                          shape=SHAPE)
    perms = [tile_perm(lay.matrix.n_in, XB.array.rows, 9 + k) for k, lay in enumerate(plain.layers)]
    moved = program_mapped(model, dev, XB, 5, perms, shape=SHAPE)
    for a, b, c, p in zip(plain.layers, same.layers, moved.layers, perms):
        assert np.array_equal(a.matrix.g_us, b.matrix.g_us)
        assert np.array_equal(a.matrix.stuck, b.matrix.stuck)
        # stuck cells belong to physical rows: input row i now sees physical row p[i]'s
        assert np.array_equal(c.matrix.stuck, a.matrix.stuck[p])


def test_stuck_map_depends_on_the_seed_only() -> None:
    dev = stuck_device(0.2)
    a = Chip.program(tiny_mlp(0), dev, XB, seed=7, input_shape=SHAPE)
    b = Chip.program(tiny_mlp(1), dev, XB, seed=7, input_shape=SHAPE)
    c = Chip.program(tiny_mlp(0), dev, XB, seed=8, input_shape=SHAPE)
    assert all(np.array_equal(x.matrix.stuck, y.matrix.stuck) for x, y in zip(a.layers, b.layers))
    assert not all(np.array_equal(x.matrix.stuck, y.matrix.stuck)
                   for x, y in zip(a.layers, c.layers))
    cells = chip_cells(7, layer_shapes(a), dev, XB)
    for lay, cell in zip(a.layers, cells):
        g, stuck = cell.program(dev, lay.matrix.target_levels)
        assert np.array_equal(g, lay.matrix.g_us) and np.array_equal(stuck, lay.matrix.stuck)


@pytest.mark.parametrize("c2c", [0.0, 0.5, 1.0])
def test_test_pass_finds_every_stuck_cell_and_the_deviation(c2c: float) -> None:
    """The test write lands at the cell's own device-to-device draw plus a fresh
    cycle-to-cycle one (replayed here from the test pass's stream: per layer, the two test
    writes' draws); the map keeps the expected device-to-device part, (1 - c2c) times the
    read log ratio: all of it with c2c = 0, nothing with c2c = 1."""
    dev = stuck_device(0.2).replace(variation="lognormal", sigma=0.2, c2c_fraction=c2c)
    chip = Chip.program(tiny_mlp(), dev, XB, seed=2, input_shape=SHAPE)
    cells = chip_cells(2, layer_shapes(chip), dev, XB)
    fmap = run_test_pass(cells, dev, HardwareConfig.from_parts(XB), 2)
    replay = np.random.default_rng(np.random.SeedSequence([2, 6]))
    for lmap, lay, cell in zip(fmap.layers, chip.layers, cells):
        assert np.array_equal(lmap.stuck, lay.matrix.stuck)
        fresh = replay.standard_normal(cell.eps.shape, dtype=np.float32) if c2c else 0.0
        if c2c:
            replay.standard_normal(cell.eps.shape, dtype=np.float32)  # the second pattern's
        z = np.sqrt(1 - c2c) * cell.eps + np.sqrt(c2c) * fresh
        ok = (lmap.stuck == 0) & (np.abs(z * 0.2) < 1.0)
        # the middle-level read resolves the log deviation to about the ADC's lsb
        assert np.allclose(lmap.theta_read[ok], 0.2 * z[ok], atol=0.02)
        np.testing.assert_allclose(lmap.theta, (1 - c2c) * lmap.theta_read, rtol=1e-6)
        if c2c == 0:
            assert np.allclose(lmap.theta[ok], 0.2 * cell.eps[ok], atol=0.02)


def test_test_cost_is_the_closed_form() -> None:
    """Two pulses and two ADC reads per cell, rows one at a time, one array at a time."""
    hw = HardwareConfig.from_parts(XB, timing=TimingConfig(), programming=ProgrammingConfig())
    shapes = [("a", 40, 12), ("b", 12, 5)]
    cells = chip_cells(0, shapes, preset("ideal"), XB)
    t_s, _ = cost_of_test_pass(cells, hw)
    prog = hw.programming.replace(verify_read="adc")
    t_p, t_v = prog.pulse_cycles(hw.timing), prog.verify_cycles(hw.timing, XB)
    layout = weight_layout(XB.array)
    total = 0
    for _, n_in, n_out in shapes:  # differential: G+ and G- arrays, a driver per bit line
        n_rt, n_ct = layout.row_tiles(n_in), layout.col_tiles(n_out)
        for rt in range(n_rt):
            rows = min(XB.array.rows, n_in - rt * XB.array.rows)
            total += 2 * n_ct * rows * (2 * t_p + 2 * t_v)
    assert t_s == pytest.approx(total * 1e-9 / hw.timing.clock_ghz, rel=1e-12)


def test_matching_is_optimal_and_beats_identity_on_a_faulty_chip() -> None:
    dev = stuck_device(0.2)
    model = tiny_mlp()
    chip = Chip.program(model, dev, XB, seed=4, input_shape=SHAPE)
    fmap = run_test_pass(chip_cells(4, layer_shapes(chip), dev, XB), dev,
                     HardwareConfig.from_parts(XB), 4)
    w = folded_weights(model)
    perms, err = fault_aware_perms(w, fmap, dev, XB)
    assert err["error_matched"] < 0.8 * err["error_identity"]
    cost = row_costs(w[1], fmap.layers[1], dev, XB)[:6, :6]   # brute force over 6! orders
    best = min(sum(cost[i, p[i]] for i in range(6)) for p in itertools.permutations(range(6)))
    assert expected_error(cost, match_rows(cost, 16)) == pytest.approx(best)
    before = Chip.program(model, dev, XB, 4, input_shape=SHAPE).layers
    after = program_mapped(model, dev, XB, 4, perms, shape=SHAPE).layers
    for b, a, wk in zip(before, after, w):  # the programmed weights are closer too
        assert np.sum((a.matrix.effective_weights() - wk) ** 2) < \
            np.sum((b.matrix.effective_weights() - wk) ** 2)


def test_spare_rows_stay_in_the_last_tile() -> None:
    dev, model = stuck_device(0.2), tiny_mlp()
    assert spare_capacity(40, XB) == 8 and spare_capacity(48, XB) == 0
    cells = chip_cells(1, [("1", 40, 12), ("3", 12, 5)], dev, XB, spare_rows=100)
    assert [c.rows for c in cells] == [48, 16]
    fmap = run_test_pass(cells, dev, HardwareConfig.from_parts(XB), 1)
    perms, err = fault_aware_perms(folded_weights(model), fmap, dev, XB)
    assert perms[0].max() >= 40 and err["error_matched"] < err["error_identity"]
    chip = program_mapped(model, dev, XB, 1, perms, spare_rows=100, shape=SHAPE, cells=cells)
    for lay, p, c in zip(chip.layers, perms, cells):
        assert np.array_equal(p // 16, np.arange(len(p)) // 16) and p.max() < c.rows
        _, stuck = c.program(dev, np.zeros((c.rows, lay.matrix.g_us.shape[1]), np.int32))
        assert np.array_equal(lay.matrix.stuck, stuck[p])   # spare rows' cells included


def test_bad_permutations_are_refused() -> None:
    with pytest.raises(ConfigError, match="two input rows"):
        check_perm(np.array([0, 0, 1]), 3, 3, 16, "layer")
    with pytest.raises(ConfigError, match="out of its"):
        check_perm(np.array([16, 1, 2]), 3, 32, 16, "layer")
    with pytest.raises(ConfigError, match="outside"):
        check_perm(np.array([0, 1, 5]), 3, 4, 16, "layer")
    with pytest.raises(ConfigError, match="permutations given"):
        program_mapped(tiny_mlp(), preset("ideal"), XB, 0, [None], shape=SHAPE)
    with pytest.raises(ConfigError, match="spare_rows"):
        chip_cells(0, [("a", 4, 4)], preset("ideal"), XB, spare_rows=-1)


def test_chip_file_keeps_the_permutation(tmp_path: Path) -> None:
    model, dev, x = tiny_mlp(), stuck_device(0.2), inputs()
    plain = Chip.program(model, dev, XB, 0, input_shape=SHAPE)
    perms = [tile_perm(lay.matrix.n_in, 16, k) for k, lay in enumerate(plain.layers)]
    chip = program_mapped(model, dev, XB, 0, perms, shape=SHAPE)
    chip.calibrate(x)
    path = tmp_path / "chip.h5"
    chip.save(path)
    back = Chip.load(path, model)
    assert back.row_perms.keys() == chip.row_perms.keys()
    assert all(np.array_equal(back.row_perms[k], v) for k, v in chip.row_perms.items())
    assert np.array_equal(back.predict(x), chip.predict(x))
    plain.calibrate(x)
    plain.save(tmp_path / "plain.h5")           # no permutation stored: the identity
    assert Chip.load(tmp_path / "plain.h5", model).row_perms == {}
    with h5py.File(path, "r+") as f:
        node = f["layers/0/row_perm"]
        bad = node[()]
        bad[1] = bad[0]
        node[...] = bad
    with pytest.raises(FileFormatError, match="two input rows"):
        Chip.load(path, model)
    with h5py.File(path, "r+") as f:
        node = f["layers/0/row_perm"]
        node[...] = np.roll(np.arange(40), 20)   # rows move across tiles
    with pytest.raises(FileFormatError, match="row tile"):
        Chip.load(path, model)
