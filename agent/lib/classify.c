/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The classifier's logic. A flow is decided once, when its first packet is seen: which
 * services it joins, and which policy entry allows or forbids it (forbid entries first, in
 * file order, as the ruleset does). Later packets cost a table lookup, plus an L7 look at the
 * client's payload on the flows where a write would be a violation: those allowed read-only,
 * and those a forbid with `access: write` covers; and on the other flows into an evaluation
 * store, where a write is journaled. PostgreSQL messages are followed across
 * segments by TCP sequence number; an HTTP request is looked for at the start of each segment.
 */
#include "ceredis.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "classify.h"

/* ---- Address -> service map */

typedef struct MapEntry {
        uint64_t addr[2]; /* addr_words() */
        int32_t service; /* service index or FLOW_SERVICE_HOST; unused slot: used = false */
        uint8_t family;
        bool used;
} MapEntry;

typedef struct MapNet {
        PolicyCidr cidr;
        int32_t service;
} MapNet;

/* The decision matrix: what classify_flow_start() says, computed once per (source endpoint,
 * destination endpoint, destination port class), so that starting a flow costs two address
 * lookups, a scan of the destination's few port keys and one index. Endpoints are the
 * services plus the three FLOW_SERVICE_* (index service + MATRIX_SPECIALS). A destination's
 * port keys are the ports that can change a decision: its own ports, and every port a `flows`
 * entry names (both protocols, as that entry's port matches either); any other port of a
 * protocol decides like every other one (classes 0: TCP, 1: UDP; key i is class 2 + i). */
typedef struct MatrixCell {
        int32_t forbid, write_forbid;
        uint8_t decision; /* FlowDecision */
        uint8_t l7;       /* FlowL7State */
        uint8_t l7_protocol;
        bool read_only;
        bool journal;
} MatrixCell;

typedef struct MatrixDst {
        size_t cell;      /* its class 0 within a source's row of cells */
        size_t port;      /* its first key in ClassifyMap.ports */
        size_t n_ports;
} MatrixDst;

#define MATRIX_SPECIALS 3 /* FLOW_SERVICE_HOST (-3) .. FLOW_SERVICE_UNKNOWN (-1) */
#define MATRIX_OTHER_CLASSES 2
/* Past this the matrix is not built (about 3 MiB) and flows are decided the slow way. */
#define MATRIX_MAX_CELLS (256u * 1024u)

struct ClassifyMap {
        MapEntry *exact; /* open addressing, a power of two, at most half full */
        size_t n_exact_slots;
        MapNet *nets;    /* networks, longest prefix first */
        size_t n_nets, allocated_nets;

        const Policy *policy; /* the one the matrix was computed for */
        MatrixCell *cells;    /* [source][row]; NULL: no matrix */
        size_t n_endpoints, row;
        MatrixDst *dsts;      /* [destination endpoint] */
        uint32_t *ports;      /* port keys, (proto << 16) | port, sorted per destination */
        size_t n_port_keys;
};

#define MAP_MAX_ADDRESSES (4u * 1024u * 1024u)

/* An address as two words (IPv4 zero-extended): compared and hashed without memcmp() or a
 * byte loop, the map lookup being on every new flow's path twice. */
static inline void addr_words(int family, const uint8_t *a, uint64_t w[2]) {
        if (family == AF_INET) {
                uint32_t v;
                memcpy(&v, a, sizeof(v));
                w[0] = v;
                w[1] = 0;
        } else
                memcpy(w, a, 16);
}

static inline size_t addr_hash(int family, const uint64_t w[2]) {
        uint64_t h = (w[0] ^ (uint64_t) family << 56) * 0x9e3779b97f4a7c15u;

        h = (h ^ (h >> 29) ^ w[1]) * 0xff51afd7ed558ccdu;
        return (size_t) (h ^ (h >> 32));
}

static bool cidr_is_host(const PolicyCidr *c) {
        return c->prefix == (c->family == AF_INET ? 32 : 128);
}

static bool cidr_contains(const PolicyCidr *c, int family, const uint8_t *a) {
        unsigned full, rest;

        if (c->family != family)
                return false;
        full = c->prefix / 8u;
        rest = c->prefix % 8u;
        if (memcmp(c->addr.bytes, a, full) != 0)
                return false;
        if (rest == 0)
                return true;
        return ((c->addr.bytes[full] ^ a[full]) & (uint8_t) (0xffu << (8u - rest))) == 0;
}

/* Count first, then fill: the exact table never grows. */
typedef struct MapSource {
        const PolicyCidr *cidrs;
        size_t n;
        int32_t service;
} MapSource;

static int map_add_exact(ClassifyMap *m, const PolicyCidr *c, int32_t service) {
        uint64_t w[2];
        size_t i;

        addr_words(c->family, c->addr.bytes, w);
        for (i = addr_hash(c->family, w) & (m->n_exact_slots - 1);; i = (i + 1) & (m->n_exact_slots - 1)) {
                MapEntry *x = &m->exact[i];

                if (!x->used)
                        break;
                if (x->family == c->family && x->addr[0] == w[0] && x->addr[1] == w[1])
                        return 0; /* the first service to claim an address keeps it */
        }
        m->exact[i] = (MapEntry) {
                .addr = { w[0], w[1] },
                .service = service,
                .family = (uint8_t) c->family,
                .used = true,
        };
        return 0;
}

