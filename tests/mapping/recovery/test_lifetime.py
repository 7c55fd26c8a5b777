"""xbar lifetime (issue 24): the refresh schedule counted on hand-made accuracy curves, and the
lifetime run's keys and its no-relaxation limit (every age = the programmed chip, no refresh)."""

from __future__ import annotations

import math

import pytest

from xbar.mapping.recovery.lifetime import LifetimeSettings, lifetime
from xbar.mapping.recovery.lifetime_chip import check_times, refresh_schedule


def test_check_times_are_log_spaced_and_end_at_the_horizon() -> None:
    assert check_times(1.0, 1000.0, 1) == pytest.approx([1, 10, 100, 1000])
    assert check_times(1.0, 500.0, 2) == pytest.approx(
        [1, 10 ** 0.5, 10, 10 ** 1.5, 100, 10 ** 2.5, 500])


class Renewal:
    """A chip whose accuracy falls 0.4 points per decade of time since its last refresh and
    that a refresh makes new: 0.9 - 0.004 log10(t - T)."""

    def __init__(self) -> None:
        self.last = 0.0
        self.refreshed: list[float] = []

    def accuracy(self, t: float) -> float:
        return 0.9 - 0.004 * math.log10(max(t - self.last, 1.0))

    def refresh(self, t: float) -> None:
        self.last = t
        self.refreshed.append(t)


def test_schedule_counts_refreshes_by_hand() -> None:
    """Tolerance 1 point: the chip holds while it is younger than 10**2.5 = 316 s. With checks
    at 1, 10, 100 and 1000 s after a refresh (the last capped at the 1000 s horizon): from
    T = 0 the check at 1000 s fails (1.2 points lost), so a refresh at 100 s; from T = 100,
    ..., 600 the horizon check is 400-900 s away (> 316 s: fails), so refreshes at 200, ...,
    700 s; from T = 700 the horizon is 300 s away (1.0 point lost, within): done.
    7 refreshes."""
    chip = Renewal()
    out = refresh_schedule(chip.accuracy, chip.refresh, 0.89, 1000.0,
                           check_times(1.0, 1000.0, 1), 100)
    assert out["refreshes"] == 7 and chip.refreshed == out["times_s"]
    assert out["times_s"] == pytest.approx([100.0 * k for k in range(1, 8)])
    assert out["held"] and out["complete"] and "refreshes_extrapolated" not in out
    assert all(a >= 0.89 for t, a in out["checks"] if t in out["times_s"])


def test_schedule_cap_extrapolates_and_edge_cases() -> None:
    chip = Renewal()
    out = refresh_schedule(chip.accuracy, chip.refresh, 0.89, 1000.0,
                           check_times(1.0, 1000.0, 1), 3)
    assert out["refreshes"] == 3 and not out["complete"] and out["held"]
    # 3 + ceil(700 / 100) - 1: the mean interval over the time left (the last stretch's
    # slack, which saves two here, is not known without simulating it)
    assert out["refreshes_extrapolated"] == 9
    never = refresh_schedule(lambda t: 0.95, lambda t: None, 0.89, 1e8,
                             check_times(1.0, 1e8, 1), 10)
    assert never["refreshes"] == 0 and never["complete"] and len(never["checks"]) == 9
    hopeless = refresh_schedule(lambda t: 0.5, lambda t: None, 0.89, 1e8,
                                check_times(1.0, 1e8, 1), 10)
    assert hopeless["refreshes"] == 0 and not hopeless["held"] and not hopeless["complete"]


@pytest.fixture(scope="module")
def digits_teacher():
    from xbar.mapping.data.workflow import load_teacher
    return load_teacher("digits-cnn", "digits")


def _run(teacher, device: str, **kw):
    from xbar.config import load_hardware
    from xbar.devices import resolve_device_file
    from xbar.mapping.recovery.techniques.sram import AdaptConfig
    s = LifetimeSettings(ages_s=(1.0, 1e8), methods=("one-shot", "rsa", "rvw"),
                         horizon_s=1e8, test_limit=120, adapt=AdaptConfig(steps=5), **kw)
    return lifetime(teacher.model, teacher.dataset, resolve_device_file(device),
                    load_hardware("default"), s)


@pytest.mark.slow
def test_without_relaxation_every_age_is_the_programmed_chip(digits_teacher) -> None:
    """A device that does not relax: each method's accuracy at every age is its accuracy at
    programming exactly, and no refresh is needed; the result holds the issue's keys."""
    r = _run(digits_teacher, "charan2020-jxcdc")
    assert r["ages_s"] == [1.0, 1e8]
    for name in ("one-shot", "rsa", "rvw"):
        m, s = r["methods"][name], r["schedule"][name]
        assert m["accuracy"] == [m["accuracy_at_programming"]] * 2
        assert len(m["accuracy_refreshed"]) == 2
        assert s["refreshes"] == 0 and s["time_s"] == 0 and s["energy_pj"] == 0
        assert s["complete"] and s["held"]


@pytest.mark.slow
def test_with_relaxation_refreshes_cost_what_the_models_say(digits_teacher) -> None:
    """With the x5 CMO preset: every refresh of one-shot costs one one-shot programming, so the
    schedule's time is the count times it."""
    r = _run(digits_teacher, "cmo-hfox-x5", tolerance=0.005)
    one = r["schedule"]["one-shot"]
    assert r["methods"]["one-shot"]["refresh_s"] == pytest.approx([r["one_shot_program_s"]] * 2)
    assert all(t > 0 for m in ("rsa", "rvw") for t in r["methods"][m]["refresh_s"])
    assert one["time_s"] == pytest.approx(one["refreshes"] * r["one_shot_program_s"])
    assert one["energy_pj"] == pytest.approx(one["refreshes"] * r["one_shot_program_pj"])
    for name in ("rsa", "rvw"):
        s = r["schedule"][name]
        assert (s["refreshes"] == 0) == (s["time_s"] == 0)
    assert any(r["methods"][m]["accuracy"][-1] != r["methods"][m]["accuracy_at_programming"]
               for m in r["methods"])
