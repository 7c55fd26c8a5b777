"""Leakage: no test image ever reaches a training, distillation, adaptation, calibration or
selection step of any recovery method; only the final evaluation sees them.

How the test images are marked: every pixel of every test image of scikit-learn's digits is
set to ``MARK`` = 7.0, a value no real image has (images are in [0, 1]). :class:`Dataset`
refuses such values, so the marked set is built as a valid data set whose ``x_test`` is then
replaced with ``object.__setattr__`` (bypassing the frozen dataclass's check for this test
only). A sample is marked when all its values equal ``MARK``; no hidden activation or training
image is ever all 7.0.

Where data enters (the entry points, found by reading the code): every image the recovery
code uses goes through a torch module's forward (the FP32 networks, the KD student, the chip's
``AnalogLayer`` modules: calibration runs them through ``Chip.capture_inputs``, on-chip
measurements through ``chip_loop.measure_layer``, SRAM / bias / compensation / chip-ft
training through ``chip.module``). A global forward pre-hook inspects every module's input:

* a marked sample with gradients enabled: a training, distillation or adaptation step;
* a marked sample in a no-grad forward is allowed only inside ``Chip.evaluate`` or
  ``train.evaluate`` called directly from ``compare`` (the final scoring and the FP32 row),
  from ``kd.distill`` (the student's test accuracies it reports, never uses) or from
  ``train_model`` (the teacher's reported test accuracy); anything else (calibration, a
  measurement, a selection such as the ADC search's accuracy floor) is a leak;
* even there, a marked sample into a BatchNorm or Dropout module in training mode is a leak
  (its running statistics would learn from the test images). Training mode is not checked on
  other modules: a programmed chip's analog layers are left in training mode and ignore it.

Besides, ``Chip.calibrate`` and ``calibration_inputs`` (at every module that imported it) are
wrapped to refuse marked samples with a clear message. Violations are recorded (and raised,
in case a caller swallows exceptions) and the test asserts there are none, and that the
marked images did reach the final evaluation (so the hook is live).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

from xbar.config import load_hardware
from xbar.devices import preset
from xbar.mapping.chip import Chip
from xbar.mapping.data import train as train_mod
from xbar.mapping.data import workflow
from xbar.mapping.data.base import Dataset
from xbar.mapping.data.datasets import load_dataset
from xbar.mapping.recovery import compare as compare_mod
from xbar.mapping.recovery.techniques import kd as kd_mod
from xbar.mapping.recovery.compare import DEFAULT_METHODS, CompareSettings, compare
from xbar.mapping.recovery.registry import method_names
from xbar.mapping.recovery.techniques.compensation import CompensationConfig
from xbar.mapping.recovery.techniques.fault_train import FaultTrainConfig
from xbar.mapping.recovery.lv2024 import ChipFTConfig, IOKDConfig, VATConfig
from xbar.mapping.recovery.techniques.kd import KDConfig
from xbar.mapping.recovery.techniques.on_chip import OnChipConfig
from xbar.mapping.recovery.techniques.sram import AdaptConfig, adapt
from xbar.mapping.recovery.itt_rna import Work3Options
from xbar.mapping.recovery.correctnet import Work4Options

pytestmark = pytest.mark.usefixtures("one_torch_thread")

MARK = 7.0
"""The value of every pixel of every marked test image (real images lie in [0, 1])."""
IMAGE_SHAPE = (1, 8, 8)

MODE_DEPENDENT = (nn.modules.batchnorm._NormBase, nn.modules.dropout._DropoutNd)
"""Modules whose forward depends on training mode (running statistics, dropout). A chip's
analog layers ignore the mode (a freshly programmed chip's are in training mode), so the mode
of those alone says nothing; every marked forward outside an allowed evaluation is refused
whatever the mode."""

DEVICE = "charan2020-jxcdc"  # variation and stuck cells: every method has work to do

# Modules that import calibration_inputs by name (each copy is wrapped).
CALIBRATION_USERS = ("xbar.mapping.data.workflow", "xbar.mapping.recovery.compare",
                     "xbar.mapping.recovery.itt_rna", "xbar.mapping.recovery.techniques.adc_search",
                     "xbar.mapping.recovery.lv2024", "xbar.mapping.recovery.techniques.iokd")


def marked_digits() -> Dataset:
    """scikit-learn's digits with every test pixel set to MARK (labels kept)."""
    ds = load_dataset("digits")
    object.__setattr__(ds, "x_test", np.full_like(ds.x_test, MARK))  # bypasses [0, 1]
    ds.__dict__.pop("fingerprint", None)  # cached_property: recomputed from the marked data
    return ds


def marked_rows(x: Any) -> int:
    """How many samples of ``x`` (batch first) are marked: entirely MARK, or, for an
    image-shaped sample (1 x 8 x 8), any value outside [-1, 2] (a marked image that was
    shifted, scaled or noised on its way; real images lie in [0, 1])."""
    t = x.detach() if isinstance(x, torch.Tensor) else torch.as_tensor(np.asarray(x))
    if t.dim() < 2 or t.shape[0] == 0 or not t.is_floating_point():
        return 0
    flat = t.reshape(t.shape[0], -1)
    rows = (flat == MARK).all(dim=1)
    if tuple(t.shape[1:]) == IMAGE_SHAPE:
        rows |= ((flat > 2.0) | (flat < -1.0)).any(dim=1)
    return int(rows.sum())


class Leak(AssertionError):
    """A marked test image reached a step it must never reach."""


class Guard:
    """Installs the hooks and wrappers (module docstring); records what it saw."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.violations: list[str] = []
        self.evaluated = 0  # marked samples seen in allowed evaluations
        self._mp = monkeypatch
        self._eval_codes = {Chip.evaluate.__code__, train_mod.evaluate.__code__}
        self._allowed_callers = {compare_mod.compare.__code__, kd_mod.distill.__code__,
                                 train_mod.train_model.__code__}
        self._handle = None

    def leak(self, what: str) -> None:
        self.violations.append(what)
        raise Leak(what)

    def _allowed_evaluation(self) -> bool:
        frame = sys._getframe(2)
        while frame is not None:
            if frame.f_code in self._eval_codes:
                caller = frame.f_back
                return caller is not None and caller.f_code in self._allowed_callers
            frame = frame.f_back
        return False

    def _where(self) -> str:
        frames, frame = [], sys._getframe(2)
        while frame is not None and len(frames) < 40:
            name = Path(frame.f_code.co_filename)
            if "torch" not in name.parts and name.name != "test_leakage.py":
                frames.append(f"{name.name}:{frame.f_lineno} {frame.f_code.co_name}")
            frame = frame.f_back
        return " <- ".join(frames[:6])

    def _pre_hook(self, module: nn.Module, args: tuple) -> None:
        if not args or not isinstance(args[0], torch.Tensor):
            return
        n = marked_rows(args[0])
        if not n:
            return
        kind = type(module).__name__
        if torch.is_grad_enabled():
            self.leak(f"{n} marked test image(s) entered {kind} with gradients enabled "
                      f"(a training step) at {self._where()}")
        if not self._allowed_evaluation():
            self.leak(f"{n} marked test image(s) entered {kind} outside the final "
                      f"evaluation (calibration, measurement or selection) at {self._where()}")
        if module.training and isinstance(module, MODE_DEPENDENT):
            self.leak(f"{n} marked test image(s) entered {kind} in training mode (its "
                      f"statistics would learn from them) at {self._where()}")
        self.evaluated += n

    def install(self) -> "Guard":
        self._handle = nn.modules.module.register_module_forward_pre_hook(self._pre_hook)
        calibrate = Chip.calibrate

        def guarded_calibrate(chip: Chip, x: Any) -> None:
            if marked_rows(x):
                self.leak(f"Chip.calibrate got {marked_rows(x)} marked test image(s) at "
                          f"{self._where()}")
            calibrate(chip, x)

        self._mp.setattr(Chip, "calibrate", guarded_calibrate)
        original = workflow.calibration_inputs

        def guarded_inputs(dataset: Dataset, *a: Any, **k: Any) -> np.ndarray:
            out = original(dataset, *a, **k)
            if marked_rows(out):
                self.leak(f"calibration_inputs returned {marked_rows(out)} marked test "
                          f"image(s) at {self._where()}")
            return out

        for name in CALIBRATION_USERS:
            module = sys.modules.get(name) or __import__(name, fromlist=["_"])
            self._mp.setattr(module, "calibration_inputs", guarded_inputs)
        return self

    def remove(self) -> None:
        if self._handle is not None:
            self._handle.remove()
            self._handle = None


@pytest.fixture
def guard(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    monkeypatch.setenv("XBAR_CACHE", str(tmp_path / "cache"))  # train afresh, keep no weights
    g = Guard(monkeypatch).install()
    yield g
    g.remove()


def small_options() -> dict[str, Any]:
    """Every plug-in's options at a budget of seconds."""
    w3 = Work3Options(train=FaultTrainConfig(epochs=1, rounds=1, sensitivity_batches=1,
                                             adjust_epochs=1, adjust_images=32),
                      on_chip=OnChipConfig(iterations=1, batch_size=16))
    w4 = Work4Options(fine_tune_epochs=1,
                      compensation=CompensationConfig(layers=1, images=32, steps=2,
                                                      batch_size=8))
    return {"fault-aware-map": w3, "fault-aware-train": w3, "fault-aware+on-chip": w3,
            "lipschitz": w4, "lipschitz+comp": w4, "comp": w4,
            "vat": VATConfig(epochs=1), "chip-ft": ChipFTConfig(steps=2, batch_size=8),
            "io-kd": IOKDConfig(images=32, steps=2, batch_size=8)}


@pytest.mark.slow
def test_no_test_image_reaches_training_calibration_or_selection(guard: Guard) -> None:
    ds = marked_digits()
    # the teacher itself is trained under the guard (a fresh cache: it really trains)
    teacher, info = train_mod.train_model("digits-cnn", ds, seed=0)
    assert not info.from_cache
    hw = load_hardware("default")
    options = small_options()
    METHODS = method_names()
    assert set(options) == set(METHODS) - set(DEFAULT_METHODS)
    settings = CompareSettings(chips=1, seed=0, methods=METHODS,
                               adapt=AdaptConfig(steps=2, batch_size=8),
                               kd=KDConfig(epochs=1, selection="best"), options=options)
    result = compare(teacher, ds, preset(DEVICE), hw, settings)
    assert set(result["methods"]) == set(METHODS)
    # work 4's ADC search (a selection step outside compare) on the same data
    from xbar.mapping.recovery.techniques.adc_search import ADCSearchConfig, search_adc_bits
    search_adc_bits(teacher, ds, preset(DEVICE), hw,
                    ADCSearchConfig(chips=1, images=32, min_bits=6, max_bits=8), seed=0)
    assert guard.violations == []
    # the marks did reach the final evaluation (the hook is live): the teacher's reported
    # accuracy, the FP32 row, one chip per non-software method, the KD reports
    assert guard.evaluated >= len(ds.y_test) * len(METHODS)


def _digits_mlp(ds: Dataset) -> nn.Module:
    """A small MLP trained for a few steps on the training images (under the guard)."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    x, y = torch.from_numpy(ds.x_train), torch.from_numpy(ds.y_train)
    for lo in range(0, len(x), 64):
        loss = nn.functional.cross_entropy(model(x[lo:lo + 64]), y[lo:lo + 64])
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval()


def test_work3_layerwise_adjustment_sees_no_test_image(guard: Guard) -> None:
    """Work 3's layer-by-layer adjustment (MLPs only: the digits CNN above skips it) runs
    training images through the chip's first layers; no test image among them."""
    ds = marked_digits()
    hw = load_hardware("default")
    methods = ("fault-aware-train", "fault-aware+on-chip")
    options = {m: small_options()[m] for m in methods}
    settings = CompareSettings(chips=1, seed=0, methods=methods, options=options)
    result = compare(_digits_mlp(ds), ds, preset(DEVICE), hw, settings)
    assert set(result["methods"]) == set(methods)
    assert guard.violations == []
    assert guard.evaluated >= len(ds.y_test) * len(methods)


def test_the_guard_catches_a_test_image_in_a_training_step(guard: Guard) -> None:
    """The guard can fail: adaptation handed the test images as its training data."""
    ds = marked_digits()
    leaky = Dataset.__new__(Dataset)
    leaky.__dict__.update(ds.__dict__)
    object.__setattr__(leaky, "x_train", ds.x_test)
    object.__setattr__(leaky, "y_train", ds.y_test)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 16), nn.ReLU(), nn.Linear(16, 10)).eval()
    hw = load_hardware("default")
    chip = Chip.program(model, preset(DEVICE), hw.xbar, 0, "column", "", (1, 8, 8))
    chip.calibrate(ds.x_train[:64])
    with pytest.raises(Leak, match="gradients enabled"):
        adapt(chip, leaky, "bias", AdaptConfig(steps=1, batch_size=8), seed=0)
    with pytest.raises(Leak, match="Chip.calibrate"):
        chip.calibrate(ds.x_test[:8])
    with pytest.raises(Leak, match="outside the final evaluation"):
        chip.evaluate(ds.x_test[:8], ds.y_test[:8])  # called from here, not from compare
    assert len(guard.violations) == 3
