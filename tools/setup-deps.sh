#!/bin/sh
# setup-deps.sh - installs the Debian packages that building and testing need,
# only when some are missing (so it is fast on a prepared machine).
set -e
PKGS="build-essential python3 python3-venv python3-pip libjpeg62-turbo-dev libpng-dev zlib1g-dev libevent-dev libjansson-dev pkg-config chromium chromium-driver"
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
