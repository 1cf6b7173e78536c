#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Regenerate the real captures in this directory: a private PostgreSQL 15 cluster, psql, pgbench,
# curl and python3's http.server talk over the loopback of a network namespace made here, and
# tcpdump records them; nft logs one packet to NFLOG group 7 in the same namespace. Needs root,
# the Debian packages tcpdump and postgresql-15; nothing touches the machine's own namespace.
set -euo pipefail

out=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ns=ceredis-h6-cap
work=$(mktemp -d /tmp/ceredis-cap.XXXXXX)
chmod 755 "$work"
pgbin=/usr/lib/postgresql/15/bin
pids=()

cleanup() {
        local p
        for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
        for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
        ip netns del "$ns" 2>/dev/null || true
        rm -rf "$work"
}
trap cleanup EXIT

in_ns() { ip netns exec "$ns" "$@"; }

# capture FILE IFACE FILTER CMD...: record CMD's traffic, whole packets, into FILE.
capture() {
        local file=$1 iface=$2 filter=$3 tpid; shift 3
        ip netns exec "$ns" tcpdump -Z root -U -s 0 -i "$iface" -w "$work/$file" "$filter" 2>"$work/$file.log" &
        tpid=$!
        for _ in $(seq 50); do grep -q listening "$work/$file.log" && break; sleep 0.1; done
        sleep 1
        "$@" >/dev/null
        sleep 1
        kill -INT "$tpid"
        wait "$tpid" || true
        cp "$work/$file" "$out/$file"
}

ip netns add "$ns"
in_ns ip link set lo up

# PostgreSQL: trust authentication on 127.0.0.1, so the captures hold no password exchange.
install -d -o postgres "$work/pg" "$work/sock"
runuser -u postgres -- "$pgbin/initdb" -D "$work/pg/data" -A trust -U postgres >/dev/null
# Started without a wrapper that forks (ip netns exec and setpriv exec), so $! is the server.
ip netns exec "$ns" setpriv --reuid=postgres --regid=postgres --init-groups \
        "$pgbin/postgres" -D "$work/pg/data" -k "$work/sock" \
        -c listen_addresses=127.0.0.1 -p 5439 >"$work/pg.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do in_ns "$pgbin/pg_isready" -q -h 127.0.0.1 -p 5439 && break; sleep 0.1; done
pg() { in_ns psql -X -q -h 127.0.0.1 -p 5439 -U postgres -d postgres "$@"; }
pg -c 'CREATE TABLE scores (id int, score int)'

f="tcp port 5439"
capture pgsql-select.pcap lo "$f" pg -c 'SELECT id, score FROM scores'
capture pgsql-insert.pcap lo "$f" pg -c 'INSERT INTO scores VALUES (1, 42)'
capture pgsql-multi.pcap lo "$f" pg -c 'SELECT 1; DELETE FROM scores WHERE id = 7'
capture pgsql-cte.pcap lo "$f" \
        pg -c 'WITH gone AS (DELETE FROM scores WHERE id = 1 RETURNING *) SELECT count(*) FROM gone'
printf 'UPDATE scores SET score = score + 1 WHERE id = 2;\n' >"$work/bench.sql"
chmod 644 "$work/bench.sql"
capture pgsql-extended.pcap lo "$f" in_ns "$pgbin/pgbench" -n -M extended -t 1 \
        -h 127.0.0.1 -p 5439 -U postgres -f "$work/bench.sql" postgres

# HTTP/1.1 with curl against python3's http.server, over IPv4 on lo and IPv6 on "any" (SLL2).
mkdir -p "$work/www" && echo hello >"$work/www/index.html"
ip netns exec "$ns" python3 -m http.server 8080 --bind :: --directory "$work/www" \
        >/dev/null 2>&1 &
pids+=($!)
for _ in $(seq 50); do in_ns curl -s -o /dev/null http://127.0.0.1:8080/ && break; sleep 0.1; done
capture http-get.pcap lo "tcp port 8080" in_ns curl -s http://127.0.0.1:8080/index.html?q=1
capture http-post.pcap lo "tcp port 8080" \
        in_ns curl -s -d 'score=42' -H 'Host: api.ceredis.test' http://127.0.0.1:8080/scores
capture http-get-ipv6-sll2.pcap any "tcp port 8080" in_ns curl -s -I 'http://[::1]:8080/'

# NFLOG: the packets the agent's ruleset logs, as libpcap's nflog:7 delivers them.
in_ns nft -f - <<'NFT'
table inet t {
        chain input {
                type filter hook input priority 0;
                tcp dport 5432 log group 7 prefix "ceredis:NET-1 "
        }
}
NFT
capture nflog.pcap nflog:7 "" in_ns bash -c 'exec 2>/dev/null 3<>/dev/tcp/127.0.0.1/5432 || true'
in_ns nft delete table inet t
echo "captures written to $out"
