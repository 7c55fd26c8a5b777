"""Analog crossbar model: array/converter configuration, the Numba MVM kernel, timing.

Imports only from :mod:`devices`, never from :mod:`mapping`.
"""

from xbar.config import ADCConfig, ArrayConfig, DACConfig, XbarConfig

__all__ = ["ADCConfig", "ArrayConfig", "DACConfig", "XbarConfig"]
