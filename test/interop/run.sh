#!/bin/bash
# run.sh CASE BUILD_ROOT: one interoperability test. Starts a sample server
# from BUILD_ROOT, boots the test guest under QEMU's vfio-user client
# (-device vfio-user-pci) attached to it, and asserts the guest's verdict,
# what the guest printed and what the server logged. Prints "ok - ..." /
# "not ok - ..." per check; exits 0 when all passed.
#
# Needs the cache setup.sh fills ($VFU_INTEROP_DIR, default
# /var/tmp/vfu-interop). Logs stay in BUILD_ROOT/test/interop/CASE/:
# console.log (guest), server.log, qemu.log (QEMU's stderr).
# Knobs: QEMU_EXTRA (more QEMU options, e.g. "-trace vfio_user_* -D /tmp/t.log"),
# VFU_INTEROP_ACCEL (tcg, the default, or kvm), VFU_INTEROP_TIMEOUT (s per boot).
set -u
CASE=${1:?usage: run.sh CASE BUILD_ROOT}
BUILD=$(readlink -f "${2:?usage: run.sh CASE BUILD_ROOT}")
HERE=$(dirname "$(readlink -f "$0")")
DIR=${VFU_INTEROP_DIR:-/var/tmp/vfu-interop}
ACCEL=${VFU_INTEROP_ACCEL:-tcg}
BOOT_TIMEOUT=${VFU_INTEROP_TIMEOUT:-150}
QEMU=$DIR/bin/qemu-system-x86_64
W=$BUILD/test/interop/$CASE
WIN=0x10000000                  # RAM the guest kernel leaves alone (memmap=)
SAMPLES=$BUILD/samples
T0=$(date +%s.%N)

FAILS=0 CHECKS=0 SERVER_PID="" VM_PID=""

