"""Work 4 (CorrectNet / CorrectNet+): a lognormal variation sweep and the ADC power search.

For each sigma of ``--sigmas`` (log-space sigma of the lognormal programming variation on the
``neurosim-rram`` cell, differential pairs: :func:`xbar.mapping.recovery.correctnet.device_at`) it
runs ``xbar compare``'s machinery over ``--chips`` chips with: one-shot (the plain network),
lipschitz (the Lipschitz-trained network programmed once), comp and lipschitz+comp
(compensation layers trained on each chip), and the built-in kd+rsa (works 1's KD student
plus 5 % random SRAM words) as the baseline the paper's claims sit beside. Accuracy is given
as a fraction of the FP32 teacher's. Then the per-layer ADC search
(:func:`xbar.mapping.recovery.techniques.adc_search.search_adc_bits`) at ``--adc-sigma`` for the plain
and the Lipschitz network: ADC energy per inference against uniform 8-bit.

Run (the figures in docs/work4.md)::

    OMP_NUM_THREADS=1 NUMBA_NUM_THREADS=1 MKL_NUM_THREADS=1 python benchmarks/work4_sweep.py \
        --model lenet5 --dataset mnist --sigmas 0.5,1,2,3 --chips 2 --out results/work4.json

``--test-limit N`` evaluates N evenly strided test images (for the slow CIFAR-10 model on a
CPU); ``--methods`` chooses the methods.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path
from typing import Any

from xbar.files import write_json
from xbar.mapping.data.workflow import load_teacher
from xbar.mapping.recovery.reproduce import ReproduceSettings
from xbar.mapping.recovery.correctnet import adc_search, lipschitz_network, run

METHODS = ("software", "one-shot", "lipschitz", "comp", "lipschitz+comp", "kd+rsa")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", default="lenet5")
    p.add_argument("--dataset", default="mnist")
    p.add_argument("--sigmas", default="0.5,1,2,3")
    p.add_argument("--chips", type=int, default=2)
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--kd-epochs", type=int, default=10)
    p.add_argument("--methods", default=",".join(METHODS))
    p.add_argument("--adc-sigma", type=float, default=0.5)
    p.add_argument("--no-adc", action="store_true", help="skip the ADC search")
    p.add_argument("--test-limit", type=int, default=None)
    p.add_argument("--comp-layers", type=int, default=2, help="most compensated layers")
    p.add_argument("--out", default="results/work4.json")
    a = p.parse_args(argv)
    start = time.perf_counter()
    teacher = load_teacher(a.model, a.dataset)
    if a.test_limit:
        ds = teacher.dataset
        step = max(1, len(ds.x_test) // a.test_limit)
        ds = dataclasses.replace(ds, x_test=ds.x_test[::step][:a.test_limit],
                                 y_test=ds.y_test[::step][:a.test_limit],
                                 note=ds.note + f"; {a.test_limit} test images, strided")
        teacher = dataclasses.replace(teacher, dataset=ds)
    # the settings object carries the budget; the model/dataset names come from --model
    s = ReproduceSettings(works=("work4",), quick=a.dataset == "digits", chips=a.chips,
                          steps=a.steps, batch=a.batch, kd_epochs=a.kd_epochs,
                          extra={"work4_comp_layers": a.comp_layers})
    methods = tuple(m.strip() for m in a.methods.split(","))
    lipschitz = any(m.startswith("lipschitz") for m in methods) or not a.no_adc
    network = lipschitz_network(a.model, teacher.dataset) if lipschitz else None
    print(f"{a.model} on {a.dataset}: FP32 {100 * teacher.software_accuracy:.2f} %"
          + (f", Lipschitz-trained {100 * network[1].test_accuracy:.2f} % "
             f"({network[1].train_seconds:.0f} s host training)" if network else ""),
          flush=True)
    say = (lambda m: print("  " + m, file=sys.stderr, flush=True))
    sweep: dict[str, Any] = {}
    for sigma in [float(v) for v in a.sigmas.split(",")]:
        t0 = time.perf_counter()
        r = run(s, teacher, say, sigma, methods, network)
        sweep[f"{sigma:g}"] = r
        fp32 = r["methods"]["software"]["accuracy"]
        cells = [f"{name} {100 * r['methods'][name]['accuracy']:.2f} % "
                 f"({100 * r['methods'][name]['accuracy'] / fp32:.1f} %)"
                 for name in methods if name != "software"]
        print(f"sigma {sigma:g}: " + "; ".join(cells) + f"  [{time.perf_counter() - t0:.0f} s]",
              flush=True)
    out: dict[str, Any] = {"model": a.model, "dataset": a.dataset, "chips": a.chips,
                           "comp_layers": a.comp_layers, "test_limit": a.test_limit,
                           "steps": a.steps, "batch": a.batch, "kd_epochs": a.kd_epochs,
                           "fp32": teacher.software_accuracy,
                           "lipschitz_fp32": network[1].test_accuracy if network else None,
                           "lipschitz_train_s": network[1].train_seconds if network else None,
                           "sweep": sweep}
    if not a.no_adc:
        assert network is not None
        for label, model in (("plain", teacher.model), ("lipschitz", network[0])):
            res = adc_search(s, teacher, model, a.adc_sigma, say)
            out[f"adc_{label}"] = res.to_dict()
            print(f"ADC search ({label}, sigma {a.adc_sigma:g}): bits {res.bits}; ADC energy "
                  f"{res.adc_pj:.0f} pJ vs {res.reference_adc_pj:.0f} pJ uniform 8-bit "
                  f"({100 * res.power_change:+.1f} %); accuracy {100 * res.accuracy:.2f} % vs "
                  f"{100 * res.reference_accuracy:.2f} %; latency {res.latency_ns:.0f} vs "
                  f"{res.reference_latency_ns:.0f} ns; {res.evaluations} evaluations",
                  flush=True)
    out["wall_s"] = time.perf_counter() - start
    path = Path(a.out)
    write_json(path, out, default=str)
    print(f"wrote {path} ({out['wall_s']:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
