#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# The reporting sinks end to end (issue 7) against a real Prometheus and a real Alertmanager
# from Debian, all inside a network namespace of this suite, bound to 127.0.0.1 there:
#  - the shipped alert rules pass `promtool check rules` and their `promtool test rules` tests;
#  - tests/lib/sinks-driver emits NET-1 violations through the sinks; Prometheus scrapes the
#    metrics endpoint, sees the counter, and the shipped CeredisViolationCritical rule fires
#    and reaches Alertmanager; the direct Alertmanager sink's CeredisViolation alert is read
#    back from Alertmanager's API with its labels;
#  - with Alertmanager stopped (SIGSTOP: accepts, never answers) and then dead, the emit path
#    does not slow down (the time spent in sinks_emit is logged), nothing is delivered, the
#    alert set's cap drops and counts, and the alert arrives once Alertmanager is back;
#  - a quiet alert is resolved (endsAt) after the resolve interval; the textfile is written;
#  - the Grafana dashboard parses, uses a datasource variable, and Prometheus accepts every
#    query in it; the journal sink's entries, read back from the native protocol, carry the
#    CEREDIS_* fields, MESSAGE_ID and PRIORITY;
#  - then ceredis-agent itself, enforcing policies/ceredis.yaml in the same namespace (its
#    public interface a veth to an "internet" namespace, no Docker: --endpoints), with
#    --metrics-listen, --alertmanager-url and --journal yes: internet probes of PostgreSQL are
#    NET-1 `blocked` events; Prometheus scrapes the agent, the shipped rule fires into
#    Alertmanager and the agent's own NET-1 alert is there with its labels; its journal
#    entries are read back; with Alertmanager killed, a new probe is listed by `ceredisctl
#    violations` and a flushed table is repaired within 1 s each, and the alert born meanwhile
#    arrives once Alertmanager is back.
# Run as root with CEREDIS_BUILD=<build dir>.
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
top=$(cd "$here/.." && pwd)
. "$here/lib/tap.sh"
. "$here/lib/netns.sh"

build=${CEREDIS_BUILD:-$top/build}
driver="$build/tests/lib/sinks-driver"
rules="$top/packaging/prometheus/ceredis-rules.yml"
rules_test="$top/packaging/prometheus/ceredis-rules.test.yml"
# Unusual ports, on the loopback of our own namespace only.
metrics_port=19469
agent_port=19479
prom_port=19491
am_port=19493

if [ "$(id -u)" -ne 0 ]; then
        skip_check "sinks suite" "needs root (network namespace)"
        tap_summary
        exit
fi
for b in "$driver" "$build/ceredis-agent" "$build/ceredisctl" /usr/sbin/nft /usr/bin/prometheus /usr/bin/prometheus-alertmanager /usr/bin/promtool \
        /usr/bin/curl /usr/bin/jq; do
        [ -x "$b" ] || { skip_check "sinks suite" "$b missing (./dev setup installs prometheus, prometheus-alertmanager)"; tap_summary; exit; }
done

ns_init sinks
t=$ns_tmp
ns_add srv

# ---- the rules, offline --------------------------------------------------------------------
check "promtool check rules ceredis-rules.yml" promtool check rules "$rules"
cp "$rules" "$rules_test" "$t/"
check "promtool test rules ceredis-rules.test.yml" sh -c "cd '$t' && promtool test rules ceredis-rules.test.yml"

# ---- Alertmanager and Prometheus, ours, in the namespace ----------------------------------
cat >"$t/am.yml" <<AM
route:
  receiver: devnull
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: devnull
AM
am_pid=
start_am() {
        mkdir -p "$t/am"
        ns_bg srv /usr/bin/prometheus-alertmanager --config.file="$t/am.yml" \
                --storage.path="$t/am" --web.listen-address=127.0.0.1:$am_port \
                --cluster.listen-address= --log.level=warn >>"$t/am.log" 2>&1
        am_pid=$(ns_last_pid)
}
stop_am() {
        kill -CONT "$am_pid" 2>/dev/null
        ns_kill "$am_pid"
        am_pid=
}

cat >"$t/prom.yml" <<PROM
global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files:
  - $t/ceredis-rules.yml
