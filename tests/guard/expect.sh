#!/bin/sh
# expect.sh STATUS MESSAGE COMMAND...: passes when COMMAND exits with STATUS and its output contains
# MESSAGE (an empty MESSAGE matches anything). Proves that a guard trips, and how.
expected_status=$1
expected_message=$2
shift 2
output=$("$@" 2>&1)
status=$?
echo "$output"
if [ "$status" -ne "$expected_status" ]; then
  echo "expect.sh: exit status $status, expected $expected_status" >&2
  exit 1
fi
if [ -n "$expected_message" ] && ! printf '%s\n' "$output" | grep -qF -- "$expected_message"; then
  echo "expect.sh: output lacks \"$expected_message\"" >&2
  exit 1
fi
echo "expect.sh: exit status $status and message as expected"
