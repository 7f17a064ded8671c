#!/bin/sh
# The shared libraries export exactly the public calls: every defined dynamic
# symbol must be declared in the public headers, and every declared call must
# be exported.
set -eu
lib=$1
shift
exported=$(nm -D --defined-only "$lib" | awk '$2 == "T" { print $3 }' | sort)
declared=$(cat "$@" | grep -oE '^(vfu|dma)_[a-z0-9_]+\(' | tr -d '(' | sort -u)
# Declarations put the name at the start of a line after the return type.
status=0
for s in $exported; do
    echo "$declared" | grep -qx "$s" || { echo "exported but not declared: $s"; status=1; }
done
for s in $declared; do
    echo "$exported" | grep -qx "$s" || { echo "declared but not exported: $s"; status=1; }
done
[ $status = 0 ] && echo "$(echo "$exported" | wc -l) symbols exported, all declared"
exit $status
