/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Unit tests of the classifier with the reference policy (policies/ceredis.yaml) and the test
 * endpoints (tests/data/endpoints.json): the address -> service map, L4 decisions (forbid ids,
 * DEFAULT-DENY, replies), L7 decisions on the real captures of tests/captures (psql, pgbench
 * and curl sessions, re-addressed as if between two containers), NFLOG records, the event
 * fields, aggregation of a 10k-packet scan, and the bridges' BPF filter compiled by libpcap
 * and run over the same captures.
 */
#include "ceredis.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pcap/pcap.h>
#include <setjmp.h>
#include <stdarg.h>
#include <sys/socket.h>

#include <cmocka.h>

#include "capture.h"
#include "classify.h"

#define POLICY SRCDIR "/policies/ceredis.yaml"
#define ENDPOINTS SRCDIR "/tests/data/endpoints.json"
#define CAPTURES SRCDIR "/tests/captures/"

typedef struct Fixture {
        Policy *policy;
        Endpoints *endpoints;
        ClassifyMap *map;
        FlowTable *flows;
} Fixture;

static Policy *load_policy(bool audit) {
        _cleanup_free_ char *text = NULL;
        Policy *p = NULL;
        PolicyError err = {};
        FILE *f = fopen(POLICY, "re");
        size_t size;
        char *m;

        assert_non_null(f);
        text = calloc(1, 1 << 20);
        assert_non_null(text);
        size = fread(text, 1, (1 << 20) - 1, f);
        fclose(f);
        if (audit) {
                m = strstr(text, "mode: enforce");
                assert_non_null(m);
                memcpy(m, "mode: audit  ", 13);
        }
        assert_int_equal(policy_parse(POLICY, text, size, &p, &err), 0);
        return p;
}

static int setup_mode(void **state, bool audit) {
        Fixture *fx = calloc(1, sizeof(*fx));
        char err[256];

        assert_non_null(fx);
        fx->policy = load_policy(audit);
        assert_int_equal(endpoints_new(&fx->endpoints), 0);
        assert_int_equal(endpoints_load_json(fx->endpoints, ENDPOINTS, err, sizeof(err)), 0);
        assert_int_equal(classify_map_new(fx->policy, fx->endpoints, &fx->map), 0);
        assert_int_equal(flow_table_new(1024, 0, &fx->flows), 0);
        *state = fx;
        return 0;
}

static int setup(void **state) {
        return setup_mode(state, false);
}

static int setup_audit(void **state) {
        return setup_mode(state, true);
}

static int teardown(void **state) {
        Fixture *fx = *state;

        flow_table_free(fx->flows);
        classify_map_free(fx->map);
        endpoints_free(fx->endpoints);
        policy_free(fx->policy);
        free(fx);
        return 0;
}

static int32_t svc(const Fixture *fx, const char *name) {
        ssize_t i = policy_find_service(fx->policy, name);
        assert_true(i >= 0);
        return (int32_t) i;
}

static void addr(int family, const char *s, uint8_t out[16]) {
        memset(out, 0, 16);
        assert_int_equal(inet_pton(family, s, out), 1);
}

/* A synthetic TCP packet (no payload unless given). */
static DecodePacket tcp_packet(const char *src, uint16_t sport, const char *dst, uint16_t dport, uint8_t flags,
                               const char *payload) {
        DecodePacket p = {};
        int family = strchr(src, ':') ? AF_INET6 : AF_INET;

        p.family = family;
        addr(family, src, p.src);
        addr(family, dst, p.dst);
        p.l4proto = IPPROTO_TCP;
        p.sport = sport;
        p.dport = dport;
        p.tcp_flags = flags;
        p.tcp_seq = 1000;
        p.has_l4 = true;
        p.pkttype = 0xff;
        p.payload = (const uint8_t *) payload;
        p.payload_len = payload ? strlen(payload) : 0;
        return p;
}

/* ---- map */

