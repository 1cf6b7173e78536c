/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The policy checked against itself, once every section is read: each `from`/`to` selector is
 * resolved to the services (plus the Internet, plus the host) it names, a flow's port must be
 * exposed by what it goes to, and no flow may allow what a `forbid` invariant forbids. Lookups
 * go through sorted indexes and the contradiction check through per-forbid service bitmaps, so
 * a policy at the size limits is checked in O(forbids x (flows + services named by distinct
 * flow selectors)), not worse.
 */
#include "ceredis.h"

#include "policy-internal.h"

typedef struct TagRef {
        const char *tag;
        size_t service;
} TagRef;

typedef struct Resolver {
        Policy *p;
        PolicyError *error;
        size_t *by_name;   /* service indices sorted by name */
        TagRef *tags;      /* (tag, service) sorted by tag then service */
        size_t n_tags;
        size_t *by_zone;   /* service indices grouped by zone, ascending within a zone */
        size_t *zone_start; /* n_zones + 1 offsets into by_zone */
        size_t n_resolved;
} Resolver;

static void resolver_done(Resolver *r) {
        free(r->by_name);
        free(r->tags);
        free(r->by_zone);
        free(r->zone_start);
}

static int by_name_compare(const void *a, const void *b, void *userdata) {
        const Policy *p = userdata;
        return strcmp(p->services[*(const size_t *) a].name, p->services[*(const size_t *) b].name);
}

static int tag_compare(const void *a, const void *b) {
        const TagRef *x = a, *y = b;
        int r = strcmp(x->tag, y->tag);

        if (r != 0)
                return r;
        return x->service < y->service ? -1 : x->service > y->service;
}

static int resolver_init(Resolver *r, Policy *p, PolicyError *error) {
        size_t n_tags = 0;

        *r = (Resolver) { .p = p, .error = error };
        r->by_name = malloc((p->n_services ?: 1) * sizeof(size_t));
        r->by_zone = malloc((p->n_services ?: 1) * sizeof(size_t));
        r->zone_start = calloc(p->n_zones + 1, sizeof(size_t));
        if (!r->by_name || !r->by_zone || !r->zone_start)
                return -ENOMEM;

        for (size_t i = 0; i < p->n_services; i++) {
                r->by_name[i] = i;
                n_tags += p->services[i].n_tags;
        }
        qsort_r(r->by_name, p->n_services, sizeof(size_t), by_name_compare, p);

        r->tags = malloc((n_tags ?: 1) * sizeof(TagRef));
        if (!r->tags)
                return -ENOMEM;
        for (size_t i = 0; i < p->n_services; i++)
                for (size_t j = 0; j < p->services[i].n_tags; j++)
                        r->tags[r->n_tags++] = (TagRef) { p->services[i].tags[j], i };
        qsort(r->tags, r->n_tags, sizeof(TagRef), tag_compare);

        /* Counting sort by zone keeps the service order within each zone. */
        for (size_t i = 0; i < p->n_services; i++)
                r->zone_start[p->services[i].zone + 1]++;
        for (size_t z = 0; z < p->n_zones; z++)
                r->zone_start[z + 1] += r->zone_start[z];
        {
                _cleanup_free_ size_t *fill = malloc((p->n_zones ?: 1) * sizeof(size_t));
                if (!fill)
                        return -ENOMEM;
                memcpy(fill, r->zone_start, p->n_zones * sizeof(size_t));
                for (size_t i = 0; i < p->n_services; i++)
                        r->by_zone[fill[p->services[i].zone]++] = i;
        }
        return 0;
}

static ssize_t resolver_find_service(const Resolver *r, const char *name) {
        size_t lo = 0, hi = r->p->n_services;

        while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;
                int c = strcmp(name, r->p->services[r->by_name[mid]].name);

                if (c == 0)
                        return (ssize_t) r->by_name[mid];
                if (c < 0)
                        hi = mid;
                else
                        lo = mid + 1;
        }
        return -ENOENT;
}

/* The first TagRef of `tag`, or n_tags. */
static size_t resolver_find_tag(const Resolver *r, const char *tag) {
        size_t lo = 0, hi = r->n_tags;

        while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;

                if (strcmp(r->tags[mid].tag, tag) < 0)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        return lo < r->n_tags && streq(r->tags[lo].tag, tag) ? lo : r->n_tags;
}

