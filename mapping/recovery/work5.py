"""``xbar reproduce work5``: Lv, Zhang, Wang, IEEE TCAD 2024 (work 5) beside our numbers.

The published figures (its abstract; the full text is closed): the I/O-guided KD fine-tuning
recovers accuracy "nearly completely" and beats variation-aware training by "more than 3
points", on multilevel RRAM mapped one cell per weight with device variation, read disturb
and a limited on/off ratio.

Our setting (the project's choices where the paper is silent, docs/work5.md): the
``lv2024-mlc`` cell (16 levels, on/off 10, lognormal sigma 0.3, read disturb 1e-9 per read,
read noise 1 %) on the hardware its preset implies (``one-cell``: one cell per signed weight
against a reference column); LeNet-5 on MNIST (the digits CNN on digits with ``quick``);
for every chip (seeds ``seed``, ``seed + 1``, ...) the methods of
:mod:`xbar.mapping.recovery.finetune` beside one-shot and the built-in KD, through
:func:`xbar.mapping.recovery.compare.compare`, with the run's budget: KD and VAT
``kd_epochs`` epochs, ``chip-ft`` ``steps`` x ``batch``, ``io-kd`` ``steps`` x ``batch``
per layer stage on ``images`` measured images (``settings.extra["work5_images"]``,
default 1024).

Rows: ``io-vs-vat`` is io-kd's accuracy minus VAT's (mean over chips of the per-chip
difference, its standard deviation beside it); ``recovery`` is io-kd's accuracy: the paper
prints no number ("nearly complete", against its own FP32), so the row's ``published`` is
None and ``versus_our_fp32`` holds io-kd minus our FP32 teacher (the setting says
"baseline = our FP32").
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from xbar.mapping.recovery.published import published
from xbar.mapping.recovery.reproduce import ReproduceSettings, row

__all__ = ["DEVICE", "METHODS", "rows"]

DEVICE = "lv2024-mlc"
METHODS = ("software", "one-shot", "kd", "vat", "chip-ft", "io-kd")
QUICK_METHODS = ("software", "one-shot", "kd", "vat", "io-kd")
"""``quick`` leaves chip-ft out: it is the slowest on a CPU and no published figure needs it."""


def run(settings: ReproduceSettings, teacher: Any, say: Callable[[str], None],
        methods: tuple[str, ...] | None = None, images: int | None = None,
        device: Any = None, io_start: str = "student") -> dict[str, Any]:
    """The comparison on ``teacher`` (a :class:`xbar.mapping.data.workflow.Teacher`): the
    :func:`compare` result for work 5's device (or ``device``, a
    :class:`~xbar.devices.Device` on the same hardware), hardware, methods and budget;
    ``io_start``: what io-kd programs first (``"student"`` or ``"teacher"``)."""
    from xbar.config import load_hardware
    from xbar.devices.presets import preset, preset_hardware
    from xbar.mapping.recovery.compare import CompareSettings, compare
    from xbar.mapping.recovery.finetune import ChipFTConfig, IOKDConfig
    from xbar.mapping.recovery.kd import KDConfig
    from xbar.mapping.recovery.sram import AdaptConfig

    s = settings
    methods = methods or (QUICK_METHODS if s.quick else METHODS)
    images = images or int(s.extra.get("work5_images", 1024))
    device = device or preset(DEVICE)
    hw = load_hardware(preset_hardware(DEVICE))
    options: dict[str, Any] = {
        "io-kd": IOKDConfig(images=images, steps=s.steps, batch_size=s.batch, start=io_start),
        "chip-ft": ChipFTConfig(steps=s.steps, batch_size=s.batch)}
    cs = CompareSettings(chips=s.chips, seed=s.seed, methods=methods,
                         adapt=AdaptConfig(steps=s.steps, batch_size=s.batch),
                         kd=KDConfig(epochs=s.kd_epochs),
                         options={k: v for k, v in options.items() if k in methods},
                         backend=s.backend)
    say(f"work5: {device.name} on hardware {preset_hardware(DEVICE)!r}: {', '.join(methods)}")
    result = compare(teacher.model, teacher.dataset, device, hw.xbar, cs, hw.timing,
                     hw.programming, hw.adaptation, progress=say, energy=hw.energy,
                     area=hw.area)
    result["work5"] = {"device": device.to_dict(), "hardware": preset_hardware(DEVICE),
                       "images": images, "steps": s.steps, "batch": s.batch,
                       "kd_epochs": s.kd_epochs}
    return result


def rows(settings: ReproduceSettings, teacher: Any, say: Callable[[str], None],
         out: dict[str, Any]) -> list[dict[str, Any]]:
    """Work 5's rows (module docstring); the comparison goes to ``out["works"]["work5"]``."""
    s = settings
    result = run(s, teacher, say)
    out.setdefault("works", {})["work5"] = result
    m = result["methods"]
    fp32 = m["software"]["accuracy"]
    where = (f"{s.model} on {s.dataset}, {DEVICE} (16 levels, on/off 10, lognormal 0.3, "
             f"read disturb 1e-9/read), hardware 'one-cell', {s.chips} chips")
    budget = (f"KD/VAT {s.kd_epochs} epochs; io-kd {s.steps} x {s.batch} per layer on "
              f"{result['work5']['images']} measured images")
    others = ", ".join(f"{name} {100 * m[name]['accuracy']:.2f} %" for name in m
                       if name not in ("software", "io-kd"))
    io, vat = np.asarray(m["io-kd"]["accuracies"]), np.asarray(m["vat"]["accuracies"])
    gain = io - vat
    out_rows = [
        row(published("work5", "io-vs-vat"), float(gain.mean()), float(gain.std()),
            f"{where}; {budget}",
            f"io-kd {100 * io.mean():.2f} % - VAT {100 * vat.mean():.2f} % (per-chip "
            f"differences: {', '.join(f'{100 * g:+.2f}' for g in gain)} points)"),
        row(published("work5", "recovery"), m["io-kd"]["accuracy"],
            m["io-kd"]["accuracy_std"],
            f"{where}; {budget}; baseline = our FP32 ({100 * fp32:.2f} %)",
            "the paper gives no number ('nearly complete'): io-kd is "
            f"{100 * (m['io-kd']['accuracy'] - fp32):+.2f} points against our FP32 teacher "
            f"({100 * fp32:.2f} %), {100 * m['io-kd']['accuracy'] / fp32:.1f} % of it; {others}",
            our_fp32=fp32),
    ]
    return out_rows
