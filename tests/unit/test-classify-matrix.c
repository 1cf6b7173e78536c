/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Differential tests of the classifier's decision matrix: for the reference policy, the
 * variant policy and a few hundred random policies, every (source, destination) endpoint pair
 * on every port that matters (and random others, both protocols) must get from
 * classify_map_flow_start() exactly what the slow path classify_flow_start() says; and random
 * packets through classify_packet() must give the same verdicts with the matrix as without
 * it (a shallow copy of the policy makes the map fall back to the slow path).
 */
#include "ceredis.h"

#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <sys/socket.h>

#include <cmocka.h>

#include "classify.h"

#define POLICY SRCDIR "/policies/ceredis.yaml"
#define VARIANT SRCDIR "/tests/policies/variant.yaml"
#define ENDPOINTS SRCDIR "/tests/data/endpoints.json"

/* xorshift64*: reproducible, the seed is printed on failure through the assert messages. */
static uint64_t rng_state = 0x2545f4914f6cdd1du;

static uint32_t rnd(uint32_t n) {
        rng_state ^= rng_state >> 12;
        rng_state ^= rng_state << 25;
        rng_state ^= rng_state >> 27;
        return (uint32_t) ((rng_state * 0x2545f4914f6cdd1du) >> 32) % n;
}

static void flow_init(Flow *f, int32_t src, int32_t dst, uint8_t proto, uint16_t dport) {
        *f = (Flow) { .src_service = src, .dst_service = dst };
        f->key.proto = proto;
        f->key.dport = dport;
        f->key.family = AF_INET;
}

static void assert_same_decision(const Policy *p, const ClassifyMap *m, int32_t src, int32_t dst, uint8_t proto,
                                 uint16_t dport) {
        Flow slow, fast;

        flow_init(&slow, src, dst, proto, dport);
        flow_init(&fast, src, dst, proto, dport);
        classify_flow_start(p, &slow);
        classify_map_flow_start(m, p, &fast);
        if (slow.decision != fast.decision || slow.forbid != fast.forbid || slow.write_forbid != fast.write_forbid ||
            slow.read_only != fast.read_only || slow.journal != fast.journal || slow.l7 != fast.l7 ||
            slow.l7_protocol != fast.l7_protocol)
                fail_msg("%s -> %s %s/%u: slow decision %d forbid %d write %d ro %d journal %d l7 %d/%d, "
                         "matrix %d %d %d %d %d %d/%d",
                         classify_service_name(p, src), classify_service_name(p, dst),
                         proto == IPPROTO_TCP ? "tcp" : "udp", dport, slow.decision, slow.forbid,
                         slow.write_forbid, slow.read_only, slow.journal, slow.l7, slow.l7_protocol, fast.decision,
                         fast.forbid, fast.write_forbid, fast.read_only, fast.journal, fast.l7, fast.l7_protocol);
}

/* Every pair, on every port the policy names (and its neighbours), and random ports. Returns
 * how many decisions were compared. */
static size_t check_all_pairs(const Policy *p, const ClassifyMap *m, size_t random_ports) {
        _cleanup_free_ uint16_t *ports = NULL;
        size_t n_ports = 0, compared = 0, cap = 8;

        for (size_t i = 0; i < p->n_services; i++)
                cap += 3 * p->services[i].n_ports;
        cap += 3 * p->n_flows + random_ports;
        ports = calloc(cap, sizeof(uint16_t));
        assert_non_null(ports);
        ports[n_ports++] = 0;
        ports[n_ports++] = 1;
        ports[n_ports++] = 2;
        ports[n_ports++] = 65535;
        for (size_t i = 0; i < p->n_services; i++)
                for (size_t j = 0; j < p->services[i].n_ports; j++) {
                        uint16_t port = p->services[i].ports[j].port;
                        ports[n_ports++] = port;
                        ports[n_ports++] = (uint16_t) (port - 1);
                        ports[n_ports++] = (uint16_t) (port + 1);
                }
        for (size_t i = 0; i < p->n_flows; i++)
                if (p->flows[i].port >= 0) {
                        ports[n_ports++] = (uint16_t) p->flows[i].port;
                        ports[n_ports++] = (uint16_t) (p->flows[i].port - 1);
                        ports[n_ports++] = (uint16_t) (p->flows[i].port + 1);
                }
        for (size_t i = 0; i < random_ports; i++)
                ports[n_ports++] = (uint16_t) rnd(65536);
        for (int32_t src = FLOW_SERVICE_HOST; src < (int32_t) p->n_services; src++)
                for (int32_t dst = FLOW_SERVICE_HOST; dst < (int32_t) p->n_services; dst++)
                        for (size_t i = 0; i < n_ports; i++) {
                                assert_same_decision(p, m, src, dst, IPPROTO_TCP, ports[i]);
                                assert_same_decision(p, m, src, dst, IPPROTO_UDP, ports[i]);
                                compared += 2;
                        }
        return compared;
}

