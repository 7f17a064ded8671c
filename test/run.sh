#!/bin/sh
# Runs the test suite of a Meson build directory and ends with the line
# "N passed, N failed" that CI reads.
#
#   test/run.sh [BUILD [MESON-TEST-ARGS...]]
#
# Without MESON-TEST-ARGS it runs every suite but 'interop' (QEMU and a
# guest: `make test-interop`); with them, what they select, e.g.
# `test/run.sh build --suite interop`.
set -u
build=${1:-build}
[ $# -gt 0 ] && shift
[ $# -gt 0 ] || set -- --no-suite interop
meson test -C "$build" --print-errorlogs --num-processes 2 "$@"
status=$?
# The run's own log: testlog.json, or testlog-WRAPPER.json with --wrapper.
log=$(ls -t "$build"/meson-logs/testlog*.json 2>/dev/null | head -n 1)
passed=$(grep -c '"result": "OK"' "$log" 2>/dev/null || true)
failed=$(grep -c -E '"result": "(FAIL|TIMEOUT|ERROR|UNEXPECTEDPASS)"' "$log" 2>/dev/null || true)
skipped=$(grep -c '"result": "SKIP"' "$log" 2>/dev/null || true)
echo "${passed:-0} passed, ${failed:-0} failed, ${skipped:-0} skipped"
exit $status
