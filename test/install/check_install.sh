#!/bin/sh
# Uses the library as its users do: installed (headers under
# <prefix>/include/vfio-user/, libvfio-user.pc), with both include styles;
# and as a Meson subproject (libvfio_user_dep), built static.
set -eu
build=${1:-build}
src=$(cd "$(dirname "$0")/../.." && pwd)
root=$(mktemp -d /tmp/vfu-install.XXXXXX)
trap 'rm -rf "$root"' EXIT
meson install -C "$build" --destdir "$root" >/dev/null
for h in libvfio-user.h vfio-user.h pci_defs.h vfio-user-client.h \
         pci_caps/px.h pci_caps/msix.h; do
    f=$(find "$root" -path "*/include/vfio-user/$h")
    [ -n "$f" ] || { echo "install: $h not under include/vfio-user/"; exit 1; }
done
pc=$(dirname "$(find "$root" -name libvfio-user.pc)")
flags=$(PKG_CONFIG_SYSROOT_DIR="$root" PKG_CONFIG_PATH="$pc" \
        pkg-config --cflags --libs libvfio-user)
libdir=$(dirname "$(find "$root" -name libvfio-user.so.0)")
# shellcheck disable=SC2086
cc -Wall -Wextra -Werror -o "$root/null" "$src/samples/null/null.c" $flags
LD_LIBRARY_PATH=$libdir "$root/null" 2>&1 | grep -q usage
for style in "" -DVFU_INCLUDE_PREFIXED; do
    # shellcheck disable=SC2086
    cc -Wall -Wextra -Werror $style -o "$root/device" \
        "$src/test/install/consumer/device.c" $flags
    LD_LIBRARY_PATH=$libdir "$root/device" "$root/s" | grep -q realized
done
echo "install: headers in include/vfio-user/, libvfio-user.pc, both include styles"

# As a subproject: a copy of the consumer with us under subprojects/.
proj=$root/consumer
mkdir -p "$proj/subprojects"
cp "$src/test/install/consumer/meson.build" \
   "$src/test/install/consumer/device.c" "$proj/"
ln -s "$src" "$proj/subprojects/libvfio-user"
meson setup "$proj/build" "$proj" >/dev/null
ninja -C "$proj/build" >/dev/null
"$proj/build/device" "$root/s2" | grep -q realized
if ldd "$proj/build/device" | grep -q libvfio-user; then
    echo "subproject: linked the shared library, not the static one"; exit 1
fi
echo "subproject: libvfio_user_dep builds a device, statically linked"
