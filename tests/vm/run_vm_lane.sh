#!/usr/bin/env bash
# Run tests/vm inside a virtme-ng guest booted with Debian's stock kernel.
#
# This host's kernel has no bonding / 8021q / dummy; Debian's linux-image-amd64
# has them as modules.  One boot runs the whole folder; the guest sees the
# host's root filesystem read-only through 9p (writable overlays on /etc, /tmp,
# /var, /usr, /home ...; the checkout itself stays read-only unless it lives
# under one of those), so the project's virtualenv is used as it is.
#
# Usage: tests/vm/run_vm_lane.sh [pytest args...]
#   (arguments naming tests/... run those only, e.g.
#   tests/vm/run_vm_lane.sh tests/vm/test_nm_bonds_vlans.py -x)
# Exit status: pytest's (124 if the boot timed out).
#
# Needs (Debian): qemu-system-x86 linux-image-amd64 busybox-static, and
# libteam-utils (teamd, teamdctl: the guest runs the host's), run as
# root (/boot/vmlinuz-* is mode 0600), virtme-ng in the virtualenv.
#
# Environment overrides:
#   NETRELOAD_VENV          virtualenv to use (default: <repo>/.venv)
#   NETRELOAD_VM_KERNEL     kernel image (default: newest /boot/vmlinuz-*-amd64
#                           with modules, other than the running kernel)
#   NETRELOAD_VM_BUSYBOX    statically linked busybox for the initramfs
#   NETRELOAD_VM_TIMEOUT    seconds before the VM is killed (default 2400,
#                           0 = no limit)
#   NETRELOAD_VM_VERBOSE=1  show the guest kernel console on stderr
set -euo pipefail

die() {
    echo "run_vm_lane: $*" >&2
    exit 2
}

