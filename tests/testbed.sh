#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Proves the Docker testbed (tests/testbed/) is what the other suites take it for: the CEREDIS
# stack comes up in a VPS namespace with every service of policies/ceredis.yaml running and
# answering on its policy ports on the networks of its zone; the TLS entry answers from the
# Internet namespace with a certificate of the test CA; the stack really is misconfigured
# (PostgreSQL completes a login from the Internet, over IPv4 and IPv6; the AI container can
# write to it); a second testbed of the same name is refused by the lock; and after `down`, a
# failed `up` and a killed `up`, nothing is left: no namespace, process, mount, cgroup or state.
# The variant stack comes up and down too. Runs as root, without the agent.
set -uo pipefail

top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
tb=$top/tests/testbed/testbed.sh
# A name of its own: two runs of this suite wait for each other; a demo testbed is not touched.
export CEREDIS_TESTBED_NAME=${CEREDIS_TESTBED_NAME:-ceredis-tbtest}
unset CEREDIS_TESTBED_DIR
passed=0
failed=0
work=$(mktemp -d /tmp/ceredis-tbtest.XXXXXX)

ok() { passed=$((passed + 1)); printf 'ok - %s\n' "$1"; }
not_ok() { failed=$((failed + 1)); printf 'not ok - %s\n' "$1"; }
# check DESCRIPTION CMD...: passes when CMD succeeds; its output is shown when it fails.
check() {
        local what=$1 out
        shift
        if out=$("$@" 2>&1); then
                ok "$what"
        else
                not_ok "$what"
                printf '%s\n' "$out" | tail -n 15 | sed 's/^/    /'
        fi
}
# check_eq DESCRIPTION EXPECTED ACTUAL
check_eq() {
        if [ "$2" = "$3" ]; then
                ok "$1"
        else
                not_ok "$1"
                printf '    expected: %s\n    got:      %s\n' "$2" "$3"
        fi
}
contains() { # contains NEEDLE CMD...: CMD succeeds and prints NEEDLE
        local needle=$1 out
        shift
        out=$("$@") || return 1
        printf '%s\n' "$out" | grep -qF -- "$needle" || { printf 'no "%s" in: %s\n' "$needle" "$out"; return 1; }
}
fails() { ! "$@"; }

finish() {
        trap - EXIT INT TERM HUP
        "$tb" down >/dev/null 2>&1 || true
        rm -rf "$work"
        printf '%d passed, %d failed\n' "$passed" "$failed"
        exit $((failed > 0))
}
trap finish EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

pid_alive() { [ -d "/proc/$1" ] && [ "$(awk '{ print $3 }' "/proc/$1/stat" 2>/dev/null)" != Z ]; }

# daemon_pids DIR: dockerd, containerd and the shims of the testbed in DIR, by command line.
daemon_pids() {
        local p
        for p in $(pgrep -f -- "$1/"); do
                case $(cat "/proc/$p/comm" 2>/dev/null) in
                dockerd | containerd | containerd-shim*) printf '%s:%s ' "$(cat "/proc/$p/comm")" "$p" ;;
                esac
        done
}

# no_leftovers LABEL DIR DOCKERD_PID DIR_KEPT [DAEMONS [BY_NAME]]: everything a testbed makes
# is gone; BY_NAME=0 skips what goes by the testbed's name (a new testbed of that name is up).
no_leftovers() {
        local label=$1 dir=$2 pid=$3 kept=${4:-0} daemons=${5:-} by_name=${6:-1} d
        if [ "$by_name" = 1 ]; then
                check "$label: no namespace of the testbed" \
                        fails bash -c "ip netns list | grep -q '^$CEREDIS_TESTBED_NAME-'"
                check "$label: no cgroup left" \
                        bash -c "! ls -d /sys/fs/cgroup/*/'$CEREDIS_TESTBED_NAME' 2>/dev/null | grep -q ."
                check "$label: no registry entry" test ! -e "/run/ceredis-testbed/$CEREDIS_TESTBED_NAME.env"
        fi
        if [ -n "$pid" ]; then
                check "$label: dockerd $pid is gone" fails pid_alive "$pid"
        fi
        for d in $daemons; do
                check "$label: ${d%%:*} ${d#*:} is gone" fails pid_alive "${d#*:}"
        done
        check "$label: no process names the state directory" fails pgrep -f -- "$dir/"
        check "$label: nothing mounted under the state directory" \
                bash -c "! awk -v d='$dir/' 'index(\$5, d) == 1' /proc/self/mountinfo | grep -q ."
        if [ "$kept" = 1 ]; then
                check "$label: only logs left in the caller's state directory" \
                        bash -c "! find '$dir' -mindepth 1 ! -name '*.log' | grep ."
        else
                check "$label: state directory removed" test ! -e "$dir"
        fi
}

