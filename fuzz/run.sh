#!/bin/sh
# Runs every libFuzzer target for a bounded time, starting from its seed corpus fuzz/corpus/<target>/.
#   sh fuzz/run.sh [BUILD_DIR] [SECONDS_PER_TARGET]        defaults: build-asan 60
# BUILD_DIR must be configured with clang++ and -DXGRAD_FUZZ=ON and built (`scripts/xgrad.sh sanitize`
# does both). Inputs that reach new code go to BUILD_DIR/fuzz-corpus/<target>/ (the seeds in the repo
# stay as they are). A crash, a sanitizer report, a leak, an allocation over 256 MiB or an input that
# takes over 10 s is saved to BUILD_DIR/fuzz-artifacts/ and fails the script: reproduce it with
# `BUILD_DIR/fuzz/fuzz_<target> <artifact>`, fix it and add it as a regression test under tests/.
set -eu
cd "$(dirname "$0")/.."
BUILD=${1:-build-asan}
SECONDS_EACH=${2:-60}
TARGETS=${FUZZ_TARGETS:-"safetensors idx idx_gz csv optim_state checkpoint"}

status=0
mkdir -p "$BUILD/fuzz-artifacts"
for target in $TARGETS; do
  exe="$BUILD/fuzz/fuzz_$target"
  if [ ! -x "$exe" ]; then
    echo "fuzz: $exe is missing; build $BUILD with -DXGRAD_FUZZ=ON first" >&2
    exit 2
  fi
  work="$BUILD/fuzz-corpus/$target"
  log="$BUILD/fuzz-artifacts/$target.log"
  mkdir -p "$work"
  if ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1} OPENBLAS_NUM_THREADS=1 "$exe" \
      -max_total_time="$SECONDS_EACH" -timeout=10 -rss_limit_mb=2048 -malloc_limit_mb=256 \
      -print_final_stats=1 -artifact_prefix="$BUILD/fuzz-artifacts/$target-" \
      "$work" "fuzz/corpus/$target" >"$log" 2>&1; then
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    corpus=$(ls "$work" | wc -l)
    echo "fuzz_$target: ${runs:-?} executions in $SECONDS_EACH s, no finding ($corpus inputs in $work)"
  else
    echo "fuzz_$target: FINDING (log: $log)"
    tail -n 60 "$log"
    status=1
  fi
done
exit $status
