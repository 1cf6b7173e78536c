#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# The CEREDIS Docker testbed: an "Internet" network namespace (198.51.100.0/24, 2001:db8:198::/64)
# linked by a veth pair to a "VPS" namespace (eth0 203.0.113.10, 2001:db8:203::10) that runs its
# own dockerd (Debian docker.io, its own data root, exec root, socket, containerd and cgroup
# parent, all under the state directory), locally built images and a Compose stack. Nothing is
# configured in the machine's own namespace except creating the two namespaces; every command
# that could touch a firewall runs inside the VPS namespace. Reused by ./dev demo, the
# end-to-end tests and the benchmarks:
#
#   testbed.sh install                      install the Debian packages (no daemon starts)
#   testbed.sh images                       build the cached images if their recipe changed
#   testbed.sh up [--compose FILE|none] [--project NAME]
#                                           bring everything up; prints the `env` lines
#   testbed.sh env                          KEY=value lines (namespaces, socket, addresses)
#   testbed.sh exec SERVICE CMD...          run CMD in the service's container
#   testbed.sh addr SERVICE [NETWORK]       the service's container IPv4 address
#   testbed.sh inet|vps CMD...              run CMD in the Internet / VPS namespace (network
#                                           only; `ip netns exec $TB_NS_VPS` for its /sys too)
#   testbed.sh docker|compose ARGS...       Debian's docker / docker-compose on this testbed
#   testbed.sh logs                         dockerd's log and the containers' logs
#   testbed.sh down                         remove everything; non-zero if anything is left
#
# Environment: CEREDIS_TESTBED_NAME (default ceredis-tb) names the namespaces, the lock and the
# cgroup parent, so testbeds with different names can run side by side; CEREDIS_TESTBED_DIR is
# the state directory (default: a new mktemp directory, removed by `down`);
# CEREDIS_TESTBED_CACHE (default /var/cache/ceredis-testbed) holds the image tarballs;
# CEREDIS_TESTBED_MIRROR overrides the Debian mirror read from apt's sources;
# CEREDIS_TESTBED_LOCK_WAIT (seconds, default 900) bounds the wait for a testbed of the same
# name; CEREDIS_TESTBED_TIMEOUT (default 180) bounds dockerd's start and the services' health;
# CEREDIS_TESTBED_CERT_DAYS (default 90) is the server certificate's lifetime;
# CEREDIS_TESTBED_TMPFS=0 keeps Docker's data root on disk instead of a tmpfs of
# CEREDIS_TESTBED_TMPFS_SIZE (default 4g).
#
# `up` and `down` of one name take a lock (/run/ceredis-testbed/NAME.lock) while they work, and
# a testbed whose dockerd lives is never touched by another `up`: a second `up` of the same name
# waits for its `down` (CEREDIS_TESTBED_LOCK_WAIT) instead of colliding. `up` cleans everything
# it made on any failure or signal; `down` removes a testbed whatever state it is in, including
# the leftovers of a run that was killed.
set -euo pipefail

tb_top=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=install.sh
. "$tb_top/install.sh"

# Debian's clients: /usr/local/bin may hold a newer docker CLI from elsewhere.
tb_docker_bin=/usr/bin/docker
tb_compose_bin=/usr/bin/docker-compose
tb_dockerd_bin=/usr/sbin/dockerd

tb_name=${CEREDIS_TESTBED_NAME:-ceredis-tb}
tb_cache=${CEREDIS_TESTBED_CACHE:-/var/cache/ceredis-testbed}
tb_run=/run/ceredis-testbed
tb_timeout=${CEREDIS_TESTBED_TIMEOUT:-180}

tb_vps_ip=203.0.113.10
tb_vps_ip6=2001:db8:203::10
tb_inet_ip=198.51.100.5
tb_inet_ip2=198.51.100.200
tb_inet_ip6=2001:db8:198::5
tb_inet_ip6_2=2001:db8:198::200

# State of the testbed being worked on; filled by tb_up or loaded from its env file.
tb_dir=
tb_dir_ours=0
tb_ns_inet=
tb_ns_vps=
tb_dockerd_pid=
tb_compose_file=
tb_project=
# Fixed directories dockerd and the shims create outside the state directory whatever their
# options say (plugin sockets, shim sockets): removed at teardown when empty, if they were not
# there before this testbed started.
tb_fixed_dirs=(/run/containerd/s /run/containerd /run/docker/plugins /run/docker)
tb_made_dirs=
tb_lock_fd=

tb_log() { printf 'testbed: [%3ds] %s\n' "$SECONDS" "$*" >&2; }
tb_die() { tb_log "$*"; exit 1; }

[[ $tb_name =~ ^[a-z0-9][a-z0-9-]{0,19}$ ]] ||
        tb_die "CEREDIS_TESTBED_NAME must be 1-20 lowercase letters, digits or '-'"