static Policy *load(const char *path) {
        Policy *p = NULL;
        PolicyError err = {};

        assert_int_equal(policy_load(path, &p, &err), 0);
        return p;
}

static void test_reference(void **state) {
        _cleanup_(policy_freep) Policy *p = load(POLICY);
        _cleanup_(endpoints_freep) Endpoints *e = NULL;
        _cleanup_(classify_map_freep) ClassifyMap *m = NULL;
        char err[256];

        assert_int_equal(endpoints_new(&e), 0);
        assert_int_equal(endpoints_load_json(e, ENDPOINTS, err, sizeof(err)), 0);
        assert_int_equal(classify_map_new(p, e, &m), 0);
        assert_true(classify_map_has_matrix(m));
        assert_true(check_all_pairs(p, m, 200) > 10000);
}

static void test_variant(void **state) {
        _cleanup_(policy_freep) Policy *p = load(VARIANT);
        _cleanup_(classify_map_freep) ClassifyMap *m = NULL;

        assert_int_equal(classify_map_new(p, NULL, &m), 0);
        assert_true(classify_map_has_matrix(m));
        assert_true(check_all_pairs(p, m, 200) > 1000);
}

/* The matrix must answer only for the policy it was computed for. */
static void test_other_policy_falls_back(void **state) {
        _cleanup_(policy_freep) Policy *p = load(POLICY);
        _cleanup_(policy_freep) Policy *v = load(VARIANT);
        _cleanup_(classify_map_freep) ClassifyMap *m = NULL;

        assert_int_equal(classify_map_new(p, NULL, &m), 0);
        /* The map of the reference policy, asked about the variant: the slow path answers. */
        assert_true(check_all_pairs(v, m, 50) > 100);
}

/* ---- Random policies */

static const char *const zone_names[] = { "pub", "priv", "ops" };
static const char *const tag_names[] = { "t0", "t1", "t2", POLICY_TAG_EVALUATION_STORE };
static const uint16_t port_pool[] = { 80, 443, 3000, 5432, 8080, 8090, 53, 6379 };
static const char *const protocols[] = { "tcp", "http", "postgresql", "tls" };

typedef struct Buf {
        char *s;
        size_t n, size;
} Buf;

_printf_(2, 3) static void bprintf(Buf *b, const char *fmt, ...) {
        va_list ap;
        int k;

        va_start(ap, fmt);
        k = vsnprintf(b->s + b->n, b->size - b->n, fmt, ap);
        va_end(ap);
        assert_true(k >= 0 && (size_t) k < b->size - b->n);
        b->n += (size_t) k;
}

static void random_selector(Buf *b, size_t n_services) {
        switch (rnd(5)) {
        case 0:
                bprintf(b, "internet");
                break;
        case 1:
                bprintf(b, "host");
                break;
        case 2:
                bprintf(b, "{ tag: %s }", tag_names[rnd(ELEMENTSOF(tag_names))]);
                break;
        default:
                bprintf(b, "s%u", rnd((uint32_t) n_services));
        }
}

