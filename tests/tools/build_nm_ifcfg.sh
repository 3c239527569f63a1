#!/usr/bin/env bash
# Builds NetworkManager 1.42 with the ifcfg-rh settings plugin from Debian's
# source package, into a prefix outside the checkout, once per machine.
#
# Debian's binary NetworkManager is built without ifcfg-rh; the functional
# tests of the ifcfg configurator ([ifcfg] apply = nm) need a real reader of
# RHEL ifcfg files, and this build is it. The recipe is the one verified in
# ../shared/KERNEL_LANES.md (most features off: a few minutes, ~50 MB).
#
# Usage: build_nm_ifcfg.sh [PREFIX]
#   PREFIX defaults to $NETRELOAD_NM_IFCFG_PREFIX or
#   /var/cache/netreload/nm-ifcfg-rh-1.42. Nothing is done when PREFIX holds a
#   finished build (its .built stamp); an interrupted build is started over.
# Apt is used only when something is missing: a deb-src entry for the
# distribution's main archive (added once, in its own sources file) and the
# build dependencies below.
set -euo pipefail

NM_SERIES=1.42
PREFIX=${1:-${NETRELOAD_NM_IFCFG_PREFIX:-/var/cache/netreload/nm-ifcfg-rh-$NM_SERIES}}
STAMP=$PREFIX/.built
BUILD_DEPS="dpkg-dev meson ninja-build pkg-config xsltproc libglib2.0-dev libudev-dev
  libndp-dev uuid-dev libmount-dev libreadline-dev libdbus-1-dev libjansson-dev libnss3-dev
  libcurl4-gnutls-dev libsystemd-dev gettext dbus"
SRC_LIST=/etc/apt/sources.list.d/netreload-deb-src.sources

if [ -f "$STAMP" ]; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi

# One build at a time per prefix (two lanes started together wait here).
$SUDO mkdir -p "$(dirname "$PREFIX")"
exec 9>"$PREFIX.lock"
flock 9
if [ -f "$STAMP" ]; then
  exit 0
fi
echo "building NetworkManager $NM_SERIES with ifcfg-rh into $PREFIX (once per machine)"

missing=()
for pkg in $BUILD_DEPS; do
  dpkg-query -W -f='${Status}\n' "$pkg" 2>/dev/null | grep -q "install ok installed" \
    || missing+=("$pkg")
done
apt_updated=
if ((${#missing[@]})); then
  echo "installing build dependencies: ${missing[*]}"
  $SUDO apt-get update -q
  apt_updated=1
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends \
    "${missing[@]}"
fi

# deb-src for the distribution's own archive, only when no source entry exists.
if ! grep -rqsE '^(Types:.*deb-src|deb-src )' /etc/apt/sources.list /etc/apt/sources.list.d/; then
  . /etc/os-release
  echo "adding a deb-src entry for $ID $VERSION_CODENAME main ($SRC_LIST)"
  $SUDO tee "$SRC_LIST" >/dev/null <<EOF
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: $VERSION_CODENAME
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
  apt_updated=
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/nm-ifcfg-build.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
cd "$WORK"
if ! apt-get source --download-only network-manager >/dev/null 2>&1; then
  [ -n "$apt_updated" ] || $SUDO apt-get update -q
  apt-get source --download-only network-manager
fi
dsc=$(ls network-manager_*.dsc)
case "$dsc" in
  network-manager_$NM_SERIES.*) ;;
  *) echo "expected NetworkManager $NM_SERIES, the archive has $dsc" >&2; exit 1 ;;
esac
dpkg-source -x "$dsc" src >/dev/null

$SUDO rm -rf "$PREFIX"
meson setup src/build src -Dprefix="$PREFIX" -Difcfg_rh=true -Difupdown=false \
  -Dsystemdsystemunitdir=no -Dudev_dir=no -Ddbus_conf_dir="$PREFIX/dbus" \
  -Dsession_tracking=no -Dsession_tracking_consolekit=false -Dpolkit=false \
  -Dselinux=false -Dsystemd_journal=false -Dlibaudit=no -Dwext=false -Dwifi=false \
  -Dppp=false -Dmodem_manager=false -Dconcheck=false -Dteamdctl=false -Dovs=false \
  -Dnmtui=false -Dnm_cloud_setup=false -Dintrospection=false -Dvapi=false \
  -Ddocs=false -Dtests=no -Dfirewalld_zone=false -Dlibpsl=false -Dcrypto=null \
  -Dqt=false -Debpf=false -Dreadline=libreadline >"$WORK/meson.log" \
  || { tail -40 "$WORK/meson.log" >&2; exit 1; }
ninja -C src/build >"$WORK/ninja.log" 2>&1 || { tail -40 "$WORK/ninja.log" >&2; exit 1; }
$SUDO ninja -C src/build install >"$WORK/install.log" 2>&1 \
  || { tail -40 "$WORK/install.log" >&2; exit 1; }
plugin=$(find "$PREFIX" -name 'libnm-settings-plugin-ifcfg-rh.so' | head -1)
[ -n "$plugin" ] && [ -x "$PREFIX/sbin/NetworkManager" ] \
  || { echo "the build finished without NetworkManager or its ifcfg-rh plugin" >&2; exit 1; }
echo "${dsc%.dsc}" | $SUDO tee "$STAMP" >/dev/null
echo "NetworkManager with ifcfg-rh: $PREFIX/sbin/NetworkManager"
