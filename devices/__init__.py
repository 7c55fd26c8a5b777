"""RRAM cell physics and statistics: one cell, no networks.

Imports no array model and nothing from :mod:`xbar.mapping` (tests/project/test_structure.py).
"""

from xbar.devices.cell import Device
from xbar.devices.files import (DeviceFile, load_device_file, resolve_device,
                                resolve_device_file, save_device)
from xbar.devices.presets import PRESETS, preset

__all__ = ["Device", "DeviceFile", "PRESETS", "load_device_file", "preset", "resolve_device",
           "resolve_device_file", "save_device"]
