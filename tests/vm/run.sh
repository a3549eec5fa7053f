#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# tests/vm/run.sh — the real-VM end-to-end test, alone.
#
# Installs what it needs from Debian (QEMU, static busybox, kmod, gcc),
# builds the daemon (deploy/bootstrap.sh), then runs tests/vm/e2e.py, which
# fetches and caches the distribution kernel, boots it under QEMU (KVM where
# kvm_intel/kvm_amd is loaded, TCG otherwise) and plays the autoscaler.
# Ends with "vm: N passed, N failed".  Exit 0 = all passed, 77 = skipped
# because QEMU or the kernel cannot be had on this machine, 1 = failed.
#
# Environment: VMI_BUILD_DIR (default build) — where the daemon is built;
# VMI_VM_CACHE (default ~/.cache/vmi-vm) — kernel and vmtool cache;
# VMI_VM_KEEP=1 keeps the guest's work directory (serial log, initramfs).
set -uo pipefail

top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top" || exit 1

skip() {
	echo "vm: SKIP: $*"
	exit 77
}

packages=(qemu-system-x86 busybox-static kmod gcc libc6-dev python3)
missing=()
for p in "${packages[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
		missing+=("$p")
done
if ((${#missing[@]})); then
	[ "$(id -u)" = 0 ] || skip "missing packages ${missing[*]} and not root to install them"
	echo "vm: installing ${missing[*]}" >&2
	export DEBIAN_FRONTEND=noninteractive
	if ! apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null 2>&1; then
		apt-get update -qq >/dev/null 2>&1
		apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null 2>&1 ||
			skip "apt-get cannot install ${missing[*]}"
	fi
fi
command -v qemu-system-x86_64 >/dev/null || skip "qemu-system-x86_64 not found after install"

builddir=${VMI_BUILD_DIR:-build}
if ! deploy/bootstrap.sh "$builddir" >&2; then
	echo "vm: building the daemon failed"
	echo "vm: 0 passed, 1 failed"
	exit 1
fi

keep=()
[ "${VMI_VM_KEEP:-0}" = 1 ] && keep=(--keep)
# e2e.py bounds itself at 170 s; this is the backstop.
exec timeout -k 5 180 python3 tests/vm/e2e.py --daemon "$builddir/informant/vm-informant" \
	"${keep[@]}"
