"""Damaged and odd device and chip files, and which write-verify loop R-V-W uses.

Every case is a real file written in tmp_path and damaged the way a user's file could be; each
must give a clear error naming the file and what is wrong (through the CLI: exit status 2 and
a one-line message), never a traceback and never a default used in place of a lost value.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from torch import nn

from xbar.config import XbarConfig
from xbar.devices import (Device, DeviceFile, load_device_file, preset, resolve_device,
                          resolve_device_file, save_device)
from xbar.devices.presets import preset_write_verify
from xbar.errors import FileFormatError, MissingFileError, OutputError
from xbar.mapping.chip import Chip
from xbar.mapping.cli.main import main
from xbar.mapping.recovery.techniques.rvw import program_rvw, rvw_params, with_loop


def _refused(path: Path, *words: str):
    """pytest.raises for a FileFormatError naming ``path`` and each of ``words``."""
    pattern = re.escape(str(path)) + "".join(f"(?s:.*){re.escape(w)}" for w in words)
    return pytest.raises(FileFormatError, match=pattern)


# ------------------------------------------------------------------ device files: HDF5

@pytest.fixture
def jxcdc_h5(tmp_path: Path) -> Path:
    path = tmp_path / "jxcdc.h5"
    save_device(preset("charan2020-jxcdc"), path, provenance={"by": "test"})
    return path


def test_truncated_hdf5_device_file(jxcdc_h5: Path) -> None:
    data = jxcdc_h5.read_bytes()
    jxcdc_h5.write_bytes(data[: len(data) // 2])
    with _refused(jxcdc_h5, "damaged or truncated"):
        load_device_file(jxcdc_h5)


def test_random_bytes_and_empty_device_files(tmp_path: Path) -> None:
    noise = tmp_path / "noise.h5"
    noise.write_bytes(np.random.default_rng(0).bytes(4096))
    with _refused(noise, "not an HDF5 file"):
        load_device_file(noise)
    empty = tmp_path / "empty.h5"
    empty.write_bytes(b"")
    with _refused(empty, "empty (0 bytes)"):
        load_device_file(empty)
    empty_toml = tmp_path / "empty.toml"
    empty_toml.write_text("")
    with _refused(empty_toml, "[device] table"):
        load_device_file(empty_toml)
    garbage_toml = tmp_path / "garbage.toml"
    garbage_toml.write_bytes(b"\xff\xfe[device\x00")
    with _refused(garbage_toml, "not valid TOML"):
        load_device_file(garbage_toml)


def test_directory_and_missing_device_file(tmp_path: Path) -> None:
    folder = tmp_path / "dev.h5"
    folder.mkdir()
    with pytest.raises(FileFormatError, match="is a directory"):
        load_device_file(folder)
    with pytest.raises(MissingFileError, match="does not exist"):
        load_device_file(tmp_path / "absent.h5")


def test_missing_device_group(tmp_path: Path) -> None:
    path = tmp_path / "nodev.h5"
    with h5py.File(path, "w") as f:
        f.attrs.update(format="xbar-sim device", format_version=1)
    with _refused(path, "no /device group"):
        load_device_file(path)


def test_missing_sa_attributes_are_an_error_not_the_defaults(jxcdc_h5: Path) -> None:
    with h5py.File(jxcdc_h5, "r+") as f:
        del f["device"].attrs["sa0_rate"]
        del f["device"].attrs["sa1_rate"]
    with _refused(jxcdc_h5, "/device", "missing device field(s) ['sa0_rate', 'sa1_rate']"):
        load_device_file(jxcdc_h5)


def test_missing_sa_attributes_through_the_cli(jxcdc_h5: Path, capsys) -> None:
    with h5py.File(jxcdc_h5, "r+") as f:
        del f["device"].attrs["sa0_rate"]
    assert main(["simulate", "--device", str(jxcdc_h5), "--model", "digits-cnn"]) == 2
    err = capsys.readouterr().err
    assert str(jxcdc_h5) in err and "missing device field(s) ['sa0_rate']" in err
    assert "Traceback" not in err


@pytest.mark.parametrize("attrs,words", [
    ({"format": "xbar-sim chip"}, ("not an xbar-sim device file", "'xbar-sim chip'")),
    ({"format_version": 5}, ("format_version 5 is newer",)),
    ({"format_version": 0}, ("format_version = 0 is invalid",)),
    ({"format_version": "1"}, ("format_version = '1' is invalid",)),
])
def test_wrong_format_or_version(jxcdc_h5: Path, attrs: dict, words: tuple) -> None:
    with h5py.File(jxcdc_h5, "r+") as f:
        f.attrs.update(attrs)
    with _refused(jxcdc_h5, *words):
        load_device_file(jxcdc_h5)


def test_missing_format_version(jxcdc_h5: Path) -> None:
    with h5py.File(jxcdc_h5, "r+") as f:
        del f.attrs["format_version"]
    with _refused(jxcdc_h5, "format_version = None is invalid"):
        load_device_file(jxcdc_h5)


@pytest.mark.parametrize("field,index,value", [
    ("level_mean_us", 1, np.nan), ("level_std_us", 2, np.inf), ("levels_us", 0, np.nan)])
def test_nan_or_inf_in_hdf5_tables(tmp_path: Path, field: str, index: int,
                                   value: float) -> None:
    dev = preset("radar-2bpc")
    path = tmp_path / "table.h5"
    save_device(dev, path)
    with h5py.File(path, "r+") as f:
        data = f["device"][field][()]
        data[index] = value
        f["device"][field][...] = data
    with _refused(path, "/device", field):
        load_device_file(path)


def test_scalar_dataset_for_a_tuple_field(jxcdc_h5: Path) -> None:
    with h5py.File(jxcdc_h5, "r+") as f:
        f["device"].create_dataset("levels_us", data=5.0)
    with _refused(jxcdc_h5, "/device/levels_us", "1-D numeric dataset"):
        load_device_file(jxcdc_h5)


def test_write_verify_group_missing_a_field(tmp_path: Path) -> None:
    path = tmp_path / "wv.h5"
    save_device(preset("radar-2bpc"), path, write_verify=preset_write_verify("radar-2bpc"))
    with h5py.File(path, "r+") as f:
        del f["write_verify"]["step_sigma"]
    with _refused(path, "/write_verify", "missing write-verify field(s) ['step_sigma']"):
        load_device_file(path)


# ------------------------------------------------------------------ device files: TOML

_TOML_HEAD = '[device]\nname = "mine"\ng_min_us = 2.0\ng_max_us = 60.0\n'


@pytest.mark.parametrize("body,words", [
    ('n_levels = 4\nlevels_us = 5.0\n', ("levels_us", "5.0", "allowed")),
    ('n_levels = "8"\n', ("n_levels", "'8'", "allowed")),
    ('n_levels = 4\nsa0_rate = true\n', ("sa0_rate", "True", "allowed")),
    ('n_levels = 4\nread_noise = nan\n', ("read_noise", "nan", "allowed")),
    ('n_levels = 3\nvariation = "table"\nlevel_mean_us = [5.0, 20.0, 50.0]\n'
     'level_std_us = [1.0, inf, 1.0]\n', ("level_std_us", "inf", "allowed")),
    ('n_levels = 3\nvariation = "table"\nlevel_mean_us = [5.0, nan, 50.0]\n'
     'level_std_us = [1.0, 1.0, 1.0]\n', ("level_mean_us", "nan", "allowed")),
    ('n_levels = 3\nlevels_us = [2.0, nan, 60.0]\n', ("levels_us", "nan", "allowed")),
    ('n_levels = 3\nlevels_us = [2.0, inf, 60.0]\n', ("levels_us", "inf", "allowed")),
    ('n_levels = 4\ncolour = "red"\n', ("unknown device field(s) ['colour']",)),
])
def test_toml_wrong_values(tmp_path: Path, body: str, words: tuple) -> None:
    path = tmp_path / "d.toml"
    path.write_text(_TOML_HEAD + body)
    with _refused(path, "[device]", *words):
        load_device_file(path)


def test_toml_unknown_section_and_missing_fields(tmp_path: Path) -> None:
    path = tmp_path / "d.toml"
    path.write_text(_TOML_HEAD + "n_levels = 4\n[provenence]\nby = 'me'\n")
    with _refused(path, "unknown section(s) or key(s) ['provenence']"):
        load_device_file(path)
    path.write_text('[device]\nname = "mine"\nn_levels = 4\n')
    with _refused(path, "missing device field(s) ['g_min_us', 'g_max_us']"):
        load_device_file(path)
    path.write_text('device = 5\n')
    with _refused(path, "is not a table"):
        load_device_file(path)


def test_toml_write_verify_table_errors(tmp_path: Path) -> None:
    path = tmp_path / "d.toml"
    path.write_text(_TOML_HEAD + "n_levels = 2\n[write_verify]\nwindow_lo_us = 5.0\n")
    with _refused(path, "[write_verify]", "missing write-verify field(s)"):
        load_device_file(path)


# ------------------------------------------------------------------ R-V-W: the loop travels

def _radar_like_toml(tmp_path: Path) -> Path:
    """A user's device called like the preset, with other levels and no loop of its own."""
    path = tmp_path / "mine.toml"
    path.write_text('[device]\nname = "radar-3bpc"\ng_min_us = 2.0\ng_max_us = 200.0\n'
                    'n_levels = 8\nvariation = "gaussian"\nsigma = 0.05\n')
    return path


