#!/usr/bin/env bash
# Stage what benchmarks/gpu/session.sh needs on the GPU machine, in ignored folders of the
# repository that the device tool carries (name them in `carry`: gpu_data and .whl):
#
#   gpu_data/cifar10/cifar10-jpeg.tar   the shared CIFAR-10 JPEG tar, gzip-compressed under the
#                                       same name (tarfile opens it with "r:*"; 19 MB instead
#                                       of 89 MB, under the device tool's 64 MiB carry limit)
#   gpu_data/mnist/                     the MNIST test files (1.6 MB)
#   .whl/                               wheels of the packages the GPU image lacks (simpy)
#
# The data are copies of ../shared/data (never committed: both folders are in .gitignore).
# Run here, on the CPU machine:   bash benchmarks/gpu/prepare.sh [DATA_DIR]
set -euo pipefail
cd "$(dirname "$0")/../.."
src=${1:-${XBAR_DATA:-../shared/data}}
[ -f "$src/cifar10/cifar10-jpeg.tar" ] || { echo "no $src/cifar10/cifar10-jpeg.tar" >&2; exit 2; }
mkdir -p gpu_data/cifar10 gpu_data/mnist .whl
gzip -9 -c "$src/cifar10/cifar10-jpeg.tar" > gpu_data/cifar10/cifar10-jpeg.tar.tmp
mv gpu_data/cifar10/cifar10-jpeg.tar.tmp gpu_data/cifar10/cifar10-jpeg.tar
cp "$src"/mnist/* gpu_data/mnist/
simpy=$(python3 -m pip show simpy | awk '/^Version/{print $2}')
python3 -m pip download -q --no-deps --only-binary=:all: -d .whl "simpy==${simpy:-4.1.2}"
du -sh gpu_data .whl
echo "carry: [\"gpu_data\", \".whl\"]; command: bash benchmarks/gpu/session.sh"