static int map_add_net(ClassifyMap *m, const PolicyCidr *c, int32_t service) {
        int k = ARRAY_GROW(m->nets, m->allocated_nets, m->n_nets + 1, MAP_MAX_ADDRESSES);

        if (k < 0)
                return k;
        m->nets[m->n_nets++] = (MapNet) { .cidr = *c, .service = service };
        return 0;
}

static int net_cmp(const void *a, const void *b) {
        const MapNet *x = a, *y = b;

        return (int) y->cidr.prefix - (int) x->cidr.prefix;
}

static uint32_t port_key(uint8_t proto, uint16_t port) {
        return (uint32_t) proto << 16 | port;
}

static int u32_cmp(const void *a, const void *b) {
        uint32_t x = *(const uint32_t *) a, y = *(const uint32_t *) b;

        return x < y ? -1 : x > y;
}

/* The port keys of destination endpoint `d` (sorted, unique) into `keys`, which has room
 * for all of them; returns how many. */
static size_t matrix_dst_ports(const Policy *p, size_t d, uint32_t *keys) {
        size_t n = 0, u = 0;

        if (d >= MATRIX_SPECIALS) {
                const PolicyService *s = &p->services[d - MATRIX_SPECIALS];
                for (size_t i = 0; i < s->n_ports; i++)
                        keys[n++] = port_key(s->ports[i].proto, s->ports[i].port);
        }
        for (size_t i = 0; i < p->n_flows; i++)
                if (p->flows[i].port >= 0) {
                        keys[n++] = port_key(IPPROTO_TCP, (uint16_t) p->flows[i].port);
                        keys[n++] = port_key(IPPROTO_UDP, (uint16_t) p->flows[i].port);
                }
        if (n > 1)
                qsort(keys, n, sizeof(uint32_t), u32_cmp);
        for (size_t i = 0; i < n; i++)
                if (u == 0 || keys[u - 1] != keys[i])
                        keys[u++] = keys[i];
        return u;
}

/* A port of `proto` that is none of the keys: stands for every such port. */
static uint16_t matrix_other_port(const uint32_t *keys, size_t n, uint8_t proto) {
        uint16_t port = 1;

        for (size_t i = 0; i < n; i++)
                if (keys[i] == port_key(proto, port))
                        port++; /* keys are sorted: the next one can only be port + 1 */
        return port;
}

static int matrix_build(ClassifyMap *m, const Policy *p) {
        size_t n_ep = p->n_services + MATRIX_SPECIALS, per_dst_max = 2 * p->n_flows + 1, row = 0, n_keys = 0;
        _cleanup_free_ uint32_t *keys = NULL;
        _cleanup_free_ MatrixDst *dsts = NULL;
        _cleanup_free_ MatrixCell *cells = NULL;

        for (size_t i = 0; i < p->n_services; i++)
                if (2 * p->n_flows + p->services[i].n_ports > per_dst_max)
                        per_dst_max = 2 * p->n_flows + p->services[i].n_ports;
        /* The exact count needs the keys: bound it first so a huge policy costs nothing. */
        if (n_ep > MATRIX_MAX_CELLS || per_dst_max > MATRIX_MAX_CELLS ||
            n_ep * n_ep * MATRIX_OTHER_CLASSES > MATRIX_MAX_CELLS)
                return 0;
        dsts = calloc(n_ep, sizeof(MatrixDst));
        keys = calloc(n_ep * per_dst_max, sizeof(uint32_t));
        if (!dsts || !keys)
                return -ENOMEM;
        for (size_t d = 0; d < n_ep; d++) {
                dsts[d] = (MatrixDst) { .cell = row, .port = n_keys };
                dsts[d].n_ports = matrix_dst_ports(p, d, keys + n_keys);
                n_keys += dsts[d].n_ports;
                row += MATRIX_OTHER_CLASSES + dsts[d].n_ports;
        }
        if (row > MATRIX_MAX_CELLS / n_ep)
                return 0;
        cells = calloc(n_ep * row, sizeof(MatrixCell));
        if (!cells)
                return -ENOMEM;
        for (size_t src = 0; src < n_ep; src++)
                for (size_t d = 0; d < n_ep; d++) {
                        const MatrixDst *x = &dsts[d];
                        for (size_t c = 0; c < MATRIX_OTHER_CLASSES + x->n_ports; c++) {
                                uint8_t proto = c == 0 ? IPPROTO_TCP : IPPROTO_UDP;
                                uint16_t port;
                                Flow f = {
                                        .src_service = (int32_t) src - MATRIX_SPECIALS,
                                        .dst_service = (int32_t) d - MATRIX_SPECIALS,
                                };

                                if (c < MATRIX_OTHER_CLASSES)
                                        port = matrix_other_port(keys + x->port, x->n_ports, proto);
                                else {
                                        uint32_t key = keys[x->port + c - MATRIX_OTHER_CLASSES];
                                        proto = (uint8_t) (key >> 16);
                                        port = (uint16_t) key;
                                }
                                f.key.proto = proto;
                                f.key.dport = port;
                                classify_flow_start(p, &f);
                                cells[src * row + x->cell + c] = (MatrixCell) {
                                        .forbid = f.forbid,
                                        .write_forbid = f.write_forbid,
                                        .decision = (uint8_t) f.decision,
                                        .l7 = (uint8_t) f.l7,
                                        .l7_protocol = f.l7_protocol,
                                        .read_only = f.read_only,
                                        .journal = f.journal,
                                };
                        }
                }
        m->policy = p;
        m->n_endpoints = n_ep;
        m->row = row;
        m->n_port_keys = n_keys;
        m->dsts = TAKE_PTR(dsts);
        m->ports = TAKE_PTR(keys);
        m->cells = TAKE_PTR(cells);
        return 0;
}

