# SPDX-License-Identifier: GPL-2.0-or-later
# The enforcement testbed without Docker: an "internet" namespace and a VPS namespace joined by
# a veth (the VPS's public interface), Linux bridges inside the VPS namespace standing for
# Docker networks, one namespace per service attached to them by veth (a service on several
# networks gets several legs), echo listeners on every service port and on the VPS's own
# ports, and Docker's publishing emulated by a test-owned `table ip nat` / `table ip6 nat`
# (DNAT + masquerade) in the VPS namespace. Everything comes from the policy (via expect.py)
# and the endpoints file; nothing is tuned to one policy. Source netns.sh first.
#
# Inputs (set before vps_up):
#   VPS_TAG        short name, prefixes every namespace of this topology ("ref", "var")
#   VPS_POLICY_JSON, VPS_ENDPOINTS   `ceredisctl policy show --json` output; endpoints JSON
#   VPS_IFACE, VPS_ADDR4, VPS_ADDR6  the public interface and its addresses (/24, /64)
#   VPS_NETS       array of "NAME=CIDR4,CIDR6": the Docker-like networks; .1 is the bridge
#   VPS_PUBLISH    array of "HOSTPORT:SERVICE:PORT" published ports
#   VPS_HOST_PORTS array of ports the VPS itself listens on (management, public, strays)
#   VPS_CLIENTS    array of internet client addresses (v4 in 198.51.100.0/24, v6 any)
# Namespaces: $VPS_TAG-inet, $VPS_TAG-vps, $VPS_TAG-svc-NAME (full names: see ns_name).

vps_lib=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
vps_spaces=()

# vps_expect CMD [ARGS...]: run expect.py on this topology's policy and networks.
vps_expect() {
        local a=() n
        for n in "${VPS_NETS[@]}"; do a+=(--net "$n"); done
        "$PYTHON" "$vps_lib/expect.py" "$1" "$VPS_POLICY_JSON" "${@:2}" "${a[@]}"
}

vps_add_ns() {
        ns_add "$VPS_TAG-$1" || return 1
        vps_spaces+=("$VPS_TAG-$1")
}

# vps_listen SPACE PORT...: echo listeners in SPACE (a full suffix for ns_name); waits until
# they listen.
vps_listen() {
        local space=$1 ready i
        shift
        ready="$ns_tmp/ready.$space"
        rm -f "$ready"
        ns_bg "$space" "$PYTHON" "$vps_lib/listen.py" --ready "$ready" "$@"
        for i in $(seq 100); do
                [ -e "$ready" ] && return 0
                sleep 0.05
        done
        echo "vps: listeners in $space did not start" >&2
        return 1
}

vps_first_host() { # CIDR: the .1 / ::1 of a network
        "$PYTHON" -c "import ipaddress,sys; print(ipaddress.ip_network(sys.argv[1]).network_address + 1)" "$1"
}