static void random_policy(Buf *b) {
        size_t n_services = 2 + rnd(9), n_flows = rnd(12), n_forbids = rnd(4);

        b->n = 0;
        bprintf(b, "version: 1\nmode: %s\n", rnd(2) ? "enforce" : "audit");
        bprintf(b, "hosts:\n  h:\n    public_interfaces: [eth0]\n    addresses: [203.0.113.10]\n");
        bprintf(b, "zones:\n  pub: { public: true }\n  priv: { public: false }\n  ops: { public: false }\n");
        bprintf(b, "services:\n");
        for (size_t i = 0; i < n_services; i++) {
                size_t zone = rnd(ELEMENTSOF(zone_names)), n_ports = 1 + rnd(3);
                bprintf(b, "  s%zu:\n    zone: %s\n    host: h\n    match: { compose_service: s%zu }\n    ports:\n", i,
                        zone_names[zone], i);
                for (size_t j = 0; j < n_ports; j++)
                        bprintf(b, "      - { port: %u, proto: %s%s }\n",
                                port_pool[(i + j * 3 + rnd(2)) % ELEMENTSOF(port_pool)], rnd(4) ? "tcp" : "udp",
                                zone == 0 && rnd(2) ? ", public: true" : "");
                bprintf(b, "    protocol: %s\n    tags: [%s]\n", protocols[rnd(ELEMENTSOF(protocols))],
                        tag_names[rnd(ELEMENTSOF(tag_names))]);
        }
        if (n_flows > 0)
                bprintf(b, "flows:\n");
        for (size_t i = 0; i < n_flows; i++) {
                bprintf(b, "  - { from: ");
                random_selector(b, n_services);
                bprintf(b, ", to: ");
                random_selector(b, n_services);
                if (rnd(2))
                        bprintf(b, ", port: %u", port_pool[rnd(ELEMENTSOF(port_pool))]);
                if (rnd(3) == 0)
                        bprintf(b, ", access: read-only");
                bprintf(b, " }\n");
        }
        if (n_forbids > 0)
                bprintf(b, "forbid:\n");
        for (size_t i = 0; i < n_forbids; i++) {
                bprintf(b, "  - id: F-%zu\n    from: ", i);
                random_selector(b, n_services);
                bprintf(b, "\n    to: ");
                random_selector(b, n_services);
                bprintf(b, "\n    severity: high\n    why: random\n%s", rnd(2) ? "    access: write\n" : "");
        }
}

static void test_random_policies(void **state) {
        char text[16384];
        Buf b = { text, 0, sizeof(text) };
        size_t accepted = 0, compared = 0, with_forbid = 0, with_read_only = 0;

        for (int i = 0; i < 2000 && accepted < 150; i++) {
                _cleanup_(policy_freep) Policy *p = NULL;
                _cleanup_(classify_map_freep) ClassifyMap *m = NULL;
                PolicyError err = {};

                random_policy(&b);
                if (policy_parse("random.yaml", text, b.n, &p, &err) < 0)
                        continue; /* the validator refuses contradictions: draw again */
                accepted++;
                with_forbid += p->n_forbids > 0;
                for (size_t j = 0; j < p->n_flows; j++)
                        if (p->flows[j].access == POLICY_ACCESS_READ_ONLY) {
                                with_read_only++;
                                break;
                        }
                assert_int_equal(classify_map_new(p, NULL, &m), 0);
                assert_true(classify_map_has_matrix(m));
                compared += check_all_pairs(p, m, 20);
        }
        /* The generator must produce policies the loader takes, with forbids and read-only
         * entries among them, or this test proves nothing. */
        print_message("random policies: %zu accepted, %zu with forbids, %zu with read-only, %zu decisions\n",
                      accepted, with_forbid, with_read_only, compared);
        assert_true(accepted >= 100);
        assert_true(with_forbid >= 20);
        assert_true(with_read_only >= 20);
}

/* ---- Random packets: classify_packet() with and without the matrix */

