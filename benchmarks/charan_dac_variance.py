"""Which reading of DAC 2020's "10 levels, 50% variance" matches its 31.76 % on MNIST LeNet-5?

Charan et al. (DAC 2020) report that 10 conductance levels with "50 % variance" drop MNIST
LeNet-5 to 31.76 %, without saying what the 50 % is relative to or how weights map to
cells. This measures LeNet-5 (MNIST, the 8,000/2,000 split of the shared test set) over
several chip instances for each reading, so the preset's choice can be checked:

    python benchmarks/charan_dac_variance.py [--chips 5] [--data-dir DIR]

Writes results/charan_dac_variance.json.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from xbar.devices import preset  # noqa: E402
from xbar.mapping.chip import Chip  # noqa: E402
from xbar.mapping.data.workflow import calibration_inputs, load_teacher  # noqa: E402
from xbar.config import ArrayConfig, XbarConfig  # noqa: E402

PUBLISHED = 0.3176


def readings() -> list[tuple[str, dict, str]]:
    level = {"sigma_reference": "level"}
    rng_ = {"sigma_reference": "range"}
    return [
        ("sigma 0.5 x level, one cell per weight (the preset)", level, "offset"),
        ("sigma 0.5 x level, differential", level, "differential"),
        ("sigma 0.707 x level (variance 0.5), differential", {**level, "sigma": 0.7071},
         "differential"),
        ("lognormal sigma 0.5, differential", {"variation": "lognormal"}, "differential"),
        ("sigma 0.5 x range, differential", rng_, "differential"),
        ("sigma 0.5 x range, one cell per weight", rng_, "offset"),
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--chips", type=int, default=5)
    ap.add_argument("--data-dir")
    ap.add_argument("--out", default="results/charan_dac_variance.json")
    args = ap.parse_args()
    teacher = load_teacher("lenet5", "mnist", args.data_dir)
    data = teacher.dataset
    print(f"LeNet-5 FP32 {100 * teacher.software_accuracy:.2f}% on {data.note}")
    print(f"published (DAC 2020): {100 * PUBLISHED:.2f}%; {args.chips} chips per reading\n")
    rows = []
    for label, changes, mapping in readings():
        device = preset("charan2020-dac").replace(weight_mapping=mapping, **changes)
        config = XbarConfig(array=ArrayConfig(weight_mapping=mapping))
        accs = []
        for seed in range(args.chips):
            chip = Chip.program(teacher.model, device, config, seed, "column", "lenet5",
                                data.input_shape)
            chip.calibrate(calibration_inputs(data, seed=seed))
            accs.append(chip.evaluate(data.x_test, data.y_test))
        rows.append({"reading": label, "device": device.to_dict(), "mapping": mapping,
                     "accuracies": accs, "mean": float(np.mean(accs)),
                     "std": float(np.std(accs))})
        print(f"{label:<52} {100 * np.mean(accs):6.2f}% +- {100 * np.std(accs):5.2f} "
              f"(min {100 * min(accs):.1f}, max {100 * max(accs):.1f})", flush=True)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(args.out).with_suffix(".tmp")
    tmp.write_text(json.dumps({"published": PUBLISHED, "rows": rows}, indent=1))
    os.replace(tmp, args.out)


if __name__ == "__main__":
    main()