alerting:
  alertmanagers:
    - static_configs:
        - targets: ['127.0.0.1:$am_port']
scrape_configs:
  - job_name: ceredis
    static_configs:
      - targets: ['127.0.0.1:$metrics_port']
  - job_name: ceredis-agent
    static_configs:
      - targets: ['127.0.0.1:$agent_port']
PROM

get() { ns srv curl -fsS --max-time 5 "$@"; }
# wait_for SECONDS CMD...: until CMD succeeds.
wait_for() {
        local deadline=$((SECONDS + $1))
        shift
        until "$@" >/dev/null 2>&1; do
                [ "$SECONDS" -lt "$deadline" ] || return 1
                sleep 0.3
        done
}

start_am
if ! wait_for 30 get "http://127.0.0.1:$am_port/-/ready"; then
        skip_check "sinks suite" "Alertmanager did not start: $(tail -n 5 "$t/am.log")"
        tap_summary
        exit
fi

# ---- the driver: one command per line on fd 3, one answer per line in driver.out ----------
mkfifo "$t/driver.in"
exec 3<>"$t/driver.in"
mkdir -p "$t/textfile"
: >"$t/driver.out"
# Started here rather than through ns_bg: a background command's stdin is /dev/null unless
# the redirection is on the command itself.
ip netns exec "$(ns_name srv)" "$driver" --listen 127.0.0.1:$metrics_port \
        --alertmanager "http://127.0.0.1:$am_port" --resend-ms 1000 --resolve-ms 15000 \
        --alerts-max 4 --queue 64 --no-journal --textfile "$t/textfile" \
        <&3 >"$t/driver.out" 2>"$t/driver.err" &
driver_pid=$!
ns_pids+=("$driver_pid")
drv() { # drv COMMAND: its answer line
        local n
        n=$(wc -l <"$t/driver.out")
        printf '%s\n' "$*" >&3
        for _ in $(seq 100); do
                [ "$(wc -l <"$t/driver.out")" -gt "$n" ] && break
                sleep 0.05
        done
        sed -n "$((n + 1))p" "$t/driver.out"
}
if ! wait_for 10 grep -qx ready "$t/driver.out"; then
        skip_check "sinks suite" "sinks-driver did not start: $(cat "$t/driver.err")"
        tap_summary
        exit
fi

ns_bg srv /usr/bin/prometheus --config.file="$t/prom.yml" --storage.tsdb.path="$t/prom" \
        --web.listen-address=127.0.0.1:$prom_port --log.level=warn >"$t/prom.log" 2>&1
wait_for 30 get "http://127.0.0.1:$prom_port/-/ready" ||
        not_ok "Prometheus starts" "$(tail -n 5 "$t/prom.log")"

drv policy 0123abcd enforce vps1 >/dev/null
drv sync 1 >/dev/null
answer=$(drv emit NET-1 critical internet postgres blocked 3)
case $answer in
emitted\ 3\ *) ok "driver emits 3 NET-1 violations ($answer)" ;;
*) not_ok "driver emits 3 NET-1 violations" "$answer" "$(cat "$t/driver.err")" ;;
esac

# ---- metrics: the endpoint, Prometheus' scrape, the shipped rule --------------------------
metrics=$(get "http://127.0.0.1:$metrics_port/metrics")
if grep -qx 'ceredis_violations_total{rule="NET-1",src_service="internet",dst_service="postgres",action="blocked",severity="critical"} 3' <<<"$metrics" &&
        grep -qx 'ceredis_policy_info{sha256="0123abcd",mode="enforce",host="vps1"} 1' <<<"$metrics"; then
        ok "the metrics endpoint shows the NET-1 counter and the policy"
else
        not_ok "the metrics endpoint shows the NET-1 counter and the policy" "$(head -c 2000 <<<"$metrics")"
fi
check_fails "the metrics endpoint is not reachable on a wildcard bind (refused at start)" \
        ns srv "$driver" --listen 0.0.0.0:19470 --no-journal </dev/null

prom_value() {
        get "http://127.0.0.1:$prom_port/api/v1/query" --data-urlencode \
                'query=ceredis_violations_total{rule="NET-1",src_service="internet",dst_service="postgres"}' |
                jq -e '.data.result[0].value[1] == "3"'
}
if wait_for 30 prom_value; then
        ok "Prometheus scraped ceredis_violations_total{rule=\"NET-1\"} = 3"
