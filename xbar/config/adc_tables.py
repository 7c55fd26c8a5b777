"""Figures tabulated against ADC resolution (power in ``[energy]``, area in ``[area]``).

ADC power and area grow roughly geometrically with resolution (the MNSIM 2.0 table rises
1.8x from 4 to 6 bits and 1.6x from 6 to 8 bits), so a figure between the table's points is
interpolated linearly in log(value).
"""

from __future__ import annotations

import math

from xbar.params import fail

__all__ = ["check_table", "interpolate_table"]


def interpolate_table(bits: float, table_bits: tuple[float, ...],
                      table_values: tuple[float, ...]) -> float:
    """A figure at ``bits`` from a resolution table: piecewise linear in log(value) between
    the table's points (exact at them), extended beyond the ends with the end segments' slopes
    (a single point: the same value at every resolution)."""
    xs, ys = table_bits, [math.log(v) for v in table_values]
    if len(xs) == 1:
        return float(table_values[0])
    if bits <= xs[0]:
        i = 0
    elif bits >= xs[-1]:
        i = len(xs) - 2
    else:
        i = max(j for j in range(len(xs) - 1) if xs[j] <= bits)
    slope = (ys[i + 1] - ys[i]) / (xs[i + 1] - xs[i])
    return float(math.exp(ys[i] + slope * (bits - xs[i])))


def check_table(owner: str, bits_name: str, bits: tuple[float, ...], values_name: str,
                values: tuple[float, ...]) -> None:
    """Refuse a table whose resolutions are not >= 1 and strictly increasing, whose values are
    not one per resolution, or that falls as the resolution rises (a :class:`ConfigError`
    naming ``owner`` and the field)."""
    if not bits or len(bits) != len(values):
        fail(owner, values_name, list(values),
             f"one value per entry of {bits_name} ({len(bits)} entries), at least one")
    if any(b2 <= b1 for b1, b2 in zip(bits, bits[1:])) or min(bits) < 1:
        fail(owner, bits_name, list(bits), "resolutions >= 1 in strictly increasing order")
    if min(values) <= 0 or any(v2 < v1 for v1, v2 in zip(values, values[1:])):
        fail(owner, values_name, list(values),
             "positive numbers that do not fall as the resolution rises")
