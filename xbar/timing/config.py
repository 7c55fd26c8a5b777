"""Timing-only hardware parameters (``[timing]`` in a hardware TOML file).

:class:`TimingConfig` is declared in :mod:`xbar.timing_config` beside the other timing
sections, so that the configuration root :class:`xbar.config.HardwareConfig` holds it without
importing the timing engine; this module keeps the old import path.
"""

from __future__ import annotations

from xbar.config import HardwareConfig, XbarConfig
from xbar.timing_config import TimingConfig, ns_to_cycles

__all__ = ["TimingConfig", "hardware_to_toml", "ns_to_cycles"]


def hardware_to_toml(xbar: XbarConfig, timing: TimingConfig) -> str:
    """The TOML text of a hardware file with these sections (the others at their defaults);
    :func:`xbar.config.load_hardware` reads it back. Same as
    ``HardwareConfig.from_parts(xbar, timing=timing).to_toml()``."""
    return HardwareConfig.from_parts(xbar, timing=timing).to_toml()