static void test_map(void **state) {
        Fixture *fx = *state;
        uint8_t a[16];

        addr(AF_INET, "172.18.1.6", a);
        assert_int_equal(classify_map_lookup(fx->map, AF_INET, a), svc(fx, "postgres"));
        addr(AF_INET6, "fd00:18:1::10", a);
        assert_int_equal(classify_map_lookup(fx->map, AF_INET6, a), svc(fx, "ollama"));
        addr(AF_INET, "203.0.113.10", a);
        assert_int_equal(classify_map_lookup(fx->map, AF_INET, a), FLOW_SERVICE_HOST);
        addr(AF_INET, "198.51.100.7", a);
        assert_int_equal(classify_map_lookup(fx->map, AF_INET, a), FLOW_SERVICE_INTERNET);
        addr(AF_INET, "172.18.9.9", a);
        assert_int_equal(classify_map_lookup(fx->map, AF_INET, a), FLOW_SERVICE_UNKNOWN);
        addr(AF_INET6, "fe80::1", a);
        assert_int_equal(classify_map_lookup(fx->map, AF_INET6, a), FLOW_SERVICE_UNKNOWN);
        addr(AF_INET6, "2001:db8:198::5", a);
        assert_int_equal(classify_map_lookup(fx->map, AF_INET6, a), FLOW_SERVICE_INTERNET);
        assert_string_equal(classify_service_name(fx->policy, FLOW_SERVICE_INTERNET), "internet");
        assert_string_equal(classify_service_name(fx->policy, FLOW_SERVICE_UNKNOWN), "unknown");
        assert_string_equal(classify_service_name(fx->policy, svc(fx, "cass")), "cass");
}

/* ---- L4 */

static void expect_l4(Fixture *fx, const char *src, const char *dst, uint16_t dport, ClassifyVerdict v,
                      const char *rule) {
        _cleanup_free_ ClassifyResult *r = malloc(sizeof(*r));
        DecodePacket p = tcp_packet(src, 40000, dst, dport, DECODE_TCP_SYN, NULL);

        assert_non_null(r);
        classify_packet(fx->policy, fx->map, fx->flows, &p, 1, r);
        assert_int_equal(r->verdict, v);
        if (rule)
                assert_string_equal(r->rule, rule);
        assert_false(r->l7);
        /* The second packet of the flow gets the same verdict from the flow table. */
        classify_packet(fx->policy, fx->map, fx->flows, &p, 2, r);
        assert_int_equal(r->verdict, v);
}

static void test_l4(void **state) {
        Fixture *fx = *state;
        _cleanup_free_ ClassifyResult *r = malloc(sizeof(*r));
        DecodePacket p;

        expect_l4(fx, "198.51.100.7", "172.18.1.6", 5432, CLASSIFY_FORBID, "NET-1");
        expect_l4(fx, "198.51.100.7", "172.18.1.2", 8090, CLASSIFY_FORBID, "NET-1");
        expect_l4(fx, "198.51.100.7", "172.18.1.16", 11434, CLASSIFY_FORBID, "NET-2");
        expect_l4(fx, "172.18.1.16", "172.18.1.4", 8080, CLASSIFY_FORBID, "AI-1");
        expect_l4(fx, "172.18.1.4", "172.18.1.16", 11434, CLASSIFY_FORBID, "AI-1");
        expect_l4(fx, "172.18.1.14", "172.18.1.6", 5432, CLASSIFY_FORBID, "DATA-1");
        expect_l4(fx, "172.18.1.10", "172.18.1.2", 8090, CLASSIFY_DEFAULT_DENY, EVENT_RULE_DEFAULT_DENY);
        /* A flow allowed on one port is not allowed on another port of the same service. */
        expect_l4(fx, "172.18.0.6", "172.18.1.6", 5432, CLASSIFY_DEFAULT_DENY, EVENT_RULE_DEFAULT_DENY);
        expect_l4(fx, "172.18.1.4", "172.18.1.6", 5432, CLASSIFY_NOTHING, NULL);
        expect_l4(fx, "172.18.0.6", "172.18.1.4", 8080, CLASSIFY_NOTHING, NULL);
        expect_l4(fx, "198.51.100.7", "172.18.0.2", 443, CLASSIFY_NOTHING, NULL);
        expect_l4(fx, "198.51.100.7", "172.18.0.2", 22, CLASSIFY_DEFAULT_DENY, EVENT_RULE_DEFAULT_DENY);
        expect_l4(fx, "fd00:18::6", "fd00:18:1::2", 8090, CLASSIFY_NOTHING, NULL);
        expect_l4(fx, "2001:db8:198::5", "fd00:18:1::6", 5432, CLASSIFY_FORBID, "NET-1");
        /* Not into a service: none of the policy's business. */
        expect_l4(fx, "172.18.1.16", "198.51.100.9", 443, CLASSIFY_NOTHING, NULL);

        /* postgres answering grafana from 5432 is a reply, not a flow into grafana. */
        assert_non_null(r);
        p = tcp_packet("172.18.1.6", 5432, "172.18.1.10", 41000, DECODE_TCP_SYN | DECODE_TCP_ACK, NULL);
        classify_packet(fx->policy, fx->map, fx->flows, &p, 3, r);
        assert_int_equal(r->verdict, CLASSIFY_NOTHING);
        /* ... but postgres opening a connection to grafana is not. */
        p = tcp_packet("172.18.1.6", 5432, "172.18.1.10", 3000, DECODE_TCP_SYN, NULL);
        classify_packet(fx->policy, fx->map, fx->flows, &p, 3, r);
        assert_int_equal(r->verdict, CLASSIFY_DEFAULT_DENY);

        /* Severity and action come from the forbid entry and the mode. */
        p = tcp_packet("198.51.100.7", 40001, "172.18.1.6", 5432, DECODE_TCP_SYN, NULL);
        classify_packet(fx->policy, fx->map, fx->flows, &p, 4, r);
        assert_int_equal(r->severity, POLICY_SEVERITY_CRITICAL);
        assert_int_equal(r->action, EVENT_ACTION_BLOCKED);
        assert_int_equal(r->src_service, FLOW_SERVICE_INTERNET);
        assert_int_equal(r->dst_service, svc(fx, "postgres"));
        assert_int_equal(r->dport, 5432);
}

