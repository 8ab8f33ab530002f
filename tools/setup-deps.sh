#!/bin/sh
# setup-deps.sh - installs the Debian packages that building needs, and with
# the argument "test" also those the test suites need (Python for the venv of
# oracles, Chromium for the browser test). Only missing packages are
# installed, so it is fast on a prepared machine.
set -e
PKGS="build-essential pkg-config libjpeg62-turbo-dev libpng-dev zlib1g-dev libevent-dev libjansson-dev"
if [ "$1" = "test" ]; then
    PKGS="$PKGS python3 python3-venv python3-pip curl chromium chromium-driver"
fi
missing=""
for p in $PKGS; do
    dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"
done
if [ -n "$missing" ]; then
    SUDO=""
    [ "$(id -u)" -ne 0 ] && SUDO=sudo
    echo "installing:$missing"
    $SUDO apt-get update -q
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q $missing
fi
