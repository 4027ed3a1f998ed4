#!/bin/sh
# Benchmarks: build xgrad's workloads and micro-benchmarks and the LibTorch anchor, then run them.
# See bench/README.md for what each figure means.
#   scripts/bench.sh build          configure + build workloads, micro_benchmarks and the anchor
#   scripts/bench.sh smoke          build + every workload once with tiny settings (checks that they
#                                   run and print; the numbers mean nothing)
#   scripts/bench.sh compare        build + the reference comparison with LibTorch (3 rounds, 1 thread,
#                                   all six workloads), then the 2-thread check of W1 and W5
#   scripts/bench.sh micro [ARGS]   build + micro_benchmarks with Google Benchmark's ARGS
# Environment: BUILD_DIR (default: build), JOBS (default: 2), SHARED (the shared directory holding
# anchors/, default: ../shared), ROUNDS (default: 3).
# The anchor needs Debian's libtorch-dev (apt-get install -y libtorch-dev); xgrad itself never does.
set -eu
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build}
JOBS=${JOBS:-2}
SHARED=${SHARED:-../shared}
ROUNDS=${ROUNDS:-3}
WORKLOADS="$BUILD_DIR/bench/workloads"
ANCHOR="$BUILD_DIR/libtorch_bench"

build_xgrad() {
  cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build "$BUILD_DIR" -j "$JOBS" --target workloads micro_benchmarks
}

build_anchor() {
  if [ ! -f /usr/include/torch/csrc/api/include/torch/torch.h ]; then
    echo "bench: libtorch-dev is not installed (apt-get install -y libtorch-dev); no anchor" >&2
    return 1
  fi
  if [ ! -x "$ANCHOR" ] || [ "$SHARED/anchors/libtorch_bench.cpp" -nt "$ANCHOR" ]; then
    sh "$SHARED/anchors/build.sh" "$ANCHOR"
  fi
}

compare() {
  python3 "$SHARED/anchors/compare.py" --xgrad "$WORKLOADS" --libtorch "$ANCHOR" "$@"
}

case "${1:-}" in
  build)
    build_xgrad
    build_anchor ;;
  smoke)
    build_xgrad
    "$WORKLOADS" mlp-train --threads 1 --reps 2
    "$WORKLOADS" seed-mlp --threads 1 --reps 2
    "$WORKLOADS" op-overhead --threads 1 --reps 2
    "$WORKLOADS" gemm --threads 1 --reps 2
    "$WORKLOADS" fashion-mnist --threads 1 --epochs 1
    "$WORKLOADS" deep-chain --threads 1 --n 10000 ;;
  compare)
    build_xgrad
    build_anchor
    compare --rounds "$ROUNDS" --threads 1 mlp-train seed-mlp op-overhead gemm fashion-mnist
    compare --rounds "$ROUNDS" --n 1000000 deep-chain
    compare --rounds "$ROUNDS" --threads 1,2 mlp-train fashion-mnist ;;
  micro)
    build_xgrad
    shift
    "$BUILD_DIR/bench/micro_benchmarks" "$@" ;;
  *)
    echo "usage: $0 build|smoke|compare|micro [ARGS]" >&2; exit 2 ;;
esac