static void tags_list(const Resolver *r, char *buf, size_t size) {
        size_t len = 0, distinct = 0;

        buf[0] = '\0';
        for (size_t i = 0; i < r->n_tags; i++)
                if (i == 0 || !streq(r->tags[i].tag, r->tags[i - 1].tag))
                        distinct++;
        for (size_t i = 0; i < r->n_tags; i++) {
                int k;

                if (i > 0 && streq(r->tags[i].tag, r->tags[i - 1].tag))
                        continue;
                if (len + strlen(r->tags[i].tag) + 24 >= size) {
                        snprintf(buf + len, size - len, ", ... (%zu in all)", distinct);
                        return;
                }
                k = snprintf(buf + len, size - len, "%s%s", len == 0 ? "" : ", ", r->tags[i].tag);
                if (k < 0)
                        return;
                len += (size_t) k;
        }
        if (distinct == 0)
                snprintf(buf, size, "no service has tags");
}

int policy_endpoint_format(const PolicyEndpoint *e, char *buf, size_t size) {
        int n;

        switch (e->kind) {
        case POLICY_SELECT_INTERNET:
                n = snprintf(buf, size, "internet");
                break;
        case POLICY_SELECT_HOST:
                n = snprintf(buf, size, "host");
                break;
        case POLICY_SELECT_TAG:
                n = snprintf(buf, size, "{ tag: %s }", e->name);
                break;
        case POLICY_SELECT_ZONE:
                n = snprintf(buf, size, "{ zone: %s }", e->name);
                break;
        default:
                n = snprintf(buf, size, "%s", e->name);
                break;
        }
        return n < 0 ? -EINVAL : (size_t) n >= size ? -ENOBUFS : 0;
}

/* `ret_key` names what the selector resolved to, so that equal selectors share one key:
 * a service index, then the first TagRef of a tag, then a zone; SIZE_MAX for internet/host. */
static int resolve(Resolver *r, PolicyEndpoint *e, const char *what, size_t *ret_key) {
        Policy *p = r->p;
        char list[256];
        size_t first, count;
        ssize_t idx;

        switch (e->kind) {
        case POLICY_SELECT_INTERNET:
                e->internet = true;
                *ret_key = SIZE_MAX;
                return 0;
        case POLICY_SELECT_HOST:
                e->host = true;
                *ret_key = SIZE_MAX;
                return 0;
        case POLICY_SELECT_SERVICE:
                idx = resolver_find_service(r, e->name);
                if (idx < 0) {
                        policy_names_list(list, sizeof(list), p->services, p->n_services, sizeof(PolicyService),
                                          offsetof(PolicyService, name));
                        return policy_fail(r->error, e->pos,
                                           "unknown service '%.64s' in %s (expected internet, host, { tag: NAME }, { zone: NAME } or one of: %s)",
                                           e->name, what, list);
                }
                first = (size_t) idx;
                count = 1;
                *ret_key = first;
                break;
        case POLICY_SELECT_TAG:
                first = resolver_find_tag(r, e->name);
                if (first == r->n_tags) {
                        tags_list(r, list, sizeof(list));
                        return policy_fail(r->error, e->pos, "unknown tag '%.64s' in %s: no service carries it (tags: %s)",
                                           e->name, what, list);
                }
                *ret_key = p->n_services + first;
                count = 0;
                while (first + count < r->n_tags && streq(r->tags[first + count].tag, e->name))
                        count++;
                break;
        case POLICY_SELECT_ZONE:
                idx = policy_find_zone(p, e->name);
                if (idx < 0) {
                        policy_names_list(list, sizeof(list), p->zones, p->n_zones, sizeof(PolicyZone),
                                          offsetof(PolicyZone, name));
                        return policy_fail(r->error, e->pos, "unknown zone '%.64s' in %s (zones: %s)", e->name, what, list);
                }
                first = r->zone_start[idx];
                count = r->zone_start[idx + 1] - first;
                *ret_key = p->n_services + r->n_tags + (size_t) idx;
                break;
        default:
                return -EINVAL;
        }

        if (count > POLICY_MAX_RESOLVED - r->n_resolved)
                return policy_fail(r->error, e->pos, "selectors name too many services in all (limit %u)", POLICY_MAX_RESOLVED);
        r->n_resolved += count;
        e->services = malloc((count ?: 1) * sizeof(size_t));
        if (!e->services)
                return -ENOMEM;
        for (size_t i = 0; i < count; i++)
                e->services[i] = e->kind == POLICY_SELECT_SERVICE ? first
                                 : e->kind == POLICY_SELECT_TAG   ? r->tags[first + i].service
                                                                  : r->by_zone[first + i];
        e->n_services = count;
        return 0;
}

static bool same_single_endpoint(const PolicyEndpoint *a, const PolicyEndpoint *b) {
        if (a->kind != b->kind)
                return false;
        if (a->kind == POLICY_SELECT_INTERNET || a->kind == POLICY_SELECT_HOST)
                return true;
        return a->kind == POLICY_SELECT_SERVICE && streq(a->name, b->name);
}