tb_set_names() {
        tb_ns_inet=$tb_name-inet
        tb_ns_vps=$tb_name-vps
}
tb_set_names

# --- images ------------------------------------------------------------------------------------

# The Debian mirror apt already uses for bookworm (one-line or deb822 sources); never hard-coded.
tb_debian_mirror() {
        if [ -n "${CEREDIS_TESTBED_MIRROR:-}" ]; then
                printf '%s\n' "$CEREDIS_TESTBED_MIRROR"
                return
        fi
        local m
        m=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
                awk '$1 == "deb" { i = 2; if ($2 ~ /^\[/) while ($i !~ /\]$/) i++;
                                   if ($2 ~ /^\[/) i++;
                                   if ($(i + 1) == "bookworm") { print $i; exit } }')
        if [ -z "$m" ]; then
                m=$(cat /etc/apt/sources.list.d/*.sources 2>/dev/null |
                        awk 'BEGIN { RS = ""; FS = "\n" }
                             { uri = ""; deb = 0; bw = 0
                               for (i = 1; i <= NF; i++) {
                                       if ($i ~ /^Types:.*(^|[ \t])deb([ \t]|$)/) deb = 1
                                       if ($i ~ /^Suites:.*[ \t]bookworm([ \t]|$)/) bw = 1
                                       if ($i ~ /^URIs:/) { split($i, a, /[ \t]+/); uri = a[2] } }
                               if (deb && bw && uri != "") { print uri; exit } }')
        fi
        [ -n "$m" ] || { tb_log "no bookworm mirror in apt's sources; set CEREDIS_TESTBED_MIRROR"; return 1; }
        printf '%s\n' "$m"
}

# tb_image_key NAME: a hash of everything the image depends on, so a changed recipe rebuilds.
tb_image_key() {
        case $1 in
        busybox) { cat "$tb_top/images/busybox.sh"; sha256sum /bin/busybox; } ;;
        debian) { cat "$tb_top/images/debian.sh"; tb_debian_mirror; } ;;
        esac | sha256sum | cut -c1-16
}

# tb_image_tar NAME: the cached tarball of image NAME, built first if missing.
tb_image_tar() {
        local name=$1 key tar
        key=$(tb_image_key "$name")
        tar=$tb_cache/$name-$key.tar
        if [ -s "$tar" ]; then
                printf '%s\n' "$tar"
                return
        fi
        mkdir -p "$tb_cache"
        (
                # Two runs needing the same image build it once.
                exec {lock}>"$tb_cache/.build.lock"
                flock -w 1800 "$lock" || { tb_log "cannot lock $tb_cache"; exit 1; }
                [ -s "$tar" ] && exit 0
                local start=$SECONDS args=()
                [ "$name" = debian ] && args=("$(tb_debian_mirror)")
                tb_log "building image $name (recipe $key); the debian image takes minutes"
                rm -f "$tar.tmp"
                if ! bash "$tb_top/images/$name.sh" "$tar.tmp" "${args[@]}" >"$tb_cache/$name.log" 2>&1; then
                        tail -n 40 "$tb_cache/$name.log" >&2
                        rm -f "$tar.tmp"
                        exit 1
                fi
                rm -f "$tb_cache/$name.log"
                mv "$tar.tmp" "$tar"
                find "$tb_cache" -maxdepth 1 -name "$name-*.tar" ! -name "${tar##*/}" -delete
                tb_log "image $name built in $((SECONDS - start))s"
        ) || return 1
        printf '%s\n' "$tar"
}

tb_cmd_images() {
        tb_image_tar busybox >/dev/null
        tb_image_tar debian >/dev/null
}

# --- state -------------------------------------------------------------------------------------

tb_env_lines() {
        local k v
        for k in CEREDIS_TESTBED_NAME CEREDIS_TESTBED_DIR TB_DIR_OURS TB_NS_INET TB_NS_VPS \
                TB_INET_IF TB_VPS_IF TB_VPS_IP TB_VPS_IP6 TB_INET_IP TB_INET_IP2 TB_INET_IP6 \
                TB_INET_IP6_2 DOCKER_HOST TB_DOCKER_SOCK TB_DOCKERD_PID TB_CA TB_COMPOSE_FILE \
                TB_PROJECT TB_MADE_DIRS; do
                case $k in
                CEREDIS_TESTBED_NAME) v=$tb_name ;;
                CEREDIS_TESTBED_DIR) v=$tb_dir ;;
                TB_DIR_OURS) v=$tb_dir_ours ;;
                TB_NS_INET) v=$tb_ns_inet ;;
                TB_NS_VPS) v=$tb_ns_vps ;;
                TB_INET_IF | TB_VPS_IF) v=eth0 ;;
                TB_VPS_IP) v=$tb_vps_ip ;;
                TB_VPS_IP6) v=$tb_vps_ip6 ;;
                TB_INET_IP) v=$tb_inet_ip ;;
                TB_INET_IP2) v=$tb_inet_ip2 ;;
                TB_INET_IP6) v=$tb_inet_ip6 ;;
                TB_INET_IP6_2) v=$tb_inet_ip6_2 ;;
                DOCKER_HOST) v=unix://$tb_dir/docker.sock ;;
                TB_DOCKER_SOCK) v=$tb_dir/docker.sock ;;
                TB_DOCKERD_PID) v=$tb_dockerd_pid ;;
                TB_CA) v=$tb_dir/pki/ca.crt ;;
                TB_COMPOSE_FILE) v=$tb_compose_file ;;
                TB_PROJECT) v=$tb_project ;;
                TB_MADE_DIRS) v=$tb_made_dirs ;;
                esac
                printf '%s=%q\n' "$k" "$v"
        done
}

