#!/bin/bash
# setup.sh - prepares what the interoperability tests need, once, in a cache
# directory that later runs reuse:
#
#   $VFU_INTEROP_DIR (default /var/tmp/vfu-interop)
#     bin/qemu-system-x86_64   QEMU >= 10.1 (vfio-user-pci) from Debian
#                              trixie-backports, unpacked under qemu-root/ and
#                              started through its own dynamic loader: nothing
#                              newer than the host's release is installed
#     guest/vmlinuz            the host release's (bookworm) generic kernel
#     guest/busybox            static busybox, the guest's userland
#     guest/modules/           the kernel modules the tests load, with deps
#
# The guest's initramfs is built per test run by guest/mkinitramfs.sh from
# guest/init (this directory), so changing the tests needs no new set-up.
#
#   test/interop/setup.sh            # ~75 s and ~110 MB of downloads the first time
#   VFU_INTEROP_DIR=/some/dir test/interop/setup.sh
#
# Runs on Debian 12 (x86_64). Needs network and, for the downloads, the
# host's apt sources (as root it runs `apt-get update` first). Stages whose
# stamp matches are skipped; remove the directory to start over.
set -euo pipefail
DIR=${VFU_INTEROP_DIR:-/var/tmp/vfu-interop}
QEMU_SUITE=${QEMU_SUITE:-trixie-backports}
# Modules the guest may load (their dependencies come along).
MODULES="gpio-pci-idio-16 uio_pci_generic vfio-pci nvme ext4 crc32c_generic"

export DEBIAN_FRONTEND=noninteractive
T0=$(date +%s)
say() { echo "[interop setup $(( $(date +%s) - T0 ))s] $*"; }
die() { echo "interop setup: $*" >&2; exit 1; }
mkdir -p "$DIR"/{bin,guest}
exec 9> "$DIR/.lock"
flock 9                                 # one set-up at a time per directory

########################################################################
# QEMU from $QEMU_SUITE, unpacked with its own libraries (no install)
########################################################################
QSTAMP="qemu-system-x86 from trixie + $QEMU_SUITE"
qemu_ok() {
    [ "$(cat "$DIR/.stamp-qemu" 2>/dev/null)" = "$QSTAMP" ] &&
        "$DIR/bin/qemu-system-x86_64" -device help 2>/dev/null | grep -q '"vfio-user-pci"'
}
if qemu_ok; then
    say "qemu: cached ($("$DIR/bin/qemu-system-x86_64" --version | head -1))"
