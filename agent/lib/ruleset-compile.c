/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The pure compiler: policy model + service addresses (Endpoints) → ruleset model for one host.
 * It decides which sets exist, what their elements are and which rules classify packets with
 * them; it does no I/O. Every chain, rule and element remembers the policy entry it came from
 * (an "origin"), so that a kernel error can be reported at its line in the policy file.
 *
 * Addresses of a service: a cidr-matched service has its CIDRs wherever it runs; a service of
 * this host has the addresses Endpoints gives it (its containers); a service of a peer host is
 * seen at that host's `addresses` (Docker publishes it there), which "aliases" every service of
 * that peer. A forbid whose key involves such an alias is left to the host where it is precise
 * when an allowed flow shares its key, so that aliasing never turns a forbid against an allowed
 * flow.
 */
#include "ceredis.h"

#include <netinet/in.h>
#include <arpa/inet.h>
#include <stdarg.h>
#include <linux/netfilter.h>
#include <net/if.h>
#include <netinet/in.h>

#include "ruleset.h"

#define ORIGIN_NONE 0u
#define NO_SET SIZE_MAX

/* What a forbid entry matches, each in its own sets: Internet -> service (forward_public),
 * host -> service (output), service -> service (forward). */
typedef enum ForbidKind { FORBID_INET, FORBID_HOST, FORBID_PAIR, _FORBID_KIND_MAX } ForbidKind;

typedef struct CompiledForbid {
        size_t chain;
        uint32_t origin;
        /* [kind][network][IPv6]: a set index, NO_SET when the entry cannot produce the kind */
        size_t sets[_FORBID_KIND_MAX][2][2];
} CompiledForbid;

typedef struct Compiler {
        const Policy *policy;
        const Endpoints *endpoints;
        size_t host;
        Ruleset *r;
        uint32_t order;
        /* Allowed (saddr, daddr) pairs whose traffic crosses this host, for the alias check. */
        uint8_t (*pairs)[33];
        size_t n_pairs, allocated_pairs;
        /* ruleset_compile_address(): only the exact elements of this address of this service
         * (the `_net` sets are compiled too, for forbid precedence, then emptied). */
        size_t focus;
        const PolicyCidr *focus_addr;
        /* The L3 forbids, in file order, with their chain and the indices of their sets. */
        CompiledForbid *forbids;
        size_t n_forbids, allocated_forbids;
        const RulesetIndex *index; /* focus mode only, optional */
        size_t focus_rank;         /* with an index: wide services that sort before the focus */
        bool focus_wide;           /* ... and whether the focus is one of them */
} Compiler;

struct RulesetIndex {
        const Policy *policy;
        size_t host;
        /* CSR: the flows naming service s (in from or to) are
         * flows[flow_start[s]] .. flows[flow_start[s + 1] - 1], ascending. */
        size_t *flow_start;
        size_t *flows;
        /* Services whose addresses come from the policy (cidr matches, peer hosts' services),
         * ascending, and the flows naming any of them, ascending: a focus address can meet
         * those in any flow's networks or aliases. */
        size_t *wide;
        size_t n_wide;
        size_t *wide_flows;
        size_t n_wide_flows;
        const PolicyService **by_name; /* every service, sorted by name */
};

size_t ruleset_field_len(RulesetField f) {
        switch (f) {
        case RULESET_FIELD_IIFNAME:
                return IFNAMSIZ;
        case RULESET_FIELD_SADDR4:
        case RULESET_FIELD_DADDR4:
                return 4;
        case RULESET_FIELD_SADDR6:
        case RULESET_FIELD_DADDR6:
                return 16;
        case RULESET_FIELD_L4PROTO:
                return 1;
        case RULESET_FIELD_TH_DPORT:
        case RULESET_FIELD_TH_SPORT:
        case RULESET_FIELD_CT_ORIG_PROTO_DST:
                return 2;
        default:
                return 0;
        }
}

/* nftables datatype ids (src/datatype.h): they tell `nft list` how to print a set's keys. */
unsigned ruleset_field_type(RulesetField f) {
        switch (f) {
        case RULESET_FIELD_IIFNAME:
                return 41; /* TYPE_IFNAME */
        case RULESET_FIELD_SADDR4:
        case RULESET_FIELD_DADDR4:
                return 7; /* TYPE_IPADDR */
        case RULESET_FIELD_SADDR6:
        case RULESET_FIELD_DADDR6:
                return 8; /* TYPE_IP6ADDR */
        case RULESET_FIELD_L4PROTO:
                return 12; /* TYPE_INET_PROTOCOL */
        case RULESET_FIELD_TH_DPORT:
        case RULESET_FIELD_TH_SPORT:
        case RULESET_FIELD_CT_ORIG_PROTO_DST:
                return 13; /* TYPE_INET_SERVICE */
        default:
                return 0;
        }
}

const char *ruleset_field_to_string(RulesetField f) {
        static const char *const names[_RULESET_FIELD_MAX] = {
                [RULESET_FIELD_IIFNAME] = "iifname",
                [RULESET_FIELD_SADDR4] = "ip saddr",
                [RULESET_FIELD_DADDR4] = "ip daddr",
                [RULESET_FIELD_SADDR6] = "ip6 saddr",
                [RULESET_FIELD_DADDR6] = "ip6 daddr",
                [RULESET_FIELD_L4PROTO] = "meta l4proto",
                [RULESET_FIELD_TH_DPORT] = "th dport",
                [RULESET_FIELD_TH_SPORT] = "th sport",
                [RULESET_FIELD_CT_ORIG_PROTO_DST] = "ct original proto-dst",
        };
        return f < _RULESET_FIELD_MAX ? names[f] : "?";
}

size_t ruleset_set_field_offset(const RulesetSet *s, size_t i) {
        size_t off = 0;

        for (size_t k = 0; k < i && k < s->n_key; k++)
                off += (ruleset_field_len(s->key[k]) + 3) & ~(size_t) 3;
        return off;
}

RulesetSet *ruleset_find_set(const Ruleset *r, const char *name) {
        for (size_t i = 0; i < r->n_sets; i++)
                if (streq(r->sets[i].name, name))
                        return &r->sets[i];
        return NULL;
}

void ruleset_free(Ruleset *r) {
        if (!r)
                return;
        for (size_t i = 0; i < r->n_sets; i++)
                free(r->sets[i].elems);
        free(r->sets);
        free(r->chains);
        free(r->rules);
        free(r->origins);
        free(r);
}

/* ARRAY_GROW() without zeroing, for the two arrays that grow with the policy: set elements
 * and origin records. ARRAY_GROW() zeroes the new capacity: a memset of up to half the array
 * per doubling (12 % of an apply at 100k elements), and the whole capacity made resident;
 * both arrays' entries are written in full before they are read. */
static int grow_unzeroed(void **array, size_t *allocated, size_t need, size_t size, size_t max) {
        void *p;
        size_t n;

        if (need <= *allocated)
                return 0;
        if (need > max)
                return -E2BIG;
        n = *allocated ? *allocated : 16;
        while (n < need)
                n *= 2;
        if (n > max)
                n = max;
        p = realloc(*array, n * size);
        if (!p)
                return -ENOMEM;
        *array = p;
        *allocated = n;
        return 0;
}

static int elems_grow(RulesetSet *s, size_t need) {
        return grow_unzeroed((void **) &s->elems, &s->allocated, need, sizeof(RulesetElem),
                             RULESET_MAX_ELEMENTS);
}

static int origins_grow(Ruleset *r, size_t need) {
        return grow_unzeroed((void **) &r->origins, &r->allocated_origins, need,
                             sizeof(RulesetOrigin), UINT32_MAX);
}

static int origin_add(Ruleset *r, PolicyPos pos, uint32_t *ret, const char *fmt, ...)
        _printf_(4, 5);

static int origin_add(Ruleset *r, PolicyPos pos, uint32_t *ret, const char *fmt, ...) {
        va_list ap;
        int k;

        k = origins_grow(r, r->n_origins + 1);
        if (k < 0)
                return k;
        va_start(ap, fmt);
        vsnprintf(r->origins[r->n_origins].what, sizeof(r->origins[0].what), fmt, ap);
        va_end(ap);
        r->origins[r->n_origins].pos = pos;
        *ret = (uint32_t) r->n_origins++;
        return 0;
}

static int chain_add(Ruleset *r, const char *name, int hook, uint32_t origin, size_t *ret) {
        RulesetChain *c;
        int k;

        k = ARRAY_GROW(r->chains, r->allocated_chains, r->n_chains + 1, 65536);
        if (k < 0)
                return k;
        c = &r->chains[r->n_chains];
        snprintf(c->name, sizeof(c->name), "%s", name);
        c->hook = hook;
        c->origin = origin;
        if (ret)
                *ret = r->n_chains;
        r->n_chains++;
        return 0;
}

static int set_add(Ruleset *r, const char *name, unsigned flags, size_t n_key,
                   const RulesetField *key) {
        RulesetSet *s;
        int k;

        k = ARRAY_GROW(r->sets, r->allocated_sets, r->n_sets + 1, RULESET_MAX_SETS);
        if (k < 0)
                return k;
        s = &r->sets[r->n_sets++];
        snprintf(s->name, sizeof(s->name), "%s", name);
        s->flags = flags;
        s->n_key = n_key;
        memcpy(s->key, key, n_key * sizeof(*key));
        s->key_len = ruleset_set_field_offset(s, n_key);
        return 0;
}

static int rule_add(Ruleset *r, size_t chain, RulesetVerdict v, size_t target, uint32_t origin,
                    size_t n_stmts, const RulesetStmt *stmts) {
        RulesetRule *rule;
        int k;

        k = ARRAY_GROW(r->rules, r->allocated_rules, r->n_rules + 1, 65536);
        if (k < 0)
                return k;
        rule = &r->rules[r->n_rules++];
        rule->chain = chain;
        rule->verdict = v;
        rule->target = target;
        rule->origin = origin;
        rule->n_stmts = n_stmts;
        if (n_stmts > 0)
                memcpy(rule->stmts, stmts, n_stmts * sizeof(*stmts));
        return 0;
}

