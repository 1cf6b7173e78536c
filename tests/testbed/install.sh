# SPDX-License-Identifier: GPL-2.0-or-later
# shellcheck shell=bash
# Installs the Debian packages the Docker testbed needs, without letting their maintainer scripts
# start dockerd or containerd in the machine's own network namespace (Docker there would write
# iptables rules into the host's firewall). Sourced by testbed.sh and callable from ./dev setup:
#
#   . tests/testbed/install.sh; testbed_install_packages
#
# A policy-rc.d that refuses every service start is put in place for the install (and removed
# only if this function created it); afterwards any dockerd or containerd that appeared in the
# root namespace anyway is stopped by its pid.

testbed_packages=(
        docker.io docker-compose containerd runc tini iptables debootstrap busybox-static
        openssl iproute2 curl postgresql-client ca-certificates util-linux
)

testbed_install_packages() {
        local p missing=() made_policy=0 before pid
        for p in "${testbed_packages[@]}"; do
                dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
                        missing+=("$p")
        done
        [ ${#missing[@]} -eq 0 ] && return 0
        [ "$(id -u)" -eq 0 ] || { echo "testbed: installing ${missing[*]} needs root" >&2; return 1; }

        # Daemons already running before the install are not ours to stop.
        before=" $(pgrep -x dockerd | tr '\n' ' ') $(pgrep -x containerd | tr '\n' ' ') "
        if [ ! -e /usr/sbin/policy-rc.d ]; then
                printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
                chmod +x /usr/sbin/policy-rc.d
                made_policy=1
        fi
        local rc=0
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
                "${missing[@]}" >/dev/null || rc=$?
        [ "$made_policy" -eq 0 ] || rm -f /usr/sbin/policy-rc.d
        for pid in $(pgrep -x dockerd) $(pgrep -x containerd); do
                case $before in *" $pid "*) continue ;; esac
                echo "testbed: the install started pid $pid ($(cat /proc/"$pid"/comm 2>/dev/null)) in the root namespace; stopping it" >&2
                kill "$pid" 2>/dev/null || true
        done
        return "$rc"
}
