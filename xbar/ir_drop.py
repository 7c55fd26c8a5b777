"""IR drop: an array's wires and access transistors as a resistive network, solved per read.

The circuit of one array (``R`` word lines used by a row tile's inputs, ``C`` bit lines used
by its physical columns; the parameters are :class:`xbar.config.ArrayConfig`'s
``wire_resistance_ohm`` = r and ``access_resistance_ohm`` = R_a):

* Word line ``i`` (input ``i`` of the row tile) is driven at its left end by the DAC's driver,
  an ideal voltage source ``V_i``, through one wire segment r to the node ``u(i, 0)`` of the
  first cell; ``u(i, j)`` and ``u(i, j + 1)`` are joined by one segment r (one cell pitch of
  word line). The far end is open.
* Bit line ``j`` is held at virtual ground (0 V) by its sense amplifier at the bottom end,
  through one segment r to the node ``b(0, j)``; ``b(i, j)`` and ``b(i + 1, j)`` are joined
  by one segment r (one cell pitch of bit line). The far end is open. The current the ADC
  converts is ``I_j = b(0, j) / r``.
* Cell ``(i, j)`` joins ``u(i, j)`` to ``b(i, j)``: the access transistor's on-resistance
  R_a in series with the RRAM cell's programmed conductance G: ``g = G / (1 + G R_a)``.

Word line 0 is the one nearest the sense amplifiers and bit line 0 the one nearest the
drivers; a layout puts row tile input ``i`` on word line ``i`` and each physical column on
its bit line (:attr:`xbar.layout.ColumnMap.line`), so a row tile or array that is not full
leaves its unused lines at the far ends, where they carry no current (open stubs) and are
left out of the network. A cell that is not there (a bit line with no physical column) is
G = 0. With r = 0 every cell sees its full word-line voltage and
``I_j = sum_i V_i g_ij`` (with R_a = 0 as well: today's ideal read).

What it leaves out: the transistor is a linear resistor (its on-resistance at the read
bias; the triode region's nonlinearity is not modelled), the cell is ohmic at the read
voltage, the drivers are ideal sources and the sense amplifiers ideal virtual grounds (no
output resistance, no offset), the unselected lines (there are none: every row tile's word
lines are driven at once) and the wires' capacitance (a read is DC).

The network is linear, so by superposition the bit-line currents of any read are
``I = v @ T`` with the transfer matrix ``T_ij = dI_j / dV_i`` (uS), and the network's node
voltages for that read solve the same system: applying T to a read's word-line voltages *is*
the read's exact solve, not an approximation of it (its error against :func:`solve_read` is
the float32 rounding of T, ~1e-7 relative; tests check it). T is computed once per
programmed array (and again when cells are rewritten), exactly, by block elimination line
by line (:func:`_sweep`, the default) or, for arrays whose blocks would take too much
memory, from one sparse LU of the nodal matrix K: T is K's inverse between the drivers' and
the sense amplifiers' nodes, ``T_ij = (1/r)**2 (K**-1)[u(i, 0), b(0, j)]``
(:func:`transfer_matrix`). The MVM kernels then read T instead
of G: per read the cost is the ideal read's (:class:`xbar.analog.AnalogMatrix`).

Read noise, stuck cells, the DAC and the ADC are as without wires: stuck cells are in G,
the DAC codes set V_i, the ADC converts I. The read noise stays output-referred with
variance ``sigma**2 v_unit**2 sum_i a_i**2 T_ij**2``: each cell's current fluctuates by
sigma times its contribution through the wires (the redistribution of a cell's
fluctuation over the network's other paths is left out: the model's std is 1.0x Monte
Carlo's at 3 % of the current lost, 1.1x at 30 %, 1.3x at 58 %; docs/ir_drop.md).
"""

from __future__ import annotations

import numpy as np

from xbar.errors import ConfigError

__all__ = ["cell_conductance", "circuit_conductances", "nodal_matrix", "read_conductances",
           "solve_read", "transfer_matrix"]

_RHS_CHUNK = 64  # right-hand sides per triangular solve (bounds memory: n x 64 float64)


