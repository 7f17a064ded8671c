#!/bin/sh
# mkinitramfs.sh DIR INIT OUT [PROGRAM...]: the test guest's initramfs: the
# static busybox and the kernel modules that setup.sh put into DIR/guest,
# INIT as /init and the (static) PROGRAMs in /bin. With DATA_DIR set, its
# files go to /data (test data the guest writes and checks).
set -eu
G=$1/guest INIT=$2 OUT=$3
shift 3
KVER=$(cat "$G/kver")
STAGE=$(mktemp -d)
trap 'rm -rf "$STAGE"' EXIT
mkdir -p "$STAGE/bin" "$STAGE/lib/modules"
cp "$G/busybox" "$STAGE/bin/busybox"
[ $# -eq 0 ] || cp "$@" "$STAGE/bin/"
cp "$INIT" "$STAGE/init"
[ -z "${DATA_DIR:-}" ] || cp -r "$DATA_DIR" "$STAGE/data"
chmod 755 "$STAGE/init"
cp -r "$G/modules/$KVER" "$STAGE/lib/modules/$KVER"
"$G/busybox" depmod -b "$STAGE" "$KVER"
(cd "$STAGE" && find . | "$G/busybox" cpio -o -H newc 2>/dev/null) | gzip -1 > "$OUT"
