#!/bin/sh
# One entry point for set-up, build, test and the main job, so that the README's quick start
# and CI run exactly the same steps.
#   scripts/xgrad.sh deps     install whatever Debian packages are missing (nothing when all are present)
#   scripts/xgrad.sh build    deps + configure + build (Release, assertions on)
#   scripts/xgrad.sh test     build + the whole default test suite through CTest, then the reliability
#                             stages below: sanitize, fuzz (10 s per target), tsan — what CI runs
#   scripts/xgrad.sh sanitize the default suite (examples' smoke tests included) and the million-op chain,
#                             built with clang -O1, AddressSanitizer + UndefinedBehaviorSanitizer +
#                             LeakSanitizer (build dir $BUILD_DIR-asan, which also holds the fuzz targets)
#   scripts/xgrad.sh fuzz [S] every libFuzzer target for S seconds (default 60) from fuzz/corpus/
#   scripts/xgrad.sh tsan     tests/test_threads.cpp alone under ThreadSanitizer ($BUILD_DIR-tsan)
#   scripts/xgrad.sh train    build + train the MLP on Fashion-MNIST and report test accuracy
#   scripts/xgrad.sh slow     build + the slow tests (full training runs), label "slow"
# Environment: BUILD_DIR (default: build), JOBS (default: nproc), FUZZ_SECONDS (for test; default 10).
set -eu
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build}
JOBS=${JOBS:-$(nproc 2>/dev/null || echo 2)}

PACKAGES="g++ libc6-dev cmake make ccache libxtensor-dev xtl-dev libxsimd-dev libxtensor-blas-dev libopenblas-dev \
doctest-dev libbenchmark-dev nlohmann-json3-dev zlib1g-dev dataset-fashion-mnist libopenmpi-dev openmpi-bin"
# Only the sanitizer, fuzz and tsan stages need these (libFuzzer and the sanitizer runtimes of clang).
SANITIZER_PACKAGES="clang libclang-rt-14-dev"
# The sanitizer builds: clang at -O1 with line tables for readable reports; assertions stay on.
# No MPI there (-DXGRAD_MPI=OFF): OpenMPI's own start-up allocations trip LeakSanitizer, and its
# progress engine is not TSan-instrumented; the MPI tests run in the normal suite instead.
SANITIZER_CMAKE="-DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=RelWithDebInfo -DXGRAD_BUILD_BENCH=OFF -DXGRAD_MPI=OFF"
SANITIZER_FLAGS="-O1 -gline-tables-only"

# Number of CTest tests in build dir $1 matching the filters that follow.
count_tests() {
  dir=$1
  shift
  ctest --test-dir "$dir" -N "$@" | sed -n 's/^Total Tests: \([0-9]*\)$/\1/p'
}