static void test_audit_action(void **state) {
        Fixture *fx = *state;
        _cleanup_free_ ClassifyResult *r = malloc(sizeof(*r));
        DecodePacket p = tcp_packet("198.51.100.7", 40000, "172.18.1.6", 5432, DECODE_TCP_SYN, NULL);

        assert_non_null(r);
        classify_packet(fx->policy, fx->map, fx->flows, &p, 1, r);
        assert_int_equal(r->verdict, CLASSIFY_FORBID);
        assert_int_equal(r->action, EVENT_ACTION_OBSERVED);
}

/* ---- L7 on real captures */

typedef struct Replay {
        int verdicts[8];
        ClassifyResult last; /* the last L7 verdict */
        unsigned n_l7;
        unsigned n_payload;
} Replay;

/* Replay the client->server packets of `file` (server port `server_port`) as if `src` talked
 * to `dst`:`dport`, the way the bridges' filter would hand them over. */
static void replay(Fixture *fx, const char *file, uint16_t server_port, const char *src, const char *dst,
                   uint16_t dport, Replay *ret) {
        _cleanup_free_ ClassifyResult *r = malloc(sizeof(*r));
        char errbuf[PCAP_ERRBUF_SIZE];
        pcap_t *pc = pcap_open_offline(file, errbuf);
        struct pcap_pkthdr *h;
        const u_char *data;
        uint64_t now = 100;

        assert_non_null(pc);
        assert_non_null(r);
        memset(ret, 0, sizeof(*ret));
        while (pcap_next_ex(pc, &h, &data) == 1) {
                DecodePacket p;

                if (decode_packet(pcap_datalink(pc), data, h->caplen, &p) < 0 || !p.has_l4 ||
                    p.dport != server_port)
                        continue;
                memset(p.src, 0, 16);
                memset(p.dst, 0, 16);
                assert_int_equal(inet_pton(p.family, src, p.src), 1);
                assert_int_equal(inet_pton(p.family, dst, p.dst), 1);
                p.dport = dport;
                ret->n_payload += p.payload_len > 0;
                classify_packet(fx->policy, fx->map, fx->flows, &p, now++, r);
                ret->verdicts[r->verdict]++;
                if (r->l7) {
                        ret->n_l7++;
                        ret->last = *r;
                }
        }
        pcap_close(pc);
}