else
        not_ok "Prometheus scraped ceredis_violations_total{rule=\"NET-1\"} = 3" \
                "$(get "http://127.0.0.1:$prom_port/api/v1/targets" | head -c 1500)"
fi
prom_firing() {
        get "http://127.0.0.1:$prom_port/api/v1/alerts" |
                jq -e '.data.alerts[] | select(.labels.alertname == "CeredisViolationCritical" and .labels.rule == "NET-1" and .state == "firing")'
}
if wait_for 30 prom_firing; then
        ok "the shipped rule CeredisViolationCritical fires for NET-1 in Prometheus"
else
        not_ok "the shipped rule CeredisViolationCritical fires for NET-1 in Prometheus" \
                "$(get "http://127.0.0.1:$prom_port/api/v1/alerts" | head -c 1500)"
fi

am_alert() { # am_alert ALERTNAME JQ-CONDITION
        get "http://127.0.0.1:$am_port/api/v2/alerts" |
                jq -e --arg n "$1" ".[] | select(.labels.alertname == \$n and .labels.rule == \"NET-1\") | select($2)"
}
if wait_for 30 am_alert CeredisViolationCritical true; then
        ok "Prometheus delivered CeredisViolationCritical to Alertmanager"
else
        not_ok "Prometheus delivered CeredisViolationCritical to Alertmanager"
fi

# ---- the direct Alertmanager sink ---------------------------------------------------------
direct='.labels.severity == "critical" and .labels.host == "vps1" and .labels.src_service == "internet" and .labels.dst_service == "postgres" and .annotations.count == "3" and .annotations.action == "blocked" and .status.state == "active"'
if wait_for 15 am_alert CeredisViolation "$direct"; then
        ok "the Alertmanager sink delivered CeredisViolation{rule=NET-1,severity=critical,host=vps1} (count 3)"
else
        not_ok "the Alertmanager sink delivered CeredisViolation for NET-1" \
                "$(get "http://127.0.0.1:$am_port/api/v2/alerts" | head -c 2000)" "$(cat "$t/driver.err")"
fi
delivered_before=$(drv stats | jq .alertmanager_delivered)

# ---- a slow Alertmanager (stopped: the kernel accepts, nobody answers) --------------------
kill -STOP "$am_pid"
answer=$(drv emit NET-1 critical internet postgres blocked 1000)
echo "# emit with Alertmanager stopped: $answer (time spent inside sinks_emit, 1000 calls)"
sleep 2.5
stats=$(drv stats)
if [ "$(jq .alertmanager_delivered <<<"$stats")" = "$delivered_before" ] &&
        get "http://127.0.0.1:$metrics_port/metrics" | grep -qE '^ceredis_sink_queued\{sink="alertmanager"\} [1-9]'; then
        ok "with Alertmanager stopped, the driver stays responsive and the alert waits queued"
else
        not_ok "with Alertmanager stopped, the driver stays responsive and the alert waits queued" "$stats"
fi

# ---- a dead Alertmanager: the alert set's cap drops and counts -----------------------------
# Resumed first, Alertmanager may still answer the request it held: count from when it is gone.
stop_am
sleep 0.5
delivered_before=$(drv stats | jq .alertmanager_delivered)
answer=$(drv emit-distinct AI-1 critical 10)
echo "# emit with Alertmanager dead: $answer (time spent inside sinks_emit, 10 calls)"
sleep 2 # two retries, refused
stats=$(drv stats)
# The set holds 4 alerts: NET-1 and the first 3 AI-1 sources; the other 7 are dropped.
if [ "$(jq .alertmanager_dropped <<<"$stats")" = 7 ] &&
        [ "$(jq .alertmanager_delivered <<<"$stats")" = "$delivered_before" ]; then
        ok "with Alertmanager dead, the full alert set drops and counts (7 dropped, none delivered)"
else
        not_ok "with Alertmanager dead, the full alert set drops and counts" "$stats"
