# SPDX-License-Identifier: GPL-2.0-or-later
# Network namespaces for tests: every namespace and every background process a suite creates
# is registered here and removed by ns_cleanup, which ns_init installs as the EXIT trap (INT,
# TERM and HUP exit through it too), so a failing assertion or a Ctrl-C leaves nothing behind.
# Nothing here touches the machine's own namespace: commands run with `ip netns exec`.
#
#   ns_init TAG          names are "ceredis-TAG-<pid>-NAME"; installs the cleanup trap
#   ns_add NAME          create namespace NAME (loopback up, IPv6 DAD off); prints nothing
#   ns_name NAME         the full namespace name
#   ns NAME CMD...       run CMD inside namespace NAME
#   ns_bg NAME CMD...    start CMD in the background inside NAME; its pid is killed at cleanup
#   bg CMD...            start CMD in the background (it enters namespaces itself); same
#   ns_veth A IFA B IFB  a veth pair: IFA in namespace A, IFB in namespace B, both up
#   ns_kill PID          stop one process this suite started, and forget it
#   ns_del NAME          delete namespace NAME, ending the processes this suite runs in it

# The distribution's interpreter when there is one: version-manager shims cost 0.3 s a start.
PYTHON=${PYTHON:-$(command -v /usr/bin/python3 || command -v python3)}

ns_prefix=
ns_names=()
ns_pids=()
ns_tmp=

ns_cleanup() {
        local rc=$? pid n
        trap - EXIT INT TERM HUP
        for pid in "${ns_pids[@]}"; do
                kill "$pid" 2>/dev/null || true
        done
        for pid in "${ns_pids[@]}"; do
                wait "$pid" 2>/dev/null || true
        done
        for n in "${ns_names[@]}"; do
                ip netns pids "$n" 2>/dev/null | while read -r pid; do kill -9 "$pid" 2>/dev/null; done
                ip netns delete "$n" 2>/dev/null || true
        done
        [ -n "$ns_tmp" ] && rm -rf "$ns_tmp"
        exit "$rc"
}

ns_init() {
        ns_prefix="ceredis-$1-$$"
        ns_tmp=$(mktemp -d "/tmp/ceredis-$1.XXXXXX")
        trap ns_cleanup EXIT
        trap 'exit 130' INT
        trap 'exit 143' TERM
        trap 'exit 129' HUP
}

ns_name() {
        printf '%s-%s' "$ns_prefix" "$1"
}

ns_add() {
        local n
        n=$(ns_name "$1")
        ip netns add "$n" || return 1
        ns_names+=("$n")
        ip -n "$n" link set lo up
        ip netns exec "$n" sysctl -qw net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0 \
                net.ipv6.conf.all.dad_transmits=0 net.ipv6.conf.default.dad_transmits=0 >/dev/null
}

ns() {
        local n
        n=$(ns_name "$1")
        shift
        ip netns exec "$n" "$@"
}

ns_bg() {
        local n
        n=$(ns_name "$1")
        shift
        ip netns exec "$n" "$@" &
        ns_pids+=("$!")
}

bg() {
        "$@" &
        ns_pids+=("$!")
}

# The pid of the last ns_bg or bg.
ns_last_pid() {
        printf '%s' "${ns_pids[-1]}"
}

ns_kill() {
        local pid=$1 i
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
        for i in "${!ns_pids[@]}"; do
                [ "${ns_pids[$i]}" = "$pid" ] && unset 'ns_pids[i]'
        done
        ns_pids=("${ns_pids[@]}")
}

ns_veth() {
        local a b
        a=$(ns_name "$1")
        b=$(ns_name "$3")
        # Created directly in the two namespaces: the pair never exists in the machine's own.
        ip link add "$2" netns "$a" type veth peer name "$4" netns "$b" || return 1
        ip -n "$a" link set "$2" up && ip -n "$b" link set "$4" up
}

ns_del() {
        local n pid mine=() i
        n=$(ns_name "$1")
        for pid in $(ip netns pids "$n" 2>/dev/null); do
                for i in "${ns_pids[@]}"; do
                        [ "$i" = "$pid" ] && mine+=("$pid")
                done
        done
        for pid in "${mine[@]}"; do
                ns_kill "$pid"
        done
        for pid in $(ip netns pids "$n" 2>/dev/null); do
                kill -9 "$pid" 2>/dev/null || true
        done
        ip netns delete "$n" 2>/dev/null || true
        for i in "${!ns_names[@]}"; do
                [ "${ns_names[$i]}" = "$n" ] && unset 'ns_names[i]'
        done
        ns_names=("${ns_names[@]}")
}