static int check_flow_port(Resolver *r, const PolicyFlow *f) {
        const Policy *p = r->p;
        char to[96], exposes[256] = "";
        size_t len = 0;

        if (f->port < 0 || f->to.n_services == 0)
                return 0;
        for (size_t i = 0; i < f->to.n_services; i++) {
                const PolicyService *s = &p->services[f->to.services[i]];
                for (size_t j = 0; j < s->n_ports; j++)
                        if (s->ports[j].port == f->port)
                                return 0;
        }

        policy_endpoint_format(&f->to, to, sizeof(to));
        if (f->to.kind == POLICY_SELECT_SERVICE) {
                const PolicyService *s = &p->services[f->to.services[0]];

                for (size_t j = 0; j < s->n_ports && len + 24 < sizeof(exposes); j++) {
                        int k = snprintf(exposes + len, sizeof(exposes) - len, "%s%u/%s", j == 0 ? "" : ", ",
                                         s->ports[j].port, policy_proto_to_string(s->ports[j].proto));
                        if (k < 0)
                                break;
                        len += (size_t) k;
                }
                if (s->n_ports == 0)
                        return policy_fail(r->error, f->pos, "flow to port %d: service '%s' exposes no port", f->port, s->name);
                return policy_fail(r->error, f->pos, "flow to port %d: service '%s' exposes %s", f->port, s->name, exposes);
        }
        return policy_fail(r->error, f->pos, "flow to port %d: none of the %zu services selected by %s exposes it", f->port,
                           f->to.n_services, to);
}

static void bitmap_fill(uint64_t *bits, const PolicyEndpoint *e) {
        for (size_t i = 0; i < e->n_services; i++)
                bits[e->services[i] / 64] |= UINT64_C(1) << (e->services[i] % 64);
}

static void bitmap_clear(uint64_t *bits, const PolicyEndpoint *e) {
        for (size_t i = 0; i < e->n_services; i++)
                bits[e->services[i] / 64] = 0;
}

/* Something both `flow` and the forbid's side (as a bitmap plus internet/host) cover: a service
 * index, or SIZE_MAX - 1 for the Internet, SIZE_MAX - 2 for the host; SIZE_MAX when nothing. */
#define HIT_NONE SIZE_MAX
#define HIT_INTERNET (SIZE_MAX - 1)
#define HIT_HOST (SIZE_MAX - 2)

static size_t overlap(const PolicyEndpoint *flow, const uint64_t *bits, const PolicyEndpoint *forbid) {
        if (flow->internet && forbid->internet)
                return HIT_INTERNET;
        if (flow->host && forbid->host)
                return HIT_HOST;
        for (size_t i = 0; i < flow->n_services; i++)
                if (bits[flow->services[i] / 64] & (UINT64_C(1) << (flow->services[i] % 64)))
                        return flow->services[i];
        return HIT_NONE;
}

static const char *hit_name(const Policy *p, size_t hit) {
        return hit == HIT_INTERNET ? "internet" : hit == HIT_HOST ? "host" : p->services[hit].name;
}

/* The overlap of one flow selector with the current forbid, computed once per distinct
 * selector and forbid: flows that share a selector (a tag, a zone) share the work. */
typedef struct Memo {
        uint32_t generation;
        size_t hit;
} Memo;

static size_t overlap_memo(const PolicyEndpoint *flow, size_t id, Memo *memo, uint32_t generation, const uint64_t *bits,
                           const PolicyEndpoint *forbid) {
        if (id == SIZE_MAX)
                return overlap(flow, bits, forbid);
        if (memo[id].generation != generation) {
                memo[id].generation = generation;
                memo[id].hit = overlap(flow, bits, forbid);
        }
        return memo[id].hit;
}

