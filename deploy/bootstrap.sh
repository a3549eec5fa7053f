#!/usr/bin/env bash
# deploy/bootstrap.sh — install what is missing (Debian, as root), configure
# and build.  Used by deploy/demo.sh and tests/run.sh; idempotent and quiet
# when everything is already there.
#
#   deploy/bootstrap.sh [BUILD_DIR [extra meson setup args…]]
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
builddir=${1:-build}
shift || true
case $builddir in /*) ;; *) builddir=$top/$builddir ;; esac

# Debian packages the build, the tests and the demo need.
packages=(meson ninja-build pkg-config gcc libmicrohttpd-dev libjansson-dev
	libcurl4-openssl-dev libpq-dev libinih-dev libwslay-dev nettle-dev libssl-dev libsystemd-dev libcmocka-dev postgresql
	python3 procps util-linux iproute2 shellcheck valgrind groff-base
	golang-go golang-nhooyr-websocket-dev prometheus mandoc ${VMI_EXTRA_PACKAGES:-})

missing=()
for p in "${packages[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
	if [ "$(id -u)" != 0 ]; then
		echo "bootstrap: missing packages: ${missing[*]} (run as root, or install them)" >&2
		exit 1
	fi
	echo "bootstrap: installing ${missing[*]}" >&2
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq >/dev/null
	apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if [ ! -f "$builddir/build.ninja" ]; then
	meson setup "$builddir" "$top" "$@" >/dev/null
fi
# Rebuild quietly; show the compiler's output only when something fails.
if ! log=$(meson compile -C "$builddir" 2>&1); then
	printf '%s\n' "$log" >&2
	echo "bootstrap: build failed in $builddir" >&2
	exit 1
fi