static void random_addr(const Endpoints *e, const Policy *p, DecodePacket *pkt, bool dst) {
        uint8_t *a = dst ? pkt->dst : pkt->src;
        uint32_t pick = rnd(4);

        memset(a, 0, 16);
        if (pick == 0 && p->n_services > 0) {
                const PolicyCidr *c;
                size_t n;
                endpoints_get(e, p->services[rnd((uint32_t) p->n_services)].name, &c, &n);
                for (size_t i = 0; i < n; i++)
                        if (c[i].family == AF_INET) {
                                memcpy(a, c[i].addr.bytes, 4);
                                return;
                        }
        }
        if (pick == 1) {
                static const uint8_t host[4] = { 203, 0, 113, 10 };
                memcpy(a, host, 4);
                return;
        }
        if (pick == 2) {
                a[0] = 172;
                a[1] = 18;
                a[2] = (uint8_t) rnd(2);
                a[3] = (uint8_t) (2 + 2 * rnd(6));
                return;
        }
        a[0] = 198;
        a[1] = 51;
        a[2] = 100;
        a[3] = (uint8_t) rnd(256);
}

static void test_random_packets(void **state) {
        static const uint16_t ports[] = { 443, 80, 3000, 8080, 8090, 5432, 8100, 11434, 8088, 8787, 22, 9999 };
        _cleanup_(policy_freep) Policy *p = load(POLICY);
        _cleanup_(endpoints_freep) Endpoints *e = NULL;
        _cleanup_(classify_map_freep) ClassifyMap *m = NULL;
        _cleanup_(flow_table_freep) FlowTable *t1 = NULL, *t2 = NULL;
        _cleanup_free_ ClassifyResult *r1 = NULL, *r2 = NULL;
        Policy copy;
        char err[256];
        size_t verdicts = 0;

        assert_int_equal(endpoints_new(&e), 0);
        assert_int_equal(endpoints_load_json(e, ENDPOINTS, err, sizeof(err)), 0);
        assert_int_equal(classify_map_new(p, e, &m), 0);
        assert_int_equal(flow_table_new(1024, 0, &t1), 0);
        assert_int_equal(flow_table_new(1024, 0, &t2), 0);
        r1 = calloc(1, sizeof(*r1));
        r2 = calloc(1, sizeof(*r2));
        assert_non_null(r1);
        assert_non_null(r2);
        /* Same arrays, another address: the map was not computed for it, so the slow path. */
        copy = *p;
        for (uint64_t now = 1; now <= 20000; now++) {
                DecodePacket pkt = { .family = AF_INET, .has_l4 = true, .pkttype = 0xff };

                random_addr(e, p, &pkt, false);
                random_addr(e, p, &pkt, true);
                pkt.l4proto = rnd(5) ? IPPROTO_TCP : IPPROTO_UDP;
                pkt.sport = rnd(2) ? ports[rnd(ELEMENTSOF(ports))] : (uint16_t) (1024 + rnd(60000));
                pkt.dport = rnd(4) ? ports[rnd(ELEMENTSOF(ports))] : (uint16_t) rnd(65536);
                pkt.tcp_flags = pkt.l4proto == IPPROTO_TCP ? (uint8_t) rnd(64) : 0;
                classify_packet(p, m, t1, &pkt, now, r1);
                classify_packet(&copy, m, t2, &pkt, now, r2);
                assert_int_equal(r1->verdict, r2->verdict);
                if (r1->verdict == CLASSIFY_NOTHING)
                        continue;
                verdicts++;
                assert_int_equal(r1->forbid, r2->forbid);
                assert_string_equal(r1->rule, r2->rule);
                assert_int_equal(r1->severity, r2->severity);
                assert_int_equal(r1->action, r2->action);
                assert_int_equal(r1->src_service, r2->src_service);
                assert_int_equal(r1->dst_service, r2->dst_service);
                assert_int_equal(r1->dport, r2->dport);
        }
        assert_true(verdicts > 1000);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_reference),
                cmocka_unit_test(test_variant),
                cmocka_unit_test(test_other_policy_falls_back),
                cmocka_unit_test(test_random_policies),
                cmocka_unit_test(test_random_packets),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