else
    rm -f "$DIR/.stamp-qemu"
    A=$DIR/apt
    R=$DIR/qemu-root
    mkdir -p "$A"/etc/{apt.conf.d,preferences.d,sources.list.d} "$A"/lists/partial \
             "$A"/archives/partial "$A"/cache
    : > "$A/status"             # empty dpkg status: the whole dependency closure
    # The Debian archive this machine already uses.
    MIRROR=${MIRROR:-$(cat /etc/apt/sources.list.d/*.sources 2>/dev/null |
                       awk '/^URIs:/ {print $2; exit}')}
    [ -n "$MIRROR" ] || MIRROR=$(awk '$1 == "deb" { for (i = 2; i <= NF; i++)
                                   if ($i ~ /^[a-z]+:\/\//) { print $i; exit } }' \
                                 /etc/apt/sources.list 2>/dev/null)
    [ -n "$MIRROR" ] || die "no Debian archive in this machine's apt sources (set MIRROR=)"
    KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg
    cat > "$A/etc/sources.list" <<EOF
deb [signed-by=$KEYRING] $MIRROR trixie main
deb [signed-by=$KEYRING] $MIRROR $QEMU_SUITE main
EOF
    cat > "$A/apt.conf" <<EOF
Dir::Etc::SourceList "$A/etc/sources.list";
Dir::Etc::SourceParts "$A/etc/sources.list.d";
Dir::Etc::Parts "$A/etc/apt.conf.d";
Dir::Etc::Preferences "$A/etc/preferences";
Dir::Etc::PreferencesParts "$A/etc/preferences.d";
Dir::State::Lists "$A/lists";
Dir::State::status "$A/status";
Dir::Cache "$A/cache";
Dir::Cache::archives "$A/archives";
APT::Architecture "amd64";
APT::Architectures { "amd64"; };
APT::Install-Recommends "false";
APT::Install-Suggests "false";
Acquire::Languages "none";
Debug::NoLocking "true";
EOF
    say "qemu: package lists of trixie + $QEMU_SUITE ($MIRROR)"
    APT_CONFIG=$A/apt.conf apt-get update -qq
    say "qemu: downloading qemu-system-x86 and its closure (~38 MB)"
    APT_CONFIG=$A/apt.conf apt-get -y -qq -t "$QEMU_SUITE" install --download-only \
        qemu-system-x86 >/dev/null
    say "qemu: unpacking into $R"
    rm -rf "$R"; mkdir -p "$R"
    for d in "$A"/archives/*.deb; do dpkg-deb -x "$d" "$R"; done
    for l in bin lib lib64 sbin; do [ -e "$R/$l" ] || ln -s "usr/$l" "$R/$l"; done
    rm -rf "$A"                 # lists and packages: ~100 MB we no longer need
    cat > "$DIR/bin/qemu-system-x86_64" <<'EOF'
#!/bin/sh
# QEMU from the unpacked tree beside this directory, run by its own loader.
R=$(dirname "$(dirname "$(readlink -f "$0")")")/qemu-root
export QEMU_MODULE_DIR=$R/usr/lib/x86_64-linux-gnu/qemu
exec "$R/usr/lib64/ld-linux-x86-64.so.2" --library-path "$R/usr/lib/x86_64-linux-gnu" \
     "$R/usr/bin/qemu-system-x86_64" -L "$R/usr/share/qemu" -L "$R/usr/share/seabios" "$@"
EOF
    chmod +x "$DIR/bin/qemu-system-x86_64"
    v=$("$DIR/bin/qemu-system-x86_64" --version | head -1)
    "$DIR/bin/qemu-system-x86_64" -device help | grep -q '"vfio-user-pci"' ||
        die "$v has no vfio-user-pci device"
    echo "$QSTAMP" > "$DIR/.stamp-qemu"
    say "qemu: $v"
fi

########################################################################
# Guest: the host release's kernel, static busybox, the modules we load
########################################################################
GSTAMP="linux-image-amd64 busybox-static; modules: $MODULES"
G=$DIR/guest
if [ "$(cat "$DIR/.stamp-guest" 2>/dev/null)" = "$GSTAMP" ] &&
   [ -s "$G/vmlinuz" ] && [ -x "$G/busybox" ] && [ -s "$G/kver" ]; then
    say "guest: cached (kernel $(cat "$G/kver"))"
else
    rm -f "$DIR/.stamp-guest"
    if [ "$(id -u)" = 0 ]; then
        say "guest: apt-get update (host lists)"
        apt-get update -qq
    fi
    KPKG=$(apt-cache depends linux-image-amd64 |
           awk '/Depends: linux-image-[0-9]/ { print $2; exit }')
    [ -n "$KPKG" ] || die "no linux-image-amd64 in the host's apt lists (run apt-get update)"
    KVER=${KPKG#linux-image-}
    say "guest: downloading $KPKG and busybox-static (~70 MB)"
    W=$(mktemp -d "$DIR/guest-work.XXXXXX")
    chmod 755 "$W"                      # apt-get download runs as _apt
    trap 'rm -rf "$W"' EXIT
    (cd "$W" && apt-get download -qq "$KPKG" busybox-static)
    mkdir -p "$W/k" "$W/bb"
    dpkg-deb -x "$W"/busybox-static_*.deb "$W/bb"
    dpkg-deb -x "$W"/linux-image-*.deb "$W/k"
    [ -e "$W/k/lib" ] || ln -s usr/lib "$W/k/lib"       # merged-/usr packages
    MD=$W/k/lib/modules/$KVER
    "$W/bb/bin/busybox" depmod -b "$W/k" "$KVER"        # the package has no modules.dep
    rm -rf "$G/modules"; mkdir -p "$G/modules/$KVER"
    for m in $MODULES; do
        pat=$(echo "$m" | sed 's/[-_]/[-_]/g')
        line=$(grep -E "(^|/)$pat\.ko(\.xz|\.zst|\.gz)?:" "$MD/modules.dep") ||
            die "module $m not in $KPKG"
        for f in $(echo "$line" | tr -d ':'); do
            mkdir -p "$G/modules/$KVER/$(dirname "$f")"
            cp "$MD/$f" "$G/modules/$KVER/$f"
        done
    done
    cp "$W/k/boot/vmlinuz-$KVER" "$G/vmlinuz"
    cp "$W/k/boot/config-$KVER" "$G/config"
    cp "$W/bb/bin/busybox" "$G/busybox"
    echo "$KVER" > "$G/kver"
    rm -rf "$W"; trap - EXIT
    echo "$GSTAMP" > "$DIR/.stamp-guest"
    say "guest: kernel $KVER, modules: $(cd "$G/modules/$KVER" && find . -name '*.ko*' | wc -l)"
fi
say "ready in $DIR"
