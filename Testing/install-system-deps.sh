#!/usr/bin/env bash
# System packages the test suite needs beyond Python: a real X server (Xvfb) and Qt's xcb plugin libraries
# for the studio's VTK views, cmake for the Slicer extension's configure test, and chattr for the
# read-only-folder tests when running as root. Installs them with apt-get when missing (as root, or with
# passwordless sudo); otherwise says what to install and fails.
set -euo pipefail
missing=0
for cmd in Xvfb cmake chattr; do command -v "$cmd" >/dev/null || missing=1; done
for lib in libxcb-icccm.so.4 libxkbcommon-x11.so.0 libxcb-xinerama.so.0 libGL.so.1; do
  ldconfig -p | grep -q "$lib" || missing=1
done
[ "$missing" = 0 ] && exit 0
packages="xvfb cmake e2fsprogs libgl1 libegl1 libxkbcommon-x11-0 libxcb-icccm4 libxcb-image0 libxcb-keysyms1
  libxcb-randr0 libxcb-render-util0 libxcb-xinerama0 libxcb-xkb1 libxcb-shape0 libxcb-xfixes0 libfontconfig1"
if [ "$(id -u)" = 0 ]; then SUDO=""; elif sudo -n true 2>/dev/null; then SUDO="sudo -n"; else
  echo "The tests need these system packages: $(echo $packages). Install them (Debian/Ubuntu: apt-get install ...) and run make test again." >&2
  exit 1
fi
echo "Installing the system packages the tests need (Xvfb, Qt xcb libraries, cmake)..." >&2
$SUDO apt-get update -q >/dev/null
# shellcheck disable=SC2086
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $packages >/dev/null