# Quote one word for the guest's /bin/sh (POSIX single quotes).
shq() {
    local s=${1//\'/\'\\\'\'}
    printf "'%s'" "$s"
}

REPO=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/../.." && pwd -P)
VENV=${NETRELOAD_VENV:-$REPO/.venv}
VENV=$(cd -- "$VENV" 2>/dev/null && pwd -P) || die "no virtualenv at ${NETRELOAD_VENV:-$REPO/.venv}"
PYTHON=$VENV/bin/python
VNG=$VENV/bin/vng
[[ -x $PYTHON ]] || die "$PYTHON not found"
[[ -x $VNG ]] || die "$VNG not found: pip install virtme-ng into $VENV"
# vng runs virtme-run (and virtme-ng-init) by name: they must be on PATH.
export PATH="$VENV/bin:$PATH"
command -v qemu-system-x86_64 >/dev/null ||
    die "qemu-system-x86_64 not found: apt-get install qemu-system-x86"

# ---- kernel: newest Debian kernel in /boot that is not the running one ----
HOST_KERNEL=$(uname -r)
kernel_has_modules() { [[ -f /lib/modules/$1/modules.dep ]]; }

if [[ -n ${NETRELOAD_VM_KERNEL:-} ]]; then
    KERNEL=$NETRELOAD_VM_KERNEL
    KVER=${KERNEL##*/vmlinuz-}
else
    KERNEL=
    skipped=()
    while IFS= read -r ver; do
        [[ $ver == "$HOST_KERNEL" ]] && continue
        if kernel_has_modules "$ver"; then
            KERNEL=/boot/vmlinuz-$ver
            break
        fi
        skipped+=("$ver")
    done < <(
        shopt -s nullglob
        for k in /boot/vmlinuz-*-amd64; do echo "${k#/boot/vmlinuz-}"; done |
            sort -rV
    )
    [[ -n $KERNEL ]] || die "no /boot/vmlinuz-*-amd64 with /lib/modules/<version>" \
        "(skipped: ${skipped[*]:-none}); apt-get install linux-image-amd64"
    if ((${#skipped[@]})); then
        echo "run_vm_lane: skipped kernels without modules: ${skipped[*]}" >&2
    fi
    KVER=${KERNEL#/boot/vmlinuz-}
fi
[[ -r $KERNEL ]] || die "cannot read $KERNEL (Debian installs it mode 0600: run as root)"
kernel_has_modules "$KVER" || die "/lib/modules/$KVER/modules.dep missing: the guest could not load modules"
for mod in bonding 8021q dummy sch_hfsc cls_basic em_meta team team_mode_activebackup; do
    modinfo -k "$KVER" -F filename "$mod" >/dev/null 2>&1 ||
        die "module $mod not in /lib/modules/$KVER"
done

# ---- busybox: the Debian kernel needs an initramfs (virtio/9p are modules),
# which virtme builds around a *statically linked* busybox ----
find_busybox() {
    local c
    if [[ -n ${NETRELOAD_VM_BUSYBOX:-} ]]; then
        echo "$NETRELOAD_VM_BUSYBOX"
        return
    fi
    for c in busybox-static busybox.static busybox; do
        if command -v "$c" >/dev/null; then
            command -v "$c"
            return
        fi
    done
}
BUSYBOX=$(find_busybox)
[[ -n $BUSYBOX && -x $BUSYBOX ]] ||
    die "no busybox found: apt-get install busybox-static (or set NETRELOAD_VM_BUSYBOX)"
if ldd "$BUSYBOX" >/dev/null 2>&1; then
    die "$BUSYBOX is dynamically linked and cannot run in virtme's initramfs:" \
        "apt-get install busybox-static (or set NETRELOAD_VM_BUSYBOX)"
fi

# ---- the command run in the guest ----
# virtme-ng mounts an empty tmpfs on the guest's /var/cache, hiding the
# ifcfg-rh NetworkManager build (make nm-ifcfg, /var/cache/netreload): it is
# shown again from the host's root as shared (a bind of / without its
# submounts), read-only as the rest.
HOSTROOT=/run/netreload-hostroot
guest_cmd="mkdir -p $HOSTROOT && mount --bind / $HOSTROOT"
guest_cmd+=" && if [ -d $HOSTROOT/var/cache/netreload ]; then mkdir -p /var/cache/netreload"
guest_cmd+=" && mount --bind $HOSTROOT/var/cache/netreload /var/cache/netreload; fi"
guest_cmd+=" && cd $(shq "$REPO") && exec env NETRELOAD_VM_LANE=1"
guest_cmd+=" NETRELOAD_HOST_KERNEL=$(shq "$HOST_KERNEL") PYTHONDONTWRITEBYTECODE=1"
# the whole folder, unless the arguments name tests (a path, a file::test)
selected=0
for arg in "$@"; do
    [[ $arg == tests/* ]] && selected=1
done
guest_cmd+=" $(shq "$PYTHON") -m pytest -p no:cacheprovider -q"
((selected)) || guest_cmd+=" tests/vm"
for arg in "$@"; do
    guest_cmd+=" $(shq "$arg")"
done

vng_args=(
    --run "$KERNEL"
    --disable-kvm # required: with KVM qemu aborts ("failed to set MSR 0x10a")
    --user root
    --memory 2G
    --cpus 2
    --busybox "$BUSYBOX"
)
if [[ ${NETRELOAD_VM_VERBOSE:-0} == 1 ]]; then
    vng_args+=(--verbose)
fi

TIMEOUT=${NETRELOAD_VM_TIMEOUT:-2400}
echo "run_vm_lane: booting $KERNEL (host kernel $HOST_KERNEL) for: $guest_cmd" >&2

cd -- "$REPO"
# The VM's output goes through FIFOs + cat.  qemu reopens the guest's
# stdout/stderr as /proc/self/fd/{1,2} with O_TRUNC and its own file offset:
# when this script's output is redirected to a regular file (CI logs,
# `>log 2>&1`) that truncates the log and the two streams overwrite each
# other.  Pipes are not affected.
fifo_dir=$(mktemp -d "${TMPDIR:-/tmp}/run_vm_lane.XXXXXX")
trap 'rm -rf -- "$fifo_dir"' EXIT
mkfifo "$fifo_dir/out" "$fifo_dir/err"
cat <"$fifo_dir/out" &
out_pid=$!
cat <"$fifo_dir/err" >&2 &
err_pid=$!

start=$EPOCHREALTIME
# stdin is always /dev/null: qemu reads the script's stdin through a chardev,
# which must be an openable fd (CI may have none; a terminal would be put in
# raw mode). timeout (0 = no limit) gives the VM its own process group and
# kills it whole, on expiry or when this script is interrupted.
timeout -k 30 "$TIMEOUT" "$VNG" "${vng_args[@]}" -- "$guest_cmd" \
    </dev/null >"$fifo_dir/out" 2>"$fifo_dir/err" &
vm_pid=$!
interrupted=0
trap 'interrupted=1; kill -TERM "$vm_pid" 2>/dev/null || true' INT TERM HUP
rc=0
wait "$vm_pid" || rc=$?
# A trapped signal cuts wait short (status > 128): wait for the real status.
while ((interrupted && rc > 128)); do
    interrupted=0
    rc=0
    wait "$vm_pid" || rc=$?
done
trap - INT TERM HUP
wait "$out_pid" "$err_pid" || true
end=$EPOCHREALTIME

elapsed=$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.1f", b - a }')
if ((rc == 124 && TIMEOUT > 0)); then
    echo "run_vm_lane: TIMEOUT after ${elapsed}s (limit ${TIMEOUT}s)" >&2
fi
echo "run_vm_lane: boot + pytest took ${elapsed}s (kernel $KVER), exit status $rc" >&2
exit "$rc"