def _check_grid(g_us: np.ndarray, r_wire_ohm: float, r_access_ohm: float) -> np.ndarray:
    """The checked conductance grid (R x C, float64 uS) of one array."""
    g = np.asarray(g_us, dtype=np.float64)
    if g.ndim != 2 or g.shape[0] == 0 or g.shape[1] == 0:
        raise ConfigError(f"array conductances must be a non-empty 2-D (word lines x bit "
                          f"lines) grid; got shape {g.shape}")
    if not np.all(np.isfinite(g)) or (g < 0).any():
        raise ConfigError("array conductances must be finite and >= 0 uS")
    for name, value in (("wire_resistance_ohm", r_wire_ohm),
                        ("access_resistance_ohm", r_access_ohm)):
        if not (isinstance(value, (int, float)) and np.isfinite(value) and value >= 0):
            raise ConfigError(f"ArrayConfig.{name} = {value!r} is invalid; allowed: a "
                              "number >= 0 (ohm)")
    return g


def cell_conductance(g_us: np.ndarray, r_access_ohm: float) -> np.ndarray:
    """Conductance in uS of each cell with its access transistor in series:
    ``G / (1 + G R_a)`` (G in uS, R_a in ohm: G R_a * 1e-6 is dimensionless)."""
    g = np.asarray(g_us, dtype=np.float64)
    if r_access_ohm == 0:
        return g.copy()
    return g / (1.0 + g * (r_access_ohm * 1e-6))


def nodal_matrix(g_us: np.ndarray, r_wire_ohm: float, r_access_ohm: float = 0.0):
    """The nodal (conductance) matrix K of one array's network, scipy.sparse CSC, in uS.

    Unknowns: the word-line nodes ``u(i, j)`` at index ``i * C + j``, then the bit-line
    nodes ``b(i, j)`` at ``R * C + i * C + j`` (volts). ``K x = rhs`` with ``rhs[u(i, 0)]
    = V_i / r`` (uA) is Kirchhoff's current law at every node. r must be > 0.
    """
    import scipy.sparse as sp
    g = cell_conductance(_check_grid(g_us, r_wire_ohm, r_access_ohm), r_access_ohm)
    if not r_wire_ohm > 0:
        raise ConfigError(f"ArrayConfig.wire_resistance_ohm = {r_wire_ohm!r}: the network "
                          "solve needs > 0 (0 is the ideal read, no solve)")
    n_r, n_c = g.shape
    n = n_r * n_c
    gw = 1e6 / r_wire_ohm                                  # one segment, uS
    u = np.arange(n).reshape(n_r, n_c)
    b = u + n
    diag = np.zeros(2 * n)
    diag[:n] += g.ravel()
    diag[n:] += g.ravel()
    pairs = [(u.ravel(), b.ravel(), g.ravel())]            # the cells
    for a, c in ((u[:, :-1], u[:, 1:]), (b[:-1, :], b[1:, :])):   # the wire segments
        a, c = a.ravel(), c.ravel()
        pairs.append((a, c, np.full(a.size, gw)))
        np.add.at(diag, a, gw)
        np.add.at(diag, c, gw)
    diag[u[:, 0]] += gw                                    # segment to the driver
    diag[b[0, :]] += gw                                    # segment to the sense amplifier
    rows = np.concatenate([p[0] for p in pairs] + [p[1] for p in pairs] + [np.arange(2 * n)])
    cols = np.concatenate([p[1] for p in pairs] + [p[0] for p in pairs] + [np.arange(2 * n)])
    vals = np.concatenate([-p[2] for p in pairs] * 2 + [diag])
    return sp.csc_matrix((vals, (rows, cols)), shape=(2 * n, 2 * n))