vps_up() {
        local topo inet vps kind svc net a4 a6 idx=0 legn gw4 gw6 name c4 c6 br
        local -A legs=() bridge=() gw=() plen=()
        topo="$ns_tmp/topology.$VPS_TAG"
        vps_expect topology "$VPS_ENDPOINTS" "${VPS_PUBLISH[@]/#/--publish=}" >"$topo" || return 1
        inet="$VPS_TAG-inet"
        vps="$VPS_TAG-vps"
        vps_add_ns inet && vps_add_ns vps || return 1
        ns_veth "$inet" up0 "$vps" "$VPS_IFACE" || return 1

        # The Internet side: an ISP router for the VPS's /24 and /64, clients on its loopback,
        # and routes to the VPS's private networks (a neighbour on the same link can send to
        # them, so the ruleset must hold without Docker's help).
        ns "$inet" ip addr add 203.0.113.1/24 dev up0
        ns "$inet" ip addr add 2001:db8:203::1/64 dev up0 nodad
        for name in "${VPS_CLIENTS[@]}"; do
                case $name in
                *:*) ns "$inet" ip addr add "$name/128" dev lo ;;
                *) ns "$inet" ip addr add "$name/32" dev lo ;;
                esac
        done
        ns "$vps" ip addr add "$VPS_ADDR4/24" dev "$VPS_IFACE"
        ns "$vps" ip addr add "$VPS_ADDR6/64" dev "$VPS_IFACE" nodad
        ns "$vps" ip route add default via 203.0.113.1
        ns "$vps" ip -6 route add default via 2001:db8:203::1
        ns "$vps" sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1 >/dev/null

        for name in "${VPS_NETS[@]}"; do
                net=${name%%=*}
                c4=${name#*=}; c6=${c4#*,}; c4=${c4%,*}
                br="br-$net"; br=${br:0:15}
                bridge[$net]=$br
                plen[$net]="${c4#*/} ${c6#*/}"
                gw4=$(vps_first_host "$c4")
                gw6=$(vps_first_host "$c6")
                gw[$net]="$gw4 $gw6"
                ns "$vps" ip link add "$br" type bridge
                ns "$vps" ip link set "$br" up
                ns "$vps" ip addr add "$gw4/${c4#*/}" dev "$br"
                ns "$vps" ip addr add "$gw6/${c6#*/}" dev "$br" nodad
                ns "$inet" ip route add "$c4" via "$VPS_ADDR4"
                ns "$inet" ip -6 route add "$c6" via "$VPS_ADDR6"
        done
        # Docker sets these (and the agent's apply does): bridged traffic then meets the inet
        # forward hook, which is where the ruleset judges container-to-container flows.
        ns "$vps" sysctl -qw net.bridge.bridge-nf-call-iptables=1 \
                net.bridge.bridge-nf-call-ip6tables=1 >/dev/null

        while read -r kind svc net a4 a6; do
                case $kind in
                leg)
                        if [ -z "${legs[$svc]:-}" ]; then
                                vps_add_ns "svc-$svc" || return 1
                                legs[$svc]=0
                        fi
                        legn=${legs[$svc]}
                        idx=$((idx + 1))
                        ns_veth "$VPS_TAG-svc-$svc" "eth$legn" "$vps" "vs$idx" || return 1
                        ns "$vps" ip link set "vs$idx" master "${bridge[$net]}"
                        read -r gw4 gw6 <<<"${gw[$net]}"
                        read -r c4 c6 <<<"${plen[$net]}"
                        [ "$a4" = - ] || ns "$VPS_TAG-svc-$svc" ip addr add "$a4/$c4" dev "eth$legn"
                        [ "$a6" = - ] || ns "$VPS_TAG-svc-$svc" ip addr add "$a6/$c6" dev "eth$legn" nodad
                        # The first leg carries the default route, like Docker's first network.
                        if [ "$legn" -eq 0 ]; then
                                ns "$VPS_TAG-svc-$svc" ip route add default via "$gw4"
                                ns "$VPS_TAG-svc-$svc" ip -6 route add default via "$gw6"
                        fi
                        legs[$svc]=$((legn + 1))
                        ;;
                listen)
                        # shellcheck disable=SC2086
                        vps_listen "$VPS_TAG-svc-$svc" $net $a4 $a6 || return 1
                        ;;
                esac
        done <"$topo"
        vps_listen "$vps" "${VPS_HOST_PORTS[@]}" || return 1
        vps_nat "$topo"
}

