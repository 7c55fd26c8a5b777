"""Device presets, each tied to its published source (see docs/references.md).

``PRESETS`` is the registry: name -> a zero-argument factory returning a :class:`Device`.
Tests parametrise over it, so a new preset is tested as soon as it is registered.
``WRITE_VERIFY_PRESETS`` holds, for the presets fitted to write-verify measurements, the
fitted :class:`~xbar.devices.write_verify.WriteVerifyParams` under the same names: asking for
such a preset (``--device radar-3bpc``, :func:`xbar.devices.resolve_device_file`) brings its
loop with it, as a device file brings its ``/write_verify`` group. A loop is never looked up
by a Device's ``name`` field.
"""

from __future__ import annotations

import math
from typing import Callable

from xbar.devices.cell import Device
from xbar.devices.write_verify import WriteVerifyParams
from xbar.errors import ConfigError

# NeuroSim V1.3 Param.cpp: R_on = 6 kOhm, R_off = 900 kOhm.
_NEUROSIM_G_MIN_US = 1e6 / 900e3
_NEUROSIM_G_MAX_US = 1e6 / 6e3
# Where a source gives only the total programming spread: half its variance
# device-to-device (fixed per cell), half cycle-to-cycle (fresh at every write). HfO2 RRAM
# shows cycle-to-cycle spreads of the same order as device-to-device ones (Ambrogio et al.,
# IEEE TED 61(8), 2014; Fantini et al., IMW 2013); an assumption, kept a parameter
# (Device.c2c_fraction) and stated in each preset's source.
_ASSUMED_SPLIT = 0.5
_SPLIT_NOTE = "variation split 50/50 device-to-device / cycle-to-cycle assumed"


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
    10.49 %) *and* that KD + OSA at 7.86 % area restores the baseline on the same device, but
    does not say what the 50 % is relative to or how weights map to cells. Of twelve readings
    measured on MNIST LeNet-5 (``benchmarks/dac2020_readings.py``; README "Reading the DAC
    2020 variance"), the one closest to both figures jointly is a lognormal spread,
    G = G_level exp(0.5 N(0, 1)) (sigma/mu about 0.53), with the 10-level student mapped one
    cell per signed weight against a reference column (``weight_mapping = "offset"``: the
    hardware preset ``one-cell``, :func:`implied_hardware`): one-shot 23.9 +- 3.7 % (2 chips), KD
    87.9 %, KD + OSA 95.9 % at 5 % and 96.1 % at 8 % of weights in SRAM (FP32 98.9 %). The
    Gaussian sigma = 0.5 x level reading is statistically tied (21.9 %, 96.1 %); readings
    relative to the level spacing never collapse (one-shot >= 94.9 %), relative to the range
    never recover, and on differential pairs nothing collapses. The alternatives stay
    available through ``variation`` and ``sigma_reference``, and other mappings through a
    copy with ``weight_mapping = ""`` (the preset itself refuses hardware that maps
    weights otherwise).

    Conductance range: not given in the paper; DNN+NeuroSim V1.3's 6 kOhm / 900 kOhm.
    """
    return Device(name="charan2020-dac", g_min_us=_NEUROSIM_G_MIN_US,
                  g_max_us=_NEUROSIM_G_MAX_US, n_levels=10, variation="lognormal", sigma=0.5,
                  c2c_fraction=_ASSUMED_SPLIT,
                  weight_mapping="offset",
                  source="Charan et al., DAC 2020 (10 levels, 50% variance read as lognormal "
                         "sigma = 0.5, one cell per weight: the reading closest to both the "
                         f"collapse and the recovery; see README; {_SPLIT_NOTE})")


def charan2020_jxcdc() -> Device:
    """Charan et al., IEEE JxCDC 6(1), 2020: the non-idealities its KD student trains with.

    16 levels (4-bit weights), multiplicative Gaussian weight noise sigma = 0.1, stuck-at-0
    (high-resistance state) 9.04 %, stuck-at-1 (low-resistance state) 1.75 %. Range not given
    in the paper; DNN+NeuroSim V1.3's 6 kOhm / 900 kOhm.
    """
    return Device(name="charan2020-jxcdc", g_min_us=_NEUROSIM_G_MIN_US,
                  g_max_us=_NEUROSIM_G_MAX_US, n_levels=16, variation="gaussian", sigma=0.1,
                  c2c_fraction=_ASSUMED_SPLIT,
                  sigma_reference="level", sa0_rate=0.0904, sa1_rate=0.0175,
                  source=f"Charan et al., IEEE JxCDC 6(1) 2020; {_SPLIT_NOTE} (the paper "
                         "gives a total)")


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
                  variation="polynomial", c2c_fraction=1.0,
                  sigma_poly_us=(0.348, 16.03, -43.85, 45.39, -16.82), poly_g_ref_us=40.0,
                  read_noise=0.01,
                  source="Wan et al., Nature 2022; aihwkit ReRamWan2022NoiseModel (which "
                         "draws the programming noise afresh at every programming: "
                         "c2c_fraction 1)")


def lv2024_mlc() -> Device:
    """Work 5's setting (Lv, Zhang, Wang, IEEE TCAD 2024, doi 10.1109/TCAD.2024.3521195):
    one multilevel cell per weight with device variation, read disturb and a limited on/off
    ratio. The paper's numbers are not public; every value here is the project's choice
    (docs/work5.md), each a Device field that can be changed:

    * 16 levels (4-bit MLC), mapped one cell per signed weight against a reference column
      (``weight_mapping = "offset"``: the hardware preset ``one-cell``);
    * on/off ratio 10 (g_max 100 uS, g_min 10 uS): a limited ratio puts the zero weight's
      cell (the middle level) high up the range, where a relative spread is large in uS;
    * lognormal variation sigma = 0.3 (sigma/mu about 0.31), high but below the DAC 2020
      cell's 0.5;
    * read disturb 1e-9 of the remaining distance to g_max per read pulse
      (:mod:`xbar.devices.read_disturb`: 10^6 reads move a cell 0.1 % of the way, inside
      the programming spread as Yao et al., Nature 2020 measured; the ~10^8 read pulses a
      LeNet-5 first layer sees in 2 x 10^4 inferences move it about 10 %);
    * read noise 1 % per read (aihwkit's ReRAM inference read noise).
    """
    return Device(name="lv2024-mlc", g_min_us=10.0, g_max_us=100.0, n_levels=16,
                  variation="lognormal", sigma=0.3, c2c_fraction=_ASSUMED_SPLIT,
                  read_noise=0.01,
                  read_disturb_rate=1e-9, read_disturb_toward="g_max",
                  weight_mapping="offset",
                  source="Lv, Zhang, Wang, IEEE TCAD 2024 (setting named, values the "
                         "project's choice: on/off 10, lognormal 0.3, 16 levels, read "
                         "disturb 1e-9 per read; docs/work5.md; " + _SPLIT_NOTE + ")")


_RADAR_DOI = "Le, Levy et al., RADAR, IEEE TED 2021, doi 10.1109/TED.2021.3097975"
_RADAR_FIT = "fitted with xbar.devices.fit.fit_radar (seed 0; see docs/write_verify.md)"


def radar_2bpc() -> Device:
    """HfO2 1T1R RRAM, 2 bits per cell, after fixed-pulse write-verify: Le, Levy et al.

    "RADAR: A Fast and Energy-Efficient Programming Technique for Multiple Bits-per-Cell RRAM
    Arrays", IEEE Trans. Electron Devices, 2021, doi 10.1109/TED.2021.3097975; data release
    file ``fppv-2bpc-chip1.tsv`` (32,772 cells, 4 levels). Levels are the verify windows'
    centres in uS (open windows: the median verified conductance); programming variation is
    the measured per-level table of final conductances (all cells, failures included); the
    range is the lowest and highest final conductance measured. Read noise 0.1 % is assumed
    (the data holds verify reads only). The fitted write-verify loop is
    ``WRITE_VERIFY_PRESETS["radar-2bpc"]``. Refit with
    ``xbar device fit --data fppv-2bpc-chip1.tsv --format radar --out DEVICE.h5``.
    """
    return Device(
        name="radar-2bpc", g_min_us=0.8309759687691309, g_max_us=277.4490007119341,
        n_levels=4,
        levels_us=(2.5806611694564117, 112.4600993839307, 169.84978819241184,
                   210.47429541990664),
        variation="table", c2c_fraction=_ASSUMED_SPLIT,
        level_mean_us=(15.997147734534636, 112.7809176721173, 170.0799679278654,
                       213.12439856301216),
        level_std_us=(34.152826931922924, 7.3635211804703475, 4.794889821440342,
                      11.463287060539056),
        read_noise=0.001,
        source=f"{_RADAR_DOI}; data fppv-2bpc-chip1.tsv; {_RADAR_FIT}; {_SPLIT_NOTE} (the "
               "data hold one write per cell)")


def radar_2bpc_write_verify() -> WriteVerifyParams:
    """The write-verify loop fitted to RADAR's ``fppv-2bpc-chip1.tsv`` (Le, Levy et al.,
    IEEE TED 2021, doi 10.1109/TED.2021.3097975); levels as in :func:`radar_2bpc`."""
    return WriteVerifyParams(
        window_lo_us=(0.0, 107.41138560687433, 166.38935108153078, 200.0),
        window_hi_us=(12.5, 117.50881316098707, 173.3102253032929, math.inf),
        target_us=(2.5806611694564117, 112.4600993839307, 169.84978819241184,
                   210.47429541990664),
        step_fraction=(3.66018, 0.38538, 0.237456, 1.19587),
        step_sigma=(0.509826, 2.3895, 1.16509, 0.050888),
        cell_sigma=(1.15215, 0.785533, 1.2655, 1.57271),
        stuck_fraction=(0.147068, 0.00275202, 0.00164725, 7.4888e-05),
        stuck_g_us=(73.87415419634007, 257.9565498665214, 266.4751598517865,
                    78.20843940753463),
        max_pulses=(10, 1000, 1067, 1000),
        g_start_us=50.0, g_min_us=0.8309759687691309, g_max_us=277.4490007119341,
        read_noise=0.001,
        source=f"{_RADAR_DOI}; data fppv-2bpc-chip1.tsv; {_RADAR_FIT}")


def radar_3bpc() -> Device:
    """HfO2 1T1R RRAM, 3 bits per cell, after fixed-pulse write-verify: Le, Levy et al.

    "RADAR", IEEE Trans. Electron Devices, 2021, doi 10.1109/TED.2021.3097975; data release
    file ``fppv-3bpc-chip1.tsv`` (47,353 cells, 8 levels). Built as :func:`radar_2bpc`:
    window centres as levels (open windows: median verified conductance), the measured
    per-level table of final conductances as programming variation, the measured range, read
    noise 0.1 % assumed. The fitted write-verify loop is ``WRITE_VERIFY_PRESETS["radar-3bpc"]``.
    """
    return Device(
        name="radar-3bpc", g_min_us=1.029790772990849, g_max_us=301.2562687663827,
        n_levels=8,
        levels_us=(7.545859793110786, 98.27898927033198, 128.38403572333348,
                   152.72007110905855, 175.43494633371603, 197.4889496310546,
                   219.5045718790842, 239.98218372268045),
        variation="table", c2c_fraction=_ASSUMED_SPLIT,
        level_mean_us=(18.380498828509907, 101.67950694601232, 130.69923287270868,
                       154.4966058831913, 176.64655872752994, 198.46669247369,
                       220.02620093575806, 241.39488914997767),
        level_std_us=(43.037302193628214, 22.416421474327237, 17.335238008407178,
                      14.31277252289137, 11.89399191854634, 8.860280331157687,
                      6.446647531751602, 9.960274624800592),
        read_noise=0.001,
        source=f"{_RADAR_DOI}; data fppv-3bpc-chip1.tsv; {_RADAR_FIT}; {_SPLIT_NOTE} (the "
               "data hold one write per cell)")


def radar_3bpc_write_verify() -> WriteVerifyParams:
    """The write-verify loop fitted to RADAR's ``fppv-3bpc-chip1.tsv`` (Le, Levy et al.,
    IEEE TED 2021, doi 10.1109/TED.2021.3097975); levels as in :func:`radar_3bpc`."""
    return WriteVerifyParams(
        window_lo_us=(0.0, 96.78442459869065, 127.06638532474737, 151.75830971594638,
                      174.5248517280491, 196.59373825352415, 218.59786954516343,
                      238.0952380952381),
        window_hi_us=(12.5, 99.7735539419733, 129.70168612191958, 153.68183250217075,
                      176.34504093938298, 198.38416100858507, 220.41127421300502, math.inf),
        target_us=(7.545859793110786, 98.27898927033198, 128.38403572333348,
                   152.72007110905855, 175.43494633371603, 197.4889496310546,
                   219.5045718790842, 239.98218372268045),
        step_fraction=(2.21258, 1.7213, 1.44046, 1.54399, 1.77078, 0.0995072, 0.118958,
                       0.199393),
        step_sigma=(0.121306, 2.54808, 2.5436, 2.51306, 2.40867, 0.2021, 0.58502, 0.43471),
        cell_sigma=(1.90268, 0.931004, 0.6545, 0.781514, 0.981702, 1.30638, 1.5168, 2.09508),
        stuck_fraction=(0.0926246, 0.0244073, 0.0158598, 0.014508, 0.0147831, 0.00886506,
                        0.00695959, 0.0308116),
        stuck_g_us=(94.32334741486586, 233.36384176624688, 259.3407827464225,
                    261.936855406141, 260.5210107589967, 263.52509615371946,
                    264.2427936815749, 222.14575475375457),
        max_pulses=(1793, 1971, 1959, 1963, 1855, 1907, 1841, 1385),
        g_start_us=54.55447255899809, g_min_us=1.029790772990849, g_max_us=301.2562687663827,
        read_noise=0.001,
        source=f"{_RADAR_DOI}; data fppv-3bpc-chip1.tsv; {_RADAR_FIT}")


# IBM aihwkit's CMO/HfOx ReRAM model (aihwkit.inference.noise.reram.ReRamCMONoiseModel; fitted
# by IBM Research Zurich, Falcone et al., cited there as in review): relaxation mean
# -0.08900206 ln t uS, std 0.04201137 ln t + 0.41183342 uS (t in s), level-independent; the
# programming spread of its 0.2 % acceptance range, sigma = 0.00081107 + 0.00106879 G uS;
# the range of aihwkit's CMO example (examples/34_ReRAM_inference.py), 9.0-88.19 uS.
_CMO_SOURCE = ("IBM aihwkit ReRamCMONoiseModel (CMO/HfOx ReRAM, IBM Research Zurich, Falcone "
               "et al.): relaxation mean -0.0890 ln t uS, std 0.0420 ln t + 0.412 uS (t in "
               "s, t0 = 1 s), programming sigma 0.000811 + 0.00107 G uS (0.2 % acceptance), "
               "range 9.0-88.19 uS of aihwkit's example 34; 32 levels assumed (the source "
               "programs analog targets); all variation cycle-to-cycle, as aihwkit draws it")


def cmo_hfox(scale: float = 1.0) -> Device:
    """CMO/HfOx ReRAM with IBM aihwkit's conductance-relaxation fit (issue 24).

    Relaxation (:mod:`xbar.devices.relaxation`): a cell's mean shifts by -0.0890 uS per unit of
    ln(t / 1 s) and the cells' spread is 0.0420 ln(t / 1 s) + 0.412 uS, the same at every level
    (aihwkit's ``ReRamCMONoiseModel`` decay_dict; its fit found no level dependence). At one
    day (ln t = 11.4) that is -1.01 uS and 0.89 uS; at 1e8 s (ln t = 18.4) -1.64 uS and 1.19 uS,
    against a level spacing of 2.55 uS. Programming spread: aihwkit's linear fit for the
    0.2 % program-verify acceptance range (the one its defaults use), sigma(G) = 0.000811 +
    0.00107 G uS (0.095 uS at the top level). Range 9.0-88.19 uS (aihwkit's CMO example).
    Assumed here: 32 uniform levels (aihwkit programs analog targets), no stuck cells (the
    source gives no fault rates) and all programming variation cycle-to-cycle (aihwkit draws
    it afresh at every programming). ``scale`` multiplies the three relaxation figures (the
    stronger preset ``cmo-hfox-x5``).
    """
    return Device(name="cmo-hfox" if scale == 1.0 else f"cmo-hfox-x{scale:g}",
                  g_min_us=9.0, g_max_us=88.19, n_levels=32,
                  variation="polynomial", sigma_poly_us=(0.00081107, 0.00106879),
                  poly_g_ref_us=1.0, c2c_fraction=1.0,
                  relax_mean_us_per_ln_t=-0.08900206 * scale,
                  relax_std_us_per_ln_t=0.04201137 * scale,
                  relax_std0_us=0.41183342 * scale, relax_t0_s=1.0,
                  source=_CMO_SOURCE if scale == 1.0 else
                  f"{_CMO_SOURCE}; relaxation figures x {scale:g} (a stress case, assumed)")


def cmo_hfox_x5() -> Device:
    """The ``cmo-hfox`` cell with its three relaxation figures five times larger (mean -0.445
    ln t uS, spread 0.210 ln t + 2.06 uS): an assumed stress case, not a measured device, for
    a chip whose relaxation moves cells by about a level spacing within a day."""
    return cmo_hfox(5.0)


PRESETS: dict[str, Callable[[], Device]] = {
    "ideal": ideal,
    "charan2020-dac": charan2020_dac,
    "charan2020-jxcdc": charan2020_jxcdc,
    "neurosim-rram": neurosim_rram,
    "wan2022": wan2022,
    "radar-2bpc": radar_2bpc,
    "radar-3bpc": radar_3bpc,
    "lv2024-mlc": lv2024_mlc,
    "cmo-hfox": cmo_hfox,
    "cmo-hfox-x5": cmo_hfox_x5,
}

DEFAULT_DEVICE = "charan2020-jxcdc"
"""The device every command and :class:`~xbar.mapping.sweep.run.SweepSpec` use without
``--device``: the JxCDC 2020 cell (16 levels, Gaussian weight noise sigma 0.1, 9.04 %
stuck-at-0 and 1.75 % stuck-at-1), so that a run without options shows what a published
cell does (``ideal`` is for checking the mapping)."""

WRITE_VERIFY_PRESETS: dict[str, Callable[[], WriteVerifyParams]] = {
    "radar-2bpc": radar_2bpc_write_verify,
    "radar-3bpc": radar_3bpc_write_verify,
}


MAPPING_HARDWARE: dict[str, str] = {"": "default", "differential": "default",
                                     "offset": "one-cell"}
"""The hardware preset (``xbar.config.HARDWARE_PRESETS``) each ``Device.weight_mapping``
implies: ``one-cell`` maps one cell per weight against a reference column, ``default``
differential pairs; a device that fixes no mapping runs on the defaults."""


def implied_hardware(device: Device) -> str:
    """The hardware preset ``device`` is meant for, from its ``weight_mapping`` (the mapping
    its source fixes; ``"default"`` when it fixes none): ``--device`` without ``--hw`` uses
    it, and ``xbar devices`` shows it."""
    return MAPPING_HARDWARE[device.weight_mapping]


def preset_hardware(name: str) -> str:
    """The hardware preset that device preset ``name`` is meant for
    (:func:`implied_hardware` of the preset)."""
    if name not in PRESETS:
        raise ConfigError(f"unknown device preset {name!r}; presets: {', '.join(PRESETS)}")
    return implied_hardware(PRESETS[name]())


def preset(name: str) -> Device:
    """The preset called ``name``; a clear error listing the presets otherwise."""
    try:
        return PRESETS[name]()
    except KeyError:
        raise ConfigError(f"unknown device preset {name!r}; presets: "
                         f"{', '.join(PRESETS)} (or give a .h5/.toml device file)") from None


def preset_loop(name: str) -> WriteVerifyParams | None:
    """The fitted write-verify loop of preset ``name``, or None for a preset without one."""
    factory = WRITE_VERIFY_PRESETS.get(name)
    return factory() if factory is not None else None


def preset_write_verify(name: str) -> WriteVerifyParams:
    """The fitted write-verify parameters of preset ``name``; a clear error otherwise."""
    try:
        return WRITE_VERIFY_PRESETS[name]()
    except KeyError:
        raise ConfigError(f"preset {name!r} has no write-verify parameters; presets with them: "
                         f"{', '.join(WRITE_VERIFY_PRESETS)}") from None
