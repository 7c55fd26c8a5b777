"""Device presets, each tied to its published source (see ../shared/REFERENCE.md).

``PRESETS`` is the registry: name -> a zero-argument factory returning a :class:`Device`.
Tests parametrise over it, so a new preset is tested as soon as it is registered.
"""

from __future__ import annotations

from typing import Callable

from devices.cell import Device

# NeuroSim V1.3 Param.cpp: R_on = 6 kOhm, R_off = 900 kOhm.
_NEUROSIM_G_MIN_US = 1e6 / 900e3
_NEUROSIM_G_MAX_US = 1e6 / 6e3


def ideal() -> Device:
    """Ideal cell for checking the mapping: 256 exact levels, no noise, no faults.

    Conductance range from DNN+NeuroSim V1.3 (6 kOhm / 900 kOhm) so that currents are
    realistic; nothing else is non-ideal.
    """
    return Device(name="ideal", g_min_us=_NEUROSIM_G_MIN_US, g_max_us=_NEUROSIM_G_MAX_US,
                  n_levels=256, variation="none",
                  source="ideal reference device; range from DNN+NeuroSim V1.3 Param.cpp")


def charan2020_dac() -> Device:
    """Charan et al., DAC 2020: 10 conductance levels and "50% variance".

    The paper reports that this setting drops MNIST LeNet-5 to 31.76 % (CIFAR-10 VGG-16 to
    10.49 %), with device statistics from 65 nm RRAM on 300 mm wafers, but does not say what
    the 50 % is relative to or how weights map to cells. Here it is read as Gaussian
    sigma = 0.5 of each level (a multiplicative spread, ``sigma_reference="level"``), the
    plain meaning of the words, with the paper's 10-level student mapped one cell per signed
    weight against a reference column: ``--hw one-cell``. That reading gives LeNet-5
    21.9 +- 5.1 % over 5 chips (max 28.1 %), the closest of the readings measured to the
    published figure. On the default differential pair the same cells give about 93 %:
    there idle cells sit at the lowest level, where a level-relative spread is small. See
    README, "Reading the DAC 2020 variance", and ``benchmarks/charan_dac_variance.py``; the
    alternatives stay available through ``sigma_reference`` and ``variation``.

    Conductance range: not given in the paper; DNN+NeuroSim V1.3's 6 kOhm / 900 kOhm.
    """
    return Device(name="charan2020-dac", g_min_us=_NEUROSIM_G_MIN_US,
                  g_max_us=_NEUROSIM_G_MAX_US, n_levels=10, variation="gaussian", sigma=0.5,
                  sigma_reference="level",
                  source="Charan et al., DAC 2020 (10 levels, 50% variance read as sigma = "
                         "0.5 x level; use with --hw one-cell, see README)")


def charan2020_jxcdc() -> Device:
    """Charan et al., IEEE JxCDC 6(1), 2020: the non-idealities its KD student trains with.

    16 levels (4-bit weights), multiplicative Gaussian weight noise sigma = 0.1, stuck-at-0
    (high-resistance state) 9.04 %, stuck-at-1 (low-resistance state) 1.75 %. Range not given
    in the paper; DNN+NeuroSim V1.3's 6 kOhm / 900 kOhm.
    """
    return Device(name="charan2020-jxcdc", g_min_us=_NEUROSIM_G_MIN_US,
                  g_max_us=_NEUROSIM_G_MAX_US, n_levels=16, variation="gaussian", sigma=0.1,
                  sigma_reference="level", sa0_rate=0.0904, sa1_rate=0.0175,
                  source="Charan et al., IEEE JxCDC 6(1) 2020")


def neurosim_rram() -> Device:
    """DNN+NeuroSim V1.3 RRAM: R_on 6 kOhm, R_off 900 kOhm (on/off 150), 4 bits per cell.

    NeuroSim's inference engine models no programming variation or read noise by default;
    neither does this preset. 16 levels (cellBit = 4), a setting NeuroSim supports.
    """
    return Device(name="neurosim-rram", g_min_us=_NEUROSIM_G_MIN_US,
                  g_max_us=_NEUROSIM_G_MAX_US, n_levels=16, variation="none",
                  source="DNN+NeuroSim V1.3 Param.cpp (6 kOhm / 900 kOhm)")


def wan2022() -> Device:
    """NeuRRAM (Wan et al., Nature 2022) as fitted in IBM aihwkit's ReRamWan2022NoiseModel.

    Programming sigma in uS is the published polynomial in x = G / 40 uS:
    sigma(G) = 0.348 + 16.03 x - 43.85 x^2 + 45.39 x^3 - 16.82 x^4. Range 1-40 uS
    (G_max = 40 uS as in the fit; 1 uS as the lowest programmed state), 16 levels (NeuRRAM's
    4-bit weights), read noise 1 % per read (aihwkit's ReRAM inference read noise).
    """
    return Device(name="wan2022", g_min_us=1.0, g_max_us=40.0, n_levels=16,
                  variation="polynomial",
                  sigma_poly_us=(0.348, 16.03, -43.85, 45.39, -16.82), poly_g_ref_us=40.0,
                  read_noise=0.01,
                  source="Wan et al., Nature 2022; aihwkit ReRamWan2022NoiseModel")


PRESETS: dict[str, Callable[[], Device]] = {
    "ideal": ideal,
    "charan2020-dac": charan2020_dac,
    "charan2020-jxcdc": charan2020_jxcdc,
    "neurosim-rram": neurosim_rram,
    "wan2022": wan2022,
}


def preset(name: str) -> Device:
    """The preset called ``name``; a clear error listing the presets otherwise."""
    try:
        return PRESETS[name]()
    except KeyError:
        raise ValueError(f"unknown device preset {name!r}; presets: "
                         f"{', '.join(PRESETS)} (or give a .h5/.toml device file)") from None