/* ---- keys ---------------------------------------------------------------------------------- */

static int family_of(RulesetField f) {
        if (f == RULESET_FIELD_SADDR4 || f == RULESET_FIELD_DADDR4)
                return AF_INET;
        if (f == RULESET_FIELD_SADDR6 || f == RULESET_FIELD_DADDR6)
                return AF_INET6;
        return AF_UNSPEC;
}

/* One value per key field: an address range, a protocol, a port or an interface name. */
typedef struct KeyValue {
        const PolicyCidr *cidr;
        unsigned number;
        const char *ifname;
} KeyValue;

static void cidr_range(const PolicyCidr *c, uint8_t *start, uint8_t *end) {
        size_t len = c->family == AF_INET ? 4 : 16;

        for (size_t i = 0; i < len; i++) {
                unsigned bits = c->prefix > i * 8 ? c->prefix - i * 8 : 0;
                uint8_t mask = bits >= 8 ? 0xff : (uint8_t) (0xff << (8 - bits));

                start[i] = c->addr.bytes[i] & mask;
                end[i] = start[i] | (uint8_t) ~mask;
        }
}

static int elem_add(Compiler *c, RulesetSet *s, const KeyValue *v, uint32_t origin) {
        RulesetElem *e;
        int k;

        bool focused = false;

        for (size_t i = 0; i < s->n_key; i++) {
                int fam = family_of(s->key[i]);
                if (fam != AF_UNSPEC && v[i].cidr->family != fam)
                        return 0; /* an IPv6 address has no place in an IPv4 set */
                focused |= fam != AF_UNSPEC && v[i].cidr == c->focus_addr;
        }
        if (c->focus_addr && !focused)
                return 0;
        k = elems_grow(s, s->n_elems + 1);
        if (k < 0)
                return k;
        e = &s->elems[s->n_elems];
        memset(e, 0, sizeof(*e));
        for (size_t i = 0; i < s->n_key; i++) {
                size_t off = ruleset_set_field_offset(s, i);

                switch (s->key[i]) {
                case RULESET_FIELD_IIFNAME:
                        strncpy((char *) e->key + off, v[i].ifname, IFNAMSIZ - 1);
                        break;
                case RULESET_FIELD_SADDR4:
                case RULESET_FIELD_DADDR4:
                case RULESET_FIELD_SADDR6:
                case RULESET_FIELD_DADDR6:
                        cidr_range(v[i].cidr, e->key + off, e->key_end + off);
                        continue;
                case RULESET_FIELD_L4PROTO:
                        e->key[off] = (uint8_t) v[i].number;
                        break;
                default: /* ports travel in network byte order */
                        e->key[off] = (uint8_t) (v[i].number >> 8);
                        e->key[off + 1] = (uint8_t) v[i].number;
                        break;
                }
                memcpy(e->key_end + off, e->key + off, ruleset_field_len(s->key[i]));
        }
        e->origin = origin;
        e->order = c->order++;
        s->n_elems++;
        return 0;
}

static bool cidr_is_network(const PolicyCidr *a) {
        return a->prefix < (a->family == AF_INET ? 32 : 128);
}

/* ---- normalisation -------------------------------------------------------------------------- */

static size_t sort_len; /* qsort has no context argument; normalisation is not reentrant-safe */

static int cmp_key_order(const void *a, const void *b) {
        const RulesetElem *x = a, *y = b;
        int d = memcmp(x->key, y->key, sort_len);

        if (d == 0)
                d = memcmp(x->key_end, y->key_end, sort_len);
        if (d == 0)
                d = x->order < y->order ? -1 : x->order > y->order;
        return d;
}

static int cmp_origin_key(const void *a, const void *b) {
        const RulesetElem *x = a, *y = b;

        if (x->origin != y->origin)
                return x->origin < y->origin ? -1 : 1;
        return memcmp(x->key, y->key, sort_len);
}

static void bytes_inc(uint8_t *b, size_t len) {
        for (size_t i = len; i-- > 0;)
                if (++b[i] != 0)
                        break;
}

static void bytes_dec(uint8_t *b, size_t len) {
        for (size_t i = len; i-- > 0;)
                if (b[i]-- != 0)
                        break;
}

static bool bytes_all_ff(const uint8_t *b, size_t len) {
        for (size_t i = 0; i < len; i++)
                if (b[i] != 0xff)
                        return false;
        return true;
}

static int cmp_point(const void *a, const void *b) {
        return memcmp(a, b, sort_len);
}

static bool adjacent(const uint8_t *end, const uint8_t *start, size_t len) {
        uint8_t next[16];

        if (bytes_all_ff(end, len))
                return false;
        memcpy(next, end, len);
        bytes_inc(next, len);
        return memcmp(next, start, len) == 0;
}

/* Single-field intervals: split overlapping ranges into pieces, each taken by the earliest
 * inserted range covering it (the first forbid in file order wins), then merge neighbours
 * with the same verdict. */
static int resolve_cluster(RulesetSet *s, RulesetElem *in, size_t n, RulesetElem **out,
                           size_t *n_out, size_t *allocated) {
        size_t len = s->key_len, n_points = 0;
        _cleanup_free_ uint8_t (*points)[16] = calloc(2 * n, 16);
        int k;

        if (!points)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                memcpy(points[n_points++], in[i].key, len);
                if (!bytes_all_ff(in[i].key_end, len)) {
                        memcpy(points[n_points], in[i].key_end, len);
                        bytes_inc(points[n_points++], len);
                }
        }
        sort_len = len;
        qsort(points, n_points, 16, cmp_point);
        for (size_t p = 0; p < n_points; p++) {
                uint8_t seg_end[16];
                const RulesetElem *win = NULL;
                RulesetElem *last;

                if (p > 0 && memcmp(points[p], points[p - 1], len) == 0)
                        continue;
                if (p + 1 < n_points) {
                        size_t q = p + 1;
                        while (q < n_points && memcmp(points[q], points[p], len) == 0)
                                q++;
                        if (q < n_points) {
                                memcpy(seg_end, points[q], len);
                                bytes_dec(seg_end, len);
                        } else
                                memset(seg_end, 0xff, len);
                } else
                        memset(seg_end, 0xff, len);
                for (size_t i = 0; i < n; i++)
                        if (memcmp(in[i].key, points[p], len) <= 0 &&
                            memcmp(in[i].key_end, seg_end, len) >= 0 &&
                            (!win || in[i].order < win->order))
                                win = &in[i];
                if (!win)
                        continue; /* past the end of every range */
                last = *n_out > 0 ? &(*out)[*n_out - 1] : NULL;
                if (last) {
                        uint8_t next[16];
                        memcpy(next, last->key_end, len);
                        bytes_inc(next, len);
                        if (memcmp(next, points[p], len) == 0) {
                                memcpy(last->key_end, seg_end, len);
                                continue;
                        }
                }
                k = ARRAY_GROW(*out, *allocated, *n_out + 1, RULESET_MAX_ELEMENTS);
                if (k < 0)
                        return k;
                (*out)[*n_out] = *win;
                memcpy((*out)[*n_out].key, points[p], len);
                memcpy((*out)[*n_out].key_end, seg_end, len);
                (*n_out)++;
        }
        return 0;
}

static bool elem_contains(const RulesetSet *s, const RulesetElem *outer, const RulesetElem *in) {
        return memcmp(outer->key, in->key, s->key_len) <= 0 &&
               memcmp(outer->key_end, in->key_end, s->key_len) >= 0 &&
               ({
                       bool all = true;
                       for (size_t i = 0; i < s->n_key && all; i++) {
                               size_t off = ruleset_set_field_offset(s, i),
                                      l = ruleset_field_len(s->key[i]);
                               all = memcmp(outer->key + off, in->key + off, l) <= 0 &&
                                     memcmp(outer->key_end + off, in->key_end + off, l) >= 0;
                       }
                       all;
               });
}

size_t ruleset_key_hash(const uint8_t *key, size_t len) {
        uint64_t h = 0x9e3779b97f4a7c15u ^ len;

        for (size_t i = 0; i < len; i += 4) {
                uint32_t w = 0;
                memcpy(&w, key + i, len - i < 4 ? len - i : 4);
                h = (h ^ w) * 0xff51afd7ed558ccdu;
                h ^= h >> 32;
        }
        return (size_t) h;
}

static int cmp_origin_key_order(const void *a, const void *b) {
        const RulesetElem *x = a, *y = b;
        int d;

        if (x->origin != y->origin)
                return x->origin < y->origin ? -1 : 1;
        d = memcmp(x->key, y->key, sort_len);
        if (d == 0)
                d = x->order < y->order ? -1 : x->order > y->order;
        return d;
}

/* Exact sets: one element per key, the first inserted. Elements are inserted in origin order,
 * so after sorting by (origin, key, order) the first one seen of each key is the one to keep;
 * a hash of the keys seen finds the later ones in O(n), where sorting by key and sorting back
 * by origin cost two sorts. */
static int normalize_exact(RulesetSet *s) {
        size_t size = 64, n = 0;
        _cleanup_free_ uint32_t *seen = NULL;

        sort_len = s->key_len;
        qsort(s->elems, s->n_elems, sizeof(RulesetElem), cmp_origin_key_order);
        while (size < 2 * s->n_elems)
                size *= 2;
        seen = calloc(size, sizeof(*seen));
        if (!seen)
                return -ENOMEM;
        for (size_t i = 0; i < s->n_elems; i++) {
                const RulesetElem *e = &s->elems[i];
                size_t h = ruleset_key_hash(e->key, s->key_len) & (size - 1);
                bool dup = false;

                for (; seen[h] && !dup; h = (h + 1) & (size - 1))
                        dup = memcmp(s->elems[seen[h] - 1].key, e->key, s->key_len) == 0;
                if (dup)
                        continue;
                s->elems[n] = *e;
                seen[h] = (uint32_t) ++n;
        }
        s->n_elems = n;
        return 0;
}