def test_rvw_uses_the_loop_stored_in_the_device_file(tmp_path: Path) -> None:
    dev, loop = preset("radar-3bpc"), preset_write_verify("radar-3bpc")
    mine = Device(**{**dev.to_dict(), "name": "my-fit", "levels_us": tuple(dev.levels_us),
                     "level_mean_us": tuple(dev.level_mean_us),
                     "level_std_us": tuple(dev.level_std_us)})
    custom = loop.replace(step_fraction=(0.5,) * 8, source="my own fit")
    save_device(mine, tmp_path / "fit.h5", write_verify=custom)
    stored = load_device_file(tmp_path / "fit.h5")
    assert rvw_params(stored) == custom                    # the file's loop, not the preset's
    assert resolve_device_file(str(tmp_path / "fit.h5")).write_verify == custom
    assert rvw_params(resolve_device_file("radar-3bpc")) == loop   # the preset brings its own
    assert rvw_params(dev).source.startswith("transferred")        # a bare Device: transfer


def test_a_device_named_like_a_preset_gets_the_transfer_rule(tmp_path: Path) -> None:
    dfile = resolve_device_file(str(_radar_like_toml(tmp_path)))
    assert dfile.device.name == "radar-3bpc" and dfile.write_verify is None
    params = rvw_params(dfile)
    assert params.source.startswith("transferred")
    np.testing.assert_allclose(params.target_us, dfile.device.levels)  # its own levels
    assert params != preset_write_verify("radar-3bpc")