static void test_pgsql_read_only(void **state) {
        Fixture *fx = *state;
        Replay rp;

        /* grafana -> postgres is allowed read-only: SELECT passes ... */
        replay(fx, CAPTURES "pgsql-select.pcap", 5439, "172.18.1.10", "172.18.1.6", 5432, &rp);
        assert_true(rp.n_payload >= 2);
        assert_int_equal(rp.n_l7, 0);
        assert_int_equal(rp.verdicts[CLASSIFY_NOTHING], rp.verdicts[0]);
        for (size_t i = 1; i < ELEMENTSOF(rp.verdicts); i++)
                assert_int_equal(rp.verdicts[i], 0);

        /* ... INSERT, a DELETE after a SELECT in one query, a DELETE in a CTE, and an UPDATE
         * through the extended protocol are writes on a read-only flow. */
        static const struct {
                const char *file;
                const char *keyword;
        } writes[] = {
                { "pgsql-insert.pcap", "INSERT" },
                { "pgsql-multi.pcap", "SELECT" },
                { "pgsql-cte.pcap", "WITH" },
                { "pgsql-extended.pcap", "UPDATE" },
        };
        for (size_t i = 0; i < ELEMENTSOF(writes); i++) {
                char path[512];

                flow_table_clear(fx->flows);
                snprintf(path, sizeof(path), CAPTURES "%s", writes[i].file);
                replay(fx, path, 5439, "172.18.1.10", "172.18.1.6", 5432, &rp);
                assert_true(rp.n_l7 >= 1);
                assert_int_equal(rp.last.verdict, CLASSIFY_READ_ONLY);
                assert_string_equal(rp.last.rule, CLASSIFY_RULE_READ_ONLY);
                assert_string_equal(rp.last.method, writes[i].keyword);
                assert_int_equal(rp.last.statement_class, DECODE_CLASS_WRITE);
                assert_int_equal(rp.last.l7_protocol, POLICY_L7_POSTGRESQL);
                assert_int_equal(rp.last.src_service, svc(fx, "grafana"));
                assert_int_equal(rp.last.dst_service, svc(fx, "postgres"));
        }

        /* cass -> postgres is allowed with any access: its INSERT is no violation, but postgres
         * is an evaluation store, so the write is journaled (DATA-3) with its source. */
        flow_table_clear(fx->flows);
        replay(fx, CAPTURES "pgsql-insert.pcap", 5439, "172.18.1.4", "172.18.1.6", 5432, &rp);
        assert_int_equal(rp.n_l7, 1);
        assert_int_equal(rp.verdicts[CLASSIFY_WRITE], 1);
        for (size_t i = 1; i < ELEMENTSOF(rp.verdicts); i++)
                if (i != CLASSIFY_WRITE)
                        assert_int_equal(rp.verdicts[i], 0);
        assert_int_equal(rp.last.verdict, CLASSIFY_WRITE);
        assert_string_equal(rp.last.rule, EVENT_RULE_WRITE);
        assert_int_equal(rp.last.severity, POLICY_SEVERITY_LOW);
        assert_int_equal(rp.last.action, EVENT_ACTION_OBSERVED);
        assert_string_equal(rp.last.method, "INSERT");
        assert_int_equal(rp.last.statement_class, DECODE_CLASS_WRITE);
        assert_int_equal(rp.last.src_service, svc(fx, "cass"));
        assert_int_equal(rp.last.dst_service, svc(fx, "postgres"));

        /* Its SELECT is a read: nothing to journal. */
        flow_table_clear(fx->flows);
        replay(fx, CAPTURES "pgsql-select.pcap", 5439, "172.18.1.4", "172.18.1.6", 5432, &rp);
        assert_true(rp.n_payload >= 2);
        assert_int_equal(rp.n_l7, 0);
        for (size_t i = 1; i < ELEMENTSOF(rp.verdicts); i++)
                assert_int_equal(rp.verdicts[i], 0);

        /* The extended protocol's UPDATE, in enforce mode, is journaled too, and the flow keeps
         * being inspected (it is allowed: nothing cuts it). */
        flow_table_clear(fx->flows);
        replay(fx, CAPTURES "pgsql-extended.pcap", 5439, "172.18.1.4", "172.18.1.6", 5432, &rp);
        assert_true(rp.verdicts[CLASSIFY_WRITE] >= 1);
        assert_string_equal(rp.last.method, "UPDATE");
}