int ruleset_set_normalize(RulesetSet *s) {
        size_t n = 0;

        if (s->n_elems == 0)
                return 0;
        if (!(s->flags & RULESET_SET_INTERVAL))
                return normalize_exact(s);
        sort_len = s->key_len;
        qsort(s->elems, s->n_elems, sizeof(RulesetElem), cmp_key_order);
        /* Equal keys: keep the first inserted (sorted first). */
        for (size_t i = 0; i < s->n_elems; i++) {
                if (n > 0 && memcmp(s->elems[n - 1].key, s->elems[i].key, s->key_len) == 0 &&
                    memcmp(s->elems[n - 1].key_end, s->elems[i].key_end, s->key_len) == 0)
                        continue;
                s->elems[n++] = s->elems[i];
        }
        s->n_elems = n;

        if ((s->flags & RULESET_SET_INTERVAL) && s->n_key == 1) {
                _cleanup_free_ RulesetElem *out = NULL;
                size_t n_out = 0, allocated = 0;
                int k;

                for (size_t i = 0; i < s->n_elems;) {
                        size_t j = i + 1;
                        uint8_t max_end[16];

                        memcpy(max_end, s->elems[i].key_end, s->key_len);
                        /* Overlapping or adjacent: the kernel refuses two starts in a row,
                         * so neighbours are merged (same verdict) or split exactly. */
                        while (j < s->n_elems &&
                               (memcmp(s->elems[j].key, max_end, s->key_len) <= 0 ||
                                adjacent(max_end, s->elems[j].key, s->key_len))) {
                                if (memcmp(s->elems[j].key_end, max_end, s->key_len) > 0)
                                        memcpy(max_end, s->elems[j].key_end, s->key_len);
                                j++;
                        }
                        if (j == i + 1) {
                                k = ARRAY_GROW(out, allocated, n_out + 1, RULESET_MAX_ELEMENTS);
                                if (k < 0)
                                        return k;
                                out[n_out++] = s->elems[i];
                        } else {
                                k = resolve_cluster(s, s->elems + i, j - i, &out, &n_out,
                                                    &allocated);
                                if (k < 0)
                                        return k;
                        }
                        i = j;
                }
                free(s->elems);
                s->elems = TAKE_PTR(out);
                s->n_elems = n_out;
                s->allocated = allocated;
        } else if ((s->flags & RULESET_SET_INTERVAL) && s->n_elems <= 4096) {
                /* Concatenated ranges: drop a range inside an earlier one (it adds nothing to a
                 * set, and the first wins in a map). Partial overlaps are left to the kernel,
                 * which refuses them; the error then names the policy entry. */
                n = 0;
                for (size_t i = 0; i < s->n_elems; i++) {
                        bool inside = false;
                        for (size_t j = 0; j < s->n_elems && !inside; j++)
                                inside = j != i && elem_contains(s, &s->elems[j], &s->elems[i]);
                        if (!inside)
                                s->elems[n++] = s->elems[i];
                }
                s->n_elems = n;
        }
        sort_len = s->key_len;
        qsort(s->elems, s->n_elems, sizeof(RulesetElem), cmp_origin_key);
        return 0;
}

int ruleset_test_corrupt_element(Ruleset *r, const char *set) {
        RulesetSet *s = ruleset_find_set(r, set);

        if (!s || s->n_elems == 0)
                return -ENOENT;
        s->elems[0].test_bad = true;
        return 0;
}

/* ---- the compiler --------------------------------------------------------------------------- */

static void service_addresses(const Compiler *c, size_t svc, const PolicyCidr **ret, size_t *ret_n,
                              bool *ret_aliased) {
        const Policy *p = c->policy;
        const PolicyService *s = &p->services[svc];

        *ret_aliased = false;
        if (s->match.kind == POLICY_MATCH_CIDR) {
                *ret = s->match.cidrs;
                *ret_n = s->match.n_cidrs;
        } else if (c->focus_addr && svc == c->focus && s->host == c->host) {
                *ret = c->focus_addr;
                *ret_n = 1;
        } else if (s->host == c->host)
                endpoints_get(c->endpoints, s->name, ret, ret_n);
        else {
                *ret = p->hosts[s->host].addresses;
                *ret_n = p->hosts[s->host].n_addresses;
                *ret_aliased = true;
        }
}

static bool service_local(const Compiler *c, size_t svc) {
        return c->policy->services[svc].host == c->host;
}

static bool service_public(const Compiler *c, size_t svc) {
        const PolicyService *s = &c->policy->services[svc];
        return c->policy->zones[s->zone].public;
}

/* Whether a service's addresses come from the policy (a cidr match, or a peer host's
 * addresses) rather than from its containers. */
static bool service_wide(const Compiler *c, size_t svc) {
        return c->policy->services[svc].match.kind == POLICY_MATCH_CIDR || !service_local(c, svc);
}

/* ruleset_compile_address(): elements between `s` and `t` (SIZE_MAX: none) cannot involve the
 * focus address, nor a network, nor a peer alias, so the pair needs no work at all. */
static bool delta_skip(const Compiler *c, size_t s, size_t t) {
        return c->focus_addr && s != c->focus && t != c->focus && !service_wide(c, s) &&
               (t == SIZE_MAX || !service_wide(c, t));
}

static RulesetSet *fam_set(const Compiler *c, const char *base, int family) {
        char name[RULESET_NAME_MAX + 8];

        snprintf(name, sizeof(name), "%s%c", base, family == AF_INET ? '4' : '6');
        return ruleset_find_set(c->r, name);
}

static int declare_sets(Ruleset *r) {
        static const struct {
                const char *name;
                unsigned flags;
                bool both; /* an IPv4 and an IPv6 twin */
                size_t n;
                RulesetField key4[RULESET_MAX_FIELDS];
        } decl[] = {
                { "public_ifaces", 0, false, 1, { RULESET_FIELD_IIFNAME } },
                { "private_ifaces", 0, false, 1, { RULESET_FIELD_IIFNAME } },
                { "host_public", 0, false, 2, { RULESET_FIELD_L4PROTO, RULESET_FIELD_TH_DPORT } },
                { "mgmt", RULESET_SET_INTERVAL, true, 3,
                  { RULESET_FIELD_SADDR4, RULESET_FIELD_L4PROTO, RULESET_FIELD_TH_DPORT } },
                /* Each address-keyed set has an exact (hash) twin for single addresses and a
                 * `_net` interval twin for networks: containers are single addresses, and a
                 * hash lookup costs the same at 10 or 100k elements where pipapo does not. */
                { "public", 0, true, 3,
                  { RULESET_FIELD_DADDR4, RULESET_FIELD_L4PROTO, RULESET_FIELD_TH_DPORT } },
                { "public_net", RULESET_SET_INTERVAL, true, 3,
                  { RULESET_FIELD_DADDR4, RULESET_FIELD_L4PROTO, RULESET_FIELD_TH_DPORT } },
                { "allow", 0, true, 4,
                  { RULESET_FIELD_SADDR4, RULESET_FIELD_DADDR4, RULESET_FIELD_L4PROTO,
                    RULESET_FIELD_TH_DPORT } },
                { "allow_net", RULESET_SET_INTERVAL, true, 4,
                  { RULESET_FIELD_SADDR4, RULESET_FIELD_DADDR4, RULESET_FIELD_L4PROTO,
                    RULESET_FIELD_TH_DPORT } },
                { "from_host", 0, true, 3,
                  { RULESET_FIELD_DADDR4, RULESET_FIELD_L4PROTO, RULESET_FIELD_TH_DPORT } },
                { "from_host_net", RULESET_SET_INTERVAL, true, 3,
                  { RULESET_FIELD_DADDR4, RULESET_FIELD_L4PROTO, RULESET_FIELD_TH_DPORT } },
                { "private", 0, true, 1, { RULESET_FIELD_DADDR4 } },
                { "private_net", RULESET_SET_INTERVAL, true, 1, { RULESET_FIELD_DADDR4 } },
                /* Docker mode (endpoints_add_network): the bridges' subnets, and the addresses
                 * in them that are not default-denied (public-zone containers, gateways). */
                { "docker_net", RULESET_SET_INTERVAL, true, 1, { RULESET_FIELD_DADDR4 } },
                { "docker_open", 0, true, 1, { RULESET_FIELD_DADDR4 } },
                /* Containment: flows the watcher cut, added at run time with a timeout. */
                { "contain", RULESET_SET_TIMEOUT, true, 4,
                  { RULESET_FIELD_SADDR4, RULESET_FIELD_DADDR4, RULESET_FIELD_L4PROTO,
                    RULESET_FIELD_TH_DPORT } },
        };
        int k;

        for (size_t i = 0; i < ELEMENTSOF(decl); i++) {
                if (!decl[i].both) {
                        k = set_add(r, decl[i].name, decl[i].flags, decl[i].n, decl[i].key4);
                        if (k < 0)
                                return k;
                        continue;
                }
                for (int six = 0; six <= 1; six++) {
                        RulesetField key[RULESET_MAX_FIELDS];
                        char name[RULESET_NAME_MAX];

                        for (size_t f = 0; f < decl[i].n; f++) {
                                key[f] = decl[i].key4[f];
                                if (six && key[f] == RULESET_FIELD_SADDR4)
                                        key[f] = RULESET_FIELD_SADDR6;
                                else if (six && key[f] == RULESET_FIELD_DADDR4)
                                        key[f] = RULESET_FIELD_DADDR6;
                        }
                        snprintf(name, sizeof(name), "%s%c", decl[i].name, six ? '6' : '4');
                        k = set_add(r, name, decl[i].flags, decl[i].n, key);
                        if (k < 0)
                                return k;
                }
        }
        return 0;
}

/* Add `addr` (× proto . port when `port`) to the family twin of `base`: `base` itself for a
 * single address, `base_net` for a network (management sets are all intervals). */
static int add_addr_port(Compiler *c, const char *base, const PolicyCidr *addr, const PolicyPort *port,
                         uint32_t origin) {
        char name[RULESET_NAME_MAX];
        RulesetSet *s;

        snprintf(name, sizeof(name), "%s%s", base,
                 cidr_is_network(addr) && !streq(base, "mgmt") ? "_net" : "");
        s = fam_set(c, name, addr->family);
        KeyValue v[3] = { { .cidr = addr } };

        if (port) {
                v[1].number = port->proto;
                v[2].number = port->port;
        }
        return elem_add(c, s, v, origin);
}