# The env file is written as soon as the state directory exists, so that `down` can clean up
# after an `up` that was killed half-way.
tb_save_state() {
        mkdir -p "$tb_run"
        tb_env_lines >"$tb_dir/testbed.env"
        tb_env_lines >"$tb_run/$tb_name.env.tmp"
        mv "$tb_run/$tb_name.env.tmp" "$tb_run/$tb_name.env"
}

# tb_load_state: find the testbed named by CEREDIS_TESTBED_DIR or CEREDIS_TESTBED_NAME.
tb_load_state() {
        local f=
        if [ -n "${CEREDIS_TESTBED_DIR:-}" ] && [ -f "$CEREDIS_TESTBED_DIR/testbed.env" ]; then
                f=$CEREDIS_TESTBED_DIR/testbed.env
        elif [ -f "$tb_run/$tb_name.env" ]; then
                f=$tb_run/$tb_name.env
        else
                return 1
        fi
        local CEREDIS_TESTBED_NAME CEREDIS_TESTBED_DIR TB_DIR_OURS TB_DOCKERD_PID TB_COMPOSE_FILE \
                TB_PROJECT TB_MADE_DIRS=''
        # shellcheck disable=SC1090
        . "$f"
        tb_name=$CEREDIS_TESTBED_NAME
        tb_set_names
        tb_dir=$CEREDIS_TESTBED_DIR
        tb_dir_ours=$TB_DIR_OURS
        tb_dockerd_pid=$TB_DOCKERD_PID
        tb_compose_file=$TB_COMPOSE_FILE
        tb_project=$TB_PROJECT
        tb_made_dirs=$TB_MADE_DIRS
}

# tb_lock SECONDS: serialise `up` and `down` of one testbed name. The lock is held only while
# they work; a testbed that is up is known by its registered dockerd being alive.
tb_lock() {
        mkdir -p "$tb_run"
        [ -z "$tb_lock_fd" ] || exec {tb_lock_fd}>&-
        exec {tb_lock_fd}>"$tb_run/$tb_name.lock"
        flock -n "$tb_lock_fd" && return 0
        tb_log "another up or down of testbed '$tb_name' is running; waiting"
        flock -w "$1" "$tb_lock_fd"
}

tb_need_state() {
        tb_load_state || tb_die "no testbed '$tb_name' is up (set CEREDIS_TESTBED_NAME or CEREDIS_TESTBED_DIR)"
}

# --- docker ------------------------------------------------------------------------------------

tb_docker() {
        DOCKER_HOST=unix://$tb_dir/docker.sock DOCKER_CONFIG=$tb_dir/client \
                timeout 300 "$tb_docker_bin" "$@"
}

tb_compose() {
        [ -n "$tb_compose_file" ] || tb_die "this testbed runs no compose project"
        DOCKER_HOST=unix://$tb_dir/docker.sock DOCKER_CONFIG=$tb_dir/client \
                CEREDIS_TESTBED_PKI=$tb_dir/pki COMPOSE_HTTP_TIMEOUT=120 \
                timeout 600 "$tb_compose_bin" --ansi never -p "$tb_project" -f "$tb_compose_file" "$@"
}

# tb_container SERVICE: the id of the running container of a compose service.
tb_container() {
        local id
        id=$(tb_docker ps -q --filter "label=com.docker.compose.project=$tb_project" \
                --filter "label=com.docker.compose.service=$1" | head -n1)
        [ -n "$id" ] || { tb_log "service $1 has no running container in project $tb_project"; return 1; }
        printf '%s\n' "$id"
}

tb_pid_alive() {
        [ -n "$1" ] && [ -d "/proc/$1" ] && [ "$(awk '{ print $3 }' "/proc/$1/stat" 2>/dev/null)" != Z ]
}