static void test_http_write_forbid(void **state) {
        Fixture *fx = *state;
        Replay rp;

        /* ollama -> cass: AI-1 on every packet; the POST is also AI-2, with method and path. */
        replay(fx, CAPTURES "http-post.pcap", 8080, "172.18.1.16", "172.18.1.4", 8080, &rp);
        assert_true(rp.verdicts[CLASSIFY_FORBID] >= 1);
        assert_int_equal(rp.n_l7, 1);
        assert_int_equal(rp.last.verdict, CLASSIFY_WRITE_FORBID);
        assert_string_equal(rp.last.rule, "AI-2");
        assert_string_equal(rp.last.method, "POST");
        assert_string_equal(rp.last.path, "/scores");
        assert_int_equal(rp.last.severity, POLICY_SEVERITY_CRITICAL);
        assert_int_equal(rp.last.l7_protocol, POLICY_L7_HTTP);

        /* A GET from ollama is AI-1 only. */
        flow_table_clear(fx->flows);
        replay(fx, CAPTURES "http-get.pcap", 8080, "172.18.1.16", "172.18.1.4", 8080, &rp);
        assert_true(rp.verdicts[CLASSIFY_FORBID] >= 1);
        assert_int_equal(rp.n_l7, 0);

        /* The forbidden write stays the violation: never journaled instead. */
        flow_table_clear(fx->flows);
        replay(fx, CAPTURES "http-post.pcap", 8080, "172.18.1.16", "172.18.1.4", 8080, &rp);
        assert_int_equal(rp.verdicts[CLASSIFY_WRITE], 0);

        /* The API's POST to cass is allowed: no violation, a journaled write (cass is an
         * evaluation store). */
        flow_table_clear(fx->flows);
        replay(fx, CAPTURES "http-post.pcap", 8080, "172.18.0.6", "172.18.1.4", 8080, &rp);
        assert_int_equal(rp.n_l7, 1);
        assert_int_equal(rp.verdicts[CLASSIFY_FORBID] + rp.verdicts[CLASSIFY_DEFAULT_DENY] +
                                 rp.verdicts[CLASSIFY_WRITE_FORBID] + rp.verdicts[CLASSIFY_READ_ONLY],
                         0);
        assert_int_equal(rp.last.verdict, CLASSIFY_WRITE);
        assert_string_equal(rp.last.rule, EVENT_RULE_WRITE);
        assert_string_equal(rp.last.method, "POST");
        assert_string_equal(rp.last.path, "/scores");
        assert_int_equal(rp.last.src_service, svc(fx, "api"));
        assert_int_equal(rp.last.dst_service, svc(fx, "cass"));

        /* Its GET is a read: nothing. */
        flow_table_clear(fx->flows);
        replay(fx, CAPTURES "http-get.pcap", 8080, "172.18.0.6", "172.18.1.4", 8080, &rp);
        assert_int_equal(rp.n_l7, 0);

        /* The same POST to pocketbase, a store without the evaluation-store tag: nothing. */
        flow_table_clear(fx->flows);
        replay(fx, CAPTURES "http-post.pcap", 8080, "172.18.0.6", "172.18.1.2", 8090, &rp);
        assert_int_equal(rp.n_l7, 0);
        assert_true(rp.n_payload >= 1);
        for (size_t i = 1; i < ELEMENTSOF(rp.verdicts); i++)
                assert_int_equal(rp.verdicts[i], 0);

        /* A HEAD over IPv6 (SLL2) from grafana to ralph (read-only) is a read. */
        flow_table_clear(fx->flows);
        replay(fx, CAPTURES "http-get-ipv6-sll2.pcap", 8080, "fd00:18:1::4", "fd00:18:1::8", 8100, &rp);
        assert_int_equal(rp.n_l7, 0);
}

static void test_http_read_only_write(void **state) {
        Fixture *fx = *state;
        _cleanup_free_ ClassifyResult *r = malloc(sizeof(*r));
        DecodePacket p;

        assert_non_null(r);
        /* grafana -> ralph is read-only: a PUT is a violation, observed (the watcher contains). */
        p = tcp_packet("172.18.1.10", 41000, "172.18.1.8", 8100, DECODE_TCP_ACK | DECODE_TCP_PSH,
                       "PUT /xAPI/statements HTTP/1.1\r\nHost: ralph\r\n\r\n");
        classify_packet(fx->policy, fx->map, fx->flows, &p, 1, r);
        assert_int_equal(r->verdict, CLASSIFY_READ_ONLY);
        assert_true(r->l7);
        assert_int_equal(r->action, EVENT_ACTION_OBSERVED);
        assert_string_equal(r->method, "PUT");
        assert_string_equal(r->path, "/xAPI/statements");
        /* Enforce mode: one report per flow, the flow is about to be cut. */
        p.tcp_seq += 100;
        classify_packet(fx->policy, fx->map, fx->flows, &p, 2, r);
        assert_int_equal(r->verdict, CLASSIFY_NOTHING);
}

/* Audit mode: a write from an address no service has reaches the store (its flow is
 * default-denied, and only logged): it is journaled with source "unknown". The event is a
 * `write`, not a violation, and a burst of them is one event plus a count. */
static void emit_count(const Event *e, void *userdata) {
        Event *last = userdata;
        *last = *e;
        last[1].count += e->count; /* the total, in the second slot */
}