static int compile_host(Compiler *c) {
        const PolicyHost *h = &c->policy->hosts[c->host];
        RulesetSet *pub = ruleset_find_set(c->r, "public_ifaces"),
                   *priv = ruleset_find_set(c->r, "private_ifaces");
        uint32_t origin;
        int k;

        k = origin_add(c->r, h->pos, &origin, "host %s", h->name);
        if (k < 0)
                return k;
        for (size_t i = 0; i < h->n_public_interfaces; i++) {
                KeyValue v = { .ifname = h->public_interfaces[i] };
                k = elem_add(c, pub, &v, origin);
                if (k < 0)
                        return k;
        }
        for (size_t i = 0; i < h->n_private_interfaces; i++) {
                KeyValue v = { .ifname = h->private_interfaces[i] };
                k = elem_add(c, priv, &v, origin);
                if (k < 0)
                        return k;
        }
        for (size_t m = 0; m < h->n_management; m++) {
                const PolicyManagement *mg = &h->management[m];
                PolicyPort port = { .port = mg->port, .proto = mg->proto };

                k = origin_add(c->r, mg->pos, &origin, "host %s management[%zu]", h->name, m);
                if (k < 0)
                        return k;
                for (size_t i = 0; i < mg->n_from; i++) {
                        k = add_addr_port(c, "mgmt", &mg->from[i], &port, origin);
                        if (k < 0)
                                return k;
                }
        }
        return 0;
}

/* Ports Docker publishes for public service `s` (`ports: "8443:443"`): the host port opens on
 * the public side only for a container port the policy marks public, with its protocol. */
static int compile_published(Compiler *c, size_t s, uint32_t origin) {
        const PolicyService *svc = &c->policy->services[s];
        RulesetSet *host_public = ruleset_find_set(c->r, "host_public");
        const EndpointsPublished *pub;
        size_t n_pub;
        int k;

        endpoints_get_published(c->endpoints, svc->name, &pub, &n_pub);
        for (size_t i = 0; i < n_pub; i++)
                for (size_t j = 0; j < svc->n_ports; j++) {
                        KeyValue v[2] = { { .number = pub[i].proto },
                                          { .number = pub[i].host_port } };

                        if (!svc->ports[j].public || svc->ports[j].port != pub[i].container_port ||
                            svc->ports[j].proto != pub[i].proto)
                                continue;
                        k = elem_add(c, host_public, v, origin);
                        if (k < 0)
                                return k;
                        break;
                }
        return 0;
}

static int compile_services(Compiler *c) {
        const Policy *p = c->policy;
        RulesetSet *host_public = ruleset_find_set(c->r, "host_public");
        int k;

        for (size_t s = 0; s < p->n_services; s++) {
                const PolicyService *svc = &p->services[s];
                const PolicyCidr *addrs;
                size_t n_addrs;
                bool aliased;
                uint32_t origin;

                if (!service_local(c, s) || delta_skip(c, s, SIZE_MAX))
                        continue;
                k = origin_add(c->r, svc->pos, &origin, "service %s", svc->name);
                if (k < 0)
                        return k;
                service_addresses(c, s, &addrs, &n_addrs, &aliased);
                if (!service_public(c, s)) {
                        for (size_t a = 0; a < n_addrs; a++) {
                                k = add_addr_port(c, "private", &addrs[a], NULL, origin);
                                if (k < 0)
                                        return k;
                        }
                        continue;
                }
                /* A public-zone container is not default-denied in a Docker network. */
                for (size_t a = 0; a < n_addrs && !service_wide(c, s); a++)
                        if (!cidr_is_network(&addrs[a])) {
                                KeyValue v = { .cidr = &addrs[a] };
                                k = elem_add(c, fam_set(c, "docker_open", addrs[a].family), &v,
                                             origin);
                                if (k < 0)
                                        return k;
                        }
                for (size_t i = 0; i < svc->n_ports; i++) {
                        const PolicyPort *port = &svc->ports[i];
                        KeyValue v[2] = { { .number = port->proto }, { .number = port->port } };

                        if (!port->public)
                                continue;
                        k = elem_add(c, host_public, v, origin);
                        if (k < 0)
                                return k;
                        for (size_t a = 0; a < n_addrs; a++) {
                                k = add_addr_port(c, "public", &addrs[a], port, origin);
                                if (k < 0)
                                        return k;
                        }
                }
                k = compile_published(c, s, origin);
                if (k < 0)
                        return k;
        }
        return 0;
}

/* Docker mode: the host's bridge networks and its own addresses on them. A container address
 * never involves these, so ruleset_compile_address() skips them (networks change rarely and go
 * through a full nft_update()). */
static int compile_docker_networks(Compiler *c) {
        const EndpointsNetwork *nets;
        size_t n_nets;
        uint32_t origin;
        int k;

        endpoints_get_networks(c->endpoints, &nets, &n_nets);
        if (c->focus_addr || n_nets == 0)
                return 0;
        k = origin_add(c->r, (PolicyPos) { 0, 0 }, &origin, "Docker networks");
        if (k < 0)
                return k;
        for (size_t i = 0; i < n_nets; i++) {
                KeyValue net = { .cidr = &nets[i].subnet }, gw = { .cidr = &nets[i].gateway };

                k = elem_add(c, fam_set(c, "docker_net", nets[i].subnet.family), &net, origin);
                if (k >= 0 && nets[i].has_gateway)
                        k = elem_add(c, fam_set(c, "docker_open", nets[i].gateway.family), &gw,
                                     origin);
                if (k < 0)
                        return k;
        }
        return 0;
}

/* The ports a flow opens on service `to`: its `port` (with the protocols the service declares
 * for it, TCP when it declares none), or every declared port. */
static size_t flow_ports(const PolicyFlow *f, const PolicyService *to, PolicyPort *buf, size_t max) {
        size_t n = 0;

        for (size_t i = 0; i < to->n_ports && n < max; i++)
                if (f->port < 0 || to->ports[i].port == f->port)
                        buf[n++] = to->ports[i];
        if (n == 0 && f->port >= 0)
                buf[n++] = (PolicyPort) { .port = (uint16_t) f->port, .proto = IPPROTO_TCP };
        return n;
}

static int pair_add(Compiler *c, const PolicyCidr *a, const PolicyCidr *b) {
        int k;

        k = ARRAY_GROW(c->pairs, c->allocated_pairs, c->n_pairs + 1, SIZE_MAX / 64);
        if (k < 0)
                return k;
        c->pairs[c->n_pairs][0] = (uint8_t) a->family;
        memcpy(c->pairs[c->n_pairs] + 1, a->addr.bytes, 16);
        memcpy(c->pairs[c->n_pairs] + 17, b->addr.bytes, 16);
        c->n_pairs++;
        return 0;
}

static int cmp_pair(const void *a, const void *b) {
        return memcmp(a, b, 33);
}

static bool pair_allowed(const Compiler *c, const PolicyCidr *a, const PolicyCidr *b) {
        uint8_t key[33] = { (uint8_t) a->family };

        memcpy(key + 1, a->addr.bytes, 16);
        memcpy(key + 17, b->addr.bytes, 16);
        return c->n_pairs > 0 && bsearch(key, c->pairs, c->n_pairs, 33, cmp_pair);
}

/* ruleset_compile_address(): whether flow `f` can give an element at all, i.e. names the focus
 * service or a service whose addresses come from the policy. */
static bool flow_involved(const Compiler *c, const PolicyFlow *f) {
        for (size_t i = 0; i < f->from.n_services; i++)
                if (f->from.services[i] == c->focus || service_wide(c, f->from.services[i]))
                        return true;
        for (size_t i = 0; i < f->to.n_services; i++)
                if (f->to.services[i] == c->focus || service_wide(c, f->to.services[i]))
                        return true;
        return false;
}

/* The next flow to compile after `fi` (SIZE_MAX: start), or SIZE_MAX at the end. With an
 * index in focus mode, only the flows naming the focus or a wide service, in file order. */
static size_t flow_next(const Compiler *c, size_t fi, size_t *cursor_a, size_t *cursor_b) {
        const RulesetIndex *ix = c->focus_addr ? c->index : NULL;
        size_t next = fi == SIZE_MAX ? 0 : fi + 1;

        if (!ix)
                return next < c->policy->n_flows ? next : SIZE_MAX;
        {
                const size_t *a = ix->flows + ix->flow_start[c->focus];
                size_t n_a = ix->flow_start[c->focus + 1] - ix->flow_start[c->focus];
                size_t best = SIZE_MAX;

                while (*cursor_a < n_a && a[*cursor_a] < next)
                        (*cursor_a)++;
                while (*cursor_b < ix->n_wide_flows && ix->wide_flows[*cursor_b] < next)
                        (*cursor_b)++;
                if (*cursor_a < n_a)
                        best = a[*cursor_a];
                if (*cursor_b < ix->n_wide_flows && ix->wide_flows[*cursor_b] < best)
                        best = ix->wide_flows[*cursor_b];
                return best;
        }
}

