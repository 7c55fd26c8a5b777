"""A lifetime run resumes (mapping/recovery/lifetime_resume.py): a run stopped after some
(chip, method) units and rerun with the same inputs gives the uninterrupted run's result value
for value, computing only the missing units and not distilling again; progress of other
inputs, or a damaged progress file, is refused by name."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from xbar.config import load_hardware
from xbar.devices import resolve_device_file
from xbar.errors import ConfigError, FileFormatError
from xbar.mapping.cli.main import main
from xbar.mapping.recovery import lifetime as lifetime_module
from xbar.mapping.recovery.lifetime import LifetimeSettings, lifetime
from xbar.mapping.recovery.lifetime_resume import LifetimeProgress, lifetime_fingerprint
from xbar.mapping.recovery.techniques.kd import KDConfig
from xbar.mapping.recovery.techniques.sram import AdaptConfig


class Stop(Exception):
    """The run killed from outside."""


@pytest.fixture(scope="module")
def digits_teacher():
    from xbar.mapping.data.workflow import load_teacher
    return load_teacher("digits-cnn", "digits")


SETTINGS = LifetimeSettings(ages_s=(1.0, 1e8), methods=("one-shot", "kd+rsa", "rvw"),
                            horizon_s=1e8, test_limit=90, tolerance=0.005, chips=2,
                            adapt=AdaptConfig(steps=4), kd=KDConfig(epochs=1))


def _args(teacher):
    return (teacher.model, teacher.dataset, resolve_device_file("cmo-hfox-x5"),
            load_hardware("default"), SETTINGS)


def _fingerprint(teacher) -> str:
    return lifetime_fingerprint(*_args(teacher), SETTINGS.test_limit)


@pytest.mark.slow
def test_a_stopped_run_resumes_to_the_uninterrupted_result(digits_teacher, tmp_path):
    whole = lifetime(*_args(digits_teacher))
    folder = tmp_path / "life.h5.partial"
    said: list[str] = []

    def stop_at_the_fourth_unit(text: str) -> None:
        said.append(text)
        if text == "chip 2/2: one-shot at programming":   # chip 1's three units are done
            raise Stop

    with pytest.raises(Stop):
        lifetime(*_args(digits_teacher), progress=stop_at_the_fourth_unit,
                 resume=LifetimeProgress(folder, _fingerprint(digits_teacher)))
    saved = json.loads((folder / "progress.json").read_text())
    assert sorted(saved["units"]) == ["chip 0/kd+rsa", "chip 0/one-shot", "chip 0/rvw"]
    assert (folder / "student.pt").is_file()

    said.clear()
    again = lifetime(*_args(digits_teacher), progress=said.append,
                     resume=LifetimeProgress(folder, _fingerprint(digits_teacher)))
    assert not any("distilling" in t for t in said)        # the student was read back
    assert sum("finished by an earlier run" in t for t in said) == 3
    assert not any(t.startswith("chip 1/2") and "at programming" in t for t in said)
    assert json.dumps(again, sort_keys=True) == json.dumps(whole, sort_keys=True)


def test_progress_of_other_inputs_is_refused(digits_teacher, tmp_path):
    folder = tmp_path / "life.h5.partial"
    LifetimeProgress(folder, _fingerprint(digits_teacher)).save_unit("chip 0/rvw", {"a": 1})
    other = lifetime_fingerprint(*_args(digits_teacher)[:4],
                                 LifetimeSettings(ages_s=(1.0, 1e8), chips=3), 90)
    assert other != _fingerprint(digits_teacher)
    with pytest.raises(ConfigError, match="life.h5.partial holds the progress of a lifetime "
                                          "run with other inputs"):
        LifetimeProgress(folder, other)
    assert LifetimeProgress(folder, _fingerprint(digits_teacher)).unit("chip 0/rvw") == {"a": 1}
    (folder / "progress.json").write_text("{not json")
    with pytest.raises(FileFormatError, match="not a lifetime progress file"):
        LifetimeProgress(folder, _fingerprint(digits_teacher))


@pytest.mark.slow
def test_the_command_resumes_and_removes_its_progress(tmp_path: Path, capsys, monkeypatch):
    out = tmp_path / "life.h5"
    argv = ["lifetime", "--model", "digits-cnn", "--dataset", "digits", "--test-limit", "60",
            "--steps", "3", "--device", "cmo-hfox-x5", "--ages", "1,1e8", "--methods",
            "one-shot,rvw", "--horizon", "1e8", "--json", "--out", str(out)]
    real = lifetime_module.chip_life
    calls: list[str] = []

    def interrupted_on_the_second(run, c, name):
        calls.append(name)
        if len(calls) == 2:
            raise KeyboardInterrupt   # Ctrl-C
        return real(run, c, name)

    monkeypatch.setattr(lifetime_module, "chip_life", interrupted_on_the_second)
    assert main(argv) == 130
    assert not out.exists() and (tmp_path / "life.h5.partial" / "progress.json").is_file()
    monkeypatch.setattr(lifetime_module, "chip_life", real)
    capsys.readouterr()
    assert main(argv) == 0
    captured = capsys.readouterr()
    assert "resuming from" in captured.err and "1 of 2 (chip, method) runs done" in captured.err
    assert out.is_file() and not (tmp_path / "life.h5.partial").exists()
    assert set(json.loads(captured.out)["methods"]) == {"one-shot", "rvw"}
