#!/bin/sh
# `make demo`: starts the null device, lets the sample client explore it, and
# shows both sides of the session.
set -eu
build=${1:-build}
dir=$(mktemp -d /tmp/vfu-demo.XXXXXX)
sock="$dir/null.sock"
trap 'rm -rf "$dir"' EXIT

"$build/samples/null/vfu-null" -v "$sock" 2>"$dir/server.log" &
server=$!
i=0
while [ ! -S "$sock" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done

echo "=== client: $build/samples/client/vfu-client $sock"
"$build/samples/client/vfu-client" "$sock"
wait $server
echo
echo "=== server log (vfu-null -v)"
cat "$dir/server.log"