def solve_read(g_us: np.ndarray, v: np.ndarray, r_wire_ohm: float,
               r_access_ohm: float = 0.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One read solved exactly: the sparse LU solve of the network for word-line voltages
    ``v`` (volts, (R,)).

    Returns:
        (I, U, B): bit-line currents into the sense amplifiers in uA (C,), and the word-line
        and bit-line node voltages in volts (R x C each). With r = 0: ``I = v @ g``, the
        word lines at ``v``, the bit lines at 0.
    """
    g = _check_grid(g_us, r_wire_ohm, r_access_ohm)
    v = np.asarray(v, dtype=np.float64)
    if v.shape != (g.shape[0],) or not np.all(np.isfinite(v)):
        raise ConfigError(f"word-line voltages must be finite, shape ({g.shape[0]},); got "
                          f"shape {v.shape}")
    n_r, n_c = g.shape
    if r_wire_ohm == 0:
        gc = cell_conductance(g, r_access_ohm)
        return v @ gc, np.repeat(v[:, None], n_c, axis=1), np.zeros((n_r, n_c))
    import scipy.sparse.linalg as sla
    n = n_r * n_c
    gw = 1e6 / r_wire_ohm
    rhs = np.zeros(2 * n)
    rhs[np.arange(n_r) * n_c] = v * gw
    x = sla.spsolve(nodal_matrix(g, r_wire_ohm, r_access_ohm), rhs)
    u, bl = x[:n].reshape(n_r, n_c), x[n:].reshape(n_r, n_c)
    return bl[0] * gw, u, bl


_SWEEP_MAX_BYTES = 256 << 20   # the sweep keeps one factor per line: above this, sparse LU
METHODS = ("auto", "sweep", "sparse")


def transfer_matrix(g_us: np.ndarray, r_wire_ohm: float, r_access_ohm: float = 0.0,
                    method: str = "auto") -> np.ndarray:
    """The array's transfer matrix T in uS (R x C, float64): any read's bit-line currents
    are ``I = v @ T`` (uA, v in volts), exactly (superposition).

    r = 0: the cells' conductances (with the access transistor in series). Else, both exact
    (they agree to ~1e-13, tests check it):

    * ``"sweep"``: block elimination line by line (:func:`_sweep`), dense Cholesky on
      min(R, C)-square blocks, ~4 min(R, C)**3 max(R, C) flops in BLAS;
    * ``"sparse"``: one sparse LU of the nodal matrix (SuperLU, COLAMD) and min(R, C)
      solves, in chunks of 64 right-hand sides;
    * ``"auto"``: the sweep unless its factors would take over 256 MB (a full 512 x 512
      array), then the sparse LU.
    """
    g = _check_grid(g_us, r_wire_ohm, r_access_ohm)
    if method not in METHODS:
        raise ConfigError(f"transfer_matrix method = {method!r} is invalid; allowed: one of "
                          f"{METHODS}")
    if r_wire_ohm == 0:
        return cell_conductance(g, r_access_ohm)
    n_r, n_c = g.shape
    small, big = min(n_r, n_c), max(n_r, n_c)
    if method == "sweep" or (method == "auto" and 8 * small * small * big <= _SWEEP_MAX_BYTES):
        gc = cell_conductance(g, r_access_ohm)
        # The network is the same with word and bit lines exchanged (each is a chain fed
        # through one segment from a fixed potential): T(g) = T(g.T).T. Sweep the long way.
        return _sweep(gc, r_wire_ohm) if n_r <= n_c else _sweep(gc.T, r_wire_ohm).T
    import scipy.sparse.linalg as sla
    n = n_r * n_c
    gw = 1e6 / r_wire_ohm
    lu = sla.splu(nodal_matrix(g, r_wire_ohm, r_access_ohm), permc_spec="COLAMD")
    drive = np.arange(n_r) * n_c                # u(i, 0)
    sense = n + np.arange(n_c)                  # b(0, j)
    # K is symmetric: solve from the smaller side, read the other side's nodes.
    src, dst = (sense, drive) if n_c <= n_r else (drive, sense)
    out = np.empty((len(dst), len(src)))
    for lo in range(0, len(src), _RHS_CHUNK):
        hi = min(len(src), lo + _RHS_CHUNK)
        e = np.zeros((2 * n, hi - lo))
        e[src[lo:hi], np.arange(hi - lo)] = 1.0
        out[:, lo:hi] = lu.solve(e)[dst]
    t = out * (gw * gw)
    return t if n_c <= n_r else t.T


def _sweep(g: np.ndarray, r_wire_ohm: float) -> np.ndarray:
    """T by block elimination over the bit lines (R x R dense blocks; cells' conductances
    ``g`` in uS with the transistors already in series).

    Backward, from the last bit line to the first: ``Y_j``, the admittance matrix seen from
    the word-line nodes ``u(:, j)`` into bit lines j .. C-1, is bit line j's own,
    ``G_j Q_j^-1 L`` (``L`` the bit line's chain to the sense amplifier, ``Q_j = L + G_j``),
    plus the rest through one segment of every word line, ``gw M_{j+1}^-1 Y_{j+1}`` with
    ``M = gw I + Y`` (written so that nothing cancels). Forward: the word-line voltages per
    unit drive ``U_0 = gw M_0^-1``, ``U_j = gw M_j^-1 U_{j-1}``; bit line j's current is
    ``gw b(0, j) = gw (Q_j^-1 G_j u)_0``, so ``T[:, j] = gw U_j^T (g_j * Q_j^-1 e_0)``.
    """
    import scipy.linalg as sl
    n_r, n_c = g.shape
    gw = 1e6 / r_wire_ohm
    diag = np.full(n_r, 2 * gw)
    diag[-1] = gw                               # the bit line's open end
    if n_r == 1:
        diag[0] = gw                            # only the segment to the sense amplifier
    chain = np.diag(diag) - gw * (np.eye(n_r, k=1) + np.eye(n_r, k=-1))
    rhs = np.concatenate([chain, np.eye(n_r, 1)], axis=1)     # [L | e_0]
    band = np.zeros((2, n_r))
    band[0, 1:] = -gw
    factors: list = [None] * n_c
    z = np.empty((n_c, n_r))
    y = None
    for j in range(n_c - 1, -1, -1):
        band[1] = diag + g[:, j]
        sol = (rhs / band[1, 0] if n_r == 1 else                  # Q_j^-1 [L | e_0]
               sl.solveh_banded(band, rhs, check_finite=False))
        own = g[:, j, None] * sol[:, :n_r]
        z[j] = g[:, j] * sol[:, n_r]
        y = own if y is None else own + gw * sl.cho_solve(factors[j + 1], y,
                                                          check_finite=False)
        y = 0.5 * (y + y.T)                      # symmetric; keep rounding from skewing it
        m = y.copy()
        m[np.diag_indices(n_r)] += gw
        factors[j] = sl.cho_factor(m, check_finite=False)
    t = np.empty((n_r, n_c))
    u = gw * sl.cho_solve(factors[0], np.eye(n_r), check_finite=False)
    for j in range(n_c):
        if j:
            u = gw * sl.cho_solve(factors[j], u, check_finite=False)
            factors[j - 1] = None
        t[:, j] = gw * (u.T @ z[j])
    return t


def circuit_conductances(g_us: np.ndarray, rows: int, array_of_col: np.ndarray,
                         line_of_col: np.ndarray, r_wire_ohm: float,
                         r_access_ohm: float) -> np.ndarray:
    """What each cell of a programmed matrix contributes per volt on its word line to its
    bit line's current, through the wires: T of every array, arranged as ``g_us``.

    Args:
        g_us: Programmed conductances (n_in, n_phys), uS.
        rows: Word lines per array (row tile i holds inputs ``i * rows ..``).
        array_of_col, line_of_col: Array and bit line of each physical column
            (:class:`xbar.layout.ColumnMap`'s ``array`` and ``line``).
        r_wire_ohm, r_access_ohm: The circuit's resistances (ohm, >= 0).

    Returns:
        float64 (n_in, n_phys): ``g_us`` itself's values when both resistances are 0.
    """
    g = np.asarray(g_us, dtype=np.float64)
    n_in, n_phys = g.shape
    array_of_col = np.asarray(array_of_col)
    line_of_col = np.asarray(line_of_col)
    if array_of_col.shape != (n_phys,) or line_of_col.shape != (n_phys,):
        raise ConfigError(f"array and line of each of the {n_phys} physical columns needed; "
                          f"got shapes {array_of_col.shape}, {line_of_col.shape}")
    out = np.empty_like(g)
    for r0 in range(0, n_in, rows):
        r1 = min(n_in, r0 + rows)
        for a in np.unique(array_of_col):
            cols = np.flatnonzero(array_of_col == a)
            lines = line_of_col[cols]
            if len(np.unique(lines)) != len(lines):
                raise ConfigError(f"array {a}: two physical columns on one bit line")
            grid = np.zeros((r1 - r0, int(lines.max()) + 1))
            grid[:, lines] = g[r0:r1, cols]
            out[r0:r1, cols] = transfer_matrix(grid, r_wire_ohm, r_access_ohm)[:, lines]
    return out


def read_conductances(m) -> np.ndarray:
    """What the reads of :class:`xbar.analog.AnalogMatrix` ``m`` see, float32 (n_in, n_phys),
    uS: ``m.g_us`` itself (the same object) when both resistances are 0, else
    :func:`circuit_conductances` of its arrays, kept on ``m`` while ``m.g_us`` and
    ``m.config`` are the same objects (programming and rewrites replace them)."""
    arr = m.config.array
    if arr.wire_resistance_ohm == 0 and arr.access_resistance_ohm == 0:
        return m.g_us
    cached = getattr(m, "_circuit", None)
    if cached is None or cached[0] is not m.g_us or cached[1] is not m.config:
        cm = m.layout.columns(m.n_out)
        t = circuit_conductances(m.g_us, m.rows, cm.array, cm.line, arr.wire_resistance_ohm,
                                 arr.access_resistance_ohm)
        cached = (m.g_us, m.config, t.astype(np.float32))
        m._circuit = cached
    return cached[2]