def test_a_loop_of_the_wrong_size_is_refused() -> None:
    dfile = DeviceFile(preset("radar-2bpc"), write_verify=preset_write_verify("radar-3bpc"))
    with pytest.raises(ValueError, match="8 levels but the device has n_levels = 4"):
        rvw_params(dfile)


def test_sweep_variants_keep_the_loop_only_on_the_same_levels() -> None:
    base = resolve_device_file("radar-3bpc")
    same_levels = base.device.replace(sa0_rate=0.01)
    other_range = base.device.replace(g_max_us=400.0)
    assert rvw_params(with_loop(same_levels, base)) == base.write_verify
    assert rvw_params(with_loop(other_range, base)).source.startswith("transferred")
    assert with_loop(same_levels, DeviceFile(same_levels)) is same_levels


def test_rvw_cells_stay_inside_the_device_range() -> None:
    dev = preset("radar-3bpc")
    model = _small_model()
    chip = Chip.program(model, dev, XbarConfig(), seed=1)
    program_rvw(chip, rvw_params(resolve_device_file("radar-3bpc")), seed=1)
    for layer in chip.layers:
        g = layer.matrix.g_us
        assert g.min() >= np.float32(dev.g_min_us) and g.max() <= np.float32(dev.g_max_us)


@pytest.fixture
def tiny_model_file(tmp_path: Path) -> Path:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 10))
    path = tmp_path / "tiny.pt"
    torch.save(model, path)
    return path


def _rvw_cli(model: Path, device: str, capsys) -> tuple[int, dict]:
    rc = main(["compare", "--model", str(model), "--dataset", "digits", "--device", device,
               "--methods", "rvw", "--chips", "1", "--json"])
    out = capsys.readouterr().out
    return rc, json.loads(out) if rc == 0 else {}


