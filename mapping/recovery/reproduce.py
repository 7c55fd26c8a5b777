"""``xbar reproduce``: every published figure of the works in REFERENCE.md beside the simulated one.

For each :class:`~xbar.mapping.recovery.published.Published` figure the run produces one row:
the paper's number and setting, the simulated number (mean and standard deviation over chip
instances) and setting, and the difference (simulated - published, in points for accuracies
and fractions; simulated / published for speedups). A figure this code cannot simulate yet
keeps its row with ``simulated = None`` and a note saying why, so nothing is silently left out.

Each work's settings and rows live in its module
(:data:`xbar.mapping.recovery.registry.WORK_MODULES`): works 1 and 2 in
:mod:`~xbar.mapping.recovery.charan2020` (with the speedup rows and, with
``cifar``, the CIFAR-10 rows), work 3 in :mod:`~xbar.mapping.recovery.itt_rna`, work 4 in
:mod:`~xbar.mapping.recovery.correctnet`, work 5 in :mod:`~xbar.mapping.recovery.lv2024`.

``quick`` runs the same on scikit-learn's digits with the digits CNN (a few minutes on 2
cores); the full run is MNIST LeNet-5. ``cifar`` adds the CIFAR-10 rows: VGG-16 on the cuda
backend (``backend``), the width-reduced ``vgg16-narrow`` otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from xbar.errors import ConfigError, MissingFileError
from xbar.mapping.recovery.published import Published
from xbar.mapping.recovery.registry import WORK_MODULES, work

__all__ = ["EXTRA_KEYS", "ReproduceSettings", "WORKS", "check_data", "reproduce", "row"]

WORKS = tuple(WORK_MODULES)
"""The works ``xbar reproduce`` knows (the reference list's numbering)."""
EXTRA_KEYS = ("work3_sigma", "work3_stuck_rate", "work4_sigma", "work4_adc_sigma",
              "work4_comp_layers", "work5_images")
"""The knobs of works 3-5 that :attr:`ReproduceSettings.extra` may set (each work's module
documents and checks its own); any other key is refused rather than ignored."""
@dataclass(frozen=True)
class ReproduceSettings:
    """What to reproduce and how hard to try.

    Attributes:
        works: Works to reproduce, a subset of :data:`WORKS`.
        quick: Digits and the digits CNN instead of MNIST and LeNet-5.
        chips: Chip instances (seeds ``seed``, ``seed + 1``, ...).
        seed: First chip seed; the teacher is the zoo's (teacher seed 0).
        fractions: SRAM fractions tried for RSA, KD+RSA and KD+OSA.
        steps, batch: Adaptation budget per chip.
        kd_epochs: KD epochs.
        data_dir: Where MNIST lives (default: the usual search, see ``xbar simulate``).
        cifar: Also run the CIFAR-10 rows: VGG-16 at full size on the cuda backend, else the
            width-reduced ``vgg16-narrow`` (1/8 of every width), named in every row.
        cifar_test_limit: CIFAR-10 test images evaluated (N evenly strided over the test set,
            which the image-folder release orders by class; None: all 10,000).
        extra: Works 3-5's own knobs, by name (:data:`EXTRA_KEYS`).
        backend: Where chips run and KD and adaptation train
            (:attr:`CompareSettings.backend <xbar.mapping.recovery.compare.CompareSettings>`):
            ``"cpu"`` by default; with ``"cuda"`` (or ``"auto"`` on a machine with a GPU) the
            CIFAR-10 rows use the full VGG-16.
    """

    works: tuple[str, ...] = WORKS
    quick: bool = False
    chips: int = 2
    seed: int = 0
    fractions: tuple[float, ...] = (0.01, 0.03, 0.05, 0.08)
    steps: int = 200
    batch: int = 32
    kd_epochs: int = 10
    data_dir: str | None = None
    cifar: bool = False
    cifar_test_limit: int | None = 2000
    extra: dict[str, Any] = field(default_factory=dict, compare=False)
    backend: str = "cpu"

    def __post_init__(self) -> None:
        from xbar.backends import BACKENDS
        if self.backend not in BACKENDS:
            raise ConfigError(f"ReproduceSettings.backend = {self.backend!r} is invalid; "
                              f"allowed: one of {', '.join(BACKENDS)}")
        unknown = [w for w in self.works if w not in WORKS]
        if unknown or not self.works:
            raise ConfigError(f"works = {list(self.works)!r} is invalid; allowed: a non-empty "
                              f"subset of {list(WORKS)}")
        if len(set(self.works)) != len(self.works):
            raise ConfigError(f"works = {list(self.works)!r} names a work twice")
        for name in ("chips", "steps", "batch", "kd_epochs"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"ReproduceSettings.{name} = {value!r} is invalid; allowed: "
                                  "an integer >= 1")
        if self.cifar_test_limit is not None and (
                isinstance(self.cifar_test_limit, bool)
                or not isinstance(self.cifar_test_limit, int) or self.cifar_test_limit < 1):
            raise ConfigError(f"cifar_test_limit = {self.cifar_test_limit!r} is invalid; "
                              "allowed: None (all test images) or an integer >= 1")
        unknown_extra = sorted(set(self.extra) - set(EXTRA_KEYS))
        if unknown_extra:
            raise ConfigError(f"ReproduceSettings.extra: unknown key(s) {unknown_extra}; "
                              f"allowed: {', '.join(EXTRA_KEYS)}")
        if not self.fractions or any(not 0 < f <= 1 for f in self.fractions):
            raise ConfigError(f"fractions = {list(self.fractions)!r} is invalid; allowed: "
                              "fractions in (0, 1]")

    @property
    def model(self) -> str:
        return "digits-cnn" if self.quick else "lenet5"

    @property
    def dataset(self) -> str:
        return "digits" if self.quick else "mnist"


def row(pub: Published, simulated: float | None, std: float | None, setting: str,
        note: str = "", our_fp32: float | None = None) -> dict[str, Any]:
    """One row of the table: ``pub`` beside ``simulated`` (mean over chips, ``std``) with our
    ``setting`` and a ``note``. ``published`` is the paper's figure, None where it prints no
    number (its "baseline", "nearly complete"); the difference is simulated - published
    (points) or, for a speedup, simulated / published, None without a published figure.
    ``our_fp32``: for a figure the paper states against its own FP32 baseline, our FP32
    accuracy; the row's ``versus_our_fp32`` is then simulated - our_fp32 (None otherwise)."""
    value = pub.value
    if simulated is None or value is None:
        diff = None
    elif pub.kind == "speedup":
        diff = simulated / value
    else:
        diff = simulated - value
    return {"work": pub.work, "figure": pub.figure, "title": pub.title, "kind": pub.kind,
            "published": value, "published_high": pub.high, "published_text": pub.text,
            "published_setting": pub.setting, "simulated": simulated,
            "simulated_std": std, "setting": setting, "difference": diff,
            "versus_our_fp32": (None if simulated is None or our_fp32 is None
                                else simulated - our_fp32), "note": note}


def check_data(settings: ReproduceSettings) -> None:
    """Before the first work runs: the data every requested work needs is there (CIFAR-10
    for ``cifar``; the main data set is the teacher's, loaded first anyway), so that a
    missing file does not discard the works run before it.

    Raises:
        MissingFileError: Naming the option that asks for the data and what to put where.
    """
    from xbar.mapping.data.cifar import find_cifar10

    if settings.cifar:
        try:
            find_cifar10(settings.data_dir)
        except MissingFileError as exc:
            raise MissingFileError(f"ReproduceSettings.cifar needs the CIFAR-10 data (checked "
                                   f"before any work runs): {exc}") from None


def reproduce(settings: ReproduceSettings,
              progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Run the reproduction; a JSON-ready dict with ``rows`` and ``sensitivity``: every work
    of ``settings.works`` in turn (:func:`xbar.mapping.recovery.registry.work`), then the
    CIFAR-10 rows with ``cifar``."""
    from xbar.kernel_torch import resolve_backend
    from xbar.mapping.data.workflow import load_teacher

    say = progress or (lambda _: None)
    s = settings
    backend = resolve_backend(s.backend)  # before any work: cuda without a GPU fails here
    check_data(s)
    say(f"teacher: {s.model} on {s.dataset}")
    teacher = load_teacher(s.model, s.dataset, s.data_dir, backend=backend)
    rows: list[dict[str, Any]] = []
    out: dict[str, Any] = {"rows": rows, "fp32_accuracy": teacher.software_accuracy,
                           "model": s.model, "dataset": s.dataset, "chips": s.chips,
                           "seed": s.seed, "fractions": list(s.fractions), "steps": s.steps,
                           "batch": s.batch, "kd_epochs": s.kd_epochs, "works": {},
                           "backend": backend}
    for name in s.works:
        say(name)
        rows.extend(work(name).rows(s, teacher, say, out))
    if s.cifar:  # each works' CIFAR-10 rows, a function shared by works run once
        for cifar_rows in dict.fromkeys(work(name).cifar_rows for name in s.works):
            if cifar_rows is not None:
                rows.extend(cifar_rows(s, say, out))
    return out