static void test_write_journal(void **state) {
        Fixture *fx = *state;
        _cleanup_(classify_agg_freep) ClassifyAggregator *agg = NULL;
        _cleanup_free_ ClassifyResult *r = malloc(sizeof(*r));
        _cleanup_free_ Event *ev = calloc(2, sizeof(Event));
        DecodePacket p;

        assert_non_null(r);
        assert_non_null(ev);
        assert_int_equal(classify_agg_new(0, 1000, &agg), 0);
        p = tcp_packet("172.18.9.9", 41000, "172.18.1.4", 8080, DECODE_TCP_ACK | DECODE_TCP_PSH,
                       "POST /scores HTTP/1.1\r\nHost: cass\r\n\r\n");
        for (int i = 0; i < 5; i++) {
                p.tcp_seq += 100;
                classify_packet(fx->policy, fx->map, fx->flows, &p, 1 + (uint64_t) i, r);
                assert_int_equal(r->verdict, CLASSIFY_WRITE);
                assert_int_equal(r->src_service, FLOW_SERVICE_UNKNOWN);
                classify_agg_hit(agg, fx->policy, r, "vps1", 1 + (uint64_t) i, emit_count, ev);
        }
        /* One event at once, the four repeats at the end of the window. */
        assert_int_equal(ev[1].count, 1);
        classify_agg_tick(agg, 5000, false, emit_count, ev);
        assert_int_equal(ev[1].count, 5);
        assert_int_equal(ev[0].kind, EVENT_WRITE);
        assert_int_equal(ev[0].count, 4);
        assert_string_equal(ev[0].rule, "DATA-3");
        assert_string_equal(ev[0].src.service, "unknown");
        assert_string_equal(ev[0].src.ip, "172.18.9.9");
        assert_string_equal(ev[0].dst.service, "cass");
        assert_int_equal(ev[0].dst.port, 8080);
        assert_int_equal(ev[0].severity, POLICY_SEVERITY_LOW);
        assert_true(ev[0].has_l7);
        assert_string_equal(ev[0].l7.protocol, "http");
        assert_string_equal(ev[0].l7.method, "POST");
        assert_string_equal(ev[0].l7.path, "/scores");
        assert_string_equal(ev[0].l7.statement_class, "write");

        /* A read on the same flow: the default-deny stands, nothing journaled. */
        p = tcp_packet("172.18.9.9", 41001, "172.18.1.4", 8080, DECODE_TCP_ACK | DECODE_TCP_PSH,
                       "GET /scores HTTP/1.1\r\nHost: cass\r\n\r\n");
        classify_packet(fx->policy, fx->map, fx->flows, &p, 10, r);
        assert_int_equal(r->verdict, CLASSIFY_DEFAULT_DENY);
}

/* ---- NFLOG */

static void test_nflog(void **state) {
        Fixture *fx = *state;
        _cleanup_free_ ClassifyResult *r = malloc(sizeof(*r));
        char errbuf[PCAP_ERRBUF_SIZE];
        pcap_t *pc = pcap_open_offline(CAPTURES "nflog.pcap", errbuf);
        struct pcap_pkthdr *h;
        const u_char *data;
        DecodePacket p;
        bool contained;
        unsigned n = 0;

        assert_non_null(pc);
        assert_non_null(r);
        while (pcap_next_ex(pc, &h, &data) == 1) {
                assert_int_equal(decode_packet(pcap_datalink(pc), data, h->caplen, &p), 0);
                classify_nflog(fx->policy, fx->map, &p, r, &contained);
                assert_false(contained);
                assert_int_equal(r->verdict, CLASSIFY_FORBID);
                assert_string_equal(r->rule, "NET-1");
                assert_int_equal(r->severity, POLICY_SEVERITY_CRITICAL);
                assert_int_equal(r->action, EVENT_ACTION_BLOCKED);
                assert_int_equal(r->dport, 5432);
                n++;
        }
        pcap_close(pc);
        assert_true(n >= 1);

        /* The same record re-addressed: the services come from the map. */
        p.family = AF_INET;
        memset(p.src, 0, 16);
        memset(p.dst, 0, 16);
        addr(AF_INET, "198.51.100.5", p.src);
        addr(AF_INET, "172.18.1.6", p.dst);
        classify_nflog(fx->policy, fx->map, &p, r, &contained);
        assert_int_equal(r->src_service, FLOW_SERVICE_INTERNET);
        assert_int_equal(r->dst_service, svc(fx, "postgres"));

        /* Shared ids (AI-1 is two entries): the one that matches the direction. */
        strcpy(p.nflog.prefix, "ceredis:AI-1 ");
        memset(p.src, 0, 16);
        memset(p.dst, 0, 16);
        addr(AF_INET, "172.18.1.4", p.src);
        addr(AF_INET, "172.18.1.16", p.dst);
        classify_nflog(fx->policy, fx->map, &p, r, &contained);
        assert_int_equal(r->verdict, CLASSIFY_FORBID);
        assert_string_equal(fx->policy->forbids[r->forbid].to.name, "ai");

        strcpy(p.nflog.prefix, "ceredis:DEFAULT-DENY ");
        classify_nflog(fx->policy, fx->map, &p, r, &contained);
        assert_int_equal(r->verdict, CLASSIFY_DEFAULT_DENY);
        assert_string_equal(r->rule, "DEFAULT-DENY");

        strcpy(p.nflog.prefix, "ceredis:CONTAINED ");
        classify_nflog(fx->policy, fx->map, &p, r, &contained);
        assert_int_equal(r->verdict, CLASSIFY_NOTHING);
        assert_true(contained);

        strcpy(p.nflog.prefix, "someone-else ");
        classify_nflog(fx->policy, fx->map, &p, r, &contained);
        assert_int_equal(r->verdict, CLASSIFY_NOTHING);
        assert_false(contained);
}