# Every doctest run appends "<test cases run> <assertions>" to $XGRAD_TEST_TALLY (tests/main.cpp), so
# the closing line counts test cases that really ran, not CTest entries. tally FILE prints the sums.
tally_reset() { rm -f "$1"; : > "$1"; }
tally_path() { case "$1" in /*) echo "$1/test-tally.txt" ;; *) echo "$PWD/$1/test-tally.txt" ;; esac; }
tally_cases() { awk '{ c += $1 } END { print c + 0 }' "$1"; }
tally_asserts() { awk '{ a += $2 } END { print a + 0 }' "$1"; }

deps() {  # deps [extra packages...]
  missing=""
  for p in $PACKAGES "$@"; do
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

# Any sanitizer report fails the run: ASan/UBSan abort (-fno-sanitize-recover), LSan fails the exit code.
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:check_initialization_order=1:strict_init_order=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"

sanitize() {
  deps $SANITIZER_PACKAGES
  # shellcheck disable=SC2086
  cmake -S . -B "$BUILD_DIR-asan" $SANITIZER_CMAKE "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=$SANITIZER_FLAGS" \
    -DXGRAD_SANITIZE=ON -DXGRAD_FUZZ=ON
  cmake --build "$BUILD_DIR-asan" -j "$JOBS"
  tally_reset "$BUILD_DIR-asan/test-tally.txt"
  XGRAD_TEST_TALLY="$(tally_path "$BUILD_DIR-asan")" \
    ctest --test-dir "$BUILD_DIR-asan" -LE slow --output-on-failure -j "$JOBS"
  # The million-op chain of the slow suite, bounded in time.
  XGRAD_TEST_TALLY="$(tally_path "$BUILD_DIR-asan")" \
    ctest --test-dir "$BUILD_DIR-asan" -L slow -R "deep chain" --output-on-failure --timeout 600
}

fuzz() {
  [ -x "$BUILD_DIR-asan/fuzz/fuzz_idx" ] || sanitize
  sh fuzz/run.sh "$BUILD_DIR-asan" "${1:-60}"
}

tsan() {
  deps $SANITIZER_PACKAGES
  # shellcheck disable=SC2086
  cmake -S . -B "$BUILD_DIR-tsan" $SANITIZER_CMAKE "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=$SANITIZER_FLAGS" \
    -DXGRAD_TSAN=ON -DXGRAD_BUILD_TESTS=OFF -DXGRAD_BUILD_EXAMPLES=OFF
  cmake --build "$BUILD_DIR-tsan" -j "$JOBS" --target xgrad_thread_tests
  # One BLAS thread: OpenBLAS's own thread pool is not instrumented.
  tally_reset "$BUILD_DIR-tsan/test-tally.txt"
  XGRAD_TEST_TALLY="$(tally_path "$BUILD_DIR-tsan")" \
  TSAN_OPTIONS="${TSAN_OPTIONS:-halt_on_error=1:second_deadlock_stack=1}" OPENBLAS_NUM_THREADS=1 \
    "$BUILD_DIR-tsan/xgrad_thread_tests"
}

case "${1:-}" in
  deps) deps ;;
  build) build ;;
  test)
    build
    tally_reset "$BUILD_DIR/test-tally.txt"
    XGRAD_TEST_TALLY="$(tally_path "$BUILD_DIR")" ctest --test-dir "$BUILD_DIR" -LE slow --output-on-failure -j "$JOBS"
    sanitize
    fuzz "${FUZZ_SECONDS:-10}"
    tsan
    # Every stage above stops the script on a failure (set -e), so reaching here means all passed.
    # The closing line counts what actually ran: doctest test cases (from the tallies, not CTest
    # entries), the CTest entries that are programs rather than test cases (examples, install, guards),
    # and the fuzz targets.
    normal=$(tally_cases "$BUILD_DIR/test-tally.txt")
    asan=$(tally_cases "$BUILD_DIR-asan/test-tally.txt")
    threads=$(tally_cases "$BUILD_DIR-tsan/test-tally.txt")
    programs=$(( $(count_tests "$BUILD_DIR" -LE 'slow|doctest') + $(count_tests "$BUILD_DIR-asan" -LE 'slow|doctest') ))
    fuzzers=$(ls fuzz/fuzz_*.cpp | wc -l)
    echo "test cases run: normal suite $normal ($(tally_asserts "$BUILD_DIR/test-tally.txt") assertions)," \
      "sanitizer suite $asan ($(tally_asserts "$BUILD_DIR-asan/test-tally.txt") assertions)," \
      "ThreadSanitizer $threads; program checks $programs; fuzz targets $fuzzers"
    echo "all: $((normal + asan + threads + programs + fuzzers)) passed, 0 failed" ;;
  sanitize) sanitize ;;
  fuzz) fuzz "${2:-60}" ;;
  tsan) tsan ;;
  slow)
    build
    ctest --test-dir "$BUILD_DIR" -L slow --output-on-failure ;;
  train)
    build
    shift
    "$BUILD_DIR/examples/train_fashion_mnist" "$@" ;;
  *)
    echo "usage: $0 deps|build|test|train|slow|sanitize|fuzz [seconds]|tsan" >&2; exit 2 ;;
esac