elapsed() { awk -v a="$T0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }'; }
note() { echo "# [$(elapsed)s] $*"; }
check() {   # check DESCRIPTION COMMAND...: one assertion
    local desc=$1; shift
    CHECKS=$((CHECKS + 1))
    if "$@"; then echo "ok $CHECKS - $desc"
    else echo "not ok $CHECKS - $desc"; FAILS=$((FAILS + 1)); fi
}
console_has() { grep -q -E -- "$1" "$W/console.log"; }
server_has()  { grep -q -E -- "$1" "$W/server.log"; }
server_count() { grep -c -E -- "$1" "$W/server.log"; }
# PATTERN in the server's log N times, waiting up to 5 s: the server logs a
# client's departure just after QEMU exits, when the check may already run.
server_count_reaches() {
    i=0
    while [ "$(server_count "$1")" -lt "$2" ] && [ $i -lt 50 ]; do
        sleep 0.1; i=$((i + 1))
    done
    [ "$(server_count "$1")" -eq "$2" ]
}
ge() { [ "$1" -ge "$2" ]; }
# A device reset logged after the first line matching $1.
reset_after() {
    awk -v pat="$1" '$0 ~ pat { seen = 1 } seen && /reset \(device\)/ { found = 1 } END { exit !found }' "$W/server.log"
}
eq() { [ "$1" = "$2" ]; }
verdict() { console_has "^LAB-RESULT: $1 PASS"; }
server_alive() { [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; }
# No error-level line in the server's log (but those matching $1, expected).
no_server_errors() {
    ! grep -E '\[[0-3]\]: ' "$W/server.log" | grep -v -E -- "${1:-^$}" | grep -q .
}

cleanup() {
    [ -n "$VM_PID" ] && [ -s "$W/qemu.pid" ] && kill "$(cat "$W/qemu.pid")" 2>/dev/null
    [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null
    wait 2>/dev/null
}
trap cleanup EXIT

die() { echo "not ok - $*"; exit 1; }

[ -x "$QEMU" ] && [ -s "$DIR/guest/vmlinuz" ] ||
    die "no QEMU/guest in $DIR: run test/interop/setup.sh (make test-interop does)"
rm -rf "$W"; mkdir -p "$W"
SOCK=$W/vfu.sock
case "$CASE" in
nvme-*)
    # Files the guest writes to the NVMe file system and checks after a
    # reboot and in a second VM: sizes around block and page boundaries.
    mkdir -p "$W/data"
    head -c 1048576 /dev/urandom > "$W/data/a"
    head -c 4097 /dev/urandom > "$W/data/b"
    head -c 300000 /dev/urandom > "$W/data/c"
    (cd "$W/data" && sha256sum a b c && sha256sum b | sed 's| b$| sub/b2|') > "$W/data/SHA256SUMS"
    export DATA_DIR=$W/data
    ;;
esac
"$HERE/guest/mkinitramfs.sh" "$DIR" "$HERE/guest/init" "$W/initrd.img" \
    "$BUILD/test/interop/mmio" ||
    die "initramfs"

# start_server SAMPLE ARGS...: SAMPLE's socket goes last; log in server.log.
start_server() {
    local i
    rm -f "$SOCK"
    "$@" "$SOCK" >> "$W/server.log" 2>&1 &
    SERVER_PID=$!
    for i in $(seq 1 200); do
        [ -S "$SOCK" ] && return 0
        kill -0 "$SERVER_PID" 2>/dev/null || break
        sleep 0.05
    done
    die "server $1 did not create $SOCK"
}

# boot [-m q35|pc] [-r] [-M memfd|default] KERNEL-ARGS...: boots the guest
# against the server until it powers off (or the timeout); console appended
# to console.log. -r lets the guest reboot (no -no-reboot). Returns QEMU's
# exit status.
boot() {
    local machine=pc reboot=-no-reboot mem=memfd dev bus="" q35=() memopts=()
    while [ $# -gt 0 ]; do
        case "$1" in
        -m) machine=$2; shift 2 ;;
        -r) reboot=""; shift ;;
        -M) mem=$2; shift 2 ;;
        *) break ;;
        esac
    done
    if [ "$machine" = q35 ]; then
        q35=(-device pcie-root-port,id=rp0,chassis=1,slot=0)
        bus='"bus":"rp0",'
    fi
    if [ "$mem" = memfd ]; then
        # Guest RAM the server can map: DMA_MAP comes with an fd.
        memopts=(-object memory-backend-memfd,id=mem,size=512M,share=on
                 -machine "$machine,memory-backend=mem")
    else
        memopts=(-machine "$machine")
    fi
    dev="{\"driver\":\"vfio-user-pci\",\"id\":\"vu0\",$bus\"socket\":{\"path\":\"$SOCK\",\"type\":\"unix\"}}"
    note "boot: $machine, $mem RAM, $*"
    echo "=== boot ($machine, $mem RAM): $*" >> "$W/console.log"
    # shellcheck disable=SC2086
    (
        set -o pipefail
        timeout -k 5 "$BOOT_TIMEOUT" "$QEMU" -accel "$ACCEL" -m 512 -smp 1 "${memopts[@]}" \
            -nodefaults -display none -serial stdio $reboot \
            -kernel "$DIR/guest/vmlinuz" -initrd "$W/initrd.img" \
            -append "console=ttyS0 quiet panic=-1 iomem=relaxed memmap=1M\$$WIN lab.win=$WIN $*" \
            "${q35[@]}" -device "$dev" -pidfile "$W/qemu.pid" ${QEMU_EXTRA:-} \
            < /dev/null 2>> "$W/qemu.log" | tr -d '\r' >> "$W/console.log"
    ) &
    VM_PID=$!
    wait "$VM_PID"
    local rc=$?
    VM_PID=""
    note "boot: QEMU exited with $rc"
    return $rc
}

# Waits up to 10 s for the server to exit by itself; its exit status.
server_exit() {
    local i
    for i in $(seq 1 100); do
        kill -0 "$SERVER_PID" 2>/dev/null || break
        sleep 0.1
    done
    wait "$SERVER_PID"
    local rc=$?
    SERVER_PID=""
    return $rc
}