/* ---- events and aggregation */

typedef struct Sink {
        Event events[16];
        size_t n;
        uint64_t counted;
} Sink;

static void sink(const Event *e, void *userdata) {
        Sink *s = userdata;

        s->counted += e->count;
        if (s->n < ELEMENTSOF(s->events))
                s->events[s->n++] = *e;
}

static void test_event_fields(void **state) {
        Fixture *fx = *state;
        _cleanup_free_ ClassifyResult *r = malloc(sizeof(*r));
        _cleanup_free_ Event *e = malloc(sizeof(*e));
        _cleanup_free_ char *text = NULL;
        DecodePacket p = tcp_packet("172.18.1.10", 41000, "172.18.1.8", 8100, DECODE_TCP_PSH | DECODE_TCP_ACK,
                                    "DELETE /xAPI/statements?id=1 HTTP/1.1\r\n\r\n");
        size_t len;
        Event back;

        assert_non_null(r);
        assert_non_null(e);
        classify_packet(fx->policy, fx->map, fx->flows, &p, 1, r);
        assert_int_equal(r->verdict, CLASSIFY_READ_ONLY);
        classify_result_to_event(fx->policy, r, "vps1", e);
        assert_int_equal(e->kind, EVENT_VIOLATION);
        assert_string_equal(e->host, "vps1");
        assert_string_equal(e->rule, "READ-ONLY");
        assert_string_equal(e->src.service, "grafana");
        assert_string_equal(e->src.ip, "172.18.1.10");
        assert_int_equal(e->src.port, 41000);
        assert_string_equal(e->dst.service, "ralph");
        assert_int_equal(e->dst.port, 8100);
        assert_string_equal(e->proto, "tcp");
        assert_true(e->has_l7);
        assert_string_equal(e->l7.protocol, "http");
        assert_string_equal(e->l7.method, "DELETE");
        assert_string_equal(e->l7.path, "/xAPI/statements?id=1");
        assert_string_equal(e->l7.statement_class, "write");
        /* It survives the strict JSON round trip the event log relies on. */
        assert_int_equal(event_format(e, &text, &len), 0);
        assert_int_equal(event_parse(text, len, &back), 0);
        assert_string_equal(back.l7.path, e->l7.path);
}

static void test_aggregation(void **state) {
        Fixture *fx = *state;
        _cleanup_(classify_agg_freep) ClassifyAggregator *a = NULL;
        _cleanup_free_ ClassifyResult *r = malloc(sizeof(*r));
        _cleanup_free_ Sink *s = calloc(1, sizeof(Sink));
        uint64_t now = 1000000;

        assert_non_null(r);
        assert_non_null(s);
        assert_int_equal(classify_agg_new(8, 1000000, &a), 0);
        /* A 10k-packet SYN scan of postgres from one address: every port, every source port. */
        for (unsigned i = 0; i < 10000; i++) {
                DecodePacket p = tcp_packet("198.51.100.7", (uint16_t) (1024 + i), "172.18.1.6",
                                            (uint16_t) (1 + i % 60000), DECODE_TCP_SYN, NULL);
                classify_packet(fx->policy, fx->map, fx->flows, &p, now, r);
                assert_int_not_equal(r->verdict, CLASSIFY_NOTHING);
                classify_agg_hit(a, fx->policy, r, "vps1", now + i, sink, s);
        }
        /* The first at once, the rest held for the window. */
        assert_int_equal(s->n, 1);
        assert_int_equal(s->events[0].count, 1);
        classify_agg_tick(a, now + 10000, false, sink, s);
        assert_int_equal(s->n, 1);
        classify_agg_tick(a, now + 1000000, false, sink, s);
        assert_int_equal(s->n, 2);
        assert_int_equal(s->events[1].count, 9999);
        assert_string_equal(s->events[1].dst.service, "postgres");
        assert_int_equal(s->counted, 10000);
        assert_int_equal(classify_agg_total(a), 10000);
        /* Nothing pending: a later tick says nothing. */
        classify_agg_tick(a, now + 3000000, true, sink, s);
        assert_int_equal(s->n, 2);

        /* Another source is another event; more keys than slots recycle the coldest, whose
         * pending count comes out first. */
        for (unsigned i = 0; i < 20; i++) {
                char src[32];
                snprintf(src, sizeof(src), "198.51.100.%u", 100 + i);
                DecodePacket p = tcp_packet(src, 5555, "172.18.1.6", 5432, DECODE_TCP_SYN, NULL);
                classify_packet(fx->policy, fx->map, fx->flows, &p, now, r);
                classify_agg_hit(a, fx->policy, r, "vps1", now + 4000000 + i, sink, s);
                classify_agg_hit(a, fx->policy, r, "vps1", now + 4000000 + i, sink, s);
        }
        classify_agg_tick(a, now + 9000000, true, sink, s);
        assert_int_equal(s->counted, 10040);
}

