#!/bin/sh
# Installs the rxd binary and its two applet symlinks (lxd, lxc), and the systemd unit.
# Usage: packaging/install.sh [--prefix DIR] [--binary PATH] [--no-unit]
#   DIR defaults to /usr/local; PATH defaults to target/release/rxd.
set -eu

prefix=/usr/local
binary=target/release/rxd
unit=yes
while [ $# -gt 0 ]; do
    case "$1" in
        --prefix) prefix=$2; shift 2 ;;
        --binary) binary=$2; shift 2 ;;
        --no-unit) unit=no; shift ;;
        -h|--help) sed -n '2,4p' "$0"; exit 0 ;;
        *) echo "install.sh: unknown option $1" >&2; exit 2 ;;
    esac
done

if [ ! -x "$binary" ]; then
    echo "install.sh: $binary not found; build it with: cargo build --release" >&2
    exit 1
fi

install -d "$prefix/bin"
install -m 0755 "$binary" "$prefix/bin/rxd"
ln -sf rxd "$prefix/bin/lxd"
ln -sf rxd "$prefix/bin/lxc"

if [ "$unit" = yes ]; then
    unitdir="$prefix/lib/systemd/system"
    install -d "$unitdir"
    sed "s#@BINDIR@#$prefix/bin#g" "$(dirname "$0")/rxd.service" > "$unitdir/rxd.service"
    chmod 0644 "$unitdir/rxd.service"
fi
echo "installed rxd, lxd and lxc into $prefix/bin"