static int check_contradictions(Resolver *r, const size_t *from_id, const size_t *to_id, size_t n_ids) {
        const Policy *p = r->p;
        _cleanup_free_ uint64_t *from_bits = NULL, *to_bits = NULL;
        _cleanup_free_ Memo *from_memo = NULL, *to_memo = NULL;
        size_t words = p->n_services / 64 + 1;
        size_t best_flow = p->n_flows, best_forbid = 0, best_src = 0, best_dst = 0;

        if (p->n_flows == 0 || p->n_forbids == 0)
                return 0;
        from_bits = calloc(words, sizeof(uint64_t));
        to_bits = calloc(words, sizeof(uint64_t));
        from_memo = calloc(n_ids ?: 1, sizeof(Memo));
        to_memo = calloc(n_ids ?: 1, sizeof(Memo));
        if (!from_bits || !to_bits || !from_memo || !to_memo)
                return -ENOMEM;

        /* Report the first contradicting flow in the file, with the first forbid it hits. */
        for (size_t j = 0; j < p->n_forbids; j++) {
                const PolicyForbid *fb = &p->forbids[j];
                uint32_t generation = (uint32_t) j + 1;

                bitmap_fill(from_bits, &fb->from);
                bitmap_fill(to_bits, &fb->to);
                for (size_t i = 0; i < best_flow; i++) {
                        const PolicyFlow *fl = &p->flows[i];
                        size_t src, dst;

                        /* A read-only flow never writes: it cannot break a write-only invariant. */
                        if (fb->access == POLICY_ACCESS_WRITE && fl->access == POLICY_ACCESS_READ_ONLY)
                                continue;
                        src = overlap_memo(&fl->from, from_id[i], from_memo, generation, from_bits, &fb->from);
                        if (src == HIT_NONE)
                                continue;
                        dst = overlap_memo(&fl->to, to_id[i], to_memo, generation, to_bits, &fb->to);
                        if (dst == HIT_NONE)
                                continue;
                        best_flow = i;
                        best_forbid = j;
                        best_src = src;
                        best_dst = dst;
                        break;
                }
                bitmap_clear(from_bits, &fb->from);
                bitmap_clear(to_bits, &fb->to);
        }

        if (best_flow < p->n_flows) {
                const PolicyFlow *fl = &p->flows[best_flow];
                const PolicyForbid *fb = &p->forbids[best_forbid];
                char from[96], to[96];

                policy_endpoint_format(&fl->from, from, sizeof(from));
                policy_endpoint_format(&fl->to, to, sizeof(to));
                return policy_fail(r->error, fl->pos, "flow %s -> %s contradicts forbid %s at %s:%u:%u (both cover %s -> %s%s)",
                                   from, to, fb->id, p->path, fb->pos.line, fb->pos.column, hit_name(p, best_src),
                                   hit_name(p, best_dst),
                                   fb->access == POLICY_ACCESS_WRITE ? "; the forbid is on writes: did you mean access: read-only?" : "");
        }
        return 0;
}

/* Number the distinct selector keys densely, in place (SIZE_MAX stays). */
static int dense_ids(size_t *ids, size_t n, size_t n_keys, size_t *dense, size_t *n_ids) {
        for (size_t i = 0; i < n; i++) {
                if (ids[i] == SIZE_MAX)
                        continue;
                if (ids[i] >= n_keys)
                        return -EINVAL;
                if (dense[ids[i]] == SIZE_MAX)
                        dense[ids[i]] = (*n_ids)++;
                ids[i] = dense[ids[i]];
        }
        return 0;
}

int policy_validate(Policy *p, PolicyError *error) {
        _cleanup_(resolver_done) Resolver r = {};
        _cleanup_free_ size_t *from_id = NULL, *to_id = NULL, *dense = NULL;
        size_t n_keys, n_ids = 0, key;
        int k;

        k = resolver_init(&r, p, error);
        if (k < 0)
                return k;
        from_id = malloc((p->n_flows ?: 1) * sizeof(size_t));
        to_id = malloc((p->n_flows ?: 1) * sizeof(size_t));
        if (!from_id || !to_id)
                return -ENOMEM;

        for (size_t i = 0; i < p->n_flows; i++) {
                PolicyFlow *f = &p->flows[i];
                char name[96];

                k = resolve(&r, &f->from, "'from' of a flow", &from_id[i]);
                if (k < 0)
                        return k;
                k = resolve(&r, &f->to, "'to' of a flow", &to_id[i]);
                if (k < 0)
                        return k;
                if (same_single_endpoint(&f->from, &f->to)) {
                        policy_endpoint_format(&f->from, name, sizeof(name));
                        return policy_fail(error, f->pos, "flow from %s to itself: expected two different endpoints", name);
                }
                k = check_flow_port(&r, f);
                if (k < 0)
                        return k;
        }
        for (size_t i = 0; i < p->n_forbids; i++) {
                k = resolve(&r, &p->forbids[i].from, "'from' of a forbid entry", &key);
                if (k < 0)
                        return k;
                k = resolve(&r, &p->forbids[i].to, "'to' of a forbid entry", &key);
                if (k < 0)
                        return k;
        }

        n_keys = p->n_services + r.n_tags + p->n_zones;
        dense = malloc((n_keys ?: 1) * sizeof(size_t));
        if (!dense)
                return -ENOMEM;
        memset(dense, 0xff, (n_keys ?: 1) * sizeof(size_t));
        k = dense_ids(from_id, p->n_flows, n_keys, dense, &n_ids);
        if (k < 0)
                return k;
        k = dense_ids(to_id, p->n_flows, n_keys, dense, &n_ids);
        if (k < 0)
                return k;
        return check_contradictions(&r, from_id, to_id, n_ids);
}
