"""The published figures of the works in ``REFERENCE.md`` that ``xbar reproduce`` checks.

One :class:`Published` per figure: the paper's number as printed, its setting in the paper's
words, and what kind of quantity it is. The simulated side of each row is computed by
:mod:`xbar.mapping.recovery.reproduce`; later works add their figures here.

Sources (REFERENCE.md):

* work 1: Charan, Mohanty, Du, Krishnan, Joshi, Cao, "Accurate Inference with Inaccurate RRAM
  Devices: A Joint Algorithm-Design Solution", IEEE JxCDC 6(1), 2020;
* work 2: Charan, Hazra, Beckmann, Du, Krishnan, Joshi, Cady, Cao, "Accurate Inference with
  Inaccurate RRAM Devices: Statistical Data, Model Transfer, and On-line Adaptation", DAC 2020.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["KINDS", "PUBLISHED", "Published", "published"]

KINDS = ("accuracy", "sram-fraction", "speedup", "area-fraction")


@dataclass(frozen=True)
class Published:
    """One published figure.

    Attributes:
        work: ``"work1"`` or ``"work2"`` (REFERENCE.md's numbering).
        figure: A short identifier, unique within the work.
        title: What the figure is, in a few words.
        value: The number as a fraction (accuracy, SRAM or area fraction) or a ratio
            (speedup); for a published range, its low end; None where the paper gives no number
            ("baseline accuracy").
        high: The high end of a published range (speedup "15-150x"), else None.
        text: The figure as the paper prints it.
        setting: The paper's setting, in its words.
        kind: One of :data:`KINDS`.
    """

    work: str
    figure: str
    title: str
    value: float | None
    text: str
    setting: str
    kind: str
    high: float | None = None


PUBLISHED: tuple[Published, ...] = (
    Published("work1", "fp32-mnist", "FP32 teacher, LeNet-5 MNIST", 0.9933, "99.33 %",
              "LeNet-5 trained on the 60,000 MNIST training images", "accuracy"),
    Published("work1", "kd-rsa-mnist", "KD + RSA accuracy, LeNet-5 MNIST", 0.9941, "99.41 %",
              "4-bit student, SA0 9.04 % / SA1 1.75 %, sigma 0.1 x level, T = 2; up to 5 % of "
              "parameters in SRAM", "accuracy"),
    Published("work1", "rsa-sram-mnist", "SRAM fraction RSA alone needs, MNIST", 0.07,
              "about 7 %", "random sparse adaptation without KD, to reach the FP32 baseline",
              "sram-fraction"),
    Published("work1", "kd-rsa-sram-mnist", "SRAM fraction KD + RSA needs, MNIST", 0.03,
              "about 3 %", "KD student + random sparse adaptation, to reach the FP32 baseline",
              "sram-fraction"),
    Published("work1", "speedup", "speedup of KD + RSA over R-V-W", 15.0, "15-150x",
              "R-V-W as cell-by-cell compensation; RRAM write time 6.5 us to 4.5 ms per cell, "
              "about 1 ns per SRAM write; formula not public", "speedup", high=150.0),
    Published("work1", "kd-rsa-cifar10", "KD + RSA accuracy, VGG-16 CIFAR-10", 0.9186, "91.86 %",
              "VGG-16, FP32 93.35 %, up to 5 % of parameters in SRAM", "accuracy"),
    Published("work2", "collapse-mnist", "one-shot accuracy on the 65 nm cell, MNIST", 0.3176,
              "31.76 %", "10 levels, \"50 % variance\", the pre-trained model mapped as is",
              "accuracy"),
    Published("work2", "collapse-cifar10", "one-shot accuracy on the 65 nm cell, CIFAR-10",
              0.1049, "10.49 %", "10 levels, \"50 % variance\"", "accuracy"),
    Published("work2", "kd-osa-mnist", "KD + OSA accuracy, MNIST", None, "baseline",
              "KD to a 10-level student with the variations, then OSA (importance-sampled "
              "SRAM) at 7.86 % area cost", "accuracy"),
    Published("work2", "osa-area", "area cost of OSA that restores baseline", 0.0786, "7.86 %",
              "SRAM array sparsely connected to the RRAM array, MNIST and CIFAR-10",
              "area-fraction"),
)


def published(work: str, figure: str) -> Published:
    """The published figure ``figure`` of ``work``."""
    for p in PUBLISHED:
        if p.work == work and p.figure == figure:
            return p
    raise KeyError(f"no published figure {figure!r} in {work!r}")