# Prints the logs when something failed (meson shows them).
report() {
    local f
    if [ "$FAILS" -ne 0 ]; then
        for f in console.log server.log qemu.log; do
            [ -s "$W/$f" ] || continue
            echo "----- $f (last 80 lines; all of it in $W/$f)"
            tail -n 80 "$W/$f"
        done
    fi
    note "$CASE: $((CHECKS - FAILS)) of $CHECKS checks passed"
    [ "$FAILS" -eq 0 ] && [ "$CHECKS" -gt 0 ]
}

GPIO=$SAMPLES/gpio-pci-idio-16/vfu-gpio-pci-idio-16
LSPCI=$SAMPLES/lspci/vfu-lspci
NULL=$SAMPLES/null/vfu-null
SERVER=$SAMPLES/server/vfu-server
NVME=$SAMPLES/nvme/vfu-nvme

case "$CASE" in
gpio)
    # Linux's gpio-pci-idio-16 driver binds to the sample and what it
    # writes to the outputs shows on the inputs.
    start_server "$GPIO" -v
    check "QEMU ran the guest to power-off" boot "lab.dev=494f:0dc8 lab.mods=gpio-pci-idio-16 lab.test=gpio"
    check "guest: gpio-pci-idio-16 bound to the device" console_has "^LAB: driver pci-idio-16"
    check "guest: inputs follow outputs (gpio PASS)" verdict gpio
    check "server: the guest's writes reached the output register" server_has 'outputs 0-7 = 0x01'
    check "server: exits 0 when QEMU leaves" server_exit
    check "server: no errors logged" no_server_errors
    ;;

config)
    # The guest's view of the lspci sample, under q35 behind a PCI Express
    # root port (extended config space visible), against its declaration.
    start_server "$LSPCI" -d "$W/decl"
    check "QEMU ran the guest to power-off" boot -m q35 "lab.dev=1234:0002 lab.test=config"
    check "guest: config test ran" verdict config
    check "guest: ids 1234:0002, subsystem 1234:0002" console_has '^CFG: id 0x1234 0x0002 0x1234 0x0002$'
    check "guest: class ff0000, revision 1, header type 0" console_has '^CFG: class 0xff0000 rev 0x01 header 0x0 pin 0$'
    check "guest: 4096-byte config space" console_has '^CFG: config size 4096$'
    sed -n 's/^CFG: \(bar\|rom\|cap\) /\1 /p' "$W/console.log" | tr -d '\r' | sort > "$W/seen"
    sort "$W/decl" > "$W/declared"
    check "guest: BARs, ROM and both capability chains are the declared ones" \
        diff -u "$W/declared" "$W/seen"
    for b in $(awk '$1 == "bar" { print $2 } $1 == "rom" { print 6 }' "$W/decl"); do
        check "guest: resource $b has a non-zero, aligned address" console_has "^CFG: assigned $b "
    done
    check "guest: DSN serial 0x0123456789abcdef" console_has '^CFG: dsn 0x0123456789abcdef'
    check "guest: PCI Express endpoint, version 2, FLR" console_has '^CFG: express type 0 version 2 flr 1'
    check "guest: MSI-X, 8 vectors, table BAR0+0, PBA BAR0+0x2000" console_has '^CFG: msix vectors 8 table 0x0 pba 0x2000'
    check "guest: MSI, 4 vectors, 64-bit" console_has '^CFG: msi vectors 4 64bit 1'
    check "server: exits 0 when QEMU leaves" server_exit
    check "server: no errors logged" no_server_errors
    ;;

intx)
    # uio_pci_generic counts the gpio sample's INTx: one per raise, no storm.
    start_server "$GPIO" -v
    check "QEMU ran the guest to power-off" boot "lab.dev=494f:0dc8 lab.mods=uio_pci_generic lab.test=intx lab.n=5"
    check "guest: 5 interrupts seen, counted once each, no storm (intx PASS)" verdict intx
    check "server: INTx raised 5 times" eq "$(server_count 'raise INTx$')" 5
    check "server: exits 0 when QEMU leaves" server_exit
    check "server: no errors logged" no_server_errors
    ;;

