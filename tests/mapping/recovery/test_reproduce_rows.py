"""The rows of works 4 and 5 from given results (no training): ``published`` is the paper's
figure or null, a figure the paper states against its own FP32 is compared with ours in
``versus_our_fp32`` (never by putting our FP32 in ``published``), and work 4's ADC row
reports the test-set accuracy at the chosen bits, not the search's training images."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from xbar.mapping.recovery import correctnet as work4, lv2024 as work5
from xbar.mapping.recovery.techniques.adc_search import ADCSearchResult
from xbar.mapping.recovery.published import published
from xbar.mapping.recovery.reproduce import ReproduceSettings, row
from xbar.mapping.recovery.reproduce_report import format_rows

SETTINGS = ReproduceSettings(quick=True, chips=2, steps=5, batch=8, kd_epochs=1)


def _method(accuracies: list[float], **extra: float) -> dict:
    mean = sum(accuracies) / len(accuracies)
    std = (sum((a - mean) ** 2 for a in accuracies) / len(accuracies)) ** 0.5
    return {"accuracy": mean, "accuracy_std": std, "accuracies": accuracies, **extra}


def test_row_keeps_the_papers_figure() -> None:
    pub = published("work2", "collapse-mnist")
    r = row(pub, 0.25, 0.01, "setting")
    assert r["published"] == 0.3176 and r["difference"] == pytest.approx(0.25 - 0.3176)
    assert r["versus_our_fp32"] is None
    baseline = row(published("work2", "kd-osa-mnist"), 0.96, 0.01, "s", our_fp32=0.99)
    assert baseline["published"] is None and baseline["difference"] is None
    assert baseline["versus_our_fp32"] == pytest.approx(-0.03)
    assert row(published("work2", "kd-osa-mnist"), None, None, "s",
               our_fp32=0.99)["versus_our_fp32"] is None


def test_work5_recovery_row_is_against_our_fp32(monkeypatch: pytest.MonkeyPatch) -> None:
    result = {"methods": {"software": _method([0.98, 0.98]), "one-shot": _method([0.4, 0.5]),
                          "kd": _method([0.9, 0.92]), "vat": _method([0.92, 0.94]),
                          "io-kd": _method([0.95, 0.97])},
              "work5": {"images": 64}}
    monkeypatch.setattr(work5, "run", lambda *args, **kwargs: result)
    out: dict = {}
    rows = {r["figure"]: r for r in work5.rows(SETTINGS, None, lambda _: None, out)}
    assert out["works"]["work5"] is result
    gain = rows["io-vs-vat"]
    assert gain["published"] == 0.03 and gain["simulated"] == pytest.approx(0.03)
    assert gain["difference"] == pytest.approx(0.0) and gain["versus_our_fp32"] is None
    rec = rows["recovery"]
    assert rec["published"] is None and rec["published_text"] == "nearly complete"
    assert rec["difference"] is None
    assert rec["simulated"] == pytest.approx(0.96)
    assert rec["versus_our_fp32"] == pytest.approx(0.96 - 0.98)
    assert "baseline = our FP32 (98.00 %)" in rec["setting"]
    assert "-2.00 points against our FP32" in rec["note"]
    text = format_rows({"rows": list(rows.values())})
    assert "-2.00*" in text and "* no published number" in text


def test_work4_adc_row_reports_test_accuracy(monkeypatch: pytest.MonkeyPatch) -> None:
    methods = {"software": _method([0.98, 0.98]), "one-shot": _method([0.5, 0.6]),
               "lipschitz": _method([0.7, 0.8]), "comp": _method([0.95, 0.96]),
               "lipschitz+comp": _method([0.96, 0.96], comp_layers=2.0)}
    search = ADCSearchResult(
        bits={"conv1": 5, "fc": 3}, levels=16, reference_accuracy=0.990, floor=0.980,
        accuracy=0.985, reference_adc_pj=100.0, adc_pj=20.0, reference_latency_ns=50.0,
        latency_ns=30.0, evaluations=7, wall_s=1.0, test_accuracy=0.9417,
        reference_test_accuracy=0.9528, test_images=360)
    monkeypatch.setattr(work4, "lipschitz_network",
                        lambda *a, **k: (None, SimpleNamespace(test_accuracy=0.97)))
    monkeypatch.setattr(work4, "run", lambda *a, **k: {"methods": methods,
                                                       "work4": {"lipschitz_fp32": 0.97}})
    monkeypatch.setattr(work4, "adc_search", lambda *a, **k: search)
    teacher = SimpleNamespace(dataset=SimpleNamespace(x_train=[0] * 1437))
    out: dict = {}
    rows = {r["figure"]: r for r in work4.rows(SETTINGS, teacher, lambda _: None, out)}
    adc = rows["adc-power"]
    assert adc["published"] == -0.55 and adc["simulated"] == pytest.approx(-0.8)
    assert adc["difference"] == pytest.approx(-0.8 + 0.55)
    assert "test accuracy at these bits 94.17 % against 95.28 % at uniform 8-bit" \
        in adc["setting"]
    assert "360 test images" in adc["setting"] and "200 training images" in adc["setting"]
    assert "98.50 % against 99.00 %" in adc["note"] and "training images" in adc["note"]
    assert out["works"]["work4"]["adc_search"]["test_accuracy"] == 0.9417
    for r in rows.values():
        assert r["published"] == published("work4", r["figure"]).value
