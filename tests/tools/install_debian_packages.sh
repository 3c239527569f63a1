#!/usr/bin/env bash
# Installs the Debian packages one or more lanes need; runs apt-get only when
# something is missing, so repeated runs cost nothing.
#
# Usage: install_debian_packages.sh LANE...   (venv | demo | functional | vm | bench)
# venv: what pip needs to build the virtualenv's packages (dbus-python).
# The demo needs only iproute2 and openssl; qemu and a distribution kernel
# (~400 MB) come with the VM lane alone.
set -euo pipefail
declare -A lane_packages=(
  [venv]="python3-venv python3-dev gcc libdbus-1-dev libglib2.0-dev pkg-config"
  [demo]="iproute2 openssl procps"
  [functional]="iproute2 openssl procps dnsmasq-base isc-dhcp-client openvswitch-switch ethtool network-manager dbus"
  [vm]="iproute2 procps kmod qemu-system-x86 linux-image-amd64 busybox-static libteam-utils"
  [bench]="iproute2 openssl procps openvswitch-switch network-manager dbus"
)
(($#)) || set -- functional vm
packages=()
for lane in "$@"; do
  [[ -v lane_packages[$lane] ]] || { echo "unknown lane: $lane" >&2; exit 2; }
  read -r -a some <<<"${lane_packages[$lane]}"
  packages+=("${some[@]}")
done
missing=()
for pkg in $(printf '%s\n' "${packages[@]}" | sort -u); do
  dpkg-query -W -f='${Status}\n' "$pkg" 2>/dev/null | grep -q "install ok installed" \
    || missing+=("$pkg")
done
if ((${#missing[@]})); then
  echo "installing Debian packages: ${missing[*]}"
  if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
