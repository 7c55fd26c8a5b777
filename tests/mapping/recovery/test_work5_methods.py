"""Work 5's fine-tuning methods: the I/O-guided progressive method improves what the chip
computes against the teacher, costs are counted, one seed gives one result, bad options are
refused; vat, chip-ft and io-kd run through ``compare``."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from xbar.config import load_hardware
from xbar.devices import preset
from xbar.errors import ConfigError
from xbar.mapping.chip import Chip
from xbar.mapping.data.workflow import calibration_inputs, load_teacher
from xbar.mapping.geometry import layer_specs
from xbar.mapping.recovery.compare import CompareSettings, compare
from xbar.mapping.recovery.lv2024 import ChipFTConfig, IOKDConfig, VATConfig, run_io_kd
from xbar.mapping.recovery.techniques.kd import KDConfig
from xbar.mapping.recovery.registry import MethodContext, method
from xbar.timing.energy import one_shot_energy
from xbar.timing.programming import one_shot_time

DEVICE = "lv2024-mlc"


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def teacher():
    return load_teacher("digits-cnn", "digits")


def _context(teacher, options, seed: int = 0) -> MethodContext:
    hw = load_hardware("one-cell")
    device = preset(DEVICE)
    ds = teacher.dataset
    shape = tuple(ds.input_shape)
    specs = layer_specs(teacher.model, shape)
    calib = calibration_inputs(ds, seed=seed)

    def program(model):
        chip = Chip.program(model, device, hw.xbar, seed, "column", "", shape)
        chip.calibrate(calib)
        return chip

    settings = CompareSettings(chips=1, seed=seed, methods=("io-kd",), kd=KDConfig(epochs=1),
                               options={"io-kd": options})
    return MethodContext(teacher=teacher.model, student=None, dataset=ds, device=device,
                         hardware=hw, specs=specs, shape=shape, seed=seed, settings=settings,
                         options=options, program=program,
                         one_shot_s=one_shot_time(specs, hw).total_s,
                         one_shot_pj=one_shot_energy(specs, hw).total_pj)


def _logit_mse(chip: Chip, teacher, x: np.ndarray) -> float:
    with torch.no_grad():
        t = teacher.model.eval()(torch.from_numpy(x)).numpy()
    chip.reset_reads(stream=9)
    return float(np.mean((chip.predict(x) - t) ** 2))


OPTIONS = IOKDConfig(images=256, steps=40, batch_size=32, start="teacher")


def test_io_kd_brings_the_chip_closer_to_the_teacher_and_counts_its_costs(teacher) -> None:
    ctx = _context(teacher, OPTIONS)
    base = ctx.program(teacher.model)
    out = run_io_kd(ctx)
    x, y = teacher.dataset.x_test, teacher.dataset.y_test
    assert _logit_mse(out.chip, teacher, x) < 0.7 * _logit_mse(base, teacher, x)
    assert out.chip.evaluate(x, y) > base.evaluate(x, y) + 0.05
    # costs: every measured, calibrated and rewritten thing counted
    n_layers, images, calib = 4, 256, len(calibration_inputs(teacher.dataset))
    c = out.costs
    assert c["stages"] == n_layers - 1
    assert c["chip_inferences"] == images * (n_layers - 1) + images * n_layers \
        + calib * (n_layers - 1)
    changed = sum(int((a.matrix.target_levels != b.matrix.target_levels).sum())
                  for a, b in zip(out.chip.layers, base.layers))
    assert c["rewrite_pulses"] == changed > 0
    assert out.pulses == base.n_cells + changed
    assert out.program_s == pytest.approx(ctx.one_shot_s + c["rewrite_s"])
    assert c["rewrite_s"] > 0 and c["measure_s"] > 0 and out.adapt_s == c["measure_s"]
    assert c["offline_train_s"] > 0 and c["read_pulses_max"] > 0
    # layer 0 is never re-programmed: its cells are the one-shot ones, disturbed by reads
    assert np.array_equal(out.chip.layers[0].matrix.target_levels,
                          base.layers[0].matrix.target_levels)


def test_io_kd_is_deterministic_for_a_seed(teacher) -> None:
    opts = IOKDConfig(images=64, steps=5, batch_size=16, start="teacher")
    a = run_io_kd(_context(teacher, opts, seed=4)).chip
    b = run_io_kd(_context(teacher, opts, seed=4)).chip
    for la, lb in zip(a.layers, b.layers):
        assert np.array_equal(la.matrix.g_us, lb.matrix.g_us)
        assert torch.equal(la.bias, lb.bias)
    x, y = teacher.dataset.x_test, teacher.dataset.y_test
    assert a.evaluate(x, y) == b.evaluate(x, y)


def test_bad_options_are_refused(teacher) -> None:
    with pytest.raises(ConfigError, match="IOKDConfig.steps"):
        IOKDConfig(steps=0)
    with pytest.raises(ConfigError, match="start"):
        ChipFTConfig(start="scratch")
    with pytest.raises(ConfigError, match="IOKDConfig.feature_target"):
        IOKDConfig(feature_target="student")
    with pytest.raises(ConfigError, match="IOKDConfig.correction"):
        IOKDConfig(correction="gain")
    with pytest.raises(ConfigError, match="VATConfig.epochs"):
        VATConfig(epochs=-1)
    with pytest.raises(ConfigError, match=r"options\['io-kd'\].*IOKDConfig"):
        run_io_kd(_context(teacher, {"steps": 3}))
    with pytest.raises(ConfigError, match="KD student"):
        run_io_kd(_context(teacher, IOKDConfig(images=8, steps=1)))   # no student here
    with pytest.raises(ConfigError, match=r"options\['vat'\]"):
        method("vat").run(_context(teacher, ChipFTConfig()))


def test_every_work5_method_runs_through_compare(teacher) -> None:
    settings = CompareSettings(
        chips=1, methods=("one-shot", "kd", "vat", "chip-ft", "io-kd"), kd=KDConfig(epochs=1),
        options={"chip-ft": ChipFTConfig(steps=3, batch_size=8),
                 "io-kd": IOKDConfig(images=32, steps=2, batch_size=8)})
    hw = load_hardware("one-cell")
    res = compare(teacher.model, teacher.dataset, preset(DEVICE), hw, settings)
    m = res["methods"]
    assert m["vat"]["offline_train_s"] > 0 and m["vat"]["rewrite_pulses"] == 0
    assert m["vat"]["pulses"] == m["one-shot"]["pulses"]
    for name in ("chip-ft", "io-kd"):
        assert m[name]["rewrite_pulses"] > 0
        assert m[name]["pulses"] == m["one-shot"]["pulses"] + m[name]["rewrite_pulses"]
        assert m[name]["adapt_s"] > 0 and m[name]["chip_inferences"] > 0
    assert m["chip-ft"]["forward_passes"] == 3
    assert m["chip-ft"]["chip_inferences"] == 3 * 8 + 256
    for name in ("vat", "chip-ft", "io-kd"):
        assert method(name).work == "work5"


def test_vat_is_the_kd_recipe_without_the_teacher_and_programs_one_shot(teacher) -> None:
    from xbar.mapping.recovery.techniques.kd import distill
    ctx = _context(teacher, VATConfig(epochs=1))
    out = method("vat").run(ctx)
    assert out.program_s is None and out.pulses is None     # one one-shot programming
    recipe = KDConfig(epochs=1, alpha=0.0)
    student, info = distill(teacher.model, teacher.dataset, ctx.device, ctx.xbar, recipe, 0)
    ref = ctx.program(student)
    for a, b in zip(out.chip.layers, ref.layers):
        assert np.array_equal(a.matrix.g_us, b.matrix.g_us)
    again = method("vat").run(ctx)                          # one student for every chip
    assert again.costs["offline_train_s"] == out.costs["offline_train_s"]


def test_chip_ft_is_deterministic_for_a_seed(teacher) -> None:
    opts = ChipFTConfig(steps=4, batch_size=8, start="teacher")
    runs = []
    for _ in range(2):
        ctx = _context(teacher, opts, seed=2)
        runs.append(method("chip-ft").run(ctx))
    for la, lb in zip(runs[0].chip.layers, runs[1].chip.layers):
        assert np.array_equal(la.matrix.g_us, lb.matrix.g_us)
        assert torch.equal(la.bias, lb.bias)
    wall = "offline_train_s"                                # host wall time: measured
    assert {k: v for k, v in runs[0].costs.items() if k != wall} == \
        {k: v for k, v in runs[1].costs.items() if k != wall}
