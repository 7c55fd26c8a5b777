"""The whole flow on a backend (issue 11): ``Chip.use_backend``, KD, adaptation and
``compare`` on torch's device.

Without a GPU the torch code path runs as backend ``"torch-cpu"``: the same code as CUDA on
torch's CPU device. Where sums are exact in float32 (integer conductances, no read noise) it
must give the Numba backend's outputs bit for bit; with read noise it draws other random
numbers, so it is checked for reproducibility and for equal accuracy within sampling error.
The CUDA-only test at the end runs where torch sees a GPU.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from xbar.config import HardwareConfig, XbarConfig
from xbar.devices import Device, preset
from xbar.errors import ConfigError, ResourceError
from xbar.mapping.chip import Chip
from xbar.mapping.cli.main import main
from xbar.mapping.data.train import (backend_device, classification_loss,
                                     gathered_cross_entropy)
from xbar.mapping.data.workflow import load_teacher
from xbar.mapping.recovery.compare import CompareSettings, compare
from xbar.mapping.recovery.techniques.kd import KDConfig
from xbar.mapping.recovery.reproduce import ReproduceSettings
from xbar.mapping.recovery.techniques.sram import AdaptConfig, adapt, attach_sram

NO_CUDA = pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA GPU is present")
INTEGER = Device(name="integer-levels", g_min_us=1.0, g_max_us=16.0, n_levels=16)
"""Levels 1..16 uS, no variation, faults or read noise: every bit-line sum is exact in
float32, so the two backends must agree bit for bit."""


@pytest.fixture(scope="module")
def teacher():
    return load_teacher("digits-cnn", "digits")


def _conv_model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Flatten(), nn.Linear(4 * 4 * 4, 10)).eval()


def _chip(model: nn.Module, device: Device, backend: str, x: np.ndarray, seed: int = 0
          ) -> Chip:
    chip = Chip.program(model, device, XbarConfig(), seed=seed, input_shape=(1, 8, 8))
    chip.use_backend(backend).calibrate(x)
    return chip


def test_use_backend_moves_the_chip_and_says_where():
    chip = Chip.program(_conv_model(), INTEGER, XbarConfig(), input_shape=(1, 8, 8))
    assert chip.backend == "cpu" and chip.torch_device.type == "cpu"
    assert chip.use_backend("torch-cpu") is chip
    assert chip.backend == "torch-cpu"
    assert all(layer.matrix.backend == "torch-cpu" for layer in chip.layers)
    chip.use_backend("auto")  # resolved: cpu here, cuda on a GPU machine
    assert chip.backend == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(ConfigError, match="backend = 'gpu' is invalid"):
        chip.use_backend("gpu")


def test_torch_backend_equals_numba_where_sums_are_exact(teacher):
    """Conv (im2col in the Numba kernel vs unfold on torch), pooling and linear layers,
    calibration of DAC and ADC ranges included: the same logits bit for bit."""
    x = teacher.dataset.x_test[:64]
    calib = teacher.dataset.x_train[:128]
    cpu = _chip(_conv_model(), INTEGER, "cpu", calib)
    tc = _chip(_conv_model(), INTEGER, "torch-cpu", calib)
    for a, b in zip(cpu.layers, tc.layers):
        assert a.x_max == b.x_max
        np.testing.assert_array_equal(a.matrix.adc_range_ua, b.matrix.adc_range_ua)
    np.testing.assert_array_equal(cpu.predict(x), tc.predict(x))


def test_torch_backend_with_read_noise_repeats_and_matches_in_accuracy(teacher):
    ds = teacher.dataset
    dev = preset("wan2022")  # 1 % read noise on every read
    calib = ds.x_train[:256]
    cpu = _chip(teacher.model, dev, "cpu", calib)
    tc = _chip(teacher.model, dev, "torch-cpu", calib)
    first = tc.evaluate(ds.x_test, ds.y_test)
    assert tc.evaluate(ds.x_test, ds.y_test) == first  # the same seed, the same result
    n = len(ds.y_test)
    # Same cells, other noise draws: accuracies within a few images of each other.
    assert abs(first - cpu.evaluate(ds.x_test, ds.y_test)) <= 6 / n


def test_adaptation_on_torch_backend_is_reproducible_and_saves(teacher, tmp_path):
    ds = teacher.dataset
    dev = preset("charan2020-jxcdc")
    runs = []
    for _ in range(2):
        chip = _chip(teacher.model, dev, "torch-cpu", ds.x_train[:256])
        attach_sram(chip, 0.05, 8, "fisher", ds, seed=0)
        assert all(layer.sram_mask.device == chip.torch_device for layer in chip.layers)
        adapt(chip, ds, "sram", AdaptConfig(steps=15), seed=0)
        runs.append(chip)
    codes = [[layer.sram_code.detach().clone() for layer in c.layers] for c in runs]
    for a, b in zip(*codes):
        assert torch.equal(a, b)
    before = runs[0].evaluate(ds.x_test, ds.y_test)
    path = tmp_path / "chip.h5"
    runs[0].save(path)
    loaded = Chip.load(path, teacher.model).use_backend("torch-cpu")
    assert loaded.evaluate(ds.x_test, ds.y_test) == before


@pytest.mark.slow
def test_compare_on_torch_backend(teacher):
    """KD, bias-only, SRAM adaptation and R-V-W on the torch path give the Numba path's
    accuracies on a device without read noise (its sums are not all exact in float32, so
    one image either way is allowed), and every row names where it ran."""
    ds = teacher.dataset
    methods = ("one-shot", "bias-only", "kd", "kd+rsa", "rvw")
    runs = {}
    for backend in ("cpu", "torch-cpu"):
        runs[backend] = compare(
            teacher.model, ds, preset("charan2020-jxcdc"), HardwareConfig(),
            CompareSettings(chips=1, methods=methods, adapt=AdaptConfig(steps=20),
                            kd=KDConfig(epochs=1), backend=backend))
    assert runs["torch-cpu"]["settings"]["backend"] == "torch-cpu"
    for m in methods:
        assert runs["torch-cpu"]["methods"][m]["backend"] == "torch-cpu"
        assert runs["cpu"]["methods"][m]["backend"] == "cpu"
        assert abs(runs["torch-cpu"]["methods"][m]["accuracy"]
                   - runs["cpu"]["methods"][m]["accuracy"]) <= 1 / len(ds.y_test) + 1e-12


def test_plugin_methods_run_on_the_cpu_and_say_so(teacher):
    ds = teacher.dataset
    res = compare(teacher.model, ds, preset("charan2020-jxcdc"), HardwareConfig(),
                  CompareSettings(chips=1, methods=("one-shot", "fault-aware-map"),
                                  backend="torch-cpu"))
    assert res["methods"]["one-shot"]["backend"] == "torch-cpu"
    assert res["methods"]["fault-aware-map"]["backend"] == "cpu"


def test_bad_backends_are_refused_before_any_work():
    with pytest.raises(ConfigError, match="CompareSettings.backend = 'gpu' is invalid"):
        CompareSettings(backend="gpu")
    with pytest.raises(ConfigError, match="ReproduceSettings.backend = 'gpu' is invalid"):
        ReproduceSettings(backend="gpu")
    assert backend_device("torch-cpu").type == "cpu"
    assert backend_device("cpu").type == "cpu"


@NO_CUDA
def test_cuda_without_a_gpu_is_a_clear_error(teacher, capsys):
    with pytest.raises(ResourceError, match="needs a CUDA GPU"):
        compare(teacher.model, teacher.dataset, preset("charan2020-jxcdc"), HardwareConfig(),
                CompareSettings(chips=1, methods=("one-shot",), backend="cuda"))
    for cmd in (["compare", "--backend", "cuda", "--chips", "1"],
                ["reproduce", "work1", "--quick", "--backend", "cuda"]):
        assert main(cmd) == 2
        err = capsys.readouterr().err
        assert "needs a CUDA GPU" in err and "Traceback" not in err


def test_gathered_cross_entropy_is_cross_entropy():
    """The CUDA training loss (a gather, deterministic on the GPU) against torch's own."""
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(50, 10, generator=gen, dtype=torch.float64, requires_grad=True)
    labels = torch.randint(0, 10, (50,), generator=gen)
    ours = gathered_cross_entropy(logits, labels)
    (g_ours,) = torch.autograd.grad(ours, logits)
    ref = torch.nn.functional.cross_entropy(logits, labels)
    (g_ref,) = torch.autograd.grad(ref, logits)
    torch.testing.assert_close(ours, ref, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(g_ours, g_ref, rtol=1e-12, atol=1e-12)
    assert torch.equal(classification_loss(logits, labels), ref)  # the CPU keeps torch's


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_compare_on_cuda_repeats_and_matches_the_cpu(teacher):
    ds = teacher.dataset
    settings = dict(chips=1, methods=("one-shot", "bias-only", "kd", "kd+rsa"),
                    adapt=AdaptConfig(steps=20), kd=KDConfig(epochs=2))
    cuda = [compare(teacher.model, ds, preset("wan2022"), HardwareConfig(),
                    CompareSettings(backend="cuda", **settings)) for _ in range(2)]
    cpu = compare(teacher.model, ds, preset("wan2022"), HardwareConfig(),
                  CompareSettings(backend="cpu", **settings))
    for m in settings["methods"]:
        assert cuda[0]["methods"][m]["accuracy"] == cuda[1]["methods"][m]["accuracy"]
        assert abs(cuda[0]["methods"][m]["accuracy"] - cpu["methods"][m]["accuracy"]) < 0.03


def test_sweep_on_torch_backend_records_it_and_refuses_to_mix(tmp_path):
    """A sweep's points run on its backend; the backend enters the configuration hash, so
    resuming a torch-cpu sweep on the cpu backend is refused, not silently mixed."""
    import dataclasses

    from xbar.mapping.sweep.run import SweepSpec, plan_sweep, run_sweep
    from xbar.mapping.sweep.store import SweepResults

    spec = SweepSpec(param="sigma", values="0.1", model="digits-cnn", dataset="digits",
                     device="charan2020-jxcdc", methods=("one-shot", "bias-only"), chips=1,
                     steps=5, backend="torch-cpu")
    assert plan_sweep(spec).settings.backend == "torch-cpu"
    with pytest.raises(ConfigError, match="CompareSettings.backend = 'gpu' is invalid"):
        plan_sweep(dataclasses.replace(spec, backend="gpu"))
    out = tmp_path / "s.h5"
    run = run_sweep(spec, out, workers=1, threads=1)
    assert run.computed == 2
    saved = SweepResults.load(out)
    assert saved.config["backend"] == "torch-cpu"
    with pytest.raises(ValueError, match="differ in: backend"):
        run_sweep(dataclasses.replace(spec, backend="cpu"), out, workers=1, threads=1)
    cpu = run_sweep(dataclasses.replace(spec, backend="cpu"), tmp_path / "c.h5", workers=1,
                    threads=1)
    assert "backend" not in SweepResults.load(tmp_path / "c.h5").config  # earlier hashes hold
    assert cpu.computed == 2
    np.testing.assert_allclose(SweepResults.load(tmp_path / "c.h5").metrics["accuracy"],
                               saved.metrics["accuracy"], atol=1.5 / 360)