posted)
    # Writes to a memory BAR without mmap are posted (NO_REPLY); with the
    # device slowed down they pile up in QEMU, which then coalesces them
    # into REGION_WRITE_MULTI.
    start_server "$NULL" -v -s 100
    check "QEMU ran the guest to power-off" boot "lab.dev=1234:0001 lab.test=posted lab.n=8"
    check "guest: BAR0 holds the last pattern written (posted PASS)" verdict posted
    check "server: posted REGION_WRITEs served without reply" server_has ': REGION_WRITE, .*no reply \(posted\)'
    check "server: REGION_WRITE_MULTI served" server_has ': REGION_WRITE_MULTI, .*no reply \(posted\)'
    check "server: the device saw all 8 x 1024 writes" eq "$(server_count 'BAR0 write of 4 bytes')" 8192
    check "server: exits 0 when QEMU leaves" server_exit
    check "server: no errors logged" no_server_errors
    ;;

dma-mapped|dma-message)
    # samples/server copies guest memory to guest memory: 256 KiB aligned,
    # 0x3ff8 bytes unaligned across pages, and a copy from outside guest
    # RAM that must fail cleanly. With memfd RAM QEMU shares guest memory
    # (DMA_MAP with fds: the server copies through its mapping); with
    # default RAM it does not, and every byte goes by DMA_READ/DMA_WRITE.
    if [ "$CASE" = dma-mapped ]; then mem=memfd how=mapped; else mem=default how="by message"; fi
    start_server "$SERVER" -v
    check "QEMU ran the guest to power-off" boot -M $mem "lab.dev=1234:0002 lab.test=dma"
    check "guest: both copies arrived intact, nothing around them changed (dma PASS)" verdict dma
    check "server: 256 KiB copied $how" server_has "copied 262144 bytes 0x10000000 -> 0x10080000 \\($how\\)"
    check "server: 0x3ff8 bytes copied $how" server_has "copied 16376 bytes 0x10041004 -> 0x100c1008 \\($how\\)"
    check "server: the copy from outside guest RAM failed" server_has 'copy of 4096 bytes 0xfff000000 -> 0x10080000 failed'
    check "server: raised INTx on each of the 3 completions" \
        eq "$(server_count 'completion interrupt raised \(INTx\)')" 3
    if [ "$CASE" = dma-mapped ]; then
        check "server: guest RAM came with fds (mapped)" server_has 'DMA region .* mapped'
    else
        check "server: guest RAM came without fds (by message)" server_has 'DMA region 0x100000\+0x1ff00000 by message'
    fi
    check "server: exits 0 when QEMU leaves" server_exit
    check "server: no other errors logged" no_server_errors 'copy of 4096 bytes 0xfff000000'
    ;;

msix)
    # samples/server signals each completed copy with MSI-X vector 0.
    start_server "$SERVER" -v
    check "QEMU ran the guest to power-off" boot "lab.dev=1234:0002 lab.test=msix"
    check "guest: each copy's MSI-X message arrived; masked, it was held and came on unmask (msix PASS)" verdict msix
    check "server: raised MSI-X vector 0 for each of the 4 copies" \
        eq "$(server_count 'completion interrupt raised \(MSI-X vector 0\)')" 4
    check "server: exits 0 when QEMU leaves" server_exit
    check "server: no errors logged" no_server_errors
    ;;

