#!/bin/sh
# Holds include/ and the built library against libvfio-user 0.2's public
# API written down as facts (contract.tsv, checked by check.py). The copy in
# ../shared/abi/ is the authority when it is there; the copy beside this
# script (taken from it) serves a fresh clone. Fails on any fact that does
# not hold.
#
#   test/abi/check.sh INCLUDE_DIR LIBRARY.so
set -eu
here=$(cd "$(dirname "$0")" && pwd)
shared=$here/../../../shared/abi
if [ -f "$shared/check.py" ] && [ -f "$shared/contract.tsv" ]; then
    dir=$shared
else
    dir=$here
fi
echo "contract: $dir/contract.tsv"
exec python3 "$dir/check.py" "$1" "$2"
