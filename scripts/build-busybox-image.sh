#!/bin/bash
# Builds the busybox test image as an LXD unified tarball (metadata.yaml + rootfs/) from the
# busybox-static package, with no download: scripts/build-busybox-image.sh OUT.tar.gz|OUT.tar.xz
set -euo pipefail
out=${1:?usage: $0 OUT.tar.gz|OUT.tar.xz}
busybox=${BUSYBOX:-/bin/busybox}
[ -x "$busybox" ] || { echo "Error: $busybox not found: apt-get install busybox-static" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
root=$work/rootfs
mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,etc/init.d,proc,sys,dev,tmp,run,root,var/log,home}
cp "$busybox" "$root/bin/busybox"
# One relative symlink per applet, as busybox --install would make.
"$busybox" --list-full | while read -r applet; do
    [ "$applet" = bin/busybox ] && continue
    dir=$(dirname "$applet")
    up=$(echo "$dir" | sed 's|[^/]*|..|g')
    mkdir -p "$root/$dir"
    [ -e "$root/$applet" ] || ln -s "$up/bin/busybox" "$root/$applet"
done
cat > "$root/etc/passwd" <<'PW'
root:x:0:0:root:/root:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
PW
cat > "$root/etc/group" <<'GR'
root:x:0:
tty:x:5:
nogroup:x:65534:
GR
printf '127.0.0.1 localhost\n::1 localhost\n' > "$root/etc/hosts"
echo busybox > "$root/etc/hostname"
cat > "$root/etc/inittab" <<'IT'
::sysinit:/etc/init.d/rcS
::ctrlaltdel:/bin/echo ctrl-alt-del
::shutdown:/bin/echo shutting down
::restart:/sbin/init
IT
cat > "$root/etc/init.d/rcS" <<'RC'
#!/bin/sh
echo "rcS: up $(hostname)"
RC
chmod 755 "$root/etc/init.d/rcS"
chmod 1777 "$root/tmp"
chmod 700 "$root/root"
now=$(date +%s)
cat > "$work/metadata.yaml" <<MD
architecture: $(uname -m)
creation_date: $now
properties:
  architecture: $(uname -m)
  description: Busybox $(uname -m)
  name: busybox-$(uname -m)
  os: Busybox
MD
case "$out" in
    *.xz) comp=--xz ;;
    *) comp=--gzip ;;
esac
tar -C "$work" --numeric-owner --owner=0 --group=0 --sort=name $comp -cf "$out" metadata.yaml rootfs
echo "$out"
