#!/usr/bin/env bash
# Installs the Debian packages the test lanes and the demo need; runs
# apt-get only when something is missing, so repeated runs cost nothing.
set -euo pipefail
packages=(iproute2 dnsmasq-base isc-dhcp-client qemu-system-x86 linux-image-amd64
          openvswitch-switch kmod procps busybox-static openssl ethtool)
missing=()
for pkg in "${packages[@]}"; do
  dpkg-query -W -f='${Status}\n' "$pkg" 2>/dev/null | grep -q "install ok installed" \
    || missing+=("$pkg")
done
if ((${#missing[@]})); then
  echo "installing Debian packages: ${missing[*]}"
  if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
