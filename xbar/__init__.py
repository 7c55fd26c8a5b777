"""xbar-sim: accuracy, cycle-level latency and programming cost of neural networks on RRAM
(1T1R) crossbars.

One import root. ``import xbar`` offers the working set below; the layers underneath are

- :mod:`xbar.devices`: one RRAM cell's physics and statistics (presets, device files, the
  write-verify loop, fits to measured data); knows nothing of networks.
- :mod:`xbar.config`, :mod:`xbar.layout`, :mod:`xbar.analog`, :mod:`xbar.kernel`: the
  hardware configuration, where a weight's cells are, and the analog MVM (values).
- :mod:`xbar.timing`: the SimPy engine and closed forms (cycles: latency, programming and
  adaptation time).
- :mod:`xbar.mapping`: PyTorch networks onto chips, data sets and the model zoo, recovery
  methods, sweeps, and the command line.

No import runs upward (devices never imports the array models, neither imports mapping).
Names are resolved on first use, so ``import xbar`` stays cheap (PyTorch loads only with the
names that need it).
"""

from __future__ import annotations

import importlib
from typing import Any

#: The release, written only here: setup.cfg reads it (``version = attr: xbar.__version__``)
#: into the package metadata, and ``xbar --version`` prints it.
__version__ = "0.1.0"

_PUBLIC: dict[str, str] = {
    # errors
    "XbarError": "xbar.errors", "ConfigError": "xbar.errors", "FileFormatError": "xbar.errors",
    "MissingFileError": "xbar.errors", "DataError": "xbar.errors", "ModelError": "xbar.errors",
    "OutputError": "xbar.errors", "ResourceError": "xbar.errors",
    # devices
    "Device": "xbar.devices.cell", "PRESETS": "xbar.devices.presets",
    "preset": "xbar.devices.presets", "implied_hardware": "xbar.devices.presets",
    "DeviceFile": "xbar.devices.files",
    "load_device_file": "xbar.devices.files", "save_device": "xbar.devices.files",
    "resolve_device": "xbar.devices.files", "WriteVerifyParams": "xbar.devices.write_verify",
    # hardware configuration
    "HardwareConfig": "xbar.config", "XbarConfig": "xbar.config", "ArrayConfig": "xbar.config",
    "DACConfig": "xbar.config", "ADCConfig": "xbar.config", "load_hardware": "xbar.config",
    "TimingConfig": "xbar.config", "ProgrammingConfig": "xbar.config",
    "AdaptationConfig": "xbar.config", "EnergyConfig": "xbar.config", "AreaConfig": "xbar.config",
    # analog model
    "AnalogMatrix": "xbar.analog", "weight_layout": "xbar.layout",
    # networks onto chips
    "fold_batchnorm": "xbar.mapping.convert", "AnalogModel": "xbar.mapping.trainable",
    "to_analog": "xbar.mapping.trainable", "analog_model": "xbar.mapping.trainable",
    "Chip": "xbar.mapping.chip", "layer_specs": "xbar.mapping.geometry",
    "load_dataset": "xbar.mapping.data.datasets", "build_model": "xbar.mapping.data.zoo",
    "train_model": "xbar.mapping.data.train", "evaluate": "xbar.mapping.data.train",
    # recovery methods
    "KDConfig": "xbar.mapping.recovery.techniques.kd",
    "distill": "xbar.mapping.recovery.techniques.kd",
    "AdaptConfig": "xbar.mapping.recovery.techniques.sram",
    "adapt": "xbar.mapping.recovery.techniques.sram",
    "attach_sram": "xbar.mapping.recovery.techniques.sram",
    "program_rvw": "xbar.mapping.recovery.techniques.rvw",
    "rvw_params": "xbar.mapping.recovery.techniques.rvw", "compare": "xbar.mapping.recovery.compare",
    "CompareSettings": "xbar.mapping.recovery.compare",
    "method_names": "xbar.mapping.recovery.registry",
    # latency, programming and adaptation time
    "LayerSpec": "xbar.timing.network", "simulate_latency": "xbar.timing.engine",
    "LatencyResult": "xbar.timing.engine", "programming_time": "xbar.timing.programming",
    "one_shot_time": "xbar.timing.programming", "adaptation_time": "xbar.timing.adaptation",
    "rsa_speedup": "xbar.timing.speedup",
    # energy and area
    "inference_energy": "xbar.timing.energy", "chip_area": "xbar.timing.area",
    "programming_energy": "xbar.timing.energy", "one_shot_energy": "xbar.timing.energy",
    "adaptation_energy": "xbar.timing.energy", "sram_area_fraction": "xbar.timing.area",
    "conductance_sums": "xbar.timing.energy",
}
_RENAMED = {"simulate_latency": "simulate", "analog_model": "to_analog"}

__all__ = sorted(_PUBLIC)


def __getattr__(name: str) -> Any:
    if name not in _PUBLIC:
        raise AttributeError(f"module 'xbar' has no attribute {name!r}")
    value = getattr(importlib.import_module(_PUBLIC[name]), _RENAMED.get(name, name))
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
