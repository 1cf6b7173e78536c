#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Image recipe: a Debian bookworm minbase root filesystem with the real PostgreSQL server and
# client, nginx, curl, openssl and busybox (for the HTTP stand-ins), written as a tarball for
# `docker import`. Usage: debian.sh OUTPUT.tar MIRROR
#
# debootstrap lays down minbase; the packages are then installed with apt inside the chroot,
# behind a policy-rc.d that refuses service starts: PostgreSQL's postinst would otherwise start
# a server in the machine's own namespace. No cluster is kept: containers run initdb at start.
set -euo pipefail

out=$1
mirror=$2
packages=(
        postgresql postgresql-client nginx-light curl openssl ca-certificates busybox-static
        python3-minimal procps iproute2 netcat-openbsd
)

root=$(mktemp -d "${TMPDIR:-/tmp}/ceredis-debian.XXXXXX")
# mktemp makes the directory 0700; it becomes the image's / and must be searchable.
chmod 0755 "$root"
cleanup() {
        local m
        # debootstrap and this script mount proc, sys and dev under the root: unmount them
        # (deepest first) before removing anything, whatever way the build ended.
        for m in $(awk -v r="$root/" 'index($5, r) == 1 { print $5 }' /proc/self/mountinfo | sort -r); do
                umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true
        done
        rm -rf --one-file-system "$root"
}
trap cleanup EXIT

debootstrap --variant=minbase bookworm "$root" "$mirror" >"$root.log" 2>&1 ||
        { tail -n 30 "$root.log" >&2; rm -f "$root.log"; exit 1; }
rm -f "$root.log"

printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
chmod +x "$root/usr/sbin/policy-rc.d"
mkdir -p "$root/etc/postgresql-common"
printf 'create_main_cluster = false\n' >"$root/etc/postgresql-common/createcluster.conf"
mount -t proc proc "$root/proc"
chroot "$root" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
        --no-install-recommends -o Dpkg::Options::=--force-confold "${packages[@]}" >/dev/null
chroot "$root" apt-get clean
umount "$root/proc"
rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/usr/share/doc \
        "$root"/usr/share/man "$root"/usr/share/locale
# The container's resolv.conf and hostname come from Docker, never from this machine.
: >"$root/etc/resolv.conf"
: >"$root/etc/hostname"
tar -C "$root" --numeric-owner -cf "$out" .