# The machine's own Docker paths, which the testbed must never create or use.
defaults() {
        local p
        for p in /var/lib/docker /run/docker.sock /etc/docker/key.json; do
                [ -e "$p" ] && printf '%s ' "$p"
        done
        true
}
defaults_before=$(defaults)

[ "$(id -u)" -eq 0 ] || { not_ok "the testbed needs root"; exit 1; }
if ! "$tb" install >"$work/install.log" 2>&1; then
        not_ok "testbed packages installed"
        tail -n 20 "$work/install.log"
        exit 1
fi
start=$SECONDS
if "$tb" images >"$work/images.log" 2>&1; then
        ok "images cached ($((SECONDS - start))s)"
else
        not_ok "images cached"
        tail -n 30 "$work/images.log"
        exit 1
fi

# --- the reference stack -----------------------------------------------------------------------

start=$SECONDS
if ! "$tb" up >"$work/env" 2>"$work/up.log"; then
        not_ok "up: the CEREDIS stack comes up"
        tail -n 40 "$work/up.log"
        exit 1
fi
ok "up: the CEREDIS stack comes up ($((SECONDS - start))s)"
# shellcheck disable=SC1091
. "$work/env"
dir=$CEREDIS_TESTBED_DIR
dockerd_pid=$TB_DOCKERD_PID
check_eq "env names the namespaces" "$CEREDIS_TESTBED_NAME-inet $CEREDIS_TESTBED_NAME-vps" "$TB_NS_INET $TB_NS_VPS"
check "dockerd runs inside the VPS namespace" \
        test "$(readlink "/proc/$dockerd_pid/ns/net")" = "$(ip netns exec "$TB_NS_VPS" readlink /proc/self/ns/net)"
check "dockerd uses its own socket, data root and containerd" \
        contains "$dir/data" "$tb" docker info --format '{{.DockerRootDir}}'
check_eq "the machine's own /var/lib/docker and /run/docker.sock are untouched" "$defaults_before" "$(defaults)"

# The policy is the reference: every service it names, with its zone and ports.
policy=$(python3 - "$top/policies/ceredis.yaml" <<'EOF'
import sys, yaml
doc = yaml.safe_load(open(sys.argv[1]))
for name, s in doc["services"].items():
    for p in s.get("ports", []):
        port = p["port"] if isinstance(p, dict) else p
        print(name, s["zone"], port, s.get("protocol", "tcp"))
EOF
)
services=$(printf '%s\n' "$policy" | awk '{ print $1 }' | sort -u)
check_eq "the policy names eleven services" 11 "$(printf '%s\n' "$services" | grep -c .)"
running=$("$tb" docker ps --filter "label=com.docker.compose.project=$TB_PROJECT" --filter status=running \
        --format '{{.Label "com.docker.compose.service"}}' | sort)
check_eq "a running container for every service of the policy, and no other" \
        "$(printf '%s\n' "$services" | xargs)" "$(printf '%s\n' "$running" | xargs)"

for net in dmz private; do
        want=$(printf '%s\n' "$policy" | awk -v z=$net '$2 == z { print $1 }' | sort -u)
        [ $net = private ] && want=$(printf '%s\napi\n' "$want" | sort -u)   # the API reaches the stores
        got=$("$tb" docker network inspect -f '{{range .Containers}}{{.Name}} {{end}}' "${TB_PROJECT}_$net" |
                tr ' ' '\n' | sed -n "s/^${TB_PROJECT}_\(.*\)_[0-9]*$/\1/p" | sort)
        check_eq "network $net holds the services of its zone" "$(printf '%s\n' "$want" | xargs)" "$(printf '%s\n' "$got" | xargs)"
done

# Every service answers on every policy port, from inside the VPS namespace.
while read -r name _ port proto; do
        ip=$("$tb" addr "$name") || { not_ok "$name has an address"; continue; }
        case $name:$port in
        proxy:443)
                check "$name answers TLS on $ip:$port" contains "service=frontend" \
                        "$tb" vps curl -sS --max-time 10 --cacert "$TB_CA" --resolve "ceredis.test:443:$ip" https://ceredis.test/ ;;
        proxy:80)
                check "$name redirects $ip:$port to HTTPS" contains "301" \
                        "$tb" vps curl -sS --max-time 10 -o /dev/null -w '%{http_code}' "http://$ip/" ;;
        *:*)
                if [ "$proto" = postgresql ]; then
                        check "$name answers PostgreSQL on $ip:$port" contains 1 \
                                "$tb" vps env PGPASSWORD=ceredis PGCONNECT_TIMEOUT=10 psql -h "$ip" -p "$port" -U ceredis -d ceredis -Atc 'select 1'
                else
                        check "$name answers HTTP on $ip:$port" contains "service=$name" \
                                "$tb" vps curl -sS --max-time 10 "http://$ip:$port/"
                fi ;;
        esac
