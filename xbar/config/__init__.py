"""The hardware configuration: one frozen root, its sections, presets and the one loader.

Grouped as CrossSim groups ``XbarParameters(device, array, adc, dac)``: one dataclass per
section, one module per concept, each field declared once with its unit, range, meaning and
sources (:func:`xbar.params.param`; each class docstring is written from those declarations),
validated on construction, round-tripping through a TOML hardware file and written as
attributes into result files.

========================  ===================================================================
module                    what it holds
========================  ===================================================================
:mod:`~.array`            ``[array]``, ``[dac]``, ``[adc]``: the arrays and converters
:mod:`~.timing`           ``[timing]``: clock, read pulse, ADC rate, digital units
:mod:`~.programming`      ``[programming]``: programming pulses and write drivers
:mod:`~.adaptation`       ``[adaptation]``: the SRAM and backward pass of on-chip adaptation
:mod:`~.energy`           ``[energy]``: what each event costs
:mod:`~.area`             ``[area]``: what each unit occupies
:mod:`~.adc_tables`       figures tabulated against ADC resolution (power, area)
:mod:`~.hardware`         :class:`XbarConfig`, the root :class:`HardwareConfig`, presets,
                          :func:`load_hardware`
:mod:`~.parameters`       the parameter reference (``docs/parameters.md``)
========================  ===================================================================

The names below are the ones a user needs; everything else is imported from its module. The
device itself lives in :mod:`xbar.devices`.
"""

from xbar.config.adaptation import AdaptationConfig
from xbar.config.area import AreaConfig
from xbar.config.array import ADCConfig, ArrayConfig, DACConfig
from xbar.config.energy import EnergyConfig
from xbar.config.hardware import (HARDWARE_PRESETS, HARDWARE_SECTIONS, HardwareConfig,
                                  XbarConfig, load_hardware, read_toml)
from xbar.config.parameters import parameter_sections, parameters_markdown
from xbar.config.programming import ProgrammingConfig
from xbar.config.timing import TimingConfig

__all__ = ["ADCConfig", "AdaptationConfig", "AreaConfig", "ArrayConfig", "DACConfig",
           "EnergyConfig", "HARDWARE_PRESETS", "HARDWARE_SECTIONS", "HardwareConfig",
           "ProgrammingConfig", "TimingConfig", "XbarConfig", "load_hardware",
           "parameter_sections", "parameters_markdown", "read_toml"]