static int compile_flows(Compiler *c) {
        const Policy *p = c->policy;
        size_t cursor_a = 0, cursor_b = 0;
        int k;

        for (size_t fi = flow_next(c, SIZE_MAX, &cursor_a, &cursor_b); fi != SIZE_MAX;
             fi = flow_next(c, fi, &cursor_a, &cursor_b)) {
                const PolicyFlow *f = &p->flows[fi];
                uint32_t origin;

                if (c->focus_addr && !flow_involved(c, f))
                        continue;
                k = origin_add(c->r, f->pos, &origin, "flows[%zu]", fi);
                if (k < 0)
                        return k;
                for (size_t ti = 0; ti < f->to.n_services; ti++) {
                        size_t t = f->to.services[ti];
                        const PolicyService *to = &p->services[t];
                        PolicyPort ports[64];
                        size_t n_ports = flow_ports(f, to, ports, ELEMENTSOF(ports));
                        const PolicyCidr *dst;
                        size_t n_dst;
                        bool dst_aliased;

                        service_addresses(c, t, &dst, &n_dst, &dst_aliased);
                        if (f->from.host && service_local(c, t) && !delta_skip(c, t, SIZE_MAX))
                                for (size_t d = 0; d < n_dst; d++)
                                        for (size_t i = 0; i < n_ports; i++) {
                                                k = add_addr_port(c, "from_host", &dst[d], &ports[i],
                                                                  origin);
                                                if (k < 0)
                                                        return k;
                                        }
                        for (size_t si = 0; si < f->from.n_services; si++) {
                                size_t s = f->from.services[si];
                                const PolicyCidr *src;
                                size_t n_src;
                                bool src_aliased;

                                if ((!service_local(c, s) && !service_local(c, t)) ||
                                    delta_skip(c, s, t))
                                        continue;
                                service_addresses(c, s, &src, &n_src, &src_aliased);
                                for (size_t a = 0; a < n_src; a++)
                                        for (size_t d = 0; d < n_dst; d++) {
                                                if (src[a].family != dst[d].family)
                                                        continue;
                                                k = pair_add(c, &src[a], &dst[d]);
                                                if (k < 0)
                                                        return k;
                                                if (!service_local(c, t))
                                                        continue; /* judged where it arrives */
                                                for (size_t i = 0; i < n_ports; i++) {
                                                        bool net = cidr_is_network(&src[a]) ||
                                                                   cidr_is_network(&dst[d]);
                                                        RulesetSet *set = fam_set(
                                                                c, net ? "allow_net" : "allow",
                                                                src[a].family);
                                                        KeyValue v[4] = {
                                                                { .cidr = &src[a] },
                                                                { .cidr = &dst[d] },
                                                                { .number = ports[i].proto },
                                                                { .number = ports[i].port },
                                                        };
                                                        k = elem_add(c, set, v, origin);
                                                        if (k < 0)
                                                                return k;
                                                }
                                        }
                        }
                }
        }
        if (c->n_pairs > 0)
                qsort(c->pairs, c->n_pairs, 33, cmp_pair);
        return 0;
}

/* A forbid id becomes part of a log prefix inside double quotes: keep it to safe characters. */
static bool forbid_id_valid(const char *id) {
        size_t n = strlen(id);

        if (n == 0 || n > 64)
                return false;
        for (const char *s = id; *s; s++)
                if (!(('a' <= *s && *s <= 'z') || ('A' <= *s && *s <= 'Z') ||
                      ('0' <= *s && *s <= '9') || strchr("-_.:/", *s)))
                        return false;
        return true;
}

/* Declare the sets of forbid `fi` that its `from` can fill: each forbid has sets of its own,
 * looked up by one rule each, in file order, so that the first forbid in file order wins by
 * rule order alone. Plain sets, no verdict maps: a verdict (jump) element makes the kernel
 * validate the whole table on every commit, which made each update cost O(ruleset). */
static int forbid_declare_sets(Compiler *c, size_t fi, CompiledForbid *cf) {
        static const char *const kind_name[_FORBID_KIND_MAX] = { "inet", "host", "pair" };
        const PolicyForbid *f = &c->policy->forbids[fi];
        bool want[_FORBID_KIND_MAX] = { f->from.internet, f->from.host, f->from.n_services > 0 };
        int k;

        for (size_t kind = 0; kind < _FORBID_KIND_MAX; kind++)
                for (int net = 0; net <= 1; net++)
                        for (int six = 0; six <= 1; six++) {
                                RulesetField key[2];
                                size_t n = 0;
                                char name[RULESET_NAME_MAX];

                                cf->sets[kind][net][six] = NO_SET;
                                if (!want[kind])
                                        continue;
                                if (kind == FORBID_PAIR)
                                        key[n++] = six ? RULESET_FIELD_SADDR6 : RULESET_FIELD_SADDR4;
                                key[n++] = six ? RULESET_FIELD_DADDR6 : RULESET_FIELD_DADDR4;
                                snprintf(name, sizeof(name), "forbid_%u_%s%s%c", (unsigned) fi,
                                         kind_name[kind], net ? "_net" : "", six ? '6' : '4');
                                k = set_add(c->r, name, net ? RULESET_SET_INTERVAL : 0, n, key);
                                if (k < 0)
                                        return k;
                                cf->sets[kind][net][six] = c->r->n_sets - 1;
                        }
        return 0;
}

static RulesetSet *forbid_set(Compiler *c, const CompiledForbid *cf, ForbidKind kind, bool net,
                              int family) {
        return &c->r->sets[cf->sets[kind][net][family == AF_INET6]];
}

static bool sorted_contains(const size_t *a, size_t n, size_t x) {
        size_t lo = 0, hi = n;

        while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;

                if (a[mid] == x)
                        return true;
                if (a[mid] < x)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        return false;
}

/* Candidate `i` of the focus service and the index's wide services, ascending (the wide ones
 * alone when the focus is one of them). */
static size_t forbid_candidate(const Compiler *c, size_t i) {
        const RulesetIndex *ix = c->index;

        if (c->focus_wide || i < c->focus_rank)
                return ix->wide[i];
        if (i == c->focus_rank)
                return c->focus;
        return ix->wide[i - 1];
}

static int compile_forbids(Compiler *c, char *err, size_t err_size) {
        const Policy *p = c->policy;
        int k;

        for (size_t fi = 0; fi < p->n_forbids; fi++) {
                const PolicyForbid *f = &p->forbids[fi];
                char name[RULESET_NAME_MAX];
                CompiledForbid *cf;
                uint32_t origin;
                size_t chain;
                RulesetStmt log = { .kind = RULESET_STMT_LOG };

                if (f->access == POLICY_ACCESS_WRITE)
                        continue; /* not an L3 decision: the L7 watcher judges writes */
                if (!forbid_id_valid(f->id)) {
                        snprintf(err, err_size,
                                 "%s:%u:%u: forbid id \"%s\" cannot name a log prefix: expected "
                                 "1-64 letters, digits or -_.:/",
                                 p->path ? p->path : "policy", f->pos.line, f->pos.column, f->id);
                        return -EINVAL;
                }
                k = origin_add(c->r, f->pos, &origin, "forbid[%zu] (%s)", fi, f->id);
                if (k < 0)
                        return k;
                snprintf(name, sizeof(name), "forbid_%zu", fi);
                k = chain_add(c->r, name, -1, origin, &chain);
                if (k < 0)
                        return k;
                k = rule_add(c->r, chain,
                             p->mode == POLICY_MODE_AUDIT ? RULESET_VERDICT_ACCEPT
                                                          : RULESET_VERDICT_DROP,
                             0, origin, 1, &log);
                if (k < 0)
                        return k;
                snprintf(c->r->rules[c->r->n_rules - 1].log_prefix,
                         sizeof(c->r->rules[0].log_prefix), "ceredis:%s ", f->id);
                k = ARRAY_GROW(c->forbids, c->allocated_forbids, c->n_forbids + 1, 4096);
                if (k < 0)
                        return k;
                cf = &c->forbids[c->n_forbids++];
                cf->chain = chain;
                cf->origin = origin;
                k = forbid_declare_sets(c, fi, cf);
                if (k < 0)
                        return k;
                /* Focus mode with an index: whether `from` names the focus or a wide service;
                 * if not, a `to` service that is neither gives nothing at all. */
                bool from_involved = true;
                if (c->focus_addr && c->index) {
                        from_involved = sorted_contains(f->from.services, f->from.n_services, c->focus);
                        for (size_t i = 0; i < c->index->n_wide && !from_involved; i++)
                                from_involved = sorted_contains(f->from.services, f->from.n_services,
                                                                c->index->wide[i]);
                }

                /* ...so then only the focus and the wide services of `to` are looked at. */
                size_t n_to = from_involved ? f->to.n_services
                                            : c->index->n_wide + !c->focus_wide;

                for (size_t ti = 0; ti < n_to; ti++) {
                        size_t t = from_involved ? f->to.services[ti] : forbid_candidate(c, ti);
                        const PolicyCidr *dst;
                        size_t n_dst;
                        bool dst_aliased;

                        if (!from_involved &&
                            !sorted_contains(f->to.services, f->to.n_services, t))
                                continue;
                        service_addresses(c, t, &dst, &n_dst, &dst_aliased);
                        for (size_t d = 0; d < n_dst && !delta_skip(c, t, SIZE_MAX); d++) {
                                KeyValue v[1] = { { .cidr = &dst[d] } };
                                bool net = cidr_is_network(&dst[d]);

                                if (f->from.internet && service_local(c, t)) {
                                        k = elem_add(c, forbid_set(c, cf, FORBID_INET, net,
                                                                   dst[d].family),
                                                     v, origin);
                                        if (k < 0)
                                                return k;
                                }
                                if (f->from.host && !dst_aliased) {
                                        k = elem_add(c, forbid_set(c, cf, FORBID_HOST, net,
                                                                   dst[d].family),
                                                     v, origin);
                                        if (k < 0)
                                                return k;
                                }
                        }
                        /* Focus mode with an index, `t` neither the focus nor wide: only
                         * the focus and the wide services of `from` can pair with it. */
                        bool sparse = c->focus_addr && c->index && delta_skip(c, t, SIZE_MAX);
                        size_t n_cand = sparse ? c->index->n_wide + !c->focus_wide : f->from.n_services;

                        for (size_t si = 0; si < n_cand; si++) {
                                size_t s;
                                const PolicyCidr *src;
                                size_t n_src;
                                bool src_aliased;

                                if (sparse) {
                                        s = forbid_candidate(c, si);
                                        if (!sorted_contains(f->from.services, f->from.n_services, s))
                                                continue;
                                } else
                                        s = f->from.services[si];
                                if ((!service_local(c, s) && !service_local(c, t)) ||
                                    delta_skip(c, s, t))
                                        continue;
                                service_addresses(c, s, &src, &n_src, &src_aliased);
                                for (size_t a = 0; a < n_src; a++)
                                        for (size_t d = 0; d < n_dst; d++) {
                                                KeyValue v[2] = { { .cidr = &src[a] },
                                                                  { .cidr = &dst[d] } };
                                                bool net = cidr_is_network(&src[a]) ||
                                                           cidr_is_network(&dst[d]);

                                                if (src[a].family != dst[d].family)
                                                        continue;
                                                /* An alias stands for every service of a peer
                                                 * host: never let it cut an allowed flow. */
                                                if ((src_aliased || dst_aliased) &&
                                                    pair_allowed(c, &src[a], &dst[d]))
                                                        continue;
                                                k = elem_add(c, forbid_set(c, cf, FORBID_PAIR, net,
                                                                           src[a].family),
                                                             v, origin);
                                                if (k < 0)
                                                        return k;
                                        }
                        }
                }
        }
        return 0;
}

