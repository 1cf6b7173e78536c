#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Image recipe: a busybox root filesystem from Debian's busybox-static, written as a tarball for
# `docker import`. Every applet is a symlink to /bin/busybox; httpd, nc and wget make the small
# HTTP stand-ins of the testbed. Usage: busybox.sh OUTPUT.tar
set -euo pipefail

out=$1
root=$(mktemp -d "${TMPDIR:-/tmp}/ceredis-busybox.XXXXXX")
chmod 0755 "$root"
trap 'rm -rf "$root"' EXIT

mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,etc,tmp,var/www,root,proc,sys,dev,run}
chmod 1777 "$root/tmp"
cp /bin/busybox "$root/bin/busybox"
/bin/busybox --list-full | while read -r applet; do
        [ "$applet" = bin/busybox ] || ln -sf /bin/busybox "$root/$applet"
done
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' \
        >"$root/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' >"$root/etc/group"
tar -C "$root" --numeric-owner -cf "$out" .