# Docker's publishing: DNAT of the VPS's address and port to the container, masquerade out.
vps_nat() {
        local topo=$1 kind hp cp a4 a6 name c4 c6 dnat4="" dnat6="" masq4="" masq6=""
        while read -r kind hp cp a4 a6; do
                [ "$kind" = publish ] || continue
                [ "$a4" = - ] || dnat4+="ip daddr $VPS_ADDR4 tcp dport $hp dnat to $a4:$cp"$'\n'
                [ "$a6" = - ] || dnat6+="ip6 daddr $VPS_ADDR6 tcp dport $hp dnat to [$a6]:$cp"$'\n'
        done <"$topo"
        for name in "${VPS_NETS[@]}"; do
                c4=${name#*=}; c6=${c4#*,}; c4=${c4%,*}
                masq4+="ip saddr $c4 oifname \"$VPS_IFACE\" masquerade"$'\n'
                masq6+="ip6 saddr $c6 oifname \"$VPS_IFACE\" masquerade"$'\n'
        done
        ns "$VPS_TAG-vps" nft -f - <<EOF
table ip nat {
        chain prerouting {
                type nat hook prerouting priority dstnat; policy accept;
                $dnat4
        }
        chain postrouting {
                type nat hook postrouting priority srcnat; policy accept;
                $masq4
        }
}
table ip6 nat {
        chain prerouting {
                type nat hook prerouting priority dstnat; policy accept;
                $dnat6
        }
        chain postrouting {
                type nat hook postrouting priority srcnat; policy accept;
                $masq6
        }
}
EOF
}

# Delete this topology's namespaces and the listeners in them.
vps_down() {
        local s
        for s in "${vps_spaces[@]}"; do
                ns_del "$s"
        done
        vps_spaces=()
}

# vps_probe PLAN RESULTS: run every probe of the plan (expect.py matrix) from its source
# namespace, all namespaces at once; RESULTS gets "ID RESULT" lines.
vps_probe() {
        local plan=$1 results=$2 srcns pids=() dir
        dir=$(mktemp -d "$ns_tmp/probe.XXXXXX")
        for srcns in $(awk '{print $1}' "$plan" | sort -u); do
                awk -v s="$srcns" '$1 == s {print $2, $3, $4, $5}' "$plan" >"$dir/$srcns.in"
                ns "$VPS_TAG-$srcns" "$PYTHON" "$vps_lib/probe.py" --timeout "${VPS_PROBE_TIMEOUT:-1.5}" \
                        <"$dir/$srcns.in" >"$dir/$srcns.out" &
                pids+=("$!")
        done
        wait "${pids[@]}"
        cat "$dir"/*.out >"$results"
}

# vps_judge LABEL PLAN RESULTS [judge.py options]: one ok/not ok line per source namespace
# (and one for the NFLOG records with --nflog). Needs tap.sh.
vps_judge() {
        local verdict what detail
        while IFS=$'\t' read -r verdict what detail; do
                if [ "$verdict" = PASS ]; then
                        ok "$what"
                else
                        # shellcheck disable=SC2046
                        IFS='|' read -r -a detail <<<"$detail"
                        not_ok "$what" "${detail[@]}"
                fi
        done < <("$PYTHON" "$vps_lib/judge.py" "$@")
}

# vps_nflog_start / vps_nflog_stop RECORDS: capture the ruleset's NFLOG group in the VPS
# namespace (tcpdump -i nflog:GROUP), then decode it with nflog.py.
vps_nflog_start() {
        local i
        vps_nflog_pcap="$ns_tmp/nflog.$VPS_TAG.pcap"
        vps_nflog_err="$ns_tmp/nflog.$VPS_TAG.err"
        ns_bg "$VPS_TAG-vps" tcpdump -U -n -B 16384 -i "nflog:${VPS_NFLOG_GROUP:-4242}" -w "$vps_nflog_pcap" \
                2>"$vps_nflog_err"
        vps_nflog_pid=$(ns_last_pid)
        for i in $(seq 100); do
                grep -q listening "$vps_nflog_err" 2>/dev/null && return 0
                sleep 0.05
        done
        echo "vps: tcpdump on nflog did not start: $(cat "$vps_nflog_err")" >&2
        return 1
}

vps_nflog_stop() {
        sleep 0.2 # the last records of the last probes
        kill -INT "$vps_nflog_pid" 2>/dev/null
        ns_kill "$vps_nflog_pid"
        "$PYTHON" "$vps_lib/nflog.py" "$vps_nflog_pcap" >"$1"
}