fi
if get "http://127.0.0.1:$metrics_port/metrics" | grep -qx 'ceredis_sink_dropped_total{sink="alertmanager"} 7'; then
        ok "ceredis_sink_dropped_total{sink=\"alertmanager\"} = 7 on the endpoint"
else
        not_ok "ceredis_sink_dropped_total{sink=\"alertmanager\"} = 7 on the endpoint"
fi

# ---- Alertmanager back: the queued alert arrives -------------------------------------------
rm -rf "$t/am"
drv emit NET-1 critical internet postgres blocked 1 >/dev/null
start_am
if wait_for 20 am_alert CeredisViolation '.annotations.count == "1004" and .status.state == "active"'; then
        ok "once Alertmanager is back, the NET-1 alert arrives with every violation counted (1004)"
else
        not_ok "once Alertmanager is back, the NET-1 alert arrives" \
                "$(get "http://127.0.0.1:$am_port/api/v2/alerts" | head -c 2000)" \
                "$(drv stats)" "$(tail -n 5 "$t/am.log")"
fi
ai1_count() {
        [ "$(get "http://127.0.0.1:$am_port/api/v2/alerts" |
                jq '[.[] | select(.labels.alertname == "CeredisViolation" and .labels.rule == "AI-1")] | length')" = 3 ]
}
if wait_for 10 ai1_count; then
        ok "the 3 AI-1 alerts the set kept arrive too"
else
        not_ok "the 3 AI-1 alerts the set kept arrive too"
fi

# ---- resolution: no new event for the resolve interval (15 s) ------------------------------
# An active alert's endsAt is 15 s ahead and moved on at every resend (1 s), so without the
# sink's explicit resolution it would stay active until about 30 s after the last event.
drv emit NET-1 critical internet postgres blocked 1 >/dev/null
wait_for 10 am_alert CeredisViolation '.annotations.count == "1005"'
last=$SECONDS
resolved() {
        get "http://127.0.0.1:$am_port/api/v2/alerts" >/dev/null &&
                ! am_alert CeredisViolation '.status.state == "active"'
}
if wait_for 22 resolved; then
        ok "a quiet alert is resolved (endsAt) after the resolve interval ($((SECONDS - last)) s)"
else
        not_ok "a quiet alert is resolved after the resolve interval" \
                "$(get "http://127.0.0.1:$am_port/api/v2/alerts" | head -c 1500)"
fi

# ---- the node_exporter textfile --------------------------------------------------------------
# (It is rewritten every 200 ms here, so a temporary file may exist at any instant while the
# driver runs: that no temporary is left over is checked once the driver has exited.)
if wait_for 5 grep -q '^ceredis_violations_total{rule="NET-1",src_service="internet",dst_service="postgres",action="blocked",severity="critical"} 1005$' "$t/textfile/ceredis.prom"; then
        ok "the textfile ceredis.prom is written with every violation counted"
else
        not_ok "the textfile ceredis.prom is written" "$(ls -la "$t/textfile")"
fi

# ---- the Grafana dashboard: valid JSON, a datasource variable, every query accepted ---------
dashboard="$top/packaging/grafana/ceredis-dashboard.json"
if jq -e '.templating.list[] | select(.type == "datasource" and .query == "prometheus")' "$dashboard" >/dev/null &&
        jq -e '[.panels[].datasource.uid] | all(. == "${datasource}")' "$dashboard" >/dev/null; then
        ok "the dashboard parses and every panel uses the \$datasource variable"
else
        not_ok "the dashboard parses and every panel uses the \$datasource variable"
fi
bad=
while IFS= read -r expr; do
        q=$(sed -e 's/\$instance/.*/g; s/\$rule/.*/g; s/\$__rate_interval/1m/g; s/\$__range/1h/g' <<<"$expr")
        get "http://127.0.0.1:$prom_port/api/v1/query" --data-urlencode "query=$q" |
                jq -e '.status == "success"' >/dev/null || bad+="$q"$'\n'
done < <(jq -r '.panels[].targets[].expr, (.templating.list[] | select(.type == "query") | .definition)' "$dashboard" |
        sed -E 's/^label_values\(([^,]*(\{[^}]*\})?), *[a-z_]+\)$/\1/')
