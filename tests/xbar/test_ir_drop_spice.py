"""The IR-drop solver (:mod:`xbar.ir_drop`) against ngspice on the same circuit
(:mod:`xbar.spice`): random conductances and word-line voltages, arrays up to 64 x 64.
Skips, saying why, where ngspice is not installed (.ci/run installs the Debian package).

Stated tolerance (docs/ir_drop.md): the exact solves (per read, and v @ T in float64) agree
with ngspice to 1e-9 relative (ngspice prints 12 digits); the float32 transfer matrices the
kernels read to 1e-5 of the largest current."""

from __future__ import annotations

import numpy as np
import pytest

from xbar.analog import AnalogMatrix
from xbar.config import ADCConfig, ArrayConfig, DACConfig, XbarConfig
from xbar.devices import Device
from xbar.ir_drop import solve_read, transfer_matrix
from xbar.spice import netlist, ngspice, ngspice_currents

needs_ngspice = pytest.mark.skipif(ngspice() is None, reason="ngspice is not installed "
                                   "(apt-get install ngspice; .ci/run does)")


def _case(n_r: int, n_c: int, seed: int, zeros: float = 0.1):
    rng = np.random.default_rng(seed)
    g = rng.uniform(1.0, 166.7, (n_r, n_c)) * (rng.random((n_r, n_c)) >= zeros)
    v = rng.uniform(0, 0.5, n_r) * (rng.random(n_r) < 0.7)
    return g, v


def test_netlist_holds_every_element():
    """Independent of ngspice: one source and R wire segments per word line, one sense
    source and R segments per bit line, one resistor per conducting cell."""
    g = np.array([[100.0, 0.0, 5.0], [20.0, 10.0, 1.0]])
    text = netlist(g, np.array([0.5, 0.25]), 2.5, 1e3).splitlines()
    assert sum(line.startswith("V") and not line.startswith("VS") for line in text) == 2
    assert sum(line.startswith("VS") for line in text) == 3
    assert sum(line.startswith(("RD", "RU")) for line in text) == 2 * 3
    assert sum(line.startswith(("RS", "RB")) for line in text) == 3 * 2
    cells = [line.split() for line in text if line.startswith("RC")]
    assert len(cells) == 5
    assert float(cells[0][3]) == pytest.approx(1e3 + 1e4)


@needs_ngspice
@pytest.mark.parametrize("shape, r, ra", [((2, 2), 2.5, 0.0), ((8, 8), 2.5, 0.0),
                                          ((16, 12), 10.0, 2000.0), ((5, 31), 1.0, 0.0)])
def test_solver_agrees_with_ngspice(shape, r, ra):
    g, v = _case(*shape, seed=shape[0] * 100 + shape[1])
    spice = ngspice_currents(g, v, r, ra)
    mine = solve_read(g, v, r, ra)[0]
    ideal = v @ (g / (1 + g * ra * 1e-6))
    assert np.abs(ideal - spice).max() > 1e-4 * np.abs(spice).max()   # the wires show
    np.testing.assert_allclose(mine, spice, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(v @ transfer_matrix(g, r, ra), spice, rtol=1e-9, atol=1e-12)


@needs_ngspice
@pytest.mark.slow
def test_64_by_64_agrees_with_ngspice():
    g, v = _case(64, 64, seed=64)
    spice = ngspice_currents(g, v, 2.5)
    np.testing.assert_allclose(v @ transfer_matrix(g, 2.5), spice, rtol=1e-9, atol=1e-12)
    assert np.mean(1 - spice / (v @ g)) > 0.05                         # IR drop is large


@needs_ngspice
def test_kernel_read_agrees_with_ngspice():
    """What the kernels read (float32 transfer matrices of a programmed matrix's G+ array),
    times one read's word-line voltages, against ngspice on that array."""
    rng = np.random.default_rng(3)
    cell = Device(name="jx-like", g_min_us=1.0, g_max_us=166.7, n_levels=16)
    cfg = XbarConfig(ArrayConfig(rows=24, cols=16, wire_resistance_ohm=2.5), DACConfig(),
                     ADCConfig())
    m = AnalogMatrix.program(np.abs(rng.normal(size=(16, 24))), cell, cfg, rng)
    v = rng.uniform(0, 0.5, 24)
    spice = ngspice_currents(m.g_us[:, :16], v, 2.5)
    got = v @ m.read_conductances()[:, :16].astype(np.float64)
    assert np.abs(got - spice).max() <= 1e-5 * np.abs(spice).max()
