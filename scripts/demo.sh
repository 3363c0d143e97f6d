#!/usr/bin/env bash
# Builds rxd, installs it with its lxd/lxc symlinks under target/demo, starts one member on
# 127.0.0.1:8443 and shows `lxc info`. Run it again (or with `stop`) to stop the member.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD/target/demo
export LXD_DIR=$root/var LXD_CONF=$root/conf
pidfile=$root/daemon.pid

if [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
    echo "stopping the demo member (pid $(cat "$pidfile"))"
    "$root/bin/lxd" shutdown --timeout 30
    rm -f "$pidfile"
    exit 0
fi
[ "${1:-}" = stop ] && { echo "no demo member is running"; exit 0; }

cargo build --release
packaging/install.sh --prefix "$root" --binary target/release/rxd --no-unit
mkdir -p "$LXD_DIR"
"$root/bin/lxd" --verbose --logfile "$root/daemon.log" </dev/null >/dev/null 2>&1 &
echo $! > "$pidfile"
"$root/bin/lxd" waitready --timeout 30
if ! "$root/bin/lxc" storage show default >/dev/null 2>&1; then
    "$root/bin/lxd" init --auto --network-address 127.0.0.1 --network-port 8443 --trust-password demo
fi
"$root/bin/lxc" version
"$root/bin/lxc" info | grep -E '^auth:|^  server_(name|pid):'
"$root/bin/lxc" config show
"$root/bin/lxc" profile show default
cat <<TXT

The member is running (pid $(cat "$pidfile")), serving $LXD_DIR/unix.socket and https://127.0.0.1:8443
(trust password: demo). Try:
    LXD_DIR=$LXD_DIR $root/bin/lxc info
    LXD_DIR=$LXD_DIR lxc info                   # the stock LXD client, if installed
Stop it with: scripts/demo.sh
TXT