/* ---- the bridges' filter */

static void test_filter(void **state) {
        Fixture *fx = *state;
        _cleanup_free_ char *f = NULL, *g = NULL;
        struct bpf_program prog;
        pcap_t *dead, *pc;
        char errbuf[PCAP_ERRBUF_SIZE];
        struct pcap_pkthdr *h;
        const u_char *data;
        unsigned pass = 0, payload = 0, total = 0;

        assert_int_equal(capture_filter_from_policy(fx->policy, false, &f), 0);
        assert_non_null(f);
        /* postgres and ralph (read-only flows lead there), cass (AI-2): their ports. */
        assert_non_null(strstr(f, "5432"));
        assert_non_null(strstr(f, "8100"));
        assert_non_null(strstr(f, "8080"));
        assert_null(strstr(f, "11434"));
        assert_int_equal(capture_filter_from_policy(fx->policy, true, &g), 0);
        assert_non_null(strstr(g, "11434"));

        dead = pcap_open_dead(DLT_EN10MB, 2048);
        assert_non_null(dead);
        assert_int_equal(pcap_compile(dead, &prog, g, 1, PCAP_NETMASK_UNKNOWN), 0);
        pcap_freecode(&prog);
        assert_int_equal(pcap_compile(dead, &prog, f, 1, PCAP_NETMASK_UNKNOWN), 0);
        pcap_close(dead);

        /* On the INSERT session (client port 5439 here, so rewrite nothing: run the filter on
         * a copy with the server port made 5432): only client segments with payload pass. */
        pc = pcap_open_offline(CAPTURES "pgsql-insert.pcap", errbuf);
        assert_non_null(pc);
        while (pcap_next_ex(pc, &h, &data) == 1) {
                uint8_t buf[4096];
                DecodePacket p;
                size_t n = h->caplen < sizeof(buf) ? h->caplen : sizeof(buf);

                memcpy(buf, data, n);
                if (decode_packet(DLT_EN10MB, buf, n, &p) < 0 || !p.has_l4)
                        continue;
                total++;
                /* TCP ports sit right after a 20-byte IPv4 header in these captures. */
                if (p.dport == 5439) {
                        buf[14 + 20 + 2] = 5432 >> 8;
                        buf[14 + 20 + 3] = 5432 & 0xff;
                        payload += p.payload_len > 0;
                }
                if (pcap_offline_filter(&prog, h, buf))
                        pass++;
        }
        pcap_close(pc);
        pcap_freecode(&prog);
        assert_true(total > payload);
        assert_true(payload >= 2);
        assert_int_equal(pass, payload);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_map, setup, teardown),
                cmocka_unit_test_setup_teardown(test_l4, setup, teardown),
                cmocka_unit_test_setup_teardown(test_audit_action, setup_audit, teardown),
                cmocka_unit_test_setup_teardown(test_pgsql_read_only, setup, teardown),
                cmocka_unit_test_setup_teardown(test_http_write_forbid, setup, teardown),
                cmocka_unit_test_setup_teardown(test_http_read_only_write, setup, teardown),
                cmocka_unit_test_setup_teardown(test_write_journal, setup_audit, teardown),
                cmocka_unit_test_setup_teardown(test_nflog, setup, teardown),
                cmocka_unit_test_setup_teardown(test_event_fields, setup, teardown),
                cmocka_unit_test_setup_teardown(test_aggregation, setup, teardown),
                cmocka_unit_test_setup_teardown(test_filter, setup, teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