static RulesetStmt lookup(Ruleset *r, const char *set, bool negate) {
        RulesetSet *s = ruleset_find_set(r, set);
        return (RulesetStmt) { .kind = RULESET_STMT_LOOKUP, .set = (size_t) (s - r->sets),
                               .negate = negate };
}

typedef struct ChainIds {
        size_t input, forward, output, input_public, forward_public, deny;
        size_t contain; /* SIZE_MAX in audit mode: containment is an enforce-mode action */
} ChainIds;

static int compile_rules(Ruleset *r, const ChainIds *ch, const CompiledForbid *forbids,
                         size_t n_forbids) {
        static const RulesetStmt est = { .kind = RULESET_STMT_CT_ESTABLISHED };
        static const uint8_t nd_types[] = { 135, 136, 134 }; /* solicit, advert, router-advert */
        static const uint8_t l4[] = { IPPROTO_TCP, IPPROTO_UDP };
        const RulesetVerdict A = RULESET_VERDICT_ACCEPT, J = RULESET_VERDICT_JUMP;
        int k = 0;

#define RULE(chain, verdict, target, ...)                                                      \
        do {                                                                                   \
                const RulesetStmt _s[] = { __VA_ARGS__ };                                      \
                k = rule_add(r, (chain), (verdict), (target), ORIGIN_NONE, ELEMENTSOF(_s), _s); \
                if (k < 0)                                                                     \
                        return k;                                                              \
        } while (0)

        /* Management first: it must pass whatever else the policy says. */
        RULE(ch->input, A, 0, est);
        RULE(ch->input, A, 0, lookup(r, "mgmt4", false));
        RULE(ch->input, A, 0, lookup(r, "mgmt6", false));
        RULE(ch->input, J, ch->input_public, lookup(r, "public_ifaces", false));

        for (size_t i = 0; i < ELEMENTSOF(nd_types); i++)
                RULE(ch->input_public, A, 0,
                     { .kind = RULESET_STMT_ICMPV6_TYPE, .value = nd_types[i] });
        RULE(ch->input_public, A, 0, lookup(r, "host_public", false));
        k = rule_add(r, ch->input_public, J, ch->deny, ORIGIN_NONE, 0, NULL);
        if (k < 0)
                return k;

#define TWINS(chain, verdict, target, stmt, base)                                              \
        do {                                                                                   \
                RULE(chain, verdict, target, stmt(r, base "4"));                               \
                RULE(chain, verdict, target, stmt(r, base "_net4"));                           \
                RULE(chain, verdict, target, stmt(r, base "6"));                               \
                RULE(chain, verdict, target, stmt(r, base "_net6"));                           \
        } while (0)
#define LOOKUP(r, name) lookup(r, name, false)
/* An address in a Docker network that is neither a public-zone container nor the host: a
 * private container, or one the agent has not identified yet. Denied like `private`, so that a
 * new container is closed from its first packet, not from when its event is processed. */
#define DOCKER_UNKNOWN(chain)                                                                  \
        do {                                                                                   \
                RULE(chain, J, ch->deny, lookup(r, "docker_net4", false),                      \
                     lookup(r, "docker_open4", true));                                         \
                RULE(chain, J, ch->deny, lookup(r, "docker_net6", false),                      \
                     lookup(r, "docker_open6", true));                                         \
        } while (0)
        /* One rule per forbid set, forbids in file order: the first forbid that matches wins.
         * The per-packet cost grows with the number of forbid entries (a handful of
         * invariants), not with services, addresses or flows: each rule is one hash or
         * interval lookup. */
#define FORBIDS(to, which)                                                                     \
        for (size_t _f = 0; _f < n_forbids; _f++)                                              \
                for (int _six = 0; _six <= 1; _six++)                                          \
                        for (int _net = 0; _net <= 1; _net++) {                                \
                                size_t _set = forbids[_f].sets[which][_net][_six];             \
                                RulesetStmt _st = { .kind = RULESET_STMT_LOOKUP, .set = _set }; \
                                if (_set == NO_SET)                                            \
                                        continue;                                              \
                                k = rule_add(r, (to), J, forbids[_f].chain,                    \
                                             forbids[_f].origin, 1, &_st);                     \
                                if (k < 0)                                                     \
                                        return k;                                              \
                        }
        /* IPv6 dies without neighbour discovery: the host's own solicitations and adverts to
         * containers (output) and those between containers on one bridge (forward, through
         * br_netfilter) come before any deny. Only 135/136; never router advertisements. */
        /* Containment before anything else: the flows it names are established connections
         * that must be cut, both ways (the server's replies too). */
        if (ch->contain != SIZE_MAX)
                for (int six = 0; six <= 1; six++) {
                        RulesetStmt fwd = lookup(r, six ? "contain6" : "contain4", false),
                                    rev = fwd;
                        RulesetField sa = six ? RULESET_FIELD_SADDR6 : RULESET_FIELD_SADDR4,
                                     da = six ? RULESET_FIELD_DADDR6 : RULESET_FIELD_DADDR4;

                        rev.fields[0] = da;
                        rev.fields[1] = sa;
                        rev.fields[2] = RULESET_FIELD_L4PROTO;
                        rev.fields[3] = RULESET_FIELD_TH_SPORT;
                        rev.n_fields = 4;
                        RULE(ch->forward, J, ch->contain, fwd);
                        RULE(ch->forward, J, ch->contain, rev);
                }
        RULE(ch->forward, A, 0, est);
        for (size_t i = 0; i < 2; i++)
                RULE(ch->forward, A, 0, { .kind = RULESET_STMT_ICMPV6_TYPE, .value = nd_types[i] });
        RULE(ch->forward, J, ch->forward_public, lookup(r, "public_ifaces", false));
        FORBIDS(ch->forward, FORBID_PAIR);
        TWINS(ch->forward, A, 0, LOOKUP, "allow");
        TWINS(ch->forward, J, ch->deny, LOOKUP, "private");
        DOCKER_UNKNOWN(ch->forward);

        FORBIDS(ch->forward_public, FORBID_INET);
        /* Docker's DNAT already happened here: daddr is the container. Also judge the original
         * destination: a published port that is not one of the host's public ports is refused
         * even when the container behind it is a public one. */
        for (size_t i = 0; i < ELEMENTSOF(l4); i++) {
                RulesetStmt orig = lookup(r, "host_public", true);

                orig.fields[0] = RULESET_FIELD_L4PROTO;
                orig.fields[1] = RULESET_FIELD_CT_ORIG_PROTO_DST;
                orig.n_fields = 2;
                RULE(ch->forward_public, J, ch->deny,
                     { .kind = RULESET_STMT_L4PROTO, .value = l4[i] },
                     { .kind = RULESET_STMT_CT_DNAT }, orig);
        }
        TWINS(ch->forward_public, A, 0, LOOKUP, "public");
        k = rule_add(r, ch->forward_public, J, ch->deny, ORIGIN_NONE, 0, NULL);
        if (k < 0)
                return k;

        RULE(ch->output, A, 0, est);
        for (size_t i = 0; i < 2; i++)
                RULE(ch->output, A, 0, { .kind = RULESET_STMT_ICMPV6_TYPE, .value = nd_types[i] });
        FORBIDS(ch->output, FORBID_HOST);
        TWINS(ch->output, A, 0, LOOKUP, "from_host");
        TWINS(ch->output, J, ch->deny, LOOKUP, "private");
        DOCKER_UNKNOWN(ch->output);
#undef DOCKER_UNKNOWN
#undef LOOKUP
#undef FORBIDS
#undef TWINS
#undef RULE
        return 0;
}

static int resolve_host(const Policy *p, const RulesetOptions *o, size_t *ret, char *err,
                        size_t err_size) {
        const char *host = o ? o->host : NULL;

        if (host) {
                ssize_t h = policy_find_host(p, host);
                if (h < 0) {
                        snprintf(err, err_size, "%s: no host \"%s\" in the policy",
                                 p->path ? p->path : "policy", host);
                        return -ENOENT;
                }
                *ret = (size_t) h;
        } else if (p->n_hosts == 1)
                *ret = 0;
        else {
                snprintf(err, err_size, "%s: the policy has %zu hosts: name the one to compile for",
                         p->path ? p->path : "policy", p->n_hosts);
                return -ENOENT;
        }
        return 0;
}

static int cmp_service_name(const void *a, const void *b) {
        return strcmp((*(const PolicyService *const *) a)->name,
                      (*(const PolicyService *const *) b)->name);
}

static ssize_t index_find_service(const RulesetIndex *ix, const char *name) {
        size_t lo = 0, hi = ix->policy->n_services;

        while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;
                int d = strcmp(ix->by_name[mid]->name, name);

                if (d == 0)
                        return ix->by_name[mid] - ix->policy->services;
                if (d < 0)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        return -ENOENT;
}

void ruleset_index_free(RulesetIndex *ix) {
        if (!ix)
                return;
        free(ix->flow_start);
        free(ix->flows);
        free(ix->wide);
        free(ix->wide_flows);
        free(ix->by_name);
        free(ix);
}

