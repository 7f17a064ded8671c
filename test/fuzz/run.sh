#!/bin/sh
# Runs the fuzzers of a -Dfuzz=true build (`make fuzz`, CI): each for a
# bounded time, from its seed corpus (test/fuzz/corpus/NAME) and every
# regression input (test/fuzz/regressions/NAME), with its dictionary.
# Fails on any finding: a crash, a sanitizer report, a leak, a hang of
# more than 10 s, or a check of the fuzzer's own.
#
#   test/fuzz/run.sh BUILD [SECONDS] [NAME...]
#
# SECONDS applies to every fuzzer; without it each gets its CI budget
# (server and client 120 s, tran 60 s, version 30 s: 5.5 minutes).
# The corpus grown and anything found go to BUILD/fuzz-work/NAME; a
# finding's input goes to test/fuzz/regressions/NAME once it is fixed.
set -u
build=${1:?usage: run.sh BUILD [SECONDS] [NAME...]}
secs=${2:-}
[ $# -gt 2 ] && shift 2 || set --
src=$(cd "$(dirname "$0")" && pwd)
names=${*:-server client tran version}
status=0
# A UBSan report is a finding, as the ASan ones are.
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}

budget() {
    case $1 in
        server|client) echo 120 ;;
        tran) echo 60 ;;
        *) echo 30 ;;
    esac
}

for name in $names; do
    bin=$build/test/fuzz/fuzz-$name
    work=$build/fuzz-work/$name
    t=${secs:-$(budget "$name")}
    dict=
    [ -f "$src/dict/$name.dict" ] && dict=-dict=$src/dict/$name.dict
    if [ ! -x "$bin" ]; then
        echo "fuzz-$name: not built (meson setup with -Dfuzz=true)"
        status=1
        continue
    fi
    rm -rf "$work/artifacts"
    mkdir -p "$work/corpus" "$work/artifacts"
    echo "fuzz-$name: ${t}s"
    "$bin" -max_total_time="$t" -timeout=10 -rss_limit_mb=2560 \
        -max_len=16384 -print_final_stats=1 \
        -artifact_prefix="$work/artifacts/" $dict \
        "$work/corpus" "$src/corpus/$name" "$src/regressions/$name" \
        >"$work/log" 2>&1
    rc=$?
    grep -E '^#[0-9]+ +DONE|^stat::number_of_executed_units|^stat::average_exec_per_sec' \
        "$work/log" | sed "s/^/  /"
    if [ $rc -ne 0 ] || [ -n "$(ls -A "$work/artifacts")" ]; then
        echo "fuzz-$name: FINDING (exit $rc); log $work/log"
        grep -E 'FUZZ FINDING|ERROR: |SUMMARY: ' "$work/log" | head -5 | sed "s/^/  /"
        ls "$work/artifacts" | sed "s|^|  input: $work/artifacts/|"
        status=1
    fi
done
exit $status
