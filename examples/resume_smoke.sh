#!/bin/sh
# train_fashion_mnist --checkpoint-dir survives kill -9: a run killed once a checkpoint exists and
# started again resumes, and its saved model is byte-identical to an uninterrupted run's.
#   sh examples/resume_smoke.sh path/to/train_fashion_mnist WORK_DIR
set -eu
bin=${1:?usage: $0 train_fashion_mnist WORK_DIR}
work=${2:?usage: $0 train_fashion_mnist WORK_DIR}
rm -rf "$work"
mkdir -p "$work"
args="--epochs 2 --limit 2000 --hidden 32 --batch-size 50 --checkpoint-every 7"

"$bin" $args --checkpoint-dir "$work/ref" --model-out "$work/ref.safetensors" --metrics-out "$work/ref.csv" >/dev/null

# The first run's checkpoint writes are slowed down (xgrad's fault-injection hook) so that it is
# surely still running when the kill comes.
XGRAD_FAULT_WRITE_PAUSE_US=20000 \
  "$bin" $args --checkpoint-dir "$work/run" --model-out "$work/run.safetensors" --metrics-out "$work/run.csv" \
  >"$work/first.log" 2>&1 &
pid=$!
# Kill as soon as the first checkpoint is on disk (or give up after 60 s).
i=0
while [ -z "$(ls "$work/run" 2>/dev/null | grep '^ckpt-.*\.safetensors$' || true)" ]; do
  i=$((i + 1))
  if [ $i -gt 600 ] || ! kill -0 $pid 2>/dev/null; then break; fi
  sleep 0.1
done
kill -9 $pid 2>/dev/null || true
wait $pid 2>/dev/null || true
if [ -f "$work/run.safetensors" ]; then
  echo "resume_smoke: the first run finished before it could be killed" >&2
  exit 1
fi

"$bin" $args --checkpoint-dir "$work/run" --model-out "$work/run.safetensors" --metrics-out "$work/run.csv" \
  >"$work/second.log" 2>&1
grep -q "Resuming from checkpoint" "$work/second.log" || { echo "resume_smoke: no resume" >&2; cat "$work/second.log" >&2; exit 1; }
cmp "$work/ref.safetensors" "$work/run.safetensors"
echo "resume_smoke: killed, resumed ($(grep 'Resuming' "$work/second.log")), same model bytes"
