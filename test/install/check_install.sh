#!/bin/sh
# Installs a build into a scratch root and builds a device against the
# installed headers and libvfio-user.pc, as a user of the library would.
set -eu
build=${1:-build}
root=$(mktemp -d /tmp/vfu-install.XXXXXX)
trap 'rm -rf "$root"' EXIT
meson install -C "$build" --destdir "$root" >/dev/null
pc=$(dirname "$(find "$root" -name libvfio-user.pc)")
flags=$(PKG_CONFIG_SYSROOT_DIR="$root" PKG_CONFIG_PATH="$pc" \
        pkg-config --cflags --libs libvfio-user)
# shellcheck disable=SC2086
cc -Wall -Wextra -Werror -o "$root/null" samples/null/null.c $flags
LD_LIBRARY_PATH=$(dirname "$(find "$root" -name libvfio-user.so.0)") \
    "$root/null" 2>&1 | grep -q usage
echo "install: headers, libvfio-user.so.0 and libvfio-user.pc build a device"