int ruleset_index_new(const Policy *p, const RulesetOptions *o, RulesetIndex **ret, char *err,
                      size_t err_size) {
        _cleanup_(ruleset_index_freep) RulesetIndex *ix = NULL;
        _cleanup_free_ size_t *last = NULL, *fill = NULL;
        int k;

        ix = calloc(1, sizeof(*ix));
        if (!ix)
                return -ENOMEM;
        ix->policy = p;
        k = resolve_host(p, o, &ix->host, err, err_size);
        if (k < 0)
                return k;
        ix->flow_start = calloc(p->n_services + 1, sizeof(size_t));
        ix->wide = calloc(p->n_services + 1, sizeof(size_t));
        ix->wide_flows = calloc(p->n_flows + 1, sizeof(size_t));
        ix->by_name = malloc((p->n_services + 1) * sizeof(*ix->by_name));
        last = malloc((p->n_services + 1) * sizeof(size_t));
        if (!ix->flow_start || !ix->wide || !ix->wide_flows || !ix->by_name || !last)
                return -ENOMEM;
        for (size_t s = 0; s < p->n_services; s++)
                ix->by_name[s] = &p->services[s];
        if (p->n_services > 0)
                qsort(ix->by_name, p->n_services, sizeof(*ix->by_name), cmp_service_name);
        for (size_t s = 0; s < p->n_services; s++) {
                const PolicyService *svc = &p->services[s];

                if (svc->match.kind == POLICY_MATCH_CIDR || svc->host != ix->host)
                        ix->wide[ix->n_wide++] = s;
        }

        /* Two passes: count each service's flows into flow_start[s + 1] (a service in both
         * from and to once: `last[s]` is the last flow that named s), then fill, with `fill[s]`
         * the next free slot of s. */
        for (int pass = 0; pass < 2; pass++) {
                for (size_t s = 0; s < p->n_services; s++)
                        last[s] = SIZE_MAX;
                if (pass == 1) {
                        for (size_t s = 0; s < p->n_services; s++)
                                ix->flow_start[s + 1] += ix->flow_start[s];
                        ix->flows = malloc((ix->flow_start[p->n_services] + 1) * sizeof(size_t));
                        fill = malloc((p->n_services + 1) * sizeof(size_t));
                        if (!ix->flows || !fill)
                                return -ENOMEM;
                        memcpy(fill, ix->flow_start, p->n_services * sizeof(size_t));
                }
                for (size_t fi = 0; fi < p->n_flows; fi++) {
                        const PolicyFlow *f = &p->flows[fi];
                        bool wide = false;

                        for (int side = 0; side < 2; side++) {
                                const PolicyEndpoint *ep = side ? &f->to : &f->from;

                                for (size_t i = 0; i < ep->n_services; i++) {
                                        size_t s = ep->services[i];

                                        wide = wide || sorted_contains(ix->wide, ix->n_wide, s);
                                        if (last[s] == fi)
                                                continue;
                                        last[s] = fi;
                                        if (pass == 0)
                                                ix->flow_start[s + 1]++;
                                        else
                                                ix->flows[fill[s]++] = fi;
                                }
                        }
                        if (pass == 1 && wide)
                                ix->wide_flows[ix->n_wide_flows++] = fi;
                }
        }
        *ret = TAKE_PTR(ix);
        return 0;
}

static int compile(const Policy *p, const Endpoints *e, const RulesetOptions *o, ssize_t focus,
                   const PolicyCidr *focus_addr, Ruleset **ret, char *err, size_t err_size) {
        _cleanup_(ruleset_freep) Ruleset *r = NULL;
        Compiler c = { .policy = p, .endpoints = e, .focus = (size_t) focus,
                       .focus_addr = focus_addr };
        ChainIds ch;
        uint32_t origin;
        int k;

        k = resolve_host(p, o, &c.host, err, err_size);
        if (k < 0)
                return k;
        if (focus_addr && o && o->index) {
                const RulesetIndex *ix = o->index;

                if (ix->policy != p || ix->host != c.host) {
                        snprintf(err, err_size, "the ruleset index was built for another policy or host");
                        return -EINVAL;
                }
                c.index = ix;
                while (c.focus_rank < ix->n_wide && ix->wide[c.focus_rank] < c.focus)
                        c.focus_rank++;
                c.focus_wide = c.focus_rank < ix->n_wide && ix->wide[c.focus_rank] == c.focus;
        }

        r = calloc(1, sizeof(*r));
        if (!r)
                return -ENOMEM;
        c.r = r;
        snprintf(r->host, sizeof(r->host), "%s", p->hosts[c.host].name);
        r->mode = p->mode;
        r->nflog_group = o && o->nflog_group ? o->nflog_group : RULESET_NFLOG_GROUP_DEFAULT;

        k = origin_add(r, (PolicyPos) { 0, 0 }, &origin, "the ruleset");
        if (k < 0)
                goto fail;
        if ((k = chain_add(r, "input", NF_INET_LOCAL_IN, ORIGIN_NONE, &ch.input)) < 0 ||
            (k = chain_add(r, "forward", NF_INET_FORWARD, ORIGIN_NONE, &ch.forward)) < 0 ||
            (k = chain_add(r, "output", NF_INET_LOCAL_OUT, ORIGIN_NONE, &ch.output)) < 0 ||
            (k = chain_add(r, "input_public", -1, ORIGIN_NONE, &ch.input_public)) < 0 ||
            (k = chain_add(r, "forward_public", -1, ORIGIN_NONE, &ch.forward_public)) < 0 ||
            (k = chain_add(r, "deny", -1, ORIGIN_NONE, &ch.deny)) < 0)
                goto fail;
        {
                RulesetStmt log = { .kind = RULESET_STMT_LOG };
                k = rule_add(r, ch.deny,
                             p->mode == POLICY_MODE_AUDIT ? RULESET_VERDICT_ACCEPT
                                                          : RULESET_VERDICT_DROP,
                             0, ORIGIN_NONE, 1, &log);
                if (k < 0)
                        goto fail;
                snprintf(r->rules[r->n_rules - 1].log_prefix, sizeof(r->rules[0].log_prefix),
                         "ceredis:DEFAULT-DENY ");
        }
        ch.contain = SIZE_MAX;
        if (p->mode == POLICY_MODE_ENFORCE) {
                RulesetStmt log = { .kind = RULESET_STMT_LOG };

                if ((k = chain_add(r, "contain", -1, ORIGIN_NONE, &ch.contain)) < 0 ||
                    (k = rule_add(r, ch.contain, RULESET_VERDICT_DROP, 0, ORIGIN_NONE, 1, &log)) < 0)
                        goto fail;
                snprintf(r->rules[r->n_rules - 1].log_prefix, sizeof(r->rules[0].log_prefix),
                         "ceredis:CONTAINED ");
        }
        if ((k = declare_sets(r)) < 0)
                goto fail;
        if ((k = compile_host(&c)) < 0 || (k = compile_services(&c)) < 0 ||
            (k = compile_docker_networks(&c)) < 0 || (k = compile_flows(&c)) < 0 || (k = compile_forbids(&c, err, err_size)) < 0)
                goto fail;
        if ((k = compile_rules(r, &ch, c.forbids, c.n_forbids)) < 0)
                goto fail;
        for (size_t i = 0; i < r->n_sets; i++)
                if ((k = ruleset_set_normalize(&r->sets[i])) < 0)
                        goto fail;
        free(c.pairs);
        free(c.forbids);
        *ret = TAKE_PTR(r);
        return 0;
fail:
        free(c.pairs);
        free(c.forbids);
        if (k != -EINVAL && k != -ENOENT)
                snprintf(err, err_size, "compiling the ruleset: %s", strerror(-k));
        return k;
}

int ruleset_delta_merge(Ruleset *into, const Ruleset *delta) {
        size_t offset = into->n_origins;
        int k;

        if (into->n_sets != delta->n_sets)
                return -ESTALE;
        for (size_t i = 0; i < delta->n_sets; i++)
                if (!streq(into->sets[i].name, delta->sets[i].name) ||
                    into->sets[i].key_len != delta->sets[i].key_len ||
                    into->sets[i].flags != delta->sets[i].flags)
                        return -ESTALE;
        if (delta->n_origins > UINT32_MAX - offset)
                return -E2BIG;
        /* Make room everywhere first, so that a failure leaves `into` as it was. */
        k = origins_grow(into, offset + delta->n_origins);
        if (k < 0)
                return k;
        for (size_t i = 0; i < delta->n_sets; i++) {
                RulesetSet *s = &into->sets[i];

                k = elems_grow(s, s->n_elems + delta->sets[i].n_elems);
                if (k < 0)
                        return k;
        }
        /* The origins keep their order after the ones already there, so each set stays
         * grouped by origin. */
        memcpy(into->origins + offset, delta->origins, delta->n_origins * sizeof(RulesetOrigin));
        into->n_origins += delta->n_origins;
        for (size_t i = 0; i < delta->n_sets; i++) {
                RulesetSet *s = &into->sets[i];

                for (size_t j = 0; j < delta->sets[i].n_elems; j++) {
                        s->elems[s->n_elems] = delta->sets[i].elems[j];
                        s->elems[s->n_elems++].origin += (uint32_t) offset;
                }
        }
        return 0;
}

int ruleset_compile(const Policy *p, const Endpoints *e, const RulesetOptions *o, Ruleset **ret,
                    char *err, size_t err_size) {
        return compile(p, e, o, -1, NULL, ret, err, err_size);
}

int ruleset_compile_address(const Policy *p, const Endpoints *e, const RulesetOptions *o,
                            const char *service, const PolicyCidr *addr, Ruleset **ret,
                            char *err, size_t err_size) {
        /* Service names are unique: with an index of this very policy, a binary search. */
        ssize_t svc = o && o->index && o->index->policy == p ? index_find_service(o->index, service)
                                                              : policy_find_service(p, service);

        if (svc < 0) {
                snprintf(err, err_size, "%s: no service \"%s\" in the policy",
                         p->path ? p->path : "policy", service);
                return -ENOENT;
        }
        if (cidr_is_network(addr)) {
                snprintf(err, err_size, "%s: a network, not a container address", service);
                return -EINVAL;
        }
        return compile(p, e, o, svc, addr, ret, err, err_size);
}

/* ---- keeping a full ruleset in step with container deltas ----------------------------------- */

/* The order of a normalised set, and of nft_update()'s diff: (origin, key, key_end). */
static int elem_order(const RulesetSet *s, uint32_t origin, const RulesetElem *x,
                      const RulesetElem *y) {
        int d;

        if (origin != y->origin)
                return origin < y->origin ? -1 : 1;
        d = memcmp(x->key, y->key, s->key_len);
        if (d == 0 && (s->flags & RULESET_SET_INTERVAL))
                d = memcmp(x->key_end, y->key_end, s->key_len);
        return d;
}