def test_rvw_loop_through_the_cli(tmp_path: Path, tiny_model_file: Path, capsys) -> None:
    fitted = tmp_path / "fit.h5"
    save_device(preset("radar-3bpc").replace(name="my-fit"), fitted,
                write_verify=preset_write_verify("radar-3bpc"))
    rc, by_file = _rvw_cli(tiny_model_file, str(fitted), capsys)
    assert rc == 0
    rc, by_preset = _rvw_cli(tiny_model_file, "radar-3bpc", capsys)
    assert rc == 0
    # The same loop from the file and from the preset: the same cells, the same pulses.
    assert by_file["methods"]["rvw"]["pulses"] == by_preset["methods"]["rvw"]["pulses"]
    assert by_file["rvw_loop"] == by_preset["rvw_loop"] == preset_write_verify(
        "radar-3bpc").source
    rc, by_name = _rvw_cli(tiny_model_file, str(_radar_like_toml(tmp_path)), capsys)
    assert rc == 0 and by_name["rvw_loop"].startswith("transferred")
    assert by_name["methods"]["rvw"]["pulses"] != by_preset["methods"]["rvw"]["pulses"]


def test_rvw_loop_of_the_wrong_size_through_the_cli(tmp_path: Path, tiny_model_file: Path,
                                                     capsys) -> None:
    bad = tmp_path / "bad.h5"
    save_device(preset("radar-3bpc"), bad, write_verify=preset_write_verify("radar-3bpc"))
    with h5py.File(bad, "r+") as f:  # a loop for 4 levels beside an 8-level device
        del f["write_verify"]
        g = f.create_group("write_verify")
        for k, v in preset_write_verify("radar-2bpc").to_dict().items():
            if isinstance(v, list):
                g.create_dataset(k, data=np.asarray(v))
            else:
                g.attrs[k] = v
    assert main(["compare", "--model", str(tiny_model_file), "--dataset", "digits",
                 "--device", str(bad), "--methods", "rvw", "--chips", "1"]) == 2
    err = capsys.readouterr().err
    assert str(bad) in err and "write_verify has 4 levels but the device has n_levels = 8" in err
    assert "Traceback" not in err


# ------------------------------------------------------------------ chip files

def _small_model() -> nn.Module:
    torch.manual_seed(3)
    return nn.Sequential(nn.Linear(6, 5), nn.ReLU(), nn.Linear(5, 3))


@pytest.fixture
def chip_file(tmp_path: Path) -> Path:
    chip = Chip.program(_small_model(), preset("charan2020-jxcdc"), XbarConfig(), seed=2,
                        input_shape=(6,))
    chip.calibrate(torch.randn(16, 6, generator=torch.Generator().manual_seed(0)))
    path = tmp_path / "chip.h5"
    chip.save(path)
    return path


def _set(path: Path, name: str, edit) -> None:
    """Replace dataset ``name`` by ``edit(its value)``."""
    with h5py.File(path, "r+") as f:
        value = edit(f[name][()])
        del f[name]
        f.create_dataset(name, data=value)


def test_chip_round_trip_still_loads(chip_file: Path) -> None:
    back = Chip.load(chip_file, _small_model())
    assert len(back.layers) == 2 and back.seed == 2


@pytest.mark.parametrize("attrs,words", [
    ({"format": "xbar-sim sweep"}, ("not an xbar-sim chip file", "'xbar-sim sweep'")),
    ({"format_version": 5}, ("format_version 5 is newer", "upgrade")),
    ({"format_version": 0}, ("format_version = 0 is invalid",)),
    ({"scale": "row"}, ("scale = 'row' is invalid",)),
    ({"seed": -1}, ("seed = -1 is invalid",)),
])
def test_chip_header_errors(chip_file: Path, attrs: dict, words: tuple) -> None:
    with h5py.File(chip_file, "r+") as f:
        f.attrs.update(attrs)
    with _refused(chip_file, *words):
        Chip.load(chip_file, _small_model())