int classify_map_new(const Policy *p, const Endpoints *e, ClassifyMap **ret) {
        _cleanup_(classify_map_freep) ClassifyMap *m = NULL;
        size_t n_exact = 0;
        int k;

        m = calloc(1, sizeof(*m));
        if (!m)
                return -ENOMEM;
        for (int pass = 0; pass < 2; pass++) {
                if (pass == 1) {
                        m->n_exact_slots = 16;
                        while (m->n_exact_slots < n_exact * 2)
                                m->n_exact_slots *= 2;
                        m->exact = calloc(m->n_exact_slots, sizeof(MapEntry));
                        if (!m->exact)
                                return -ENOMEM;
                }
                for (size_t s = 0; s < p->n_services + p->n_hosts; s++) {
                        MapSource src[2] = {};

                        if (s < p->n_services) {
                                const PolicyService *svc = &p->services[s];
                                endpoints_get(e, svc->name, &src[0].cidrs, &src[0].n);
                                src[0].service = (int32_t) s;
                                if (svc->match.kind == POLICY_MATCH_CIDR)
                                        src[1] = (MapSource) { svc->match.cidrs, svc->match.n_cidrs, (int32_t) s };
                        } else {
                                const PolicyHost *h = &p->hosts[s - p->n_services];
                                src[0] = (MapSource) { h->addresses, h->n_addresses, FLOW_SERVICE_HOST };
                        }
                        for (size_t j = 0; j < ELEMENTSOF(src); j++)
                                for (size_t i = 0; i < src[j].n; i++) {
                                        const PolicyCidr *c = &src[j].cidrs[i];

                                        if (pass == 0) {
                                                if (cidr_is_host(c) && ++n_exact > MAP_MAX_ADDRESSES)
                                                        return -E2BIG;
                                                continue;
                                        }
                                        k = cidr_is_host(c) ? map_add_exact(m, c, src[j].service)
                                                            : map_add_net(m, c, src[j].service);
                                        if (k < 0)
                                                return k;
                                }
                }
        }
        /* Longest prefix first; qsort is not stable, but equal prefixes of two services are
         * the same network claimed twice, which the policy validator refuses. */
        if (m->n_nets > 1)
                qsort(m->nets, m->n_nets, sizeof(MapNet), net_cmp);
        k = matrix_build(m, p);
        if (k < 0)
                return k;
        *ret = TAKE_PTR(m);
        return 0;
}

void classify_map_free(ClassifyMap *m) {
        if (!m)
                return;
        free(m->exact);
        free(m->nets);
        free(m->cells);
        free(m->dsts);
        free(m->ports);
        free(m);
}

/* Addresses that are never "the Internet": private, shared, loopback, link-local, ULA. */
static bool addr_is_local(int family, const uint8_t *a) {
        if (family == AF_INET)
                return a[0] == 10 || a[0] == 127 || (a[0] == 172 && (a[1] & 0xf0) == 16) ||
                       (a[0] == 192 && a[1] == 168) || (a[0] == 169 && a[1] == 254) ||
                       (a[0] == 100 && (a[1] & 0xc0) == 64) || a[0] == 0;
        static const uint8_t loopback[16] = { [15] = 1 }, any[16] = {};
        return (a[0] & 0xfe) == 0xfc || (a[0] == 0xfe && (a[1] & 0xc0) == 0x80) ||
               memcmp(a, loopback, 16) == 0 || memcmp(a, any, 16) == 0;
}

int32_t classify_map_lookup(const ClassifyMap *m, int family, const uint8_t addr[16]) {
        uint64_t w[2];

        if (family != AF_INET && family != AF_INET6)
                return FLOW_SERVICE_UNKNOWN;
        /* Whatever follows an IPv4 address in `addr` does not matter: it is zero-extended. */
        addr_words(family, addr, w);
        if (m && m->n_exact_slots)
                for (size_t i = addr_hash(family, w) & (m->n_exact_slots - 1);;
                     i = (i + 1) & (m->n_exact_slots - 1)) {
                        const MapEntry *x = &m->exact[i];

                        if (!x->used)
                                break;
                        if (x->addr[0] == w[0] && x->addr[1] == w[1] && x->family == family)
                                return x->service;
                }
        for (size_t i = 0; m && i < m->n_nets; i++)
                if (cidr_contains(&m->nets[i].cidr, family, addr))
                        return m->nets[i].service;
        return addr_is_local(family, addr) ? FLOW_SERVICE_UNKNOWN : FLOW_SERVICE_INTERNET;
}

