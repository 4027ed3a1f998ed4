#!/bin/sh
# One entry point for set-up, build, test and the main job, so that the README's quick start
# and CI run exactly the same steps.
#   scripts/xgrad.sh deps     install whatever Debian packages are missing (nothing when all are present)
#   scripts/xgrad.sh build    deps + configure + build (Release, assertions on)
#   scripts/xgrad.sh test     build + the whole default test suite through CTest
#   scripts/xgrad.sh train    build + train the MLP on Fashion-MNIST and report test accuracy
#   scripts/xgrad.sh slow     build + the slow tests (full training runs), label "slow"
# Environment: BUILD_DIR (default: build), JOBS (default: nproc).
set -eu
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build}
JOBS=${JOBS:-$(nproc 2>/dev/null || echo 2)}

PACKAGES="g++ libc6-dev cmake make ccache libxtensor-dev xtl-dev libxsimd-dev libxtensor-blas-dev libopenblas-dev \
doctest-dev libbenchmark-dev nlohmann-json3-dev zlib1g-dev dataset-fashion-mnist"

deps() {
  missing=""
  for p in $PACKAGES; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
      missing="$missing $p"
    fi
  done
  [ -z "$missing" ] && return 0
  echo "xgrad: installing missing packages:$missing"
  SUDO=""
  if [ "$(id -u)" != 0 ]; then SUDO=sudo; fi
  $SUDO apt-get update
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y --no-install-recommends $missing
}

build() {
  deps
  cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release
  cmake --build "$BUILD_DIR" -j "$JOBS"
}

case "${1:-}" in
  deps) deps ;;
  build) build ;;
  test)
    build
    ctest --test-dir "$BUILD_DIR" -LE slow --output-on-failure -j "$JOBS" ;;
  slow)
    build
    ctest --test-dir "$BUILD_DIR" -L slow --output-on-failure ;;
  train)
    build
    shift
    "$BUILD_DIR/examples/train_fashion_mnist" "$@" ;;
  *)
    echo "usage: $0 deps|build|test|train|slow" >&2; exit 2 ;;
esac