reset)
    # One server process, two VMs one after the other; the first reboots
    # (QEMU resets the device: DEVICE_RESET) and must find it reset.
    start_server "$GPIO" -v -l
    pid=$SERVER_PID
    check "VM 1: QEMU ran the guest through a reboot to power-off" boot -r "lab.dev=494f:0dc8 lab.mods=gpio-pci-idio-16 lab.test=reboot"
    check "VM 1: guest rebooted" console_has '^LAB: second boot'
    check "VM 1: device works after the reboot, outputs cleared (reboot PASS)" verdict reboot
    check "server: DEVICE_RESET reached the device after the guest's last write before rebooting" \
        reset_after 'outputs 8-15 = 0x92'
    check "server: still running after VM 1" server_alive
    check "VM 2: QEMU ran a second guest to power-off" boot "lab.dev=494f:0dc8 lab.mods=gpio-pci-idio-16 lab.test=gpio"
    check "VM 2: device works for the second VM (gpio PASS)" verdict gpio
    check "server: saw both clients leave" server_count_reaches 'reset \(client left\)' 2
    check "server: one process served both VMs" eq "$SERVER_PID" "$pid"
    check "server: still running after VM 2" server_alive
    check "server: no errors logged" no_server_errors
    ;;

nvme-mapped|nvme-message)
    # samples/nvme under Linux's nvme driver, one server process for two
    # VMs: VM 1 makes an ext2 file system, writes files, reboots (QEMU
    # resets the device) and verifies them; VM 2 verifies them again, then
    # writes and reads a pattern over the whole namespace with O_DIRECT.
    # With memfd RAM every transfer goes through the server's mapping of
    # guest memory; with default RAM every one goes by DMA message.
    if [ "$CASE" = nvme-mapped ]; then mem=memfd; else mem=default; fi
    size=$((32 * 1048576))
    truncate -s $size "$W/ns.img"
    start_server "$NVME" -p "$W/ns.img"
    pid=$SERVER_PID
    id="lab.dev=1234:4e56 lab.mods=nvme,ext4 lab.size=$size"
    check "VM 1: QEMU ran the guest through a reboot to power-off" boot -r -M $mem "$id lab.test=nvme-fs"
    check "VM 1: the nvme driver bound to the device" console_has '^LAB: driver nvme$'
    check "VM 1: /dev/nvme0n1 is 32 MiB" console_has "^NVME: /dev/nvme0n1 size $size,"
    check "VM 1: mke2fs, mount, files written, unmounted" console_has '^LAB: files written and unmounted'
    check "VM 1: after the reboot every checksum matches (nvme-fs PASS)" verdict nvme-fs
    check "server: DEVICE_RESET at the reboot" server_has 'reset \(device\)'
    check "server: still running after VM 1" server_alive
    check "VM 2: QEMU ran a second guest to power-off" boot -M $mem "$id lab.test=nvme-dio"
    check "VM 2: every checksum matches in a second VM" console_has '^LAB: checksums verified in the second VM'
    check "VM 2: direct-I/O pattern over the whole namespace read back intact" console_has '^LAB: direct-I/O pattern of 32 MiB'
    check "VM 2: a discarded range reads back as zeros (nvme-dio PASS)" verdict nvme-dio
    check "server: one process served both VMs" eq "$SERVER_PID" "$pid"
    check "server: each guest shut the controller down (3 shutdowns)" \
        server_count_reaches 'shutdown complete' 3
    # 'client gone' (the sample's statistics) comes last, after the reset.
    check "server: saw both clients leave" server_count_reaches 'client gone:' 2
    if [ "$CASE" = nvme-mapped ]; then
        check "server: every transfer went through the mapping (none by message)" \
            eq "$(server_count 'client gone: .* 0 transfers by message')" 2
    else
        check "server: transfers went by DMA message" \
            eq "$(server_count 'client gone: .* [1-9][0-9]* transfers by message')" 2
    fi
    kill "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null; SERVER_PID=""
    want=$(sed -n 's/^NVME: pattern sha256 \([0-9a-f]*\).*/\1/p' "$W/console.log")
    check "host: the backing file holds the guest's pattern" \
        eq "$(sha256sum < "$W/ns.img" | cut -d' ' -f1)" "${want:-none}"
    check "server: no errors logged" no_server_errors
    ;;

*)
    die "unknown case $CASE"
    ;;
esac
report
