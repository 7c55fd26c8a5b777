"""``--age`` on compare (issue 24): adaptation at programming, then the chips age."""

from __future__ import annotations

import pytest

from xbar.config import load_hardware
from xbar.devices import Device, preset



@pytest.mark.slow
def test_compare_at_an_age() -> None:
    """compare's age_s: 0 (and any age on a device that does not relax) gives today's figures
    exactly; the x5 CMO cell aged 1e8 s gives other accuracies, adaptation done at time 0."""
    from xbar.mapping.data.workflow import load_teacher
    from xbar.mapping.recovery.compare import CompareSettings, compare
    from xbar.mapping.recovery.techniques.sram import AdaptConfig
    t = load_teacher("digits-cnn", "digits")
    hw = load_hardware("default")

    def accs(device: Device, age: float) -> dict[str, list[float]]:
        s = CompareSettings(chips=1, methods=("one-shot", "rsa"), adapt=AdaptConfig(steps=5),
                            age_s=age)
        r = compare(t.model, t.dataset, device, hw, s)
        return {m: v["accuracies"] for m, v in r["methods"].items()}

    jx = preset("charan2020-jxcdc")
    assert accs(jx, 1e8) == accs(jx, 0.0)
    x5 = preset("cmo-hfox-x5")
    assert accs(x5, 1e8) != accs(x5, 0.0)