const char *classify_service_name(const Policy *p, int32_t service) {
        if (service >= 0 && p && (size_t) service < p->n_services)
                return p->services[service].name;
        switch (service) {
        case FLOW_SERVICE_INTERNET:
                return "internet";
        case FLOW_SERVICE_HOST:
                return "host";
        default:
                return "unknown";
        }
}

/* ---- Flow decisions */

static bool endpoint_has(const PolicyEndpoint *e, int32_t service) {
        size_t lo = 0, hi;

        if (service == FLOW_SERVICE_INTERNET)
                return e->internet;
        if (service == FLOW_SERVICE_HOST)
                return e->host;
        if (service < 0)
                return false;
        /* Resolved indices are ascending. */
        hi = e->n_services;
        while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;
                if (e->services[mid] == (size_t) service)
                        return true;
                if (e->services[mid] < (size_t) service)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        return false;
}

static bool service_has_port(const PolicyService *s, uint8_t proto, uint16_t port) {
        for (size_t i = 0; i < s->n_ports; i++)
                if (s->ports[i].port == port && s->ports[i].proto == proto)
                        return true;
        return false;
}

bool classify_service_is_evaluation_store(const Policy *p, int32_t service) {
        if (service < 0 || !p || (size_t) service >= p->n_services)
                return false;
        for (size_t i = 0; i < p->services[service].n_tags; i++)
                if (streq(p->services[service].tags[i], POLICY_TAG_EVALUATION_STORE))
                        return true;
        return false;
}

void classify_flow_start(const Policy *p, Flow *f) {
        const PolicyService *dst = f->dst_service >= 0 ? &p->services[f->dst_service] : NULL;
        bool any = false, read_only = false;

        f->decision = FLOW_DECISION_NONE;
        f->forbid = f->write_forbid = -1;
        f->read_only = false;
        f->journal = false;
        f->l7 = FLOW_L7_OFF;
        f->l7_protocol = dst ? (uint8_t) dst->protocol : POLICY_L7_TCP;
        if (f->src_service == f->dst_service && f->src_service >= 0)
                return; /* a container talking to itself */

        for (size_t i = 0; i < p->n_forbids; i++) {
                const PolicyForbid *fb = &p->forbids[i];

                if (!endpoint_has(&fb->from, f->src_service) || !endpoint_has(&fb->to, f->dst_service))
                        continue;
                if (fb->access == POLICY_ACCESS_WRITE) {
                        if (f->write_forbid < 0)
                                f->write_forbid = (int32_t) i;
                } else if (f->forbid < 0)
                        f->forbid = (int32_t) i;
        }
        if (f->forbid >= 0)
                f->decision = FLOW_DECISION_FORBIDDEN;
        else {
                for (size_t i = 0; i < p->n_flows && !any; i++) {
                        const PolicyFlow *fl = &p->flows[i];

                        if (!endpoint_has(&fl->from, f->src_service) || !endpoint_has(&fl->to, f->dst_service))
                                continue;
                        if (fl->port >= 0 ? fl->port != f->key.dport
                                          : !(dst && service_has_port(dst, f->key.proto, f->key.dport)))
                                continue;
                        if (fl->access == POLICY_ACCESS_READ_ONLY)
                                read_only = true;
                        else
                                any = true;
                }
                if (any || read_only) {
                        f->decision = FLOW_DECISION_ALLOWED;
                        f->read_only = !any;
                } else if (dst && !p->zones[dst->zone].public)
                        f->decision = FLOW_DECISION_DEFAULT_DENY;
                else if (dst && f->src_service == FLOW_SERVICE_INTERNET) {
                        /* Into a public zone from the Internet: only its public ports. */
                        bool open = false;
                        for (size_t i = 0; i < dst->n_ports; i++)
                                open |= dst->ports[i].public && dst->ports[i].port == f->key.dport &&
                                        dst->ports[i].proto == f->key.proto;
                        if (!open)
                                f->decision = FLOW_DECISION_DEFAULT_DENY;
                }
        }
        /* A write that is not a violation still leaves a trace when it goes to an evaluation
         * store; a default-denied flow only carries one in audit mode. */
        f->journal = f->forbid < 0 && f->write_forbid < 0 && !(f->decision == FLOW_DECISION_ALLOWED && f->read_only) &&
                     classify_service_is_evaluation_store(p, f->dst_service);
        if (f->key.proto == IPPROTO_TCP &&
            (f->l7_protocol == POLICY_L7_HTTP || f->l7_protocol == POLICY_L7_POSTGRESQL) &&
            (f->write_forbid >= 0 || (f->decision == FLOW_DECISION_ALLOWED && f->read_only) || f->journal))
                f->l7 = FLOW_L7_ACTIVE;
}

