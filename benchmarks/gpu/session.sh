#!/usr/bin/env bash
# Issue 11's GPU checks in one run on the device machine (one H200; about 6 minutes of a
# 15-minute session budget). Stage first with benchmarks/gpu/prepare.sh, then call the device
# tool with carry ["gpu_data", ".whl"] and command `bash benchmarks/gpu/session.sh`.
#
#   1. the CUDA tests: tests/test_kernel_torch.py (the kernel on CUDA against Numba, exact
#      with noise off, repeatable with noise on) and tests/test_backend.py (compare on CUDA:
#      repeatable, within 3 points of the CPU)
#   2. python benchmarks/kernel_speed.py --backend cuda (GMAC/s and the ratio to one torch
#      float32 GEMM on the same GPU, both modes, batches 1, 64, 1024)
#   3. python benchmarks/vgg16_cifar_gpu.py: VGG-16, all 10,000 CIFAR-10 test images, full
#      bit-serial fidelity, every non-ideality; time, images/s and peak GPU memory
#
# Everything it prints and writes goes to $OUT (the device tool returns that folder); each
# stage runs even when an earlier one failed, and the exit status is the first failure's.
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-results/gpu}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 XBAR_DATA=${XBAR_DATA:-$PWD/gpu_data}
status=0
step() {  # step NAME COMMAND...: run, log to $OUT/NAME.log, remember the first failure
    local name=$1; shift
    echo "== $name: $*"
    local t0=$SECONDS
    "$@" 2>&1 | tee "$OUT/$name.log"
    local rc=${PIPESTATUS[0]}
    echo "== $name: exit $rc after $((SECONDS - t0)) s"
    [ "$status" -ne 0 ] || status=$rc
}
if ls .whl/*.whl >/dev/null 2>&1; then  # packages the image lacks (prepare.sh)
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi
# xbar.devices and xbar.mapping live in devices/ and mapping/ (package_dir): an editable
# install of the checkout (offline, no dependencies: the image has them) maps them, for the
# tests and for the benchmarks, which put the checkout first on sys.path.
python3 -m pip install -q --no-index --no-deps --no-build-isolation -e . || status=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT/gpu.txt"
python3 -c "import torch, numba; print('torch', torch.__version__, 'cuda', torch.version.cuda,
      torch.cuda.get_device_name(), '| numba', numba.__version__)" | tee -a "$OUT/gpu.txt"
step tests python3 -m pytest -q -p no:cacheprovider tests/test_kernel_torch.py \
    tests/test_backend.py
step kernel_speed python3 benchmarks/kernel_speed.py --backend cuda --repeats 5 \
    --out "$OUT/kernel_speed_cuda.json"
step vgg16 python3 benchmarks/vgg16_cifar_gpu.py --out "$OUT/vgg16_cifar_gpu.json"
exit "$status"
