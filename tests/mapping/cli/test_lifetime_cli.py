"""``xbar lifetime`` and ``--age`` through the command line (issue 24): the JSON keys the issue
lists, the HDF5 result and its plot, bad options refused before any work."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import pytest

from xbar.mapping.cli.main import main

def _status(argv: list[str]) -> int:
    """The exit status of ``xbar argv`` (argparse errors raise SystemExit, others return)."""
    try:
        return main(argv)
    except SystemExit as exc:
        return int(exc.code)


TINY = ["--model", "digits-cnn", "--dataset", "digits", "--test-limit", "60", "--steps", "3"]


@pytest.mark.slow
def test_lifetime_json_keys_and_hdf5(tmp_path: Path, capsys) -> None:
    out = tmp_path / "life.h5"
    code = main(["lifetime", *TINY, "--device", "cmo-hfox-x5", "--ages", "1,1e4,1e8",
                 "--methods", "one-shot,rsa,rvw", "--horizon", "1e8", "--tolerance", "0.01",
                 "--json", "--out", str(out)])
    assert code == 0
    r = json.loads(capsys.readouterr().out)
    assert r["ages_s"] == [1.0, 1e4, 1e8]
    for m in ("one-shot", "rsa", "rvw"):
        assert len(r["methods"][m]["accuracy"]) == 3
        assert len(r["methods"][m]["accuracy_refreshed"]) == 3
        for k in ("refreshes", "time_s", "energy_pj"):
            assert r["schedule"][m][k] >= 0
    with h5py.File(out, "r") as f:
        assert f.attrs["format"] == "xbar-sim lifetime"
        assert list(f["ages_s"][()]) == [1.0, 1e4, 1e8]
        assert json.loads(f["result_json"][()])["schedule"] == r["schedule"]
        for m in ("one-shot", "rsa", "rvw"):
            assert f[f"schedule/{m}"].attrs["refreshes"] == r["schedule"][m]["refreshes"]
    assert (tmp_path / "life-accuracy.png").stat().st_size > 1000


@pytest.mark.parametrize("args,words", [
    (["--ages", "1e4,1"], "ascending"),
    (["--ages", "0,1"], "ascending ages > 0"),
    (["--methods", "one-shot,bias-only"], "unknown method 'bias-only'"),
    (["--tolerance", "2"], "tolerance"),
])
def test_bad_lifetime_options_are_refused(args: list[str], words: str, capsys) -> None:
    assert _status(["lifetime", *TINY, *args]) == 2
    assert words in capsys.readouterr().err


def test_an_unwritable_out_is_refused_before_any_work(tmp_path: Path, capsys) -> None:
    (tmp_path / "a-file").write_text("not a directory")
    assert _status(["lifetime", *TINY, "--out", str(tmp_path / "a-file" / "x.h5")]) == 2
    assert "--out" in capsys.readouterr().err


def test_simulate_age(capsys) -> None:
    """--age 0 is today's result; a non-relaxing device is the same at any age; the x5 CMO
    cell aged 1e8 s reads other cells."""
    def acc(*extra: str) -> float:
        assert main(["simulate", "--model", "digits-cnn", "--dataset", "digits",
                     "--test-limit", "200", "--json", *extra]) == 0
        return json.loads(capsys.readouterr().out)["hardware_accuracy"]

    assert acc("--device", "charan2020-jxcdc") == acc("--device", "charan2020-jxcdc",
                                                        "--age", "1e8")
    assert acc("--device", "cmo-hfox-x5", "--age", "0") == acc("--device", "cmo-hfox-x5")
    assert _status(["simulate", "--model", "digits-cnn", "--age", "-1"]) == 2