void classify_map_flow_start(const ClassifyMap *m, const Policy *p, Flow *f) {
        const MatrixDst *d;
        const MatrixCell *x;
        uint32_t key;
        size_t c;

        if (!m || !m->cells || m->policy != p || (f->key.proto != IPPROTO_TCP && f->key.proto != IPPROTO_UDP) ||
            f->src_service < -MATRIX_SPECIALS || f->dst_service < -MATRIX_SPECIALS ||
            (size_t) (f->src_service + MATRIX_SPECIALS) >= m->n_endpoints ||
            (size_t) (f->dst_service + MATRIX_SPECIALS) >= m->n_endpoints) {
                classify_flow_start(p, f);
                return;
        }
        d = &m->dsts[f->dst_service + MATRIX_SPECIALS];
        key = port_key(f->key.proto, f->key.dport);
        c = f->key.proto == IPPROTO_TCP ? 0 : 1;
        for (size_t lo = 0, hi = d->n_ports; lo < hi;) {
                size_t mid = lo + (hi - lo) / 2;
                uint32_t k = m->ports[d->port + mid];

                if (k == key) {
                        c = MATRIX_OTHER_CLASSES + mid;
                        break;
                }
                if (k < key)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        x = &m->cells[(size_t) (f->src_service + MATRIX_SPECIALS) * m->row + d->cell + c];
        f->decision = (FlowDecision) x->decision;
        f->forbid = x->forbid;
        f->write_forbid = x->write_forbid;
        f->read_only = x->read_only;
        f->journal = x->journal;
        f->l7 = (FlowL7State) x->l7;
        f->l7_protocol = x->l7_protocol;
}

bool classify_map_has_matrix(const ClassifyMap *m) {
        return m && m->cells;
}

/* ---- Verdicts */

static void result_fill(ClassifyResult *r, const Policy *p, ClassifyVerdict v, int32_t src_service,
                        int32_t dst_service, const DecodePacket *pkt) {
        r->verdict = v;
        r->forbid = -1;
        r->rule[0] = 0;
        r->severity = CLASSIFY_SEVERITY_DEFAULT_DENY;
        r->action = p->mode == POLICY_MODE_AUDIT ? EVENT_ACTION_OBSERVED : EVENT_ACTION_BLOCKED;
        r->l7 = false;
        r->src_service = src_service;
        r->dst_service = dst_service;
        r->family = pkt->family;
        memcpy(r->src, pkt->src, 16);
        memcpy(r->dst, pkt->dst, 16);
        r->sport = pkt->sport;
        r->dport = pkt->dport;
        r->proto = pkt->l4proto;
        r->l7_protocol = POLICY_L7_TCP;
        r->statement_class = DECODE_CLASS_NONE;
        r->method[0] = 0;
        r->path[0] = 0;
}

/* event_set_string() into a rule buffer, without its UTF-8 walk for what it would copy
 * unchanged anyway: a short ASCII string (every forbid id in practice). */
static void rule_copy(char dst[static EVENT_MAX_RULE], const char *src) {
        for (size_t i = 0; i < EVENT_MAX_RULE; i++) {
                if ((unsigned char) src[i] >= 0x80)
                        break;
                if (src[i] == 0) {
                        memcpy(dst, src, i + 1);
                        return;
                }
        }
        (void) event_set_string(dst, EVENT_MAX_RULE, src);
}

static void result_rule(ClassifyResult *r, const Policy *p, int32_t forbid, const char *rule) {
        if (forbid >= 0) {
                r->forbid = forbid;
                r->severity = p->forbids[forbid].severity;
                rule = p->forbids[forbid].id;
        }
        rule_copy(r->rule, rule);
}

/* A write seen at L7 on `f`: which violation it is, if any. */
static bool l7_write(const Policy *p, const Flow *f, const DecodePacket *pkt, ClassifyResult *r) {
        if (f->write_forbid >= 0) {
                result_fill(r, p, CLASSIFY_WRITE_FORBID, f->src_service, f->dst_service, pkt);
                result_rule(r, p, f->write_forbid, NULL);
        } else if (f->decision == FLOW_DECISION_ALLOWED && f->read_only) {
                result_fill(r, p, CLASSIFY_READ_ONLY, f->src_service, f->dst_service, pkt);
                result_rule(r, p, -1, CLASSIFY_RULE_READ_ONLY);
                r->severity = CLASSIFY_SEVERITY_READ_ONLY;
        } else if (f->journal) {
                result_fill(r, p, CLASSIFY_WRITE, f->src_service, f->dst_service, pkt);
                result_rule(r, p, -1, EVENT_RULE_WRITE);
                r->severity = CLASSIFY_SEVERITY_WRITE;
        } else
                return false;
        /* What is found at L7 happened on a connection the kernel let through. */
        r->action = EVENT_ACTION_OBSERVED;
        r->l7 = true;
        r->l7_protocol = f->l7_protocol;
        return true;
}

static void l7_found(const Policy *p, Flow *f, const ClassifyResult *r) {
        /* In enforce mode the flow is about to be cut: one report is enough. In audit mode
         * every further write is counted (and aggregated), and so is every journaled write:
         * that flow is allowed and goes on. */
        if (p->mode == POLICY_MODE_ENFORCE && r->verdict != CLASSIFY_WRITE)
                f->l7 = FLOW_L7_DONE;
}

static void inspect_http(const Policy *p, Flow *f, const DecodePacket *pkt, ClassifyResult *r) {
        DecodeHttpRequest req;

        /* A request starts a segment; body bytes and continuations fail the decoder fast. */
        if (decode_http_request(pkt->payload, pkt->payload_len, &req) < 0)
                return;
        f->n_requests++;
        if (req.access > f->worst)
                f->worst = req.access;
        if (!decode_class_modifies(req.access) || !l7_write(p, f, pkt, r))
                return;
        r->statement_class = req.access;
        (void) event_set_string(r->method, sizeof(r->method),
                                req.method == DECODE_HTTP_OTHER ? req.method_text
                                                                : decode_http_method_to_string(req.method));
        (void) event_set_string(r->path, sizeof(r->path), req.path);
        l7_found(p, f, r);
}

static void inspect_pgsql(const Policy *p, Flow *f, const DecodePacket *pkt, ClassifyResult *r) {
        size_t off = 0, len = pkt->payload_len;

        if (f->stream_synced) {
                int32_t d = (int32_t) (f->next_seq - pkt->tcp_seq);

                if (d >= 0 && (size_t) d >= len)
                        return; /* a retransmission, or the middle of a long message */
                if (d >= 0)
                        off = (size_t) d;
                /* d < 0: bytes were missed; try to pick the stream up at this segment. */
        }
        f->stream_synced = false;
        while (off < len) {
                DecodePgsqlMessage msg;
                int k = decode_pgsql_message(pkt->payload + off, len - off, &msg);

                if (k < 0)
                        return; /* lost (or a header split across segments): resync later */
                f->stream_synced = true;
                f->next_seq = pkt->tcp_seq + (uint32_t) off + (uint32_t) msg.length;
                if (msg.kind == DECODE_PGSQL_QUERY || msg.kind == DECODE_PGSQL_PARSE) {
                        f->n_requests++;
                        if (msg.sql.class > f->worst)
                                f->worst = msg.sql.class;
                        if (decode_class_modifies(msg.sql.class) && l7_write(p, f, pkt, r)) {
                                r->statement_class = msg.sql.class;
                                (void) event_set_string(r->method, sizeof(r->method), msg.sql.keyword);
                                l7_found(p, f, r);
                                return;
                        }
                }
                if (msg.length > len - off)
                        break;
                off += msg.length;
        }
}

void classify_packet(const Policy *p, const ClassifyMap *m, FlowTable *t, const DecodePacket *pkt,
                     uint64_t now_usec, ClassifyResult *ret) {
        FlowKey key;
        Flow *f;
        bool created;

        ret->verdict = CLASSIFY_NOTHING;
        ret->l7 = false;
        if (!pkt->has_l4 || (pkt->l4proto != IPPROTO_TCP && pkt->l4proto != IPPROTO_UDP))
                return;
        flow_key_from_packet(pkt, &key);
        f = flow_get(t, &key, now_usec, &created);
        if (created) {
                f->src_service = classify_map_lookup(m, pkt->family, pkt->src);
                f->dst_service = classify_map_lookup(m, pkt->family, pkt->dst);
                classify_map_flow_start(m, p, f);
                /* A service answering from its own port is the other half of a flow that was
                 * judged in its own direction (a SYN-ACK, a reply datagram). */
                if (f->src_service >= 0 && service_has_port(&p->services[f->src_service], pkt->l4proto, pkt->sport) &&
                    (pkt->l4proto != IPPROTO_TCP || (pkt->tcp_flags & DECODE_TCP_ACK))) {
                        f->decision = FLOW_DECISION_NONE;
                        f->l7 = FLOW_L7_OFF;
                }
                if (pkt->l4proto == IPPROTO_TCP && (pkt->tcp_flags & DECODE_TCP_SYN)) {
                        f->stream_synced = true;
                        f->next_seq = pkt->tcp_seq + 1;
                }
        }
        switch (f->decision) {
        case FLOW_DECISION_FORBIDDEN:
        case FLOW_DECISION_DEFAULT_DENY:
                result_fill(ret, p, f->decision == FLOW_DECISION_FORBIDDEN ? CLASSIFY_FORBID : CLASSIFY_DEFAULT_DENY,
                            f->src_service, f->dst_service, pkt);
                result_rule(ret, p, f->forbid, EVENT_RULE_DEFAULT_DENY);
                /* In audit mode the connection goes on: its L7 may still break a write
                 * forbid, which is the more precise news. */
                if (f->l7 != FLOW_L7_ACTIVE || pkt->payload_len == 0)
                        return;
                break;
        default:
                if (f->l7 != FLOW_L7_ACTIVE || pkt->payload_len == 0)
                        return;
        }
        if (ret->verdict == CLASSIFY_NOTHING) {
                /* Nothing to keep: the inspection only writes `ret` when it finds a write. */
                if (f->l7_protocol == POLICY_L7_HTTP)
                        inspect_http(p, f, pkt, ret);
                else
                        inspect_pgsql(p, f, pkt, ret);
        } else {
                /* A denied flow in audit mode: its L4 verdict stands unless L7 finds more. The
                 * result is a few KiB, so it is copied only on this rare path. */
                ClassifyResult l4 = *ret;
                if (f->l7_protocol == POLICY_L7_HTTP)
                        inspect_http(p, f, pkt, ret);
                else
                        inspect_pgsql(p, f, pkt, ret);
                if (!ret->l7)
                        *ret = l4;
        }
}

void classify_nflog(const Policy *p, const ClassifyMap *m, const DecodePacket *pkt, ClassifyResult *ret,
                    bool *ret_contained) {
        static const char prefix[] = "ceredis:";
        char rule[EVENT_MAX_RULE];
        const char *s;
        size_t n;
        int32_t forbid = -1;

        ret->verdict = CLASSIFY_NOTHING;
        *ret_contained = false;
        if (!pkt->nflog.present || strncmp(pkt->nflog.prefix, prefix, sizeof(prefix) - 1) != 0)
                return;
        s = pkt->nflog.prefix + sizeof(prefix) - 1;
        n = strcspn(s, " ");
        if (n == 0 || n >= sizeof(rule))
                return;
        memcpy(rule, s, n);
        rule[n] = 0;
        if (streq(rule, CLASSIFY_RULE_CONTAINED)) {
                *ret_contained = true;
                return;
        }
        for (size_t i = 0; i < p->n_forbids && forbid < 0; i++)
                if (streq(p->forbids[i].id, rule)) {
                        int32_t src = classify_map_lookup(m, pkt->family, pkt->src);
                        int32_t dst = classify_map_lookup(m, pkt->family, pkt->dst);
                        /* Several entries may share an id (AI-1 both ways): take the one
                         * that matches, else the first. */
                        if (endpoint_has(&p->forbids[i].from, src) && endpoint_has(&p->forbids[i].to, dst))
                                forbid = (int32_t) i;
                }
        if (forbid < 0)
                for (size_t i = 0; i < p->n_forbids && forbid < 0; i++)
                        if (streq(p->forbids[i].id, rule))
                                forbid = (int32_t) i;
        result_fill(ret, p,
                    forbid >= 0 ? CLASSIFY_FORBID
                                : streq(rule, EVENT_RULE_DEFAULT_DENY) ? CLASSIFY_DEFAULT_DENY : CLASSIFY_LOGGED,
                    classify_map_lookup(m, pkt->family, pkt->src), classify_map_lookup(m, pkt->family, pkt->dst),
                    pkt);
        result_rule(ret, p, forbid, rule);
}

static const char *proto_name(uint8_t proto, char buf[8]) {
        switch (proto) {
        case IPPROTO_TCP:
                return "tcp";
        case IPPROTO_UDP:
                return "udp";
        case IPPROTO_ICMP:
                return "icmp";
        case IPPROTO_ICMPV6:
                return "icmpv6";
        default:
                snprintf(buf, 8, "%u", proto);
                return buf;
        }
}

void classify_result_to_event(const Policy *p, const ClassifyResult *r, const char *host, Event *ret) {
        char ip[INET6_ADDRSTRLEN], pbuf[8];

        event_init(ret, r->verdict == CLASSIFY_WRITE ? EVENT_WRITE : EVENT_VIOLATION);
        EVENT_SET(ret->host, host ? host : "");
        EVENT_SET(ret->rule, r->rule);
        ret->severity = r->severity;
        ret->action = r->action;
        EVENT_SET(ret->src.service, classify_service_name(p, r->src_service));
        EVENT_SET(ret->dst.service, classify_service_name(p, r->dst_service));
        if (inet_ntop(r->family, r->src, ip, sizeof(ip)))
                EVENT_SET(ret->src.ip, ip);
        if (inet_ntop(r->family, r->dst, ip, sizeof(ip)))
                EVENT_SET(ret->dst.ip, ip);
        ret->src.port = r->sport;
        ret->dst.port = r->dport;
        EVENT_SET(ret->proto, proto_name(r->proto, pbuf));
        if (r->l7) {
                ret->has_l7 = true;
                EVENT_SET(ret->l7.protocol, policy_l7_to_string((PolicyL7) r->l7_protocol));
                EVENT_SET(ret->l7.method, r->method);
                EVENT_SET(ret->l7.path, r->path);
                if (r->statement_class != DECODE_CLASS_NONE)
                        EVENT_SET(ret->l7.statement_class, decode_class_to_string(r->statement_class));
        }
}

/* ---- Aggregation */

typedef struct AggSlot {
        uint64_t hash;
        uint64_t first_usec;   /* when the window of this slot started */
        uint64_t last_usec;    /* last hit */
        uint64_t pending;      /* repeats not emitted yet */
        bool used;
        /* The aggregation key, compared in full on a hash match. */
        char rule[EVENT_MAX_RULE];
        EventAction action;
        int family;
        uint8_t src[16];
        int32_t dst_service;
        uint8_t dst[16];
        char method[EVENT_MAX_METHOD];
        DecodeClass statement_class;
        Event event; /* the last emitted, reused for the count */
} AggSlot;

struct ClassifyAggregator {
        AggSlot *slots;
        size_t n_slots;
        uint64_t window_usec;
        uint64_t total;
};

int classify_agg_new(size_t slots, uint64_t window_usec, ClassifyAggregator **ret) {
        _cleanup_(classify_agg_freep) ClassifyAggregator *a = NULL;

        if (slots == 0)
                slots = CLASSIFY_AGG_SLOTS_DEFAULT;
        if (slots > 65536u)
                return -E2BIG;
        a = calloc(1, sizeof(*a));
        if (!a)
                return -ENOMEM;
        a->slots = calloc(slots, sizeof(AggSlot));
        if (!a->slots)
                return -ENOMEM;
        a->n_slots = slots;
        a->window_usec = window_usec ? window_usec : CLASSIFY_AGG_WINDOW_DEFAULT_USEC;
        *ret = TAKE_PTR(a);
        return 0;
}

void classify_agg_free(ClassifyAggregator *a) {
        if (!a)
                return;
        free(a->slots);
        free(a);
}

static uint64_t agg_hash(const ClassifyResult *r) {
        uint64_t h = 1469598103934665603u;
        const uint8_t *parts[] = { (const uint8_t *) r->rule, r->src, (const uint8_t *) r->method };
        size_t lens[] = { strlen(r->rule), 16, strlen(r->method) };

        for (size_t j = 0; j < ELEMENTSOF(parts); j++)
                for (size_t i = 0; i < lens[j]; i++)
                        h = (h ^ parts[j][i]) * 1099511628211u;
        h = (h ^ (uint64_t) (uint32_t) r->dst_service) * 1099511628211u;
        h = (h ^ ((uint64_t) r->action << 8 | (uint64_t) r->statement_class)) * 1099511628211u;
        if (r->dst_service < 0)
                for (size_t i = 0; i < 16; i++)
                        h = (h ^ r->dst[i]) * 1099511628211u;
        return h;
}

static bool agg_match(const AggSlot *s, uint64_t h, const ClassifyResult *r) {
        return s->used && s->hash == h && s->action == r->action && s->family == r->family &&
               s->dst_service == r->dst_service && s->statement_class == r->statement_class &&
               memcmp(s->src, r->src, 16) == 0 && (r->dst_service >= 0 || memcmp(s->dst, r->dst, 16) == 0) &&
               streq(s->rule, r->rule) && streq(s->method, r->method);
}

static void agg_emit_pending(AggSlot *s, ClassifyEmitFn fn, void *userdata) {
        Event e;

        if (s->pending == 0)
                return;
        e = s->event;
        e.count = s->pending;
        event_init(&s->event, EVENT_VIOLATION); /* only for a fresh ts */
        e.ts_usec = s->event.ts_usec;
        s->event = e;
        s->pending = 0;
        fn(&e, userdata);
}

void classify_agg_hit(ClassifyAggregator *a, const Policy *p, const ClassifyResult *r, const char *host,
                      uint64_t now_usec, ClassifyEmitFn fn, void *userdata) {
        uint64_t h = agg_hash(r);
        AggSlot *victim = NULL;

        a->total++;
        for (size_t i = 0; i < a->n_slots; i++) {
                AggSlot *s = &a->slots[i];

                if (agg_match(s, h, r)) {
                        s->pending++;
                        s->last_usec = now_usec;
                        return;
                }
                /* A free slot, else the least recently hit one. */
                if (!victim || (victim->used && (!s->used || s->last_usec < victim->last_usec)))
                        victim = s;
        }
        agg_emit_pending(victim, fn, userdata);
        *victim = (AggSlot) {
                .hash = h,
                .first_usec = now_usec,
                .last_usec = now_usec,
                .used = true,
                .action = r->action,
                .family = r->family,
                .dst_service = r->dst_service,
                .statement_class = r->statement_class,
        };
        memcpy(victim->src, r->src, 16);
        memcpy(victim->dst, r->dst, 16);
        memcpy(victim->rule, r->rule, sizeof(victim->rule));
        memcpy(victim->method, r->method, sizeof(victim->method));
        classify_result_to_event(p, r, host, &victim->event);
        fn(&victim->event, userdata);
}

void classify_agg_tick(ClassifyAggregator *a, uint64_t now_usec, bool all, ClassifyEmitFn fn, void *userdata) {
        for (size_t i = 0; i < a->n_slots; i++) {
                AggSlot *s = &a->slots[i];

                if (!s->used)
                        continue;
                if (!all && now_usec - s->first_usec < a->window_usec)
                        continue;
                agg_emit_pending(s, fn, userdata);
                s->first_usec = now_usec;
        }
}

uint64_t classify_agg_total(const ClassifyAggregator *a) {
        return a->total;
}