# The dockerd we started: its pid, checked against its name and its socket path.
tb_dockerd_alive() {
        tb_pid_alive "$tb_dockerd_pid" &&
                [ "$(cat "/proc/$tb_dockerd_pid/comm" 2>/dev/null)" = dockerd ] &&
                tr '\0' ' ' <"/proc/$tb_dockerd_pid/cmdline" 2>/dev/null | grep -qF "$tb_dir/docker.sock"
}

tb_start_dockerd() {
        local deadline
        mkdir -p "$tb_dir/data" "$tb_dir/exec" "$tb_dir/client"
        local d
        tb_made_dirs=
        for d in "${tb_fixed_dirs[@]}"; do
                [ -e "$d" ] || tb_made_dirs+="$d "
        done
        # Its own configuration file, so an /etc/docker/daemon.json on the machine cannot leak
        # in, and its own trust key instead of /etc/docker/key.json.
        printf '{ "deprecated-key-path": "%s/key.json" }\n' "$tb_dir" >"$tb_dir/daemon.json"
        # dockerd 20.10 uses a system containerd whenever its socket exists, instead of its own.
        [ ! -S /run/containerd/containerd.sock ] ||
                tb_log "warning: a system containerd runs; dockerd will use it (shims outside $tb_dir)"
        # `ip netns exec` would hide the cgroup mounts from dockerd: join the network namespace
        # only. dockerd starts its own containerd under the exec root; a containerd namespace
        # and a cgroup parent named after the testbed keep it apart from any other Docker.
        # The lock is not passed on: containerd's shims would hold it for as long as they live.
        # Kept as Docker ships them, because that is what the agent meets on a real VPS: the
        # default docker0 bridge (unused by the stack), iptables rules (DNAT of published
        # ports, inside this namespace only), the userland proxy (which answers published ports
        # on [::] too: the IPv6 path of the classic mistake), and no ip6tables (experimental
        # in 20.10). No --ipv6 either: it concerns only the default bridge; the compose
        # networks get their IPv6 subnets from the compose file, and over IPv6 the VPS routes
        # between them with no Docker isolation.
        setsid nsenter --net="/run/netns/$tb_ns_vps" -- "$tb_dockerd_bin" \
                --config-file "$tb_dir/daemon.json" \
                --data-root "$tb_dir/data" --exec-root "$tb_dir/exec" \
                --pidfile "$tb_dir/dockerd.pid" -H "unix://$tb_dir/docker.sock" \
                --containerd-namespace "$tb_name" --containerd-plugins-namespace "$tb_name-plugins" \
                --cgroup-parent "/$tb_name" --storage-driver overlay2 \
                --iptables=true --ip-forward=true --userland-proxy=true \
                --shutdown-timeout 2 --log-level warn \
                >"$tb_dir/dockerd.log" 2>&1 </dev/null {tb_lock_fd}>&- &
        tb_dockerd_pid=$!
        tb_save_state
        deadline=$((SECONDS + tb_timeout))
        until tb_docker version >/dev/null 2>&1; do
                if ! tb_pid_alive "$tb_dockerd_pid" || [ $SECONDS -ge $deadline ]; then
                        tail -n 20 "$tb_dir/dockerd.log" >&2
                        tb_log "dockerd did not answer on $tb_dir/docker.sock"
                        return 1
                fi
                sleep 0.2
        done
        # setsid may fork: trust the pid file once dockerd has written it, if it is our dockerd.
        local p
        p=$(cat "$tb_dir/dockerd.pid" 2>/dev/null || true)
        if [ -n "$p" ] && [ "$p" != "$tb_dockerd_pid" ]; then
                tb_dockerd_pid=$p
                tb_save_state
        fi
        tb_dockerd_alive || { tb_log "dockerd pid $tb_dockerd_pid is not ours"; return 1; }
}

tb_import_images() {
        local bb deb
        bb=$(tb_image_tar busybox)
        deb=$(tb_image_tar debian)
        tb_docker import \
                --change 'ENV PATH=/usr/sbin:/usr/bin:/sbin:/bin' \
                --change 'CMD ["/bin/sh"]' \
                --change "LABEL org.ceredis.testbed.recipe=${bb##*/}" \
                "$bb" ceredis-testbed/busybox:latest >/dev/null
        tb_docker import \
                --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
                --change 'ENV LANG=C.UTF-8' \
                --change 'CMD ["/bin/bash"]' \
                --change "LABEL org.ceredis.testbed.recipe=${deb##*/}" \
                "$deb" ceredis-testbed/debian:latest >/dev/null
        # The AI stand-ins carry the image names a real deployment would use.
        tb_docker tag ceredis-testbed/debian:latest ollama/ollama:latest
        tb_docker tag ceredis-testbed/debian:latest school/tutor-ai:latest
}

