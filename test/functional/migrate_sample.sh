#!/bin/sh
# samples/migrate moves samples/server from one process to another; it
# exits 0 only when the destination's RAM and device match the source's.
#   migrate_sample.sh PATH-TO-vfu-server PATH-TO-vfu-migrate
set -u
server=$1
migrate=$2
dir=$(mktemp -d /tmp/vfu-migsample.XXXXXX)
trap 'kill $a $b 2>/dev/null; rm -rf "$dir"' EXIT
"$server" "$dir/a.sock" 2>"$dir/a.log" & a=$!
"$server" "$dir/b.sock" 2>"$dir/b.log" & b=$!
i=0
while { [ ! -S "$dir/a.sock" ] || [ ! -S "$dir/b.sock" ]; } && [ $i -lt 200 ]; do
    sleep 0.05; i=$((i + 1))
done
out=$(timeout 60 "$migrate" "$dir/a.sock" "$dir/b.sock")
status=$?
echo "$out"
wait $a $b
[ $status -eq 0 ] || { echo "vfu-migrate failed ($status)"; exit 1; }
echo "$out" | grep -q "dirty pages copied" || { echo "no pre-copy round"; exit 1; }
echo "$out" | grep -q "destination RAM matches" || exit 1
grep -q "migration: state restored, COUNT 1" "$dir/b.log" || { cat "$dir/b.log"; exit 1; }
grep -q "copied 12388 bytes" "$dir/b.log" || { cat "$dir/b.log"; exit 1; }
echo "migrate sample: OK"
