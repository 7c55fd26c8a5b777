"""The published figures of the works in docs/references.md that ``xbar reproduce`` checks.

One :class:`Published` per figure: the paper's number as printed, its setting in the paper's
words, and what kind of quantity it is. The simulated side of each row is computed by
:mod:`xbar.mapping.recovery.reproduce`; later works add their figures here.

Sources (docs/references.md):

* work 1: Charan, Mohanty, Du, Krishnan, Joshi, Cao, "Accurate Inference with Inaccurate RRAM
  Devices: A Joint Algorithm-Design Solution", IEEE JxCDC 6(1), 2020;
* work 2: Charan, Hazra, Beckmann, Du, Krishnan, Joshi, Cady, Cao, "Accurate Inference with
  Inaccurate RRAM Devices: Statistical Data, Model Transfer, and On-line Adaptation", DAC 2020;
* work 3: Song, Sun, Chen, Li, Jing, Liang, Jiang, "ITT-RNA: Imperfection Tolerable Training
  for RRAM-Crossbar-Based Deep Neural-Network Accelerator", IEEE TCAD 2020 (its abstract);
* work 4: Eldebiky, Zhang, Boecherer, Li, Schlichtmann, "CorrectNet: Robustness Enhancement of
  Analog In-Memory Computing for Neural Networks by Error Suppression and Compensation",
  DATE 2023, and "CorrectNet+", IEEE TCAD 2024 (their abstracts);
* work 5: Lv, Zhang, Wang, "Improving DNN Accuracy on MLC PIM via Non-Ideal PIM Device
  Fine-Tuning", IEEE TCAD 2024 (its abstract).

Works 3-5's full texts are closed: their rows hold the abstracts' claims, and the settings the
abstracts leave open are the project's documented choices (see each work's reproduce module).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["KINDS", "PUBLISHED", "Published", "published"]

KINDS = ("accuracy", "sram-fraction", "speedup", "area-fraction", "accuracy-loss",
         "accuracy-gain", "fraction-of-original", "power-change")
"""accuracy-loss: FP32 minus the method's accuracy (a bound: the paper's "< x"); accuracy-gain:
one method's accuracy minus another's; fraction-of-original: accuracy over the FP32 network's;
power-change: (new - baseline) / baseline."""


@dataclass(frozen=True)
class Published:
    """One published figure.

    Attributes:
        work: ``"work1"`` ... ``"work5"`` (docs/references.md's numbering).
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
    Published("work3", "loss-stuck-20", "accuracy loss at a 20 % stuck-at-fault rate", 0.01,
              "< 1 %", "ITT-RNA (fault-aware mapping, training and on-device retraining), MLPs "
              "and CNNs; SA0:SA1 ratio not public", "accuracy-loss"),
    Published("work3", "loss-variation", "accuracy loss under resistance variation", 0.011,
              "< 1.1 %", "ITT-RNA, MLPs and CNNs; lognormal variation w exp(theta) (DATE 2017 "
              "predecessor), sigma not public", "accuracy-loss"),
    Published("work4", "collapse", "accuracy at the highest variation, unprotected", 0.0169,
              "1.69 %", "CorrectNet(+): the network without suppression or compensation, "
              "lognormal weight variation; network and sigma not public", "accuracy"),
    Published("work4", "recovered", "accuracy recovered, as a fraction of the original", 0.95,
              "> 95 %", "CorrectNet(+): Lipschitz regularisation + error compensation at the "
              "highest variation", "fraction-of-original"),
    Published("work4", "adc-power", "total ADC power against the uniform baseline", -0.55,
              "-55 %", "CorrectNet+: quantisation (levels, ADC bits) chosen for robustness and "
              "ADC power; baseline resolution not public", "power-change"),
    Published("work5", "io-vs-vat", "I/O-guided KD fine-tuning over variation-aware training",
              0.03, "> 3 points", "one cell per weight on multilevel RRAM with variation, read "
              "disturbance and limited on/off ratio", "accuracy-gain"),
    Published("work5", "recovery", "accuracy after I/O-guided fine-tuning", None,
              "nearly complete", "the same setting; compared with the FP32 network",
              "accuracy"),
)


def published(work: str, figure: str) -> Published:
    """The published figure ``figure`` of ``work``."""
    for p in PUBLISHED:
        if p.work == work and p.figure == figure:
            return p
    raise KeyError(f"no published figure {figure!r} in {work!r}")
