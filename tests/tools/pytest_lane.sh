#!/usr/bin/env bash
# Runs one pytest lane; "no test collected" (exit 5) is a failure here,
# since every lane is supposed to hold tests.
set -uo pipefail
"$@"
status=$?
if [ "$status" -eq 5 ]; then
  echo "error: no test was collected by: $*" >&2
  exit 1
fi
exit "$status"
