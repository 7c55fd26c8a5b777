"""The parameter reference: every declared field of a device file and of a hardware file.

One table (``docs/parameters.md``, ``xbar sweep --list-params``) read from the same
declarations (:func:`xbar.params.param`) as validation and the class docstrings.
"""

from __future__ import annotations

from xbar.config.hardware import SECTION_CLASSES
from xbar.devices.cell import Device
from xbar.params import markdown_table, param_rows

__all__ = ["parameter_sections", "parameters_markdown"]


def parameter_sections() -> list[tuple[str, type]]:
    """Every configuration class with declared parameters, as ``(section, class)``: the
    device and the eight hardware sections."""
    return [("device", Device), *SECTION_CLASSES]


def parameters_markdown() -> str:
    """``docs/parameters.md``: every parameter's type, unit, default, range and meaning, read
    from the same declarations as validation and ``xbar sweep --list-params``."""
    head = ("# Parameters\n\n"
            "Every parameter of a device file (`[device]`) and of a hardware file (`[array]`, "
            "`[dac]`, `[adc]`, `[timing]`, `[programming]`, `[adaptation]`, `[energy]`, "
            "`[area]`), with its unit, default, allowed values and meaning. Generated from the field declarations "
            "(`xbar.params.param`) that validation and `xbar sweep --list-params` read; do "
            "not edit by hand, regenerate with\n\n"
            "```\npython -c \"from xbar.config import parameters_markdown as m; "
            "print(m(), end='')\" > docs/parameters.md\n```\n\n"
            "Rules that tie fields together are checked too: `g_max_us > g_min_us`; "
            "`levels_us`, `level_mean_us`, `level_std_us` hold `n_levels` values inside "
            "[g_min_us, g_max_us]; `sa0_rate + sa1_rate <= 1`; a device's `weight_mapping`, "
            "when set, must equal the hardware's `[array]` `weight_mapping`; the offset "
            "mapping needs `cols >= 2`; `bits_per_read <= input_bits`; "
            "`drivers_per_array <= cols`; "
            "`duplicate_layers` must name conv layers of the simulated network.\n\n")
    return head + markdown_table(param_rows(parameter_sections()))