done <<<"$policy"

# IPv6 too: every container has an address of each of its networks' IPv6 subnets (from the
# compose file, through Docker) and every service answers on it, from the VPS and from a peer.
addr6() { # addr6 SERVICE: "NETWORK ADDRESS SUBNET6" per network of the service's container
        local id net a
        id=$("$tb" docker ps -q --filter "label=com.docker.compose.project=$TB_PROJECT" \
                --filter "label=com.docker.compose.service=$1" | head -n1)
        [ -n "$id" ] || return 1
        "$tb" docker inspect -f '{{range $k, $v := .NetworkSettings.Networks}}{{$k}} {{$v.GlobalIPv6Address}}{{"\n"}}{{end}}' "$id" |
                while read -r net a; do
                        [ -n "$net" ] || continue
                        printf '%s %s %s\n' "$net" "${a:--}" "$("$tb" docker network inspect -f \
                                '{{range .IPAM.Config}}{{.Subnet}} {{end}}' "$net" |
                                tr ' ' '\n' | grep : | head -n1)"
                done
}
in_subnet() { python3 -c 'import ipaddress, sys; sys.exit(ipaddress.ip_address(sys.argv[1]) not in ipaddress.ip_network(sys.argv[2]))' "$1" "$2"; }
while read -r name _ port proto; do
        legs=$(addr6 "$name") || { not_ok "$name has a container"; continue; }
        while read -r net ip6 sub6; do
                check "$name has an IPv6 address on $net (in its subnet ${sub6:-none})" in_subnet "$ip6" "${sub6:-::/128}"
                case $name:$port in
                proxy:443)
                        check "$name answers TLS on [$ip6]:$port" contains "service=frontend" \
                                "$tb" vps curl -sS --max-time 10 --cacert "$TB_CA" --resolve "ceredis.test:443:[$ip6]" https://ceredis.test/ ;;
                proxy:80)
                        check "$name redirects [$ip6]:$port to HTTPS" contains "301" \
                                "$tb" vps curl -sS --max-time 10 -g -o /dev/null -w '%{http_code}' "http://[$ip6]/" ;;
                *:*)
                        if [ "$proto" = postgresql ]; then
                                check "$name answers PostgreSQL on [$ip6]:$port" contains 1 \
                                        "$tb" vps env PGPASSWORD=ceredis PGCONNECT_TIMEOUT=10 psql -h "$ip6" -p "$port" -U ceredis -d ceredis -Atc 'select 1'
                        else
                                check "$name answers HTTP on [$ip6]:$port" contains "service=$name" \
                                        "$tb" vps curl -sS --max-time 10 -g "http://[$ip6]:$port/"
                        fi ;;
                esac
        done <<<"$legs"
done <<<"$policy"
# Container to container over IPv6, without the agent: the API reads the store cass.
api_pid=$("$tb" docker inspect -f '{{.State.Pid}}' "$("$tb" docker ps -q --filter "label=com.docker.compose.project=$TB_PROJECT" --filter label=com.docker.compose.service=api)")
cass6=$(addr6 cass | awk '{ print $2; exit }')
cass_port=$(printf '%s\n' "$policy" | awk '$1 == "cass" { print $3; exit }')
check "api -> cass over IPv6 ([$cass6]:$cass_port) from the API's own namespace" contains "service=cass" \
        nsenter --net="/proc/$api_pid/ns/net" curl -sS --max-time 10 -g "http://[$cass6]:$cass_port/"

# The public entry, seen from the Internet.
check "Internet -> https://$TB_VPS_IP/ verifies against the test CA and reaches the frontend" \
        contains "service=frontend" "$tb" inet curl -sS --max-time 10 --cacert "$TB_CA" "https://$TB_VPS_IP/"
check "Internet -> https://$TB_VPS_IP/api/ reaches the API" \
        contains "service=api" "$tb" inet curl -sS --max-time 10 --cacert "$TB_CA" "https://$TB_VPS_IP/api/"
check "Internet -> https://[$TB_VPS_IP6]/ over IPv6" \
        contains "service=frontend" "$tb" inet curl -sS --max-time 10 --cacert "$TB_CA" "https://[$TB_VPS_IP6]/"