if [ -z "$bad" ]; then
        ok "Prometheus accepts every query of the dashboard"
else
        not_ok "Prometheus accepts every query of the dashboard" "$bad"
fi
top_flows() {
        get "http://127.0.0.1:$prom_port/api/v1/query" --data-urlencode \
                'query=topk(20, sum by (rule, src_service, dst_service, action) (increase(ceredis_violations_total[1h]))) >= 0' |
                jq -e '.data.result[] | select(.metric.rule == "NET-1" and .metric.dst_service == "postgres")'
}
check "the dashboard's top-flows query returns the NET-1 flow" wait_for 10 top_flows

# ---- the journal sink, read back from its wire format -------------------------------------
# No journald here (PID 1 is not systemd): in a private mount namespace of this suite, a tmpfs
# on /run holds a receiver on /run/systemd/journal/socket that decodes the native protocol.
journal_out=$(unshare --mount --propagation private bash -c '
        mount -t tmpfs tmpfs /run || exit 1
        mkdir -p /run/systemd/journal
        "$0" "$1" --count 2 --ready /run/ready &
        rx=$!
        for _ in $(seq 50); do [ -e /run/ready ] && break; sleep 0.1; done
        printf "emit NET-1 critical internet postgres blocked 1\nevent ruleset-drift\nquit\n" |
                "$2" >/dev/null
        wait $rx
' "$PYTHON" "$here/lib/journal-rx.py" "$driver" 2>&1)
jv() { jq -r --arg k "$2" 'select(.CEREDIS_EVENT == "'"$1"'") | .[$k]' <<<"$journal_out"; }
if [ "$(jv violation CEREDIS_RULE)" = NET-1 ] && [ "$(jv violation CEREDIS_SEVERITY)" = critical ] &&
        [ "$(jv violation CEREDIS_ACTION)" = blocked ] &&
        [ "$(jv violation CEREDIS_SRC_SERVICE)" = internet ] &&
        [ "$(jv violation CEREDIS_SRC_IP)" = 198.51.100.7 ] &&
        [ "$(jv violation CEREDIS_DST_SERVICE)" = postgres ] &&
        [ "$(jv violation PRIORITY)" = 2 ] &&
        [ "$(jv violation MESSAGE_ID)" = f3bfb63673c841d48804139bae565d01 ] &&
        [ "$(jv ruleset-drift MESSAGE_ID)" = 1884d858d9184c618a45e27c7df6401f ] &&
        [ "$(jv ruleset-drift PRIORITY)" = 3 ]; then
        ok "the journal sink sends one structured entry per event (CEREDIS_*, MESSAGE_ID, PRIORITY)"
else
        not_ok "the journal sink sends one structured entry per event" "$journal_out"
fi

answer=$(drv quit)
rc=0
wait "$driver_pid" || rc=$?
if [ "$answer" = bye ] && [ "$rc" -eq 0 ] && [ ! -s "$t/driver.err" ]; then
        ok "the driver exits cleanly (status 0, nothing on stderr: no sanitizer report)"
else
        not_ok "the driver exits cleanly" "$answer, exit $rc" "$(head -n 30 "$t/driver.err")"
fi
if [ -s "$t/textfile/ceredis.prom" ] && [ -z "$(find "$t/textfile" -name '.ceredis.prom.*')" ]; then
        ok "the textfile was replaced atomically: no temporary file left after exit"
else
        not_ok "the textfile was replaced atomically" "$(ls -la "$t/textfile")"
fi
# ==== ceredis-agent itself: the same sinks, wired by the daemon ============================
# The agent enforces policies/ceredis.yaml in the namespace where Prometheus and Alertmanager
# run (its ruleset leaves loopback alone): eth0 is its public interface, a veth to an
# "internet" namespace whose client 198.51.100.20 routes the private network 172.18.0.0/16
# through it, as a neighbour on the link can. A veth pair holds that network, so the probes
# reach the forward hook, where NET-1 logs and drops them. No Docker: --endpoints.
agent="$build/ceredis-agent"
ctl="$build/ceredisctl"
state="$t/state"
client=198.51.100.20
pg_ip=$(jq -r '.postgres[0]' "$top/tests/data/endpoints.json")
cass_ip=$(jq -r '.cass[0]' "$top/tests/data/endpoints.json")
ralph_ip=$(jq -r '.ralph[0]' "$top/tests/data/endpoints.json")
ns_add inet
ns_veth inet up0 srv eth0
ns inet ip addr add 203.0.113.1/24 dev up0
ns inet ip addr add "$client/32" dev lo
ns inet ip route add 172.18.0.0/16 via 203.0.113.10 src "$client"
ns srv ip addr add 203.0.113.10/24 dev eth0
ns srv ip route add 198.51.100.0/24 via 203.0.113.1
ns srv ip link add priv0 type veth peer name priv1
ns srv ip addr add 172.18.1.1/24 dev priv0
ns srv ip link set priv0 up
ns srv ip link set priv1 up
ns srv sysctl -qw net.ipv4.ip_forward=1

now_ms() { date +%s%3N; }
# probe IP PORT: one TCP connection attempt from the client (dropped: it times out).
probe() { ns inet timeout 0.5 bash -c "exec 9<>/dev/tcp/$1/$2" 2>/dev/null; true; }
# (exit status 1: violations were found)
violations() { "$ctl" violations --json --state-dir "$state" --key "$state/eventlog.key" 2>/dev/null || true; }
# listed DST_SERVICE: the event log holds a NET-1 blocked event from our client to it.
listed() {
        violations | jq -e --arg ip "$client" --arg dst "$1" \
                '.violations[] | select(.rule == "NET-1" and .action == "blocked" and .src.ip == $ip and .src.service == "internet" and .dst.service == $dst)'
}
# within_ms MS CMD...: poll CMD (generously) until it succeeds or MS passed; prints the time.
within_ms() {
        local start deadline
        start=$(now_ms)
        deadline=$((start + $1))
        shift
        while :; do
                if "$@" >/dev/null 2>&1; then
                        echo $(($(now_ms) - start))
                        return 0
                fi
                [ "$(now_ms)" -lt "$deadline" ] || return 1
                sleep 0.02
        done
}

# The journal: the agent runs in a private mount namespace where /run/systemd is a tmpfs of
# its own holding a receiver of the native protocol on journal/socket (no journald here).
: >"$t/journal.jsonl"
agent_args=(--policy "$top/policies/ceredis.yaml" --endpoints "$top/tests/data/endpoints.json"
        --netns "$(ns_name srv)" --docker-host none --state-dir "$state"
        --eventlog-key "$state/eventlog.key" --metrics-listen "127.0.0.1:$agent_port"
        --alertmanager-url "http://127.0.0.1:$am_port" --journal yes --foreground)
if [ -d /run/systemd ]; then
        journal_rx=yes
        bg unshare --mount --propagation private bash -c '
                mount -t tmpfs -o mode=0755 tmpfs /run/systemd || exit 1
                mkdir /run/systemd/journal
                "$0" "$1" --out "$2" </dev/null >/dev/null 2>&1 &
                for _ in $(seq 100); do [ -S /run/systemd/journal/socket ] && break; sleep 0.05; done
                shift 2
                exec "$@"' "$PYTHON" "$here/lib/journal-rx.py" "$t/journal.jsonl" "$agent" "${agent_args[@]}" \
                >"$t/agent.out" 2>"$t/agent.err"
else
        journal_rx=
        bg "$agent" "${agent_args[@]}" >"$t/agent.out" 2>"$t/agent.err"
fi
agent_pid=$(ns_last_pid)
if wait_for 10 grep -q '"event":"started"' "$t/agent.out"; then
        ok "ceredis-agent starts with --metrics-listen, --alertmanager-url and --journal yes"
else
        not_ok "ceredis-agent starts with the sinks" "$(tail -n 5 "$t/agent.err")"
fi
sleep 0.3 # the NFLOG capture opens right after "started"

probe "$pg_ip" 5432
if took=$(within_ms 3000 listed postgres); then
        ok "an internet probe of PostgreSQL is a NET-1 blocked event of the agent (listed after $took ms)"
else
        not_ok "an internet probe of PostgreSQL is a NET-1 blocked event of the agent" \
                "$(violations | head -c 1500)" "$(tail -n 5 "$t/agent.err")"
fi

agent_metrics=$(get "http://127.0.0.1:$agent_port/metrics")
if grep -qE '^ceredis_violations_total\{rule="NET-1",src_service="internet",dst_service="postgres",action="blocked",severity="critical"\} [1-9]' <<<"$agent_metrics" &&
        grep -qE '^ceredis_policy_info\{sha256="[0-9a-f]{64}",mode="enforce",host="vps1"\} 1$' <<<"$agent_metrics" &&
        grep -qx 'ceredis_ruleset_in_sync 1' <<<"$agent_metrics"; then
        ok "the agent's /metrics shows the NET-1 counter, the policy and the ruleset in sync"
else
        not_ok "the agent's /metrics shows the NET-1 counter, the policy and the ruleset in sync" \
                "$(grep -E 'violations_total|policy_info|in_sync' <<<"$agent_metrics" | head -n 20)"
fi

agent_prom() {
        get "http://127.0.0.1:$prom_port/api/v1/query" --data-urlencode \
                "query=ceredis_violations_total{job=\"ceredis-agent\",rule=\"NET-1\",src_service=\"internet\",dst_service=\"postgres\",action=\"blocked\"} > 0" |
                jq -e '.data.result | length == 1'
}
if wait_for 30 agent_prom; then
        ok "Prometheus scraped the agent: ceredis_violations_total{rule=\"NET-1\"} > 0"
else
        not_ok "Prometheus scraped the agent: ceredis_violations_total{rule=\"NET-1\"} > 0" \
                "$(get "http://127.0.0.1:$prom_port/api/v1/targets" | head -c 1500)"
fi
agent_rule_in_am() {
        get "http://127.0.0.1:$am_port/api/v2/alerts" |
                jq -e --arg i "127.0.0.1:$agent_port" '.[] | select(.labels.alertname == "CeredisViolationCritical" and .labels.rule == "NET-1" and .labels.instance == $i and .labels.dst_service == "postgres" and .status.state == "active")'
}
if wait_for 40 agent_rule_in_am; then
        ok "the shipped rule fired on the agent's metrics and Alertmanager has CeredisViolationCritical{instance=agent}"
else
        not_ok "the shipped rule fired on the agent's metrics into Alertmanager" \
                "$(get "http://127.0.0.1:$prom_port/api/v1/alerts" | head -c 1500)"
fi
# direct_alert DST_IP: the agent's own alert (its annotations name the probed address).
direct_alert() {
        get "http://127.0.0.1:$am_port/api/v2/alerts" |
                jq -e --arg src "$client" --arg dst "$1" '.[] | select(.labels.alertname == "CeredisViolation" and .labels.rule == "NET-1" and .labels.severity == "critical" and .labels.host == "vps1" and .labels.src_service == "internet" and .annotations.src_ip == $src and .annotations.dst_ip == $dst and .annotations.action == "blocked" and .status.state == "active")'
}
if wait_for 15 direct_alert "$pg_ip"; then
        ok "the agent's Alertmanager sink delivered CeredisViolation{rule=NET-1,severity=critical,host=vps1,dst_service=postgres}"
else
        not_ok "the agent's Alertmanager sink delivered its NET-1 alert" \
                "$(get "http://127.0.0.1:$am_port/api/v2/alerts" | head -c 2000)" "$(tail -n 5 "$t/agent.err")"
fi

# ---- Alertmanager stopped, then killed: enforcement and capture keep their pace -----------
# probe_listed WHAT IP PORT SERVICE: a probe (started in the background, when the clock starts)
# is listed by `ceredisctl violations` within 1 s.
probe_listed() {
        local took
        probe "$2" "$3" &
        if took=$(within_ms 1000 listed "$4"); then
                ok "$1: a new probe (NET-1 to $4) is listed by ceredisctl violations within 1 s ($took ms)"
        else
                not_ok "$1: a new probe (NET-1 to $4) is listed within 1 s" "$(violations | tail -c 1500)"
        fi
        wait $!
}
repaired() { grep -c '"event":"drift".*"action":"repaired"' "$t/agent.out" 2>/dev/null || true; }
verify() { "$ctl" verify --netns "$(ns_name srv)" --state-dir "$state"; }
repaired_since() { [ "$(repaired)" -gt "$before" ] && verify; }
# flush_repaired WHAT: `nft flush table inet ceredis` is repaired (reported and verified) within 1 s.
flush_repaired() {
        local took
        before=$(repaired)
        ns srv nft flush table inet ceredis
        if took=$(within_ms 1000 repaired_since); then
                ok "$1: a flushed table is repaired within 1 s ($took ms)"
        else
                not_ok "$1: a flushed table is repaired within 1 s" \
                        "$(tail -n 3 "$t/agent.out")" "$(verify 2>&1 | head -n 5)"
        fi
}
# Stopped (SIGSTOP), Alertmanager accepts connections and never answers: the worst case for
# a sender that would wait on it.
kill -STOP "$am_pid"
probe_listed "with Alertmanager stopped" "$ralph_ip" 8100 ralph
flush_repaired "with Alertmanager stopped"
stop_am
probe_listed "with Alertmanager dead" "$cass_ip" 8080 cass
flush_repaired "with Alertmanager dead"
queued() {
        get "http://127.0.0.1:$agent_port/metrics" | grep -qE '^ceredis_sink_queued\{sink="alertmanager"\} [1-9]'
}
if wait_for 5 queued; then
        ok "the alerts wait in the agent's queue (ceredis_sink_queued{sink=\"alertmanager\"} > 0)"
else
        not_ok "the alerts wait in the agent's queue" \
                "$(get "http://127.0.0.1:$agent_port/metrics" | grep -E '^ceredis_sink')"
fi

start_am
if wait_for 30 direct_alert "$cass_ip" && wait_for 5 direct_alert "$ralph_ip"; then
        ok "once Alertmanager is back, the NET-1 alerts born while it was stopped and dead (ralph, cass) arrive"
else
        not_ok "once Alertmanager is back, the alert born while it was dead arrives" \
                "$(get "http://127.0.0.1:$am_port/api/v2/alerts" | head -c 2000)" "$(tail -n 5 "$t/agent.err")"
fi

# ---- the agent's journal entries ------------------------------------------------------------
if [ -n "$journal_rx" ]; then
        jmatch() { jq -e -s "$1" "$t/journal.jsonl" >/dev/null; }
        if wait_for 5 jmatch "[.[] | select(.CEREDIS_EVENT == \"violation\" and .CEREDIS_RULE == \"NET-1\" and .CEREDIS_SRC_IP == \"$client\" and .CEREDIS_DST_SERVICE == \"postgres\" and .CEREDIS_ACTION == \"blocked\" and .PRIORITY == \"2\")] | length > 0" &&
                jmatch '[.[] | select(.CEREDIS_EVENT == "ruleset-drift")] | length > 0' &&
                jmatch '[.[] | select(.CEREDIS_EVENT == "agent-started")] | length == 1'; then
                ok "the agent's journal sink wrote one entry per event (violation, agent-started, ruleset-drift)"
        else
                not_ok "the agent's journal sink wrote one entry per event" "$(head -c 2000 "$t/journal.jsonl")"
        fi
else
        skip_check "the agent's journal sink" "no /run/systemd to put a private journal socket in"
fi

kill "$agent_pid"
rc=0
wait "$agent_pid" || rc=$?
forget=()
for p in "${ns_pids[@]}"; do [ "$p" = "$agent_pid" ] || forget+=("$p"); done
ns_pids=("${forget[@]}")
if [ "$rc" -eq 0 ] && ! grep -qE 'Sanitizer|runtime error' "$t/agent.err"; then
        ok "the agent exits cleanly on SIGTERM (status 0, no sanitizer report)"
else
        not_ok "the agent exits cleanly on SIGTERM" "exit $rc" "$(tail -n 20 "$t/agent.err")"
fi
if [ -n "$journal_rx" ] && jmatch '[.[] | select(.CEREDIS_EVENT == "agent-stopped")] | length == 1'; then
        ok "the journal got the agent-stopped entry (flushed at exit)"
elif [ -n "$journal_rx" ]; then
        not_ok "the journal got the agent-stopped entry (flushed at exit)" "$(tail -c 1000 "$t/journal.jsonl")"
fi

exec 3>&-
tap_summary