def test_chip_damaged_files(tmp_path: Path, chip_file: Path) -> None:
    data = chip_file.read_bytes()
    truncated = tmp_path / "truncated.h5"
    truncated.write_bytes(data[: len(data) // 2])
    with _refused(truncated, "damaged or truncated"):
        Chip.load(truncated, _small_model())
    noise = tmp_path / "noise.h5"
    noise.write_bytes(np.random.default_rng(1).bytes(2048))
    with _refused(noise, "not an HDF5 file"):
        Chip.load(noise, _small_model())
    empty = tmp_path / "empty.h5"
    empty.write_bytes(b"")
    with _refused(empty, "empty (0 bytes)"):
        Chip.load(empty, _small_model())
    folder = tmp_path / "folder.h5"
    folder.mkdir()
    with pytest.raises(FileFormatError, match="is a directory"):
        Chip.load(folder, _small_model())


def test_chip_missing_device_or_hardware_fields(chip_file: Path) -> None:
    with h5py.File(chip_file, "r+") as f:
        del f["device"].attrs["sa1_rate"]
    with _refused(chip_file, "/device", "missing device field(s) ['sa1_rate']"):
        Chip.load(chip_file, _small_model())
    with h5py.File(chip_file, "r+") as f:
        f["device"].attrs["sa1_rate"] = 0.0175
        del f["hardware"].attrs["adc.bits"]
    with _refused(chip_file, "/hardware", "missing attribute(s) ['adc.bits']"):
        Chip.load(chip_file, _small_model())
    with h5py.File(chip_file, "r+") as f:
        f["hardware"].attrs["adc.bits"] = 8
        f["hardware"].attrs["adc.bitz"] = 8
    with _refused(chip_file, "/hardware", "unknown attribute 'adc.bitz'"):
        Chip.load(chip_file, _small_model())


@pytest.mark.parametrize("name,edit,words", [
    ("layers/0/g_us", lambda g: np.where(np.arange(g.size).reshape(g.shape) == 0, -3.0, g),
     ("layer 0", "g_us out of range", "no negative conductances")),
    ("layers/0/g_us", lambda g: np.where(np.arange(g.size).reshape(g.shape) == 1, np.nan, g),
     ("layer 0", "g_us contains 1 NaN")),
    ("layers/1/g_us", lambda g: g[:, :-1], ("layer 1", "g_us has shape")),
    ("layers/1/stuck", lambda s: np.where(np.arange(s.size).reshape(s.shape) == 0, 3, s),
     ("layer 1", "stuck out of range", "2 (SA1)")),
    ("layers/0/target_levels", lambda t: t + 16, ("layer 0", "target_levels out of range",
                                                  "0..15")),
    ("layers/0/target_levels", lambda t: t.astype(np.float64), ("layer 0", "target_levels",
                                                               "integers")),
    ("layers/0/pos_cols", lambda c: c[::-1], ("layer 0", "column layout (pos_cols)")),
    ("layers/0/g_scale", lambda s: -s, ("layer 0", "g_scale out of range")),
    ("layers/0/adc_range_ua", lambda a: a[:, :0], ("layer 0", "adc_range_ua has shape")),
    ("layers/0/adc_range_ua", lambda a: -a, ("layer 0", "adc_range_ua out of range")),
    ("layers/1/bias", lambda b: b[:2], ("layer 1", "bias has shape")),
    ("layers/1/bias", lambda b: b * np.inf, ("layer 1", "bias contains")),
    ("digital/0.bias", lambda b: b, ("/digital", "are not in the model")),
])
def test_chip_layer_errors(chip_file: Path, name: str, edit, words: tuple) -> None:
    if name.startswith("digital/"):
        with h5py.File(chip_file, "r+") as f:  # a parameter the model does not have
            f.create_dataset("digital/extra.weight", data=np.zeros(3))
    else:
        _set(chip_file, name, edit)
    with _refused(chip_file, *words):
        Chip.load(chip_file, _small_model())


def test_chip_stuck_map_must_match_the_conductances(chip_file: Path) -> None:
    with h5py.File(chip_file, "r+") as f:
        g, stuck = f["layers/0/g_us"][()], f["layers/0/stuck"][()]
        dev = preset("charan2020-jxcdc")
        healthy = np.argwhere((stuck == 0) & (np.abs(g - dev.g_min_us) > 1.0))[0]
        stuck[tuple(healthy)] = 1       # marked SA0 but not at g_min
        f["layers/0/stuck"][...] = stuck
    with _refused(chip_file, "layer 0", "g_us of SA0 cells", "g_min_us"):
        Chip.load(chip_file, _small_model())


def test_chip_model_mismatch(chip_file: Path) -> None:
    wider = nn.Sequential(nn.Linear(6, 7), nn.ReLU(), nn.Linear(7, 3))
    with _refused(chip_file, "layer 0", "5x6 weights in the file", "7x6"):
        Chip.load(chip_file, wider)
    no_bias = nn.Sequential(nn.Linear(6, 5), nn.ReLU(), nn.Linear(5, 3, bias=False))
    with _refused(chip_file, "layer 1", "the file has bias but the model's layer has none"):
        Chip.load(chip_file, no_bias)
    with h5py.File(chip_file, "r+") as f:
        del f["layers/1/bias"]
    with _refused(chip_file, "layer 1", "has no bias"):
        Chip.load(chip_file, _small_model())


def test_chip_save_refuses_another_kind_of_file(tmp_path: Path, chip_file: Path) -> None:
    other = tmp_path / "sweep.h5"
    with h5py.File(other, "w") as f:
        f.attrs["format"] = "xbar-sim sweep"
    chip = Chip.load(chip_file, _small_model())
    with pytest.raises(OutputError, match="refusing to overwrite"):
        chip.save(other)
    with h5py.File(other) as f:
        assert f.attrs["format"] == "xbar-sim sweep"
    chip.save(chip_file)  # a chip file is replaced
    assert Chip.load(chip_file, _small_model()).seed == 2


def test_save_chip_option_refuses_another_kind_before_work(tmp_path: Path, capsys) -> None:
    other = tmp_path / "results.h5"
    with h5py.File(other, "w") as f:
        f.attrs["format"] = "xbar-sim compare"
    before = other.read_bytes()
    assert main(["simulate", "--model", "nonexistent-model-file.pt", "--dataset", "digits",
                 "--save-chip", str(other)]) == 2
    err = capsys.readouterr().err
    assert "--save-chip" in err and "refusing to overwrite" in err
    assert other.read_bytes() == before


def test_resolve_device_keeps_returning_a_device(jxcdc_h5: Path) -> None:
    assert resolve_device(str(jxcdc_h5)) == preset("charan2020-jxcdc")
    assert resolve_device(resolve_device_file("radar-2bpc")) == preset("radar-2bpc")


def test_sweep_points_use_the_device_files_loop(tmp_path: Path, tiny_model_file: Path,
                                                capsys) -> None:
    fitted = tmp_path / "fit.h5"
    save_device(preset("radar-3bpc").replace(name="my-fit"), fitted,
                write_verify=preset_write_verify("radar-3bpc"))
    pulses = {}
    for label, device in (("file", str(fitted)), ("preset", "radar-3bpc"),
                          ("named", str(_radar_like_toml(tmp_path)))):
        out = tmp_path / f"sweep-{label}.h5"
        assert main(["sweep", "--model", str(tiny_model_file), "--dataset", "digits",
                     "--device", device, "--param", "sa0_rate", "--values", "0,0.01",
                     "--methods", "rvw", "--chips", "1", "--workers", "1", "--out", str(out),
                     "--json"]) == 0
        capsys.readouterr()
        with h5py.File(out) as f:
            pulses[label] = f["results/pulses"][()].ravel().tolist()
    assert pulses["file"] == pulses["preset"]
    assert pulses["named"] != pulses["preset"]


def test_write_json_is_atomic_and_refuses_what_json_cannot_hold(tmp_path: Path) -> None:
    """The benchmarks' results writer: a whole file or the earlier one, never half."""
    from xbar.files import write_json

    out = tmp_path / "sub" / "r.json"
    write_json(out, {"a": 1})
    assert json.loads(out.read_text()) == {"a": 1}
    with pytest.raises(TypeError):
        write_json(out, {"a": object()})
    assert json.loads(out.read_text()) == {"a": 1}
    assert [p.name for p in out.parent.iterdir()] == ["r.json"]  # no temporary left
    write_json(out, {"p": Path("x")}, default=str)
    assert json.loads(out.read_text()) == {"p": "x"}
