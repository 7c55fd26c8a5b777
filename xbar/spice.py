"""An array's read as a SPICE netlist, run in ngspice: the independent check of
:mod:`xbar.ir_drop` (tests/xbar/test_ir_drop_spice.py, benchmarks/ir_drop_spice.py).

The netlist is the circuit :mod:`xbar.ir_drop` states, element by element: per word line a
DC source ``V_i`` and its chain of wire resistors (driver end first), per bit line a 0 V
source (the sense amplifier's virtual ground, whose current ngspice reports) and its chain,
per cell one resistor ``R_a + 1/G`` (no element where G = 0). ngspice solves it by its own
sparse LU (a DC operating point: ``.op``), and prints each sense source's current with 12
significant digits.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from xbar.errors import ConfigError

__all__ = ["netlist", "ngspice", "ngspice_currents"]


def ngspice() -> str | None:
    """Path of the ngspice executable, or None when it is not installed."""
    return shutil.which("ngspice")


def netlist(g_us: np.ndarray, v: np.ndarray, r_wire_ohm: float,
            r_access_ohm: float = 0.0) -> str:
    """The SPICE netlist of one read of an array (R x C conductances in uS, word-line
    voltages ``v`` in volts, r > 0 ohm per cell pitch)."""
    g = np.asarray(g_us, dtype=np.float64)
    v = np.asarray(v, dtype=np.float64)
    if g.ndim != 2 or v.shape != (g.shape[0],) or not r_wire_ohm > 0:
        raise ConfigError(f"netlist needs an (R, C) grid, R voltages and r > 0; got "
                          f"{g.shape}, {v.shape}, r = {r_wire_ohm!r}")
    n_r, n_c = g.shape
    r = f"{r_wire_ohm:.17g}"
    out = [f"* xbar-sim array read: {n_r} word lines x {n_c} bit lines, r = {r} ohm"]
    for i in range(n_r):
        out.append(f"V{i} d{i} 0 DC {v[i]:.17g}")
        out.append(f"RD{i} d{i} u{i}_0 {r}")
        out.extend(f"RU{i}_{j} u{i}_{j - 1} u{i}_{j} {r}" for j in range(1, n_c))
    for j in range(n_c):
        out.append(f"VS{j} s{j} 0 DC 0")
        out.append(f"RS{j} b0_{j} s{j} {r}")
        out.extend(f"RB{i}_{j} b{i - 1}_{j} b{i}_{j} {r}" for i in range(1, n_r))
    for i in range(n_r):
        for j in range(n_c):
            if g[i, j] > 0:
                out.append(f"RC{i}_{j} u{i}_{j} b{i}_{j} {r_access_ohm + 1e6 / g[i, j]:.17g}")
    out += [".control", "set numdgt=12", "op"]
    out += [f"print i(vs{j})" for j in range(n_c)]
    out += ["quit 0", ".endc", ".end", ""]       # quit: batch mode's exit status 0
    return "\n".join(out)


_LINE = re.compile(r"^i\(vs(\d+)\)\s*=\s*([-+0-9.eE]+)", re.MULTILINE)


def ngspice_currents(g_us: np.ndarray, v: np.ndarray, r_wire_ohm: float,
                     r_access_ohm: float = 0.0, timeout_s: float = 600.0) -> np.ndarray:
    """Bit-line currents in uA into the sense amplifiers, by ``ngspice -b`` on
    :func:`netlist` (C,)."""
    exe = ngspice()
    if exe is None:
        raise ConfigError("ngspice is not installed (Debian: apt-get install ngspice)")
    n_c = np.asarray(g_us).shape[1]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "array.cir"
        path.write_text(netlist(g_us, v, r_wire_ohm, r_access_ohm))
        done = subprocess.run([exe, "-b", str(path)], capture_output=True, text=True,
                              timeout=timeout_s, cwd=tmp)
    found = {int(j): float(x) for j, x in _LINE.findall(done.stdout)}
    if done.returncode != 0 or len(found) != n_c:
        raise ConfigError(f"ngspice failed (exit {done.returncode}, {len(found)} of {n_c} "
                          f"currents): {done.stderr[-500:] or done.stdout[-500:]}")
    # ngspice's source current flows into its + node: the sense current, positive.
    return np.array([found[j] for j in range(n_c)]) * 1e6
