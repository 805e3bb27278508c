#!/usr/bin/env bash
# Writes a busybox root filesystem tar (from Debian's busybox-static) to $1:
# /bin/busybox, every applet as a symlink to it, /etc/passwd and /etc/group.
# No network is needed: this is how kiln gets a base image offline.
set -euo pipefail
out=${1:?usage: make-busybox-rootfs.sh OUT.tar}
[ -x /bin/busybox ] || { echo "error: /bin/busybox missing: apt-get install busybox-static" >&2; exit 1; }
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
mkdir -p "$dir"/{bin,sbin,usr/bin,usr/sbin,etc,dev,proc,sys,root,home/app,var}
install -d -m 1777 "$dir/tmp"
cp /bin/busybox "$dir/bin/busybox"
/bin/busybox --list-full | while read -r applet; do
  case "$applet" in ""|*/|bin/busybox|linuxrc) continue ;; esac
  ln -sf /bin/busybox "$dir/$applet"
done
cat > "$dir/etc/passwd" <<'P'
root:x:0:0:root:/root:/bin/sh
app:x:1000:1000:app:/home/app:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
P
cat > "$dir/etc/group" <<'G'
root:x:0:
staff:x:50:app
app:x:1000:
nogroup:x:65534:
G
tar --numeric-owner --owner=0 --group=0 --sort=name --mtime=@1700000000 -C "$dir" -cf "$out" .
