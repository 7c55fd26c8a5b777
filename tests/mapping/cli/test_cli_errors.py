"""No silent wrong answers, no lost results (issue 9, section 3; issue 22): models, output paths, sizes
and options.

Every case drives the real command line (``main([...])``) on tiny models saved with
``torch.save`` and the embedded digits data, and checks the exit status (2: a user error, one
line naming the option, file or value and what is allowed; never a traceback) or the result.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from torch import nn

from xbar.errors import ModelError
from xbar.mapping.cli.main import main

SEED_RANGE = "0 <= seed <= 4294967295"


class TupleOutput(nn.Module):
    """A classifier that returns (logits, features): a tuple, not a tensor."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(64, 10)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        y = self.fc(x.flatten(1))
        return y, y


def nan_model() -> nn.Module:
    """A digits classifier whose class-3 logit is NaN for every image (before: argmax took the
    NaN, every image was "class 3", and the accuracy was scored as about 10 %)."""
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 10))
    with torch.no_grad():
        model[1].bias[3] = float("nan")
    return model


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """Run ``xbar ARGS``; (exit status, stdout, stderr). Never a traceback."""
    try:
        rc = main(list(args))
    except SystemExit as exc:  # argparse's own errors (exit 2)
        rc = int(exc.code or 0)
    out, err = capsys.readouterr()
    assert "Traceback" not in err and "internal error" not in err, err
    return rc, out, err


def last_line(err: str) -> str:
    return err.strip().splitlines()[-1]


def h5_of_kind(path: Path, kind: str) -> bytes:
    """An HDF5 file whose ``format`` attribute is ``kind``; returns its bytes."""
    with h5py.File(path, "w") as f:
        f.attrs["format"] = kind
        f.create_dataset("precious", data=np.arange(5))
    return path.read_bytes()


def kinds() -> dict[str, str]:
    """The ``format`` attribute each writer puts in its files."""
    from xbar.devices.files import FORMAT as DEVICE
    from xbar.mapping.chip_file import FORMAT as CHIP
    from xbar.mapping.recovery.report import FORMAT as COMPARE
    from xbar.mapping.sweep.store import FORMAT as SWEEP
    from xbar.timing.results import FORMAT as LATENCY
    return {"sweep": SWEEP, "compare": COMPARE, "chip": CHIP, "latency": LATENCY,
            "device": DEVICE}