/* Where element `e` with origin `origin` is in `s`, or would go: *ret_found says which. */
static size_t elem_bsearch(const RulesetSet *s, uint32_t origin, const RulesetElem *e,
                           bool *ret_found) {
        size_t lo = 0, hi = s->n_elems;

        while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;
                int d = elem_order(s, origin, e, &s->elems[mid]);

                if (d == 0) {
                        *ret_found = true;
                        return mid;
                }
                if (d < 0)
                        hi = mid;
                else
                        lo = mid + 1;
        }
        *ret_found = false;
        return lo;
}

/* The element of `s` with the same key (and range) as `e`, whatever its origin: a delta's
 * origin may name an entry `r` has no origin record for (or another record of the same entry),
 * so this is the fallback of removals. */
static ssize_t elem_find_key(const RulesetSet *s, uint32_t origin, const RulesetElem *e) {
        bool found;
        size_t i = origin == UINT32_MAX ? 0 : elem_bsearch(s, origin, e, &found);

        if (origin != UINT32_MAX && found)
                return (ssize_t) i;
        for (i = 0; i < s->n_elems; i++)
                if (memcmp(s->elems[i].key, e->key, s->key_len) == 0 &&
                    (!(s->flags & RULESET_SET_INTERVAL) ||
                     memcmp(s->elems[i].key_end, e->key_end, s->key_len) == 0))
                        return (ssize_t) i;
        return -1;
}

static bool origin_same(const RulesetOrigin *a, const RulesetOrigin *b) {
        return a->pos.line == b->pos.line && a->pos.column == b->pos.column &&
               streq(a->what, b->what);
}

static size_t pos_hash(PolicyPos pos) {
        return (size_t) pos.line * 2654435761u ^ (size_t) pos.column * 40503u;
}

/* For each origin of `delta`, the record of `r` naming the same entry (UINT32_MAX: none).
 * A single event's delta has a handful of origins: a scan of r's. A burst merged from many
 * events has one set per event: then a hash of r's by position. */
static int origins_map(const Ruleset *r, const Ruleset *delta, uint32_t *map) {
        _cleanup_free_ uint32_t *table = NULL;
        size_t size = 64;

        if (delta->n_origins <= 16) {
                for (size_t i = 0; i < delta->n_origins; i++) {
                        map[i] = UINT32_MAX;
                        for (size_t j = 0; j < r->n_origins && map[i] == UINT32_MAX; j++)
                                if (origin_same(&r->origins[j], &delta->origins[i]))
                                        map[i] = (uint32_t) j;
                }
                return 0;
        }
        while (size < 2 * r->n_origins)
                size *= 2;
        table = calloc(size, sizeof(*table));
        if (!table)
                return -ENOMEM;
        for (size_t j = 0; j < r->n_origins; j++) {
                size_t h = pos_hash(r->origins[j].pos) & (size - 1);

                while (table[h])
                        h = (h + 1) & (size - 1);
                table[h] = (uint32_t) j + 1;
        }
        for (size_t i = 0; i < delta->n_origins; i++) {
                map[i] = UINT32_MAX;
                for (size_t h = pos_hash(delta->origins[i].pos) & (size - 1);
                     table[h] && map[i] == UINT32_MAX; h = (h + 1) & (size - 1))
                        if (origin_same(&r->origins[table[h] - 1], &delta->origins[i]))
                                map[i] = table[h] - 1;
        }
        return 0;
}

static const RulesetSet *sort_set; /* qsort has no context argument (see sort_len) */

static int cmp_elem_order(const void *a, const void *b) {
        const RulesetElem *x = a, *y = b;

        return elem_order(sort_set, x->origin, x, y);
}

static int cmp_size(const void *a, const void *b) {
        size_t x = *(const size_t *) a, y = *(const size_t *) b;

        return x < y ? -1 : x > y;
}

int ruleset_apply_delta(Ruleset *r, const Ruleset *delta, bool add) {
        _cleanup_free_ uint32_t *map = NULL;
        size_t n_new = 0, max_n = 0;
        int k;

        if (r->n_sets != delta->n_sets)
                return -ESTALE;
        for (size_t i = 0; i < delta->n_sets; i++) {
                if (!streq(r->sets[i].name, delta->sets[i].name) ||
                    r->sets[i].key_len != delta->sets[i].key_len ||
                    r->sets[i].flags != delta->sets[i].flags)
                        return -ESTALE;
                if (delta->sets[i].n_elems > max_n)
                        max_n = delta->sets[i].n_elems;
        }
        if (delta->n_origins > UINT32_MAX - r->n_origins)
                return -E2BIG;
        /* Each origin of the delta becomes the record of `r` naming the same entry, so that
         * the element sorts where ruleset_compile() would have put it; an entry `r` has no
         * record for yet gets one at the end (only when adding: a removal falls back to
         * finding the key). */
        map = calloc(delta->n_origins ? delta->n_origins : 1, sizeof(*map));
        if (!map)
                return -ENOMEM;
        k = origins_map(r, delta, map);
        if (k < 0)
                return k;
        if (add)
                for (size_t i = 0; i < delta->n_origins; i++)
                        if (map[i] == UINT32_MAX)
                                map[i] = (uint32_t) (r->n_origins + n_new++);
        /* Every set is changed in one pass, whatever the number of elements: a burst of
         * events must not cost a memmove of the set per element. */
        if (!add) {
                _cleanup_free_ size_t *at = calloc(max_n ? max_n : 1, sizeof(*at));
                _cleanup_free_ size_t *at_all = NULL;
                size_t total = 0, done = 0;

                if (!at)
                        return -ENOMEM;
                for (size_t i = 0; i < delta->n_sets; i++)
                        total += delta->sets[i].n_elems;
                at_all = calloc(total ? total : 1, sizeof(*at_all));
                if (!at_all)
                        return -ENOMEM;
                /* Everything must be there before anything goes: all or nothing. */
                for (size_t i = 0; i < delta->n_sets; i++)
                        for (size_t j = 0; j < delta->sets[i].n_elems; j++) {
                                const RulesetElem *e = &delta->sets[i].elems[j];
                                uint32_t o = e->origin < delta->n_origins ? map[e->origin]
                                                                          : UINT32_MAX;
                                ssize_t x = elem_find_key(&r->sets[i], o, e);

                                if (x < 0)
                                        return -ENOENT;
                                at_all[done++] = (size_t) x;
                        }
                done = 0;
                for (size_t i = 0; i < delta->n_sets; i++) {
                        RulesetSet *s = &r->sets[i];
                        size_t m = delta->sets[i].n_elems, w;

                        if (m == 0)
                                continue;
                        memcpy(at, at_all + done, m * sizeof(*at));
                        done += m;
                        qsort(at, m, sizeof(*at), cmp_size);
                        /* Close each gap with one memmove of the run after it; what is
                         * before the first removed element does not move. */
                        w = at[0];
                        for (size_t g = 0; g < m; g++) {
                                size_t from = at[g] + 1, to = g + 1 < m ? at[g + 1] : s->n_elems;

                                if (g + 1 < m && at[g + 1] == at[g])
                                        continue; /* listed twice */
                                memmove(s->elems + w, s->elems + from,
                                        (to - from) * sizeof(RulesetElem));
                                w += to - from;
                        }
                        s->n_elems = w;
                }
                return 0;
        }
        /* Make room everywhere first, so that a failure leaves `r` as it was. */
        _cleanup_free_ RulesetElem *in = calloc(max_n ? max_n : 1, sizeof(*in));
        if (!in)
                return -ENOMEM;
        k = origins_grow(r, r->n_origins + n_new);
        if (k < 0)
                return k;
        for (size_t i = 0; i < delta->n_sets; i++) {
                RulesetSet *s = &r->sets[i];

                k = elems_grow(s, s->n_elems + delta->sets[i].n_elems);
                if (k < 0)
                        return k;
        }
        for (size_t i = 0; i < delta->n_origins; i++)
                if (map[i] >= r->n_origins)
                        r->origins[map[i]] = delta->origins[i];
        r->n_origins += n_new;
        for (size_t i = 0; i < delta->n_sets; i++) {
                RulesetSet *s = &r->sets[i];
                size_t m = 0, x, y, w;

                for (size_t j = 0; j < delta->sets[i].n_elems; j++) {
                        RulesetElem e = delta->sets[i].elems[j];
                        bool found;

                        e.origin = e.origin < delta->n_origins ? map[e.origin] : 0;
                        (void) elem_bsearch(s, e.origin, &e, &found);
                        if (found)
                                continue; /* already there (an event seen twice) */
                        e.order = (uint32_t) (s->n_elems + m);
                        in[m++] = e;
                }
                if (m == 0)
                        continue;
                sort_set = s;
                qsort(in, m, sizeof(*in), cmp_elem_order);
                /* From the back: each new element's place in the old ones by binary search,
                 * and the old ones after it moved up at once by the number still to insert.
                 * Equal neighbours in `in` (two events giving one element) go in once. */
                x = s->n_elems;
                w = s->n_elems + m;
                for (y = m; y > 0; y--) {
                        bool found;
                        size_t pos;

                        if (y > 1 && elem_order(s, in[y - 1].origin, &in[y - 1], &in[y - 2]) == 0)
                                continue;
                        pos = elem_bsearch(&(RulesetSet) { .elems = s->elems, .n_elems = x,
                                                           .key_len = s->key_len,
                                                           .flags = s->flags },
                                           in[y - 1].origin, &in[y - 1], &found);
                        memmove(s->elems + w - (x - pos), s->elems + pos,
                                (x - pos) * sizeof(RulesetElem));
                        w -= x - pos;
                        x = pos;
                        s->elems[--w] = in[y - 1];
                }
                /* Duplicates dropped leave a gap at the front of the merged part. */
                if (w > x)
                        memmove(s->elems + x, s->elems + w,
                                (s->n_elems + m - w) * sizeof(RulesetElem));
                s->n_elems = x + (s->n_elems + m - w);
        }
        return 0;
}