check "the certificate does not verify without the test CA" \
        fails "$tb" inet curl -sS --max-time 10 -o /dev/null "https://$TB_VPS_IP/"
check "Internet -> http://$TB_VPS_IP/ redirects to HTTPS" contains "https://$TB_VPS_IP/" \
        "$tb" inet curl -sS --max-time 10 -o /dev/null -w '%{redirect_url}' "http://$TB_VPS_IP/"
check "Internet -> $TB_VPS_IP:8090 (PocketBase, not published) is refused" \
        fails "$tb" inet curl -sS --max-time 5 "http://$TB_VPS_IP:8090/"

# The mistake the agent must close: a real PostgreSQL login from the Internet.
check "MISTAKE: Internet $TB_INET_IP -> $TB_VPS_IP:5432 completes a PostgreSQL login (select 1)" \
        contains 1 "$tb" inet env PGPASSWORD=ceredis PGCONNECT_TIMEOUT=10 \
        psql -h "$TB_VPS_IP" -U ceredis -d ceredis -Atc 'select 1'
check "MISTAKE: the server sees the Internet address as the client (Docker's DNAT)" \
        contains "$TB_INET_IP" "$tb" inet env PGPASSWORD=ceredis PGCONNECT_TIMEOUT=10 \
        psql -h "$TB_VPS_IP" -U ceredis -d ceredis -Atc 'select inet_client_addr()'
check "MISTAKE: the evaluation table is readable from the Internet" \
        contains eleve-001 "$tb" inet env PGPASSWORD=ceredis PGCONNECT_TIMEOUT=10 \
        psql -h "$TB_VPS_IP" -U ceredis -d ceredis -Atc 'select student from evaluations'
check "MISTAKE: and over IPv6 ([$TB_VPS_IP6]:5432, Docker's userland proxy)" \
        contains 1 "$tb" inet env PGPASSWORD=ceredis PGCONNECT_TIMEOUT=10 \
        psql -h "$TB_VPS_IP6" -U ceredis -d ceredis -Atc 'select 1'
check "MISTAKE: the AI container (ollama) writes to the evaluation store" \
        contains "INSERT 0 1" "$tb" exec ollama psql -c \
        "insert into evaluations (student, competency, cefr_level, score) values ('eleve-003', 'ia', 'C2', 20)"
check "grafana reads PostgreSQL with psql" contains 4 "$tb" exec grafana psql -Atc 'select count(*) from evaluations'
check "the stand-ins take writes (POST /cgi-bin/echo on cass)" contains "method=POST" \
        "$tb" exec api wget -q -O - --post-data x "http://cass:8080/cgi-bin/echo"

# A second testbed of the same name waits for the lock; with no patience it gives up and
# leaves the first one alone.
check "a second up of the same name is refused while the first lives" \
        fails env CEREDIS_TESTBED_LOCK_WAIT=1 "$tb" up
check "the first testbed still answers" contains "service=frontend" \
        "$tb" inet curl -sS --max-time 10 --cacert "$TB_CA" "https://$TB_VPS_IP/"

daemons=$(daemon_pids "$dir")
check "dockerd, containerd and the shims run" contains "containerd-shim" echo "$daemons"
start=$SECONDS
check "down removes the testbed" "$tb" down
ok "down took $((SECONDS - start))s"
no_leftovers "after down" "$dir" "$dockerd_pid" 0 "$(tr ' ' '\n' <<<"$daemons" | grep -v '^dockerd:' | xargs)"
check "down again is harmless" "$tb" down

# --- failure paths ------------------------------------------------------------------------------

mkdir -p "$work/bad" "$work/state"
cat >"$work/bad/broken.yml" <<'EOF'
version: "2.4"
services:
  ghost:
    image: ceredis-testbed/not-built:latest
EOF
check "up with an image that does not exist fails" \
        fails env CEREDIS_TESTBED_DIR="$work/state" "$tb" up --compose "$work/bad/broken.yml"
no_leftovers "after a failed up" "$work/state" "" 1

# Killed half-way: TERM once dockerd answers, while the images are imported.
rm -rf "$work/state"
mkdir -p "$work/state"
CEREDIS_TESTBED_DIR="$work/state" "$tb" up >/dev/null 2>"$work/killed.log" &
up_pid=$!
for _ in $(seq 600); do
        [ -S "$work/state/docker.sock" ] && break
        sleep 0.1
done
kpid=$(awk -F= '$1 == "TB_DOCKERD_PID" { print $2 }' "$work/state/testbed.env" 2>/dev/null)
kill -TERM "$up_pid"
wait "$up_pid"
check_eq "a killed up exits 143" 143 "$?"
no_leftovers "after a killed up" "$work/state" "$kpid" 1