# tb_wait_ready: every container of the project running, healthy where it has a Docker health
# check, and accepting TCP connections from the VPS namespace on the port its
# org.ceredis.testbed.wait-tcp label names.
tb_wait_ready() {
        local deadline=$((SECONDS + tb_timeout)) ids states bad targets ready
        while :; do
                ids=$(tb_docker ps -aq --filter "label=com.docker.compose.project=$tb_project")
                [ -n "$ids" ] || { tb_log "project $tb_project has no container"; return 1; }
                # service status health ip:port (the port is "-" without the label)
                # shellcheck disable=SC2016,SC2086
                states=$(tb_docker inspect -f \
                        '{{index .Config.Labels "com.docker.compose.service"}} {{.State.Status}} {{if .State.Health}}{{.State.Health.Status}}{{else}}none{{end}} {{$p := index .Config.Labels "org.ceredis.testbed.wait-tcp"}}{{if $p}}{{range .NetworkSettings.Networks}}{{.IPAddress}}:{{$p}} {{end}}{{else}}-{{end}}' \
                        $ids)
                bad=$(printf '%s\n' "$states" | awk '$2 != "running" && $2 != "created" { print $1; exit }')
                if [ -n "$bad" ]; then
                        tb_log "service $bad stopped:"
                        tb_compose logs --no-color --tail 20 "$bad" >&2 || true
                        return 1
                fi
                # One address per container is enough to know it listens.
                targets=$(printf '%s\n' "$states" | awk '$4 != "-" && $4 ~ /^[0-9]/ { print $4 }')
                ready=0
                if [ -n "$targets" ]; then
                        # shellcheck disable=SC2016,SC2086
                        ready=$(timeout 20 nsenter --net="/run/netns/$tb_ns_vps" -- bash -c '
                                n=0
                                for t in "$@"; do
                                        (exec 3<>"/dev/tcp/${t%:*}/${t#*:}") 2>/dev/null && n=$((n + 1))
                                done
                                echo "$n"' _ $targets || echo 0)
                fi
                if [ "$ready" -eq "$(printf '%s\n' "$targets" | grep -c .)" ] &&
                   printf '%s\n' "$states" | awk '$2 != "running" || ($3 != "healthy" && $3 != "none") { f = 1 } END { exit f }'; then
                        return 0
                fi
                if [ $SECONDS -ge $deadline ]; then
                        tb_log "services not ready after ${tb_timeout}s:"
                        printf '%s\n' "$states" >&2
                        return 1
                fi
                sleep 0.5
        done
}

# --- namespaces and certificates ---------------------------------------------------------------

tb_in() { # tb_in NS CMD...: only the network namespace; mounts and cgroups stay the machine's
        local ns=$1
        shift
        nsenter --net="/run/netns/$ns" -- "$@"
}

tb_make_namespaces() {
        local ns
        for ns in "$tb_ns_inet" "$tb_ns_vps"; do
                ip netns add "$ns"
                # Only per-namespace settings: DAD off so test addresses work at once.
                tb_in "$ns" sysctl -qw net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0 \
                        net.ipv6.conf.all.dad_transmits=0 net.ipv6.conf.default.dad_transmits=0
                ip -n "$ns" link set lo up
        done
        # Both ends are created directly inside the namespaces.
        ip link add eth0 netns "$tb_ns_inet" type veth peer name eth0 netns "$tb_ns_vps"

        ip -n "$tb_ns_inet" addr add "$tb_inet_ip/24" dev eth0
        ip -n "$tb_ns_inet" addr add "$tb_inet_ip2/24" dev eth0
        ip -n "$tb_ns_inet" -6 addr add "$tb_inet_ip6/64" dev eth0 nodad
        ip -n "$tb_ns_inet" -6 addr add "$tb_inet_ip6_2/64" dev eth0 nodad
        ip -n "$tb_ns_inet" link set eth0 up
        # The whole Internet is on the link; clients speak from .5 unless told otherwise.
        ip -n "$tb_ns_inet" route add default dev eth0 src "$tb_inet_ip"
        ip -n "$tb_ns_inet" -6 route add default dev eth0 src "$tb_inet_ip6"

        ip -n "$tb_ns_vps" addr add "$tb_vps_ip/24" dev eth0
        ip -n "$tb_ns_vps" -6 addr add "$tb_vps_ip6/64" dev eth0 nodad
        ip -n "$tb_ns_vps" link set eth0 up
        ip -n "$tb_ns_vps" route add default dev eth0
        ip -n "$tb_ns_vps" -6 route add default dev eth0
        tb_in "$tb_ns_vps" sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1
}

# A test CA and a server certificate for the TLS entry (like Let's Encrypt: 90 days, EC key).
tb_make_pki() {
        local pki=$tb_dir/pki days=${CEREDIS_TESTBED_CERT_DAYS:-90}
        mkdir -p "$pki"
        (
                cd "$pki"
                openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
                        -keyout ca.key -out ca.crt -days 3650 -subj "/CN=CEREDIS testbed CA" \
                        -addext "basicConstraints=critical,CA:TRUE" \
                        -addext "keyUsage=critical,keyCertSign,cRLSign"
                openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
                        -keyout server.key -out server.csr -subj "/CN=ceredis.test"
                printf '%s\n' "subjectAltName=DNS:ceredis.test,DNS:localhost,IP:$tb_vps_ip,IP:$tb_vps_ip6" \
                        "basicConstraints=critical,CA:FALSE" "keyUsage=critical,digitalSignature" \
                        "extendedKeyUsage=serverAuth" >server.ext
                openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial \
                        -days "$days" -extfile server.ext -out server.crt
                chmod 0644 ca.crt server.crt
                chmod 0600 ca.key server.key
        ) >"$tb_dir/pki.log" 2>&1 || { cat "$tb_dir/pki.log" >&2; return 1; }
}

# --- teardown ----------------------------------------------------------------------------------

# Mount points under the state directory, deepest first.
tb_mounts_under() {
        [ -n "$tb_dir" ] || return 0
        awk -v d="$tb_dir/" 'index($5, d) == 1 { print $5 }' /proc/self/mountinfo | sort -r
}

# Processes this testbed started: dockerd and whatever names the state directory on its command
# line (containerd, the shims), everything inside the two namespaces (docker-proxy, anything a
# test ran there) and everything in the containers' cgroup parent.
tb_our_pids() {
        local p ns cg
        if [ -n "$tb_dir" ]; then
                for p in $(pgrep -f -- "$tb_dir/"); do
                        case $(cat "/proc/$p/comm" 2>/dev/null) in
                        dockerd | containerd | containerd-shim* | docker-proxy | runc) echo "$p" ;;
                        esac
                done
        fi
        for ns in "$tb_ns_inet" "$tb_ns_vps"; do
                [ -e "/run/netns/$ns" ] && ip netns pids "$ns" 2>/dev/null
        done
        for cg in /sys/fs/cgroup/*/"$tb_name" /sys/fs/cgroup/unified/"$tb_name"; do
                [ -d "$cg" ] && find "$cg" -name cgroup.procs -exec cat {} + 2>/dev/null
        done
        true
}

tb_kill_pids() { # tb_kill_pids SIGNAL: signal every process tb_our_pids names
        local p
        for p in $(tb_our_pids | sort -un); do
                [ "$p" = $$ ] || [ "$p" = "$BASHPID" ] || kill "-$1" "$p" 2>/dev/null || true
        done
}

tb_wait_no_pids() { # tb_wait_no_pids SECONDS
        local deadline=$((SECONDS + $1)) p alive
        while :; do
                alive=
                for p in $(tb_our_pids | sort -un); do
                        tb_pid_alive "$p" && alive=1
                done
                [ -z "$alive" ] && return 0
                [ $SECONDS -ge $deadline ] && return 1
                sleep 0.2
        done
}

# tb_teardown: remove everything; returns non-zero and names what it could not remove.
tb_teardown() {
        local m cg ns left=() i

        if tb_dockerd_alive; then
                tb_log "removing the containers and stopping dockerd $tb_dockerd_pid"
                # Killing the containers first makes dockerd's own shutdown immediate.
                local ids
                ids=$(tb_docker ps -aq 2>/dev/null || true)
                # shellcheck disable=SC2086
                [ -z "$ids" ] || timeout 120 env DOCKER_HOST="unix://$tb_dir/docker.sock" \
                        DOCKER_CONFIG="$tb_dir/client" "$tb_docker_bin" rm -fv $ids >/dev/null 2>&1 || true
                kill -TERM "$tb_dockerd_pid" 2>/dev/null || true
                for ((i = 0; i < 100; i++)); do
                        tb_pid_alive "$tb_dockerd_pid" || break
                        sleep 0.2
                done
        fi
        tb_log "stopping what is left of the testbed's processes"
        tb_kill_pids TERM
        tb_wait_no_pids 10 || { tb_kill_pids KILL; tb_wait_no_pids 10 || true; }

        tb_log "unmounting, deleting the namespaces and the state"
        for ((i = 0; i < 3; i++)); do
                for m in $(tb_mounts_under); do
                        umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true
                done
                [ -z "$(tb_mounts_under)" ] && break
        done

        for ns in "$tb_ns_inet" "$tb_ns_vps"; do
                [ -e "/run/netns/$ns" ] && { ip netns delete "$ns" 2>/dev/null || true; }
        done

        # Empty cgroups left by runc under the testbed's cgroup parent, deepest first.
        for cg in /sys/fs/cgroup/*/"$tb_name" /sys/fs/cgroup/unified/"$tb_name"; do
                [ -d "$cg" ] && find "$cg" -depth -type d -exec rmdir {} + 2>/dev/null
        done

        # The state: only once nothing is mounted under it (a container's bind mount of the
        # source tree must never be followed), and never across file systems.
        if [ -n "$tb_dir" ] && [ -d "$tb_dir" ] && [ -z "$(tb_mounts_under)" ]; then
                if [ "$tb_dir_ours" = 1 ]; then
                        rm -rf --one-file-system "$tb_dir"
                else
                        # A directory the caller gave keeps only the logs, for the post-mortem.
                        find "$tb_dir" -mindepth 1 -maxdepth 1 ! -name '*.log' \
                                -exec rm -rf --one-file-system {} +
                fi
        fi
        for m in $tb_made_dirs; do
                rmdir "$m" 2>/dev/null || true
        done
        if [ -f "$tb_run/$tb_name.env" ] &&
           grep -qxF "CEREDIS_TESTBED_DIR=$(printf '%q' "$tb_dir")" "$tb_run/$tb_name.env"; then
                rm -f "$tb_run/$tb_name.env"
        fi

        # What is left, if anything, is reported and makes the teardown fail.
        for ns in "$tb_ns_inet" "$tb_ns_vps"; do
                [ -e "/run/netns/$ns" ] && left+=("namespace $ns")
        done
        for m in $(tb_our_pids | sort -un); do
                tb_pid_alive "$m" && left+=("pid $m ($(cat "/proc/$m/comm" 2>/dev/null))")
        done
        for m in $(tb_mounts_under); do left+=("mount $m"); done
        for cg in /sys/fs/cgroup/*/"$tb_name" /sys/fs/cgroup/unified/"$tb_name"; do
                [ -d "$cg" ] && left+=("cgroup $cg")
        done
        if [ ${#left[@]} -gt 0 ]; then
                tb_log "left behind: ${left[*]}"
                return 1
        fi
        return 0
}

# --- commands ----------------------------------------------------------------------------------

tb_up_failed() {
        local rc=$?
        trap - EXIT INT TERM HUP
        tb_log "up failed; removing everything it made"
        [ -f "$tb_dir/dockerd.log" ] && { tail -n 15 "$tb_dir/dockerd.log" | sed 's/^/dockerd: /' >&2 || true; }
        tb_teardown || true
        exit $((rc == 0 ? 1 : rc))
}

tb_cmd_up() {
        local compose=$tb_top/compose/ceredis.yml project=
        while [ $# -gt 0 ]; do
                case $1 in
                --compose) compose=$2; shift 2 ;;
                --project) project=$2; shift 2 ;;
                *) tb_die "up: unknown argument $1" ;;
                esac
        done
        [ "$(id -u)" -eq 0 ] || tb_die "up must run as root"
        local p
        for p in "$tb_dockerd_bin" "$tb_docker_bin" "$tb_compose_bin" /usr/sbin/debootstrap /bin/busybox; do
                [ -x "$p" ] || tb_die "$p is missing: run '$0 install'"
        done
        if [ "$compose" != none ]; then
                [ -f "$compose" ] || tb_die "no compose file $compose"
                tb_compose_file=$(cd "$(dirname "$compose")" && pwd)/$(basename "$compose")
                tb_project=${project:-$(basename "$compose" | sed 's/\.[^.]*$//')}
        fi

        # Images first: a long build holds nothing but the cache lock.
        tb_cmd_images

        local want_dir=${CEREDIS_TESTBED_DIR:-} want_compose=$tb_compose_file want_project=$tb_project
        local wait=${CEREDIS_TESTBED_LOCK_WAIT:-900} deadline
        deadline=$((SECONDS + wait))
        tb_lock "$wait" || tb_die "testbed '$tb_name' stayed locked for ${wait}s"
        # A testbed of this name that is up (its dockerd lives) is waited for, never removed;
        # anything else left under this name is a dead run's, removed here.
        while tb_load_state && tb_dockerd_alive; do
                [ $SECONDS -lt "$deadline" ] ||
                        tb_die "testbed '$tb_name' is up in $tb_dir (CEREDIS_TESTBED_NAME=$tb_name $0 down)"
                [ -n "${tb_waiting:-}" ] || tb_log "testbed '$tb_name' is up in $tb_dir; waiting for its down"
                tb_waiting=1
                flock -u "$tb_lock_fd"
                sleep 2
                tb_lock $((deadline - SECONDS > 0 ? deadline - SECONDS : 1)) ||
                        tb_die "testbed '$tb_name' stayed locked for ${wait}s"
        done
        if tb_load_state || [ -e "/run/netns/$tb_ns_inet" ] || [ -e "/run/netns/$tb_ns_vps" ]; then
                tb_log "removing the leftovers of an earlier testbed '$tb_name' (${tb_dir:-no state})"
                tb_teardown || tb_die "cannot remove the earlier testbed"
        fi
        tb_compose_file=$want_compose
        tb_project=$want_project
        tb_dockerd_pid=

        if [ -n "$want_dir" ]; then
                tb_dir=$(cd "$want_dir" 2>/dev/null && pwd) || { mkdir -p "$want_dir" && tb_dir=$(cd "$want_dir" && pwd); }
                tb_dir_ours=0
        else
                tb_dir=$(mktemp -d /tmp/ceredis-testbed.XXXXXX)
                tb_dir_ours=1
        fi
        # Unix socket paths are short; containerd's lives deepest.
        [ ${#tb_dir} -le 60 ] || tb_die "state directory path too long for unix sockets: $tb_dir"
        trap tb_up_failed EXIT
        trap 'exit 130' INT
        trap 'exit 143' TERM
        trap 'exit 129' HUP
        tb_save_state

        tb_log "state in $tb_dir; namespaces $tb_ns_inet and $tb_ns_vps"
        # Docker's data root on a tmpfs: imports are faster, and removing hundreds of MB of
        # layers from a disk mounted with online discard takes half a minute; unmounting the
        # tmpfs frees them at once.
        if [ "${CEREDIS_TESTBED_TMPFS:-1}" = 1 ]; then
                mkdir -p "$tb_dir/data"
                mount -t tmpfs -o "size=${CEREDIS_TESTBED_TMPFS_SIZE:-4g},mode=0711" \
                        ceredis-testbed "$tb_dir/data"
        fi
        tb_make_pki
        tb_make_namespaces
        tb_start_dockerd
        tb_log "dockerd $tb_dockerd_pid answers; importing images"
        tb_import_images
        if [ -n "$tb_compose_file" ]; then
                tb_log "compose up: project $tb_project from $tb_compose_file"
                tb_compose up -d --no-build >"$tb_dir/compose-up.log" 2>&1 ||
                        { cat "$tb_dir/compose-up.log" >&2; false; }
                tb_log "waiting for the services to listen"
                tb_wait_ready
        fi
        tb_save_state
        trap - EXIT INT TERM HUP
        tb_log "up"
        tb_env_lines
}

tb_cmd_down() {
        tb_lock "${CEREDIS_TESTBED_LOCK_WAIT:-900}" || tb_die "testbed '$tb_name' stayed locked"
        if ! tb_load_state; then
                # No state: still remove namespaces of this name, if a run died before saving.
                tb_dir=
                tb_teardown
                return
        fi
        tb_teardown
}

tb_cmd_logs() {
        tb_need_state
        echo "== dockerd ($tb_dir/dockerd.log)"
        cat "$tb_dir/dockerd.log"
        if [ -n "$tb_compose_file" ] && tb_dockerd_alive; then
                echo "== containers"
                tb_compose logs --no-color --tail 50 || true
        fi
}

tb_cmd_exec() {
        [ $# -ge 2 ] || tb_die "usage: exec SERVICE CMD..."
        tb_need_state
        local id
        id=$(tb_container "$1") || exit 1
        shift
        DOCKER_HOST=unix://$tb_dir/docker.sock DOCKER_CONFIG=$tb_dir/client \
                exec "$tb_docker_bin" exec -i "$id" "$@"
}

tb_cmd_addr() {
        [ $# -ge 1 ] || tb_die "usage: addr SERVICE [NETWORK]"
        tb_need_state
        local id out
        id=$(tb_container "$1") || exit 1
        # shellcheck disable=SC2016
        out=$(tb_docker inspect -f \
                '{{range $k, $v := .NetworkSettings.Networks}}{{$k}} {{$v.IPAddress}}{{"\n"}}{{end}}' "$id")
        if [ $# -ge 2 ]; then
                out=$(printf '%s\n' "$out" | awk -v n="$2" -v p="${tb_project}_$2" '$1 == n || $1 == p')
        fi
        out=$(printf '%s\n' "$out" | awk 'NF == 2 { print $2; exit }')
        [ -n "$out" ] || tb_die "service $1 has no address${2:+ on network $2}"
        printf '%s\n' "$out"
}

case ${1:-} in
install) testbed_install_packages ;;
images) tb_cmd_images ;;
up) shift; tb_cmd_up "$@" ;;
down) tb_cmd_down ;;
env) tb_need_state; tb_env_lines ;;
exec) shift; tb_cmd_exec "$@" ;;
addr) shift; tb_cmd_addr "$@" ;;
inet) shift; tb_need_state; tb_in "$tb_ns_inet" "$@" ;;
vps) shift; tb_need_state; tb_in "$tb_ns_vps" "$@" ;;
docker) shift; tb_need_state; tb_docker "$@" ;;
compose) shift; tb_need_state; tb_compose "$@" ;;
logs) tb_cmd_logs ;;
*)
        sed -n '/^#   testbed.sh/,/^#$/p' "$0" | sed 's/^# \{0,1\}//' >&2
        exit 2
        ;;
esac