@pytest.fixture
def tiny_linear(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.pt"
    torch.save(nn.Sequential(nn.Flatten(), nn.Linear(64, 10)), path)
    return path


# ---------------------------------------------------------------------- models

def test_nan_model_is_refused_not_scored(tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "nan.pt"
    torch.save(nan_model(), path)
    rc, out, err = cli(capsys, "simulate", "--model", str(path), "--dataset", "digits",
                       "--test-limit", "20")
    assert rc == 2 and out == ""
    assert "NaN or infinite logits for 360 of 360 images" in last_line(err)
    assert "refusing to score it" in err


def test_evaluate_refuses_nan_and_tuple_outputs() -> None:
    from xbar.mapping.data.train import evaluate

    x, y = torch.rand(6, 1, 8, 8), torch.zeros(6, dtype=torch.int64)
    with pytest.raises(ModelError, match="NaN or infinite logits for 6 of 6 images"):
        evaluate(nan_model(), x, y)
    with pytest.raises(ModelError, match="returns a tuple, not a tensor of logits"):
        evaluate(TupleOutput(), x, y)
    assert 0 <= evaluate(nn.Sequential(nn.Flatten(), nn.Linear(64, 10)), x, y) <= 1


def test_chip_with_nan_outputs_is_not_scored() -> None:
    from xbar.config import XbarConfig
    from xbar.devices import preset
    from xbar.mapping.chip import Chip

    chip = Chip.program(nan_model(), preset("ideal"), XbarConfig(), 0, "column", "nan",
                        (1, 8, 8))
    x = np.random.default_rng(0).random((8, 1, 8, 8)).astype(np.float32)
    chip.calibrate(x)
    with pytest.raises(ModelError, match="chip returns NaN or infinite outputs for 8 of 8"):
        chip.evaluate(x, np.zeros(8, dtype=np.int64))


def test_tuple_output_is_a_clear_error(tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "tuple.pt"
    torch.save(TupleOutput(), path)
    rc, _, err = cli(capsys, "simulate", "--model", str(path), "--dataset", "digits",
                     "--test-limit", "10")
    assert rc == 2
    assert "the model returns a tuple, not a tensor of logits (N, classes)" in last_line(err)


@pytest.mark.parametrize("layer, says", [
    (nn.ConvTranspose1d(1, 2, 3), "layer '1' (ConvTranspose1d) cannot be mapped: transposed"),
])
def test_latency_refuses_layers_it_cannot_map(layer: nn.Module, says: str, tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    """Before: the Conv1d was silently left out and only the Linear layers were timed."""
    model = nn.Sequential(nn.Linear(8, 8), layer, nn.Flatten(), nn.LazyLinear(4))
    model(torch.rand(1, 1, 8))  # materialise the lazy layer
    path = tmp_path / "conv1d.pt"
    torch.save(model, path)
    rc, out, err = cli(capsys, "latency", "--model", str(path), "--input-shape", "1,8",
                       "--json")
    assert rc == 2 and out == ""
    assert says in last_line(err)


def test_layer_specs_refuses_unmapped_layers_but_keeps_grouped_convolutions() -> None:
    from xbar.mapping.geometry import layer_specs

    with pytest.raises(ModelError, match=r"layer 'c' \(Conv3d\) cannot be mapped: 3-D"):
        layer_specs(nn.ModuleDict({"c": nn.Conv3d(4, 4, 1)}), (4,))
    grouped = nn.Sequential(nn.Conv2d(4, 8, 3, groups=2))
    # one block-diagonal matrix, as the chip maps it (xbar.mapping.conv_forms)
    assert (layer_specs(grouped, (4, 6, 6))[0].groups, layer_specs(grouped, (4, 6, 6))[0].n_in
            ) == (1, 4 * 9)


# ---------------------------------------------------------------------- output paths

@pytest.mark.parametrize("command, kind", [
    (["simulate", "--model", "missing.pt", "--dataset", "digits", "--save-chip"], "sweep"),
    (["compare", "--model", "missing.pt", "--dataset", "digits", "--out"], "sweep"),
    (["demo", "--model", "missing.pt", "--out"], "latency"),
    (["sweep", "--param", "sigma", "--values", "0.1", "--model", "missing.pt", "--out"],
     "compare"),
    (["latency", "--model", "missing.pt", "--input-shape", "1,8,8", "--out"], "device"),
    (["device", "fit", "--data", "missing.tsv", "--out"], "chip"),
])
def test_a_file_of_another_kind_is_never_overwritten(
        command: list[str], kind: str, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    """Checked before any work: the missing model or data file is not even looked at."""
    target = tmp_path / "results.h5"
    before = h5_of_kind(target, kinds()[kind])
    rc, _, err = cli(capsys, *command, str(target))
    assert rc == 2
    assert f"exists and is an HDF5 file of kind {kinds()[kind]!r}" in last_line(err)
    assert "refusing to overwrite it" in err and "missing" not in err
    assert target.read_bytes() == before


@pytest.mark.parametrize("command", [
    ["latency", "--model", "lenet5", "--out", "{same}", "--timeline", "{same}"],
    ["sweep", "--param", "sigma", "--values", "0.1", "--out", "{same}", "--plot", "{same}"],
])
def test_two_outputs_of_one_command_must_differ(command: list[str], tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    same = str(tmp_path / "r.h5")
    rc, _, err = cli(capsys, *[same if a == "{same}" else a for a in command])
    assert rc == 2
    assert "name the same file" in last_line(err) and "give two different files" in err
    assert os.listdir(tmp_path) == []


def test_an_image_never_replaces_a_results_file(tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    results = tmp_path / "sweep.h5"
    before = h5_of_kind(results, kinds()["sweep"])
    rc, _, err = cli(capsys, "latency", "--model", "lenet5", "--timeline", str(results))
    assert rc == 2 and "--timeline" in err and "not an image" in err
    rc, _, err = cli(capsys, "sweep", "--param", "sigma", "--values", "0.1", "--out",
                     str(tmp_path / "new.h5"), "--plot", str(results))
    assert rc == 2 and "--plot" in err and "not an image" in err
    assert results.read_bytes() == before
    # compare --out also writes OUT-accuracy.png and OUT-time.png beside it
    results.rename(tmp_path / "c-time.png")
    rc, _, err = cli(capsys, "compare", "--out", str(tmp_path / "c.h5"))
    assert rc == 2 and "--out's time plot" in err
    assert sorted(os.listdir(tmp_path)) == ["c-time.png"]


def test_unwritable_output_fails_before_any_work(tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    blocker = tmp_path / "file.txt"
    blocker.write_text("not a folder")
    rc, _, err = cli(capsys, "simulate", "--model", "missing.pt", "--dataset", "digits",
                     "--save-chip", str(blocker / "chip.h5"))
    assert rc == 2 and "--save-chip" in err and "is not a directory" in err


def test_json_never_holds_bare_nan() -> None:
    from xbar.mapping.cli.common import dumps_json

    text = dumps_json({"a": float("nan"), "b": [np.float64("inf"), 1.5], "c": np.int64(3),
                       "d": np.array([0.5, -np.inf]), "e": (True, None)})

    def strict(constant: str) -> None:
        raise AssertionError(f"bare {constant} in JSON")
    assert json.loads(text, parse_constant=strict) == {
        "a": None, "b": [None, 1.5], "c": 3, "d": [0.5, None], "e": [True, None]}


def test_every_command_prints_json_through_the_nan_safe_encoder() -> None:
    cli_dir = Path(__file__).resolve().parents[3] / "mapping" / "cli"
    for module in sorted(cli_dir.glob("*.py")):
        if module.name != "common.py":
            assert "json.dumps(" not in module.read_text(), module.name


# ---------------------------------------------------------------------- sweep lock and temps

SWEEP = ["sweep", "--param", "sigma", "--values", "0.1", "--model", "digits-cnn", "--dataset",
         "digits", "--device", "charan2020-jxcdc", "--methods", "one-shot", "--chips", "1",
         "--test-limit", "20", "--workers", "1", "--threads", "1", "--json"]


def dead_pid() -> int:
    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    return int(proc.stdout)


def test_stale_lock_and_temp_files_are_taken_over_and_nothing_is_left(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A killed run's lock (its pid no longer runs) and temporary file do not block a rerun;
    after a run, and after one that fails early, only the results file remains."""
    out = tmp_path / "s.h5"
    pid = dead_pid()
    Path(f"{out}.lock").write_text(f"{pid} {socket.gethostname()}\n")
    (tmp_path / ".s.h5.x1y2z3.tmp").write_bytes(b"")
    rc, text, err = cli(capsys, *SWEEP, "--out", str(out))
    assert rc == 0, err
    warnings = json.loads(text)["warnings"]
    assert any(f"stale lock file {out}.lock of process {pid}" in w and "no longer running" in w
               for w in warnings), warnings
    assert any("removed 1 temporary file(s)" in w for w in warnings), warnings
    assert os.listdir(tmp_path) == ["s.h5"]
    # fails early (another configuration in the file): no lock or temporary file left
    rc, _, err = cli(capsys, *SWEEP, "--seed", "1", "--out", str(out))
    assert rc == 2 and "holds a different sweep" in err
    assert err.strip().endswith("write elsewhere (run_sweep(out=...)), or delete the file to "
                                "start over (option --out)"), err
    assert os.listdir(tmp_path) == ["s.h5"]


def test_a_lock_held_by_a_live_process_is_refused_naming_it(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("fcntl")
    from xbar.mapping.sweep.lock import exclusive

    out = tmp_path / "busy.h5"
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import fcntl, os, socket, sys, time\n"
         f"fd = os.open({str(out) + '.lock'!r}, os.O_RDWR | os.O_CREAT)\n"
         "fcntl.flock(fd, fcntl.LOCK_EX)\n"
         "os.write(fd, f'{os.getpid()} {socket.gethostname()}\\n'.encode())\n"
         "print('locked', flush=True)\n"
         "time.sleep(120)\n"], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        with pytest.raises(ValueError, match=rf"another sweep \(process {holder.pid} on "):
            with exclusive(out):
                pass
        rc, _, err = cli(capsys, *SWEEP, "--out", str(out))
        assert rc == 2 and f"process {holder.pid}" in err
        assert err.strip().endswith("or write elsewhere (run_sweep(out=...)) (option --out)")
    finally:
        holder.kill()
        holder.wait()
    assert os.listdir(tmp_path) == ["busy.h5.lock"]  # the holder's; nothing of ours
    with exclusive(out) as notes:  # its process is gone: the lock is taken over
        assert any(f"process {holder.pid}" in n for n in notes)
    assert os.listdir(tmp_path) == []


# ---------------------------------------------------------------------- sizes

@pytest.mark.parametrize("command, request_", [
    (["latency", "--model", "lenet5", "--batch", "1e12"], "--batch 1000000000000"),
    (["mvm", "--batch", "1e12"], "--batch 1000000000000 with --shape 256x1024"),
    (["sweep", "--param", "sigma", "--values", "0.1", "--chips", "1e12", "--out", "{out}"],
     "SweepSpec.chips = 1000000000000 (1 values x 4 methods"),
    (["compare", "--chips", "1e13", "--out", "{out}"], "--chips 10000000000000"),
])
def test_requests_larger_than_the_machine_are_refused_with_an_estimate(
        command: list[str], request_: str, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    out = str(tmp_path / "r.h5")
    rc, _, err = cli(capsys, *[out if a == "{out}" else a for a in command])
    assert rc == 2
    line = last_line(err)
    assert f"{request_}" in line and "would need about" in line and "GiB" in line
    assert "this machine has" in line
    assert request_.startswith("--") or line.endswith("(option --chips)"), line
    assert os.listdir(tmp_path) == []


def test_integer_options_accept_e_notation_and_refuse_fractions(
        tiny_linear: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, err = cli(capsys, "latency", "--model", str(tiny_linear), "--input-shape", "1,8,8",
                       "--batch", "1e2", "--json")
    assert rc == 0, err
    assert json.loads(out)["batch"] == 100
    for value, says in (("1.5", "'1.5' is not a whole number"),
                        ("many", "'many' is not an integer")):
        rc, _, err = cli(capsys, "latency", "--model", "lenet5", "--batch", value)
        assert rc == 2 and f"argument --batch: {says}" in last_line(err)


# ---------------------------------------------------------------------- options

@pytest.mark.parametrize("methods, says", [
    ("one-shot,,kd", "'one-shot,,kd' has an empty entry (entry 2)"),
    ("kd,kd", "'kd,kd' names 'kd' more than once"),
    ("kd,magic", "unknown method 'magic'"),
    (" ", "--methods is empty"),
])
@pytest.mark.parametrize("command", [
    ["compare"], ["sweep", "--param", "sigma", "--values", "0.1", "--out", "{out}"]])
def test_methods_list_is_validated(methods: str, says: str, command: list[str],
                                   tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = str(tmp_path / "r.h5")
    rc, _, err = cli(capsys, *[out if a == "{out}" else a for a in command],
                     "--methods", methods)
    assert rc == 2
    line = last_line(err)
    assert says in line and "distinct methods from software,one-shot" in line
    assert os.listdir(tmp_path) == []


SEEDED = {
    "simulate": ["simulate"], "compare": ["compare"], "demo": ["demo"], "mvm": ["mvm"],
    "sweep": ["sweep", "--param", "sigma", "--values", "0.1", "--out", "never.h5"],
    "device fit": ["device", "fit", "--data", "missing.tsv", "--out", "never.h5"],
}


@pytest.mark.parametrize("value", ["-1", "4294967296", "1.5"])
@pytest.mark.parametrize("command, option", [(c, "--seed") for c in SEEDED] + [
    ("simulate", "--teacher-seed"), ("sweep", "--teacher-seed")])
def test_seeds_out_of_range_are_refused_by_every_command(
        command: str, option: str, value: str, capsys: pytest.CaptureFixture[str]) -> None:
    rc, _, err = cli(capsys, *SEEDED[command], option, value)
    assert rc == 2
    line = last_line(err)
    assert f"argument {option}:" in line and SEED_RANGE in line and value in line


def test_the_largest_seed_is_accepted(capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, err = cli(capsys, "mvm", "--seed", "4294967295", "--shape", "4x4", "--batch", "2",
                       "--json")
    assert rc == 0, err
    assert json.loads(out)["seed"] == 4294967295


# ---------------------------------------------------------------------- issue 22: models

def wide_model(outputs: int) -> nn.Module:
    return nn.Sequential(nn.Flatten(), nn.Linear(64, outputs))


@pytest.mark.parametrize("outputs", [3, 1, 100])
@pytest.mark.parametrize("command", [
    ["simulate", "--test-limit", "20"],
    ["compare", "--methods", "one-shot", "--chips", "1"],
    ["compare", "--methods", "one-shot,kd", "--chips", "1"],   # before: IndexError in the loss
    ["compare", "--methods", "one-shot,rsa", "--chips", "1"],
    ["sweep", "--param", "sigma", "--values", "0.1", "--methods", "one-shot", "--chips", "1",
     "--workers", "1", "--out", "{out}"],
])
def test_a_model_whose_outputs_are_not_the_classes_is_refused(
        outputs: int, command: list[str], tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    """Before: 3 outputs on the 10-class digits were scored "10.00 %" (exit 0)."""
    path = tmp_path / f"w{outputs}.pt"
    torch.save(wide_model(outputs), path)
    out = str(tmp_path / "r.h5")
    rc, text, err = cli(capsys, *[out if a == "{out}" else a for a in command],
                        "--model", str(path), "--dataset", "digits")
    assert rc == 2 and text == ""
    line = last_line(err)
    assert (f"load_teacher(spec='{path}'): the model '{path}' has {outputs} output(s) but data "
            "set digits has 10 classes" in line and line.endswith("(option --model)")), line
    assert sorted(os.listdir(tmp_path)) == [path.name]


def test_a_directory_or_a_damaged_file_as_model_says_so(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "net.pt"
    folder.mkdir()
    rc, _, err = cli(capsys, "simulate", "--model", str(folder), "--dataset", "digits")
    line = last_line(err)
    assert rc == 2 and f"load_model_spec(spec='{folder}'): the model file is a directory" in line
    assert line.endswith("(option --model)"), line
    whole = tmp_path / "whole.pt"
    torch.save(wide_model(10), whole)
    data = whole.read_bytes()
    for cut in (0, 10, len(data) // 2, len(data) - 100):  # EOF, zip, "[Errno 22] Invalid ..."
        damaged = tmp_path / f"cut{cut}.pt"
        damaged.write_bytes(data[:cut])
        for command in (["simulate", "--dataset", "digits"], ["latency", "--input-shape",
                                                               "1,8,8"]):
            rc, _, err = cli(capsys, *command, "--model", str(damaged))
            line = last_line(err)
            assert rc == 2 and f"load_model_spec(spec='{damaged}'): the model file cannot be " \
                "loaded: the file is damaged or truncated" in line, line
            assert line.endswith("(option --model)"), line


@pytest.mark.parametrize("args", [["--input-shape", "-1,8,8"], ["--input-shape=-1,8,8"],
                                  ["--input-shape", "-1"]])
def test_a_negative_input_shape_is_refused_naming_the_option(
        args: list[str], tiny_linear: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Before: argparse took -1,8,8 for an option ("expected one argument")."""
    rc, _, err = cli(capsys, "latency", "--model", str(tiny_linear), *args)
    value = args[-1].rpartition("=")[2]
    assert rc == 2
    assert f"--input-shape: input shape '{value}' is invalid; expected C,H,W as positive " \
        "integers" in last_line(err)


# ---------------------------------------------------------------------- issue 22: outputs

SPECIAL = [d for d in ("/proc", "/sys") if Path(d).is_dir()]


@pytest.mark.skipif(not SPECIAL, reason="no /proc or /sys (not Linux)")
@pytest.mark.parametrize("folder", SPECIAL)
@pytest.mark.parametrize("command, option", [
    (["compare", "--model", "missing.pt", "--dataset", "digits", "--out"], "--out"),
    (["simulate", "--model", "missing.pt", "--dataset", "digits", "--save-chip"],
     "--save-chip"),
    (["latency", "--model", "missing.pt", "--input-shape", "1,8,8", "--out"], "--out"),
    (["sweep", "--param", "sigma", "--values", "0.1", "--model", "missing.pt", "--out"],
     "--out"),
])
def test_an_output_in_a_special_directory_fails_before_any_work_naming_the_option(
        folder: str, command: list[str], option: str,
        capsys: pytest.CaptureFixture[str]) -> None:
    """Permission bits say /proc and /sys are writable for root; creating a file there fails.
    Before: compare and simulate failed after the whole run naming '/proc/.x.h5.aj73alz5.tmp',
    latency named the temporary file and sweep its lock file."""
    target = f"{folder}/x.h5"
    rc, _, err = cli(capsys, *command, target)
    line = last_line(err)
    assert rc == 2 and f"{option} '{target}': cannot create a file in '{folder}'" in line, line
    assert ".tmp" not in err and ".lock" not in err and "missing" not in err


def test_check_writable_creates_and_removes_a_file_and_names_the_option(
        tmp_path: Path) -> None:
    from xbar.errors import OutputError
    from xbar.files import check_writable

    assert check_writable(tmp_path / "new" / "deeper" / "r.h5", "--out").name == "r.h5"
    assert os.listdir(tmp_path) == []  # the probe directory is gone, nothing was created
    (tmp_path / "plain").write_text("x")
    with pytest.raises(OutputError, match=r"^--out '.*plain/r.h5': '.*plain' is not a dir"):
        check_writable(tmp_path / "plain" / "r.h5", "--out")


def temp_name(out: Path, pid: int, random: str = "abcdefgh") -> Path:
    from xbar.files import _temp_prefix  # the naming write_atomically uses, of process pid

    prefix = _temp_prefix(out).replace(f".{os.getpid()}@", f".{pid}@")
    return out.parent / f"{prefix}{random}.tmp"


def test_stale_temporary_files_beside_an_output_are_removed_on_the_next_write(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Before: the 0-byte hidden file a SIGKILL in the write window left stayed for good."""
    from xbar.files import STALE_TEMP_S

    out = tmp_path / "lat.h5"
    killed = temp_name(out, dead_pid())                 # its writer no longer runs
    live = temp_name(out, os.getpid(), "ijklmnop")      # a writer still running: kept
    old_style = tmp_path / ".lat.h5.x1y2z3ab.tmp"       # older naming: by age
    fresh_old_style = tmp_path / ".lat.h5.q9w8e7r6.tmp"
    other = tmp_path / ".other.h5.x1y2z3ab.tmp"         # another output's: untouched
    for path in (killed, live, old_style, fresh_old_style, other):
        path.write_bytes(b"")
    aged = os.stat(old_style).st_mtime - STALE_TEMP_S - 60
    os.utime(old_style, (aged, aged))
    os.utime(other, (aged, aged))
    rc, _, err = cli(capsys, "latency", "--model", "lenet5", "--out", str(out))
    assert rc == 0, err
    assert sorted(os.listdir(tmp_path)) == sorted(
        ["lat.h5", "lat-energy.png", live.name, fresh_old_style.name, other.name])


# ---------------------------------------------------------------------- issue 22: sizes

COUNT_FLAGS = ("(options --chips for CompareSettings.chips, --steps for AdaptConfig.steps, "
               "--methods for CompareSettings.methods)")


@pytest.mark.parametrize("command, says", [
    (["compare", "--chips", "1000", "--steps", "1e7", "--methods", "rsa", "--model",
      "missing.pt"], "CompareSettings.chips = 1000, AdaptConfig.steps = 10000000 with "
                     "CompareSettings.methods = 'rsa' would take at least"),
    (["sweep", "--param", "sigma", "--values", "0.1,0.2", "--chips", "100", "--steps", "1e7",
      "--methods", "osa", "--model", "missing.pt", "--out", "{out}"],
     "CompareSettings.chips = 100, AdaptConfig.steps = 10000000 over 2 values with "
     "CompareSettings.methods = 'osa' would take at least"),
    (["reproduce", "work1", "--quick", "--chips", "100", "--steps", "1e7", "--out", "{out}"],
     "--chips 100 --steps 10000000 over 1 work(s) would take at least"),
])
def test_counts_that_cannot_finish_are_refused_with_the_estimate(
        command: list[str], says: str, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    """Little memory, much time: refused by the time bound, the estimate in the message."""
    out = str(tmp_path / "r.h5")
    rc, _, err = cli(capsys, *[out if a == "{out}" else a for a in command])
    line = last_line(err)
    assert rc == 2 and says in line, line
    assert "adaptation steps x >= 0.001 s" in line
    assert "xbar refuses runs estimated over 7 days: choose a smaller value" in line
    assert says.startswith("--") or line.endswith(COUNT_FLAGS), line  # the library's fields
    assert os.listdir(tmp_path) == []


def test_compare_chips_1e8_is_refused_up_front(tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    """Before: it started working through 10^8 chips (killed after 300 s). Refused by its
    time or, on a small machine, its memory, whichever bound it meets first."""
    rc, _, err = cli(capsys, "compare", "--chips", "1e8", "--methods", "one-shot", "--model",
                     "missing.pt", "--out", str(tmp_path / "r.h5"))
    line = last_line(err)
    assert rc == 2 and ("--chips 100000000" in line  # the command's memory check
                        or "CompareSettings.chips = 100000000 with" in line
                        and "--chips for CompareSettings.chips" in line), line
    assert "would take at least" in line or "would need about" in line


# ---------------------------------------------------------------------- issue 22: options

def test_methods_all_is_alone_or_refused(tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    from xbar.mapping.cli.common import parse_methods
    from xbar.mapping.recovery.registry import method_names
    METHODS = method_names()

    assert parse_methods("all", METHODS) == METHODS
    for command in (["compare"], ["sweep", "--param", "sigma", "--values", "0.1", "--out",
                                  str(tmp_path / "r.h5")]):
        rc, _, err = cli(capsys, *command, "--methods", "all,one-shot")
        assert rc == 2
        assert "--methods 'all,one-shot': 'all' names every method and cannot be combined " \
            "with others; give all alone" in last_line(err)


@pytest.mark.parametrize("values, entry", [("0,,0.1", 2), ("0,0.1,", 3), (",0.1", 1)])
def test_sweep_values_with_an_empty_entry_are_refused(
        values: str, entry: int, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Before: the empty entry was dropped and the sweep ran the others."""
    rc, _, err = cli(capsys, "sweep", "--param", "sigma", "--values", values, "--out",
                     str(tmp_path / "r.h5"))
    assert rc == 2
    line = last_line(err)
    assert f"resolve_points(values='{values}') has an empty entry (entry {entry})" in line
    assert line.endswith("(option --values)"), line
    assert os.listdir(tmp_path) == []


# ---------------------------------------------------------------------- issue 22: data

def test_reproduce_cifar_without_the_data_fails_before_the_first_work(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Before: reproduce all --cifar ran the other works (73 s) and then failed, losing them."""
    rc, _, err = cli(capsys, "reproduce", "all", "--quick", "--cifar", "--data-dir",
                     str(tmp_path), "--out", str(tmp_path / "r.h5"))
    line = last_line(err)
    assert rc == 2 and "ReproduceSettings.cifar needs the CIFAR-10 data (checked before any " \
        f"work runs): CIFAR-10 not found under {tmp_path}" in line
    assert "as find_cifar10(data_dir=...) or the XBAR_DATA environment variable." in line
    assert line.endswith("(options --cifar for ReproduceSettings.cifar, --data-dir for "
                         "find_cifar10(data_dir))"), line
    assert os.listdir(tmp_path) == []


def test_device_fit_on_too_few_cells_names_the_file_level_and_count(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Before: a 3-row file blamed WriteVerifyParams.target_us[2]."""
    rows = ["30000\t0\t0\t1\t0\t0\t0\t5000\t1\t0\t0",
            "30001\t2\t1\t2\t5791.2\t0\t5770\t6010\t1\t0\t0",
            "30002\t23\t12\t12\t8742.9\t0\t8510\t9310\t1\t0\t0"]
    data = tmp_path / "three.tsv"
    data.write_bytes(("\r\n".join(rows) + "\r\n").encode())
    rc, _, err = cli(capsys, "device", "fit", "--data", str(data), "--out",
                     str(tmp_path / "d.h5"))
    assert rc == 2
    assert (f"{data}: level L0 (verify window [0, 5000] ohm) has 1 cell(s); the fit needs at "
            "least 10 per level") in last_line(err)
    assert not (tmp_path / "d.h5").exists()


def test_chip_module_docstring_states_the_chip_file_version() -> None:
    """Issue 22 found "version 1" there; it is checked here so that it cannot drift."""
    import xbar.mapping.chip as chip
    from xbar.mapping.chip_file import FORMAT_VERSION

    assert f"version {FORMAT_VERSION}, see ``chip_file.FORMAT_VERSION``" in (chip.__doc__ or "")
