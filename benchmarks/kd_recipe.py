"""KD's recipe on a zoo network: the student's accuracy after a short distillation on a
random subset of the training images, for each learning rate and weight clip given, so that
a recipe can be chosen before a full ``xbar compare`` run. The test images used are the
first ``--test-images`` of the data set's test order (CIFAR-10's is a fixed shuffle).

    python benchmarks/kd_recipe.py --model resnet18-narrow --lr 5e-3 1e-3 --clip 1.5 0 \
        --epochs 1 --train-images 10000

One JSON line per (learning rate, clip): the student's clean and noisy-weight test accuracy,
its and the teacher's noisy accuracy on the held-out training slice, and the training time.
KD trains on one thread (as ``xbar compare`` does): the figures do not depend on the machine.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402

from xbar.config import load_hardware  # noqa: E402
from xbar.devices import resolve_device_file  # noqa: E402
from xbar.devices.presets import implied_hardware  # noqa: E402
from xbar.mapping.data.workflow import load_teacher  # noqa: E402
from xbar.mapping.recovery.techniques.kd import KDConfig, distill  # noqa: E402

KEYS = ("student_fp32_accuracy", "student_noisy_weight_accuracy", "val_student_noisy",
        "val_teacher_noisy", "learned", "train_s")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="resnet18-narrow")
    p.add_argument("--dataset", help="default: the zoo model's own")
    p.add_argument("--device", default="charan2020-jxcdc")
    p.add_argument("--lr", type=float, nargs="+", default=[5e-3, 1e-3])
    p.add_argument("--clip", type=float, nargs="+", default=[1.5],
                   help="KDConfig.weight_clip values (0: no clip)")
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--train-images", type=int, default=10_000,
                   help="a seeded random subset of the training images")
    p.add_argument("--test-images", type=int, default=2_000)
    args = p.parse_args()
    teacher = load_teacher(args.model, args.dataset, None, 0)
    data = teacher.dataset
    pick = np.sort(np.random.default_rng(0).choice(len(data.x_train), args.train_images,
                                                   replace=False))
    sub = dataclasses.replace(data, x_train=data.x_train[pick], y_train=data.y_train[pick],
                              x_test=data.x_test[:args.test_images],
                              y_test=data.y_test[:args.test_images])
    device = resolve_device_file(args.device).device
    xbar = load_hardware(implied_hardware(device)).xbar   # the hardware compare would use
    for lr in args.lr:
        for clip in args.clip:
            kd = KDConfig(epochs=args.epochs, learning_rate=lr, weight_clip=clip or None)
            _, info = distill(teacher.model, sub, device, xbar, kd)
            print(json.dumps({"model": args.model, "device": args.device, "lr": lr,
                              "clip": clip, "epochs": args.epochs,
                              "train_images": args.train_images,
                              "test_images": args.test_images,
                              **{k: info[k] for k in KEYS}}), flush=True)


if __name__ == "__main__":
    main()