# A dockerd that died with a container running (shim and container orphaned): the next `up` of
# the name removes all of it before it starts, and a bare testbed (no compose) works.
if "$tb" up --compose none >"$work/env" 2>"$work/up.log"; then
        # shellcheck disable=SC1091
        . "$work/env"
        crashed=$CEREDIS_TESTBED_DIR
        "$tb" docker run -d --name orphan ceredis-testbed/busybox:latest busybox httpd -f -p 80 >/dev/null
        orphans=$(daemon_pids "$crashed")
        check "a bare testbed runs a container" contains containerd-shim echo "$orphans"
        kill -KILL "$TB_DOCKERD_PID"
        if "$tb" up --compose none >"$work/env" 2>"$work/up.log"; then
                check "up after a dockerd crash removes the dead testbed first" \
                        contains "removing the leftovers" cat "$work/up.log"
                no_leftovers "the crashed testbed" "$crashed" "" 0 \
                        "$(tr ' ' '\n' <<<"$orphans" | grep -v '^dockerd:' | xargs)" 0
                # shellcheck disable=SC1091
                . "$work/env"
                check "the new bare testbed answers" "$tb" docker info
                dir=$CEREDIS_TESTBED_DIR
                check "down of the bare testbed" "$tb" down
                no_leftovers "bare testbed after down" "$dir" "$TB_DOCKERD_PID"
        else
                not_ok "up after a dockerd crash"
                tail -n 30 "$work/up.log"
        fi
else
        not_ok "a bare testbed comes up"
        tail -n 30 "$work/up.log"
fi

# --- the variant stack ---------------------------------------------------------------------------

start=$SECONDS
if "$tb" up --compose "$top/tests/testbed/compose/variant.yml" --project school >"$work/env" 2>"$work/up.log"; then
        ok "up: the variant stack comes up ($((SECONDS - start))s)"
        # shellcheck disable=SC1091
        . "$work/env"
        dir=$CEREDIS_TESTBED_DIR
        dockerd_pid=$TB_DOCKERD_PID
        check_eq "variant: seven services run" \
                "backend dashboards evidence gateway gradesdb tutor webapp" \
                "$("$tb" docker ps --filter status=running --format '{{.Label "com.docker.compose.service"}}' | sort | xargs)"
        check "variant: the edge network is the bridge br-edge" "$tb" vps ip link show br-edge
        for svc in backend gradesdb; do
                legs=$(addr6 "$svc") || { not_ok "variant: $svc has a container"; continue; }
                while read -r net ip6 sub6; do
                        check "variant: $svc has an IPv6 address on $net (in its subnet ${sub6:-none})" \
                                in_subnet "$ip6" "${sub6:-::/128}"
                done <<<"$legs"
        done
        backend6=$(addr6 backend | awk '$1 ~ /internal$/ { print $2 }')
        check "variant: gradesdb -> backend:9000 over IPv6 ([$backend6])" contains "service=backend" \
                nsenter --net="/proc/$("$tb" docker inspect -f '{{.State.Pid}}' "$("$tb" docker ps -q \
                --filter label=com.docker.compose.service=gradesdb)")/ns/net" curl -sS --max-time 10 -g "http://[$backend6]:9000/"
        check "variant: Internet -> https://$TB_VPS_IP/ (443 -> 8443) reaches the webapp" contains "service=webapp" \
                "$tb" inet curl -sS --max-time 10 --cacert "$TB_CA" "https://$TB_VPS_IP/"
        check "variant: /api/ reaches the backend" contains "service=backend" \
                "$tb" inet curl -sS --max-time 10 --cacert "$TB_CA" "https://$TB_VPS_IP/api/"
        check "variant MISTAKE: Internet -> $TB_VPS_IP:5433 completes a PostgreSQL login" \
                contains eleve-001 "$tb" inet env PGPASSWORD=registrar PGCONNECT_TIMEOUT=10 \
                psql -h "$TB_VPS_IP" -p 5433 -U registrar -d grades -Atc 'select student from marks limit 1'
        check "variant: the AI tutor carries its label" contains ai \
                "$tb" docker inspect -f '{{index .Config.Labels "org.school.role"}}' "$("$tb" docker ps -q --filter label=com.docker.compose.service=tutor)"
        daemons=$(daemon_pids "$dir")
        check "variant: down" "$tb" down
        no_leftovers "variant after down" "$dir" "$dockerd_pid" 0 "$(tr ' ' '\n' <<<"$daemons" | grep -v '^dockerd:' | xargs)"
else
        not_ok "up: the variant stack comes up"
        tail -n 40 "$work/up.log"
fi
