/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Node tree to policy model (SPEC section 3, version 1): every key known, every value of the
 * expected type and range, every default filled in, every per-section limit enforced before
 * anything is allocated for it. Names are checked here; what they refer to is resolved later
 * by policy-validate.c, once the whole file is read. The first error stops the build, and it
 * says where and what was expected: "unknown key 'prot' in service 'api' (expected one of: ...)".
 */
#include "ceredis.h"

#include <netinet/in.h>
#include <sys/socket.h>

#include "policy-internal.h"

typedef struct Builder {
        Policy *p;
        PolicyError *error;
        uint8_t *port_seen; /* one bit per port and protocol, for duplicate ports in a service */
} Builder;

#define FAIL(b, node, ...) policy_fail((b)->error, (node)->pos, __VA_ARGS__)

/* A scalar as it may appear in a message: at most 64 characters, control characters as '?'. */
typedef struct Shown {
        char s[72];
} Shown;

static Shown show(const PNode *n) {
        Shown r = {};
        size_t i;

        if (n->kind != PNODE_SCALAR) {
                snprintf(r.s, sizeof(r.s), "%s", n->kind == PNODE_MAPPING ? "a mapping" : "a list");
                return r;
        }
        r.s[0] = '\'';
        for (i = 0; i < n->length && i < 64; i++)
                r.s[i + 1] = (uint8_t) n->value[i] < 0x20 || n->value[i] == 0x7f ? '?' : n->value[i];
        if (n->length > 64) {
                memcpy(r.s + i + 1, "...'", 5);
                return r;
        }
        r.s[i + 1] = '\'';
        r.s[i + 2] = '\0';
        return r;
}

static bool is_null(const PNode *n) {
        return n->kind == PNODE_SCALAR && n->plain &&
                (n->length == 0 || streq(n->value, "~") || streq(n->value, "null") || streq(n->value, "Null") ||
                 streq(n->value, "NULL"));
}

static const char *got(const PNode *n, char buf[static 80]) {
        if (is_null(n))
                return "nothing (null)";
        snprintf(buf, 80, "%s", show(n).s);
        return buf;
}

static int expect_kind(Builder *b, const PNode *n, PNodeKind kind, const char *what) {
        char buf[80];

        if (n->kind == kind)
                return 0;
        return FAIL(b, n, "expected %s for %s, got %s",
                    kind == PNODE_MAPPING ? "a mapping" : kind == PNODE_SEQUENCE ? "a list" : "a value", what,
                    got(n, buf));
}

static const PNode *map_get(const PNode *m, const char *key) {
        for (size_t i = 0; i + 1 < m->n_children; i += 2)
                if (streq(m->children[i]->value, key))
                        return m->children[i + 1];
        return NULL;
}

/* The value of an optional key; NULL when absent or written as null. */
static const PNode *map_get_optional(const PNode *m, const char *key) {
        const PNode *v = map_get(m, key);
        return v && !is_null(v) ? v : NULL;
}

static int map_require(Builder *b, const PNode *m, PolicyPos where, const char *key, const char *what,
                       const PNode **ret) {
        const PNode *v = map_get(m, key);

        if (!v)
                return policy_fail(b->error, where, "missing key '%s' in %s", key, what);
        *ret = v;
        return 0;
}

/* Every key of `m` must be one of `allowed` (a NULL-terminated list). */
static int check_keys(Builder *b, const PNode *m, const char *what, const char *const *allowed) {
        for (size_t i = 0; i + 1 < m->n_children; i += 2) {
                const PNode *k = m->children[i];
                char list[256] = "";
                size_t len = 0;
                bool ok = false;

                for (const char *const *a = allowed; *a; a++)
                        if (streq(k->value, *a))
                                ok = true;
                if (ok)
                        continue;
                for (const char *const *a = allowed; *a && len < sizeof(list); a++) {
                        int n = snprintf(list + len, sizeof(list) - len, "%s%s", a == allowed ? "" : ", ", *a);
                        if (n < 0)
                                break;
                        len += (size_t) n;
                }
                return FAIL(b, k, "unknown key %s in %s (expected one of: %s)", show(k).s, what, list);
        }
        return 0;
}

static int get_string(Builder *b, const PNode *n, const char *what, char **ret) {
        char buf[80];
        char *s;

        if (n->kind != PNODE_SCALAR || is_null(n) || n->length == 0)
                return FAIL(b, n, "expected a non-empty string for %s, got %s", what, got(n, buf));
        s = strdup(n->value);
        if (!s)
                return -ENOMEM;
        *ret = s;
        return 0;
}

static int get_bool(Builder *b, const PNode *n, const char *what, bool *ret) {
        char buf[80];

        if (n->kind == PNODE_SCALAR && n->plain) {
                if (streq(n->value, "true") || streq(n->value, "True") || streq(n->value, "TRUE")) {
                        *ret = true;
                        return 0;
                }
                if (streq(n->value, "false") || streq(n->value, "False") || streq(n->value, "FALSE")) {
                        *ret = false;
                        return 0;
                }
        }
        return FAIL(b, n, "expected true or false for %s, got %s", what, got(n, buf));
}

/* A plain decimal number of at most `digits` digits (no sign, no leading zero). */
static bool scalar_uint(const PNode *n, size_t digits, unsigned long *ret) {
        unsigned long v = 0;

        if (n->kind != PNODE_SCALAR || !n->plain || n->length == 0 || n->length > digits ||
            (n->value[0] == '0' && n->length > 1))
                return false;
        for (size_t i = 0; i < n->length; i++) {
                if (n->value[i] < '0' || n->value[i] > '9')
                        return false;
                v = v * 10 + (unsigned long) (n->value[i] - '0');
        }
        *ret = v;
        return true;
}

static int get_port(Builder *b, const PNode *n, uint16_t *ret) {
        unsigned long v;
        char buf[80];

        if (!scalar_uint(n, 5, &v) || v < 1 || v > 65535)
                return FAIL(b, n, "expected a port number 1-65535, got %s", got(n, buf));
        *ret = (uint16_t) v;
        return 0;
}

static int get_proto(Builder *b, const PNode *n, uint8_t *ret) {
        char buf[80];

        if (n->kind == PNODE_SCALAR && streq(n->value, "tcp"))
                *ret = IPPROTO_TCP;
        else if (n->kind == PNODE_SCALAR && streq(n->value, "udp"))
                *ret = IPPROTO_UDP;
        else
                return FAIL(b, n, "expected proto tcp or udp, got %s", got(n, buf));
        return 0;
}

/* One of `names` (NULL-terminated); returns its index. */
static int get_enum(Builder *b, const PNode *n, const char *what, const char *const *names, int *ret) {
        char list[128] = "", buf[80];
        size_t len = 0;

        if (n->kind == PNODE_SCALAR)
                for (int i = 0; names[i]; i++)
                        if (streq(n->value, names[i])) {
                                *ret = i;
                                return 0;
                        }
        for (int i = 0; names[i]; i++) {
                int k = snprintf(list + len, sizeof(list) - len, "%s%s", i == 0 ? "" : names[i + 1] ? ", " : " or ",
                                 names[i]);
                if (k < 0 || (size_t) k >= sizeof(list) - len)
                        break;
                len += (size_t) k;
        }
        return FAIL(b, n, "expected %s %s, got %s", what, list, got(n, buf));
}

static bool valid_word(const char *s, size_t max, const char *extra, bool lower_only) {
        size_t n = strlen(s);

        if (n == 0 || n > max)
                return false;
        for (const char *c = s; *c; c++) {
                bool ok = (*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || strchr(extra, *c);
                if (!lower_only)
                        ok = ok || (*c >= 'A' && *c <= 'Z');
                if (!ok)
                        return false;
        }
        return true;
}

/* Service, host and zone names: 1-63 characters from [A-Za-z0-9_.-]. */
static int check_name(Builder *b, const PNode *k, const char *what) {
        if (!valid_word(k->value, 63, "_.-", false))
                return FAIL(b, k, "expected a %s name (1-63 characters from A-Z a-z 0-9 _ . -), got %s", what,
                            show(k).s);
        return 0;
}

/* forbid and control ids, e.g. NET-1. */
static int check_id(Builder *b, const PNode *n, const char *what, char **ret) {
        char buf[80];

        if (n->kind != PNODE_SCALAR || n->length == 0 || n->length > 63 || n->value[0] == '-' ||
            strspn(n->value, "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-") != n->length)
                return FAIL(b, n, "expected an id for %s (capital letters, digits and '-', e.g. NET-1), got %s", what,
                            got(n, buf));
        return get_string(b, n, what, ret);
}

static int get_list(Builder *b, const PNode *n, const char *what, size_t max, size_t *ret_count) {
        int r = expect_kind(b, n, PNODE_SEQUENCE, what);
        if (r < 0)
                return r;
        if (n->n_children > max)
                return FAIL(b, n, "too many entries in %s (%zu, limit %zu)", what, n->n_children, max);
        *ret_count = n->n_children;
        return 0;
}

static int get_cidr(Builder *b, const PNode *n, bool address_only, PolicyCidr *ret) {
        char buf[80], fmt[64];
        PolicyCidr c;
        int r;

        if (n->kind != PNODE_SCALAR || is_null(n))
                return FAIL(b, n, "expected %s, got %s", address_only ? "an IP address" : "a CIDR (ADDRESS or ADDRESS/PREFIX)",
                            got(n, buf));
        r = policy_cidr_parse(n->value, &c);
        if (r == -EDOM) {
                /* Say what was probably meant: the same network with its host bits cleared. */
                PolicyCidr fixed = {};
                unsigned max = 0;
                size_t cut = strcspn(n->value, "/");
                char addr[64];

                if (cut < sizeof(addr)) {
                        memcpy(addr, n->value, cut);
                        addr[cut] = '\0';
                        if (policy_cidr_parse(addr, &fixed) >= 0) {
                                max = fixed.family == AF_INET ? 32 : 128;
                                fixed.prefix = (uint8_t) atoi(n->value + cut + 1);
                                for (unsigned bit = fixed.prefix; bit < max; bit++)
                                        fixed.addr.bytes[bit / 8] &= (uint8_t) ~(0x80 >> (bit % 8));
                        }
                }
                if (max > 0 && policy_cidr_format(&fixed, fmt, sizeof(fmt)) >= 0)
                        return FAIL(b, n, "host bits set in CIDR %s (did you mean %s?)", show(n).s, fmt);
                return FAIL(b, n, "host bits set in CIDR %s", show(n).s);
        }
        if (r < 0)
                return FAIL(b, n, "expected %s, got %s",
                            address_only ? "an IP address" : "a CIDR (ADDRESS or ADDRESS/PREFIX)", show(n).s);
        if (address_only && c.prefix != (c.family == AF_INET ? 32 : 128))
                return FAIL(b, n, "expected an IP address without prefix (or /32, /128), got %s", show(n).s);
        *ret = c;
        return 0;
}

static int get_cidr_list(Builder *b, const PNode *n, bool address_only, const char *what, PolicyCidr **ret,
                         size_t *ret_n) {
        size_t count;
        int r;

        r = get_list(b, n, what, POLICY_MAX_LIST, &count);
        if (r < 0)
                return r;
        *ret = calloc(count ?: 1, sizeof(**ret));
        if (!*ret)
                return -ENOMEM;
        for (size_t i = 0; i < count; i++) {
                r = get_cidr(b, n->children[i], address_only, &(*ret)[i]);
                if (r < 0)
                        return r;
                *ret_n = i + 1;
        }
        return 0;
}

static int get_interfaces(Builder *b, const PNode *n, const char *what, char ***ret, size_t *ret_n) {
        size_t count;
        int r;

        r = get_list(b, n, what, POLICY_MAX_LIST, &count);
        if (r < 0)
                return r;
        *ret = calloc(count ?: 1, sizeof(char *));
        if (!*ret)
                return -ENOMEM;
        for (size_t i = 0; i < count; i++) {
                const PNode *v = n->children[i];
                char buf[80];

                /* What the kernel accepts as a name (IFNAMSIZ), minus what no sane name holds. */
                if (v->kind != PNODE_SCALAR || !valid_word(v->value, 15, "_.@-", false) || streq(v->value, ".") ||
                    streq(v->value, ".."))
                        return FAIL(b, v, "expected an interface name (1-15 characters from A-Z a-z 0-9 _ . @ -) in %s, got %s",
                                    what, got(v, buf));
                r = get_string(b, v, what, &(*ret)[i]);
                if (r < 0)
                        return r;
                *ret_n = i + 1;
        }
        return 0;
}

static int build_management(Builder *b, const PNode *n, const char *host, PolicyManagement *m) {
        static const char *const keys[] = { "port", "proto", "from", NULL };
        char what[128];
        const PNode *v;
        int r;

        snprintf(what, sizeof(what), "management entry of host '%s'", host);
        m->pos = n->pos;
        m->proto = IPPROTO_TCP;
        r = expect_kind(b, n, PNODE_MAPPING, what);
        if (r < 0)
                return r;
        r = check_keys(b, n, what, keys);
        if (r < 0)
                return r;
        r = map_require(b, n, n->pos, "port", what, &v);
        if (r < 0)
                return r;
        r = get_port(b, v, &m->port);
        if (r < 0)
                return r;
        if ((v = map_get_optional(n, "proto"))) {
                r = get_proto(b, v, &m->proto);
                if (r < 0)
                        return r;
        }
        r = map_require(b, n, n->pos, "from", what, &v);
        if (r < 0)
                return r;
        r = get_cidr_list(b, v, false, what, &m->from, &m->n_from);
        if (r < 0)
                return r;
        if (m->n_from == 0)
                return FAIL(b, v, "expected at least one CIDR in 'from' of %s", what);
        return 0;
}

static int build_host(Builder *b, const PNode *k, const PNode *n, PolicyHost *h) {
        static const char *const keys[] = { "public_interfaces", "private_interfaces", "addresses", "management", NULL };
        char what[96];
        const PNode *v;
        int r;

        r = check_name(b, k, "host");
        if (r < 0)
                return r;
        h->pos = k->pos;
        h->name = strdup(k->value);
        if (!h->name)
                return -ENOMEM;
        snprintf(what, sizeof(what), "host '%s'", h->name);
        if (is_null(n))
                return 0;
        r = expect_kind(b, n, PNODE_MAPPING, what);
        if (r < 0)
                return r;
        r = check_keys(b, n, what, keys);
        if (r < 0)
                return r;

        if ((v = map_get_optional(n, "public_interfaces"))) {
                r = get_interfaces(b, v, "public_interfaces", &h->public_interfaces, &h->n_public_interfaces);
                if (r < 0)
                        return r;
        }
        if ((v = map_get_optional(n, "private_interfaces"))) {
                r = get_interfaces(b, v, "private_interfaces", &h->private_interfaces, &h->n_private_interfaces);
                if (r < 0)
                        return r;
        }
        if ((v = map_get_optional(n, "addresses"))) {
                r = get_cidr_list(b, v, true, "addresses", &h->addresses, &h->n_addresses);
                if (r < 0)
                        return r;
        }
        if ((v = map_get_optional(n, "management"))) {
                size_t count;

                r = get_list(b, v, "management", POLICY_MAX_LIST, &count);
                if (r < 0)
                        return r;
                h->management = calloc(count ?: 1, sizeof(*h->management));
                if (!h->management)
                        return -ENOMEM;
                for (size_t i = 0; i < count; i++) {
                        h->n_management = i + 1;
                        r = build_management(b, v->children[i], h->name, &h->management[i]);
                        if (r < 0)
                                return r;
                }
        }
        return 0;
}

static int build_zone(Builder *b, const PNode *k, const PNode *n, PolicyZone *z) {
        static const char *const keys[] = { "public", NULL };
        char what[96];
        const PNode *v;
        int r;

        r = check_name(b, k, "zone");
        if (r < 0)
                return r;
        z->pos = k->pos;
        z->name = strdup(k->value);
        if (!z->name)
                return -ENOMEM;
        snprintf(what, sizeof(what), "zone '%s'", z->name);
        r = expect_kind(b, n, PNODE_MAPPING, what);
        if (r < 0)
                return r;
        r = check_keys(b, n, what, keys);
        if (r < 0)
                return r;
        r = map_require(b, n, k->pos, "public", what, &v);
        if (r < 0)
                return r;
        return get_bool(b, v, "'public'", &z->public);
}

void policy_names_list(char *buf, size_t size, const void *items, size_t n, size_t stride, size_t name_offset) {
        size_t len = 0;

        buf[0] = '\0';
        for (size_t i = 0; i < n; i++) {
                const char *name = *(char *const *) ((const char *) items + i * stride + name_offset);
                int k;

                if (len + strlen(name) + 24 >= size) {
                        snprintf(buf + len, size - len, ", ... (%zu in all)", n);
                        return;
                }
                k = snprintf(buf + len, size - len, "%s%s", i == 0 ? "" : ", ", name);
                if (k < 0)
                        return;
                len += (size_t) k;
        }
}

static int build_match(Builder *b, const PNode *n, const char *service, PolicyMatch *m) {
        static const char *const kinds[] = { "compose_service", "container_name", "image", "label", "cidr", NULL };
        char what[96];
        const PNode *k, *v;
        int kind, r;

        snprintf(what, sizeof(what), "match of service '%s'", service);
        m->pos = n->pos;
        r = expect_kind(b, n, PNODE_MAPPING, what);
        if (r < 0)
                return r;
        r = check_keys(b, n, what, kinds);
        if (r < 0)
                return r;
        if (n->n_children == 0)
                return FAIL(b, n, "expected exactly one of compose_service, container_name, image, label or cidr in %s",
                            what);
        if (n->n_children > 2)
                return FAIL(b, n->children[2], "expected exactly one of compose_service, container_name, image, label or cidr in %s, got both '%s' and '%s'",
                            what, n->children[0]->value, n->children[2]->value);
        k = n->children[0];
        v = n->children[1];
        r = get_enum(b, k, "match kind", kinds, &kind);
        if (r < 0)
                return r;
        m->kind = (PolicyMatchKind) kind;

        if (m->kind == POLICY_MATCH_CIDR) {
                if (v->kind == PNODE_SEQUENCE) {
                        r = get_cidr_list(b, v, false, what, &m->cidrs, &m->n_cidrs);
                        if (r < 0)
                                return r;
                        if (m->n_cidrs == 0)
                                return FAIL(b, v, "expected at least one CIDR in %s", what);
                        return 0;
                }
                m->cidrs = calloc(1, sizeof(*m->cidrs));
                if (!m->cidrs)
                        return -ENOMEM;
                r = get_cidr(b, v, false, &m->cidrs[0]);
                if (r < 0)
                        return r;
                m->n_cidrs = 1;
                return 0;
        }

        r = get_string(b, v, what, &m->value);
        if (r < 0)
                return r;
        if (m->kind == POLICY_MATCH_LABEL) {
                char *eq = strchr(m->value, '=');

                if (!eq || eq == m->value)
                        return FAIL(b, v, "expected a label as \"key=value\" in %s, got %s", what, show(v).s);
                m->label_value = strdup(eq + 1);
                if (!m->label_value)
                        return -ENOMEM;
                *eq = '\0';
        }
        return 0;
}

static int build_port(Builder *b, const PNode *n, const PolicyZone *zone, const char *service, PolicyPort *port) {
        static const char *const keys[] = { "port", "proto", "public", NULL };
        char what[96];
        const PNode *v;
        size_t bit;
        int r;

        snprintf(what, sizeof(what), "a port of service '%s'", service);
        port->pos = n->pos;
        port->proto = IPPROTO_TCP;
        if (n->kind == PNODE_MAPPING) {
                r = check_keys(b, n, what, keys);
                if (r < 0)
                        return r;
                r = map_require(b, n, n->pos, "port", what, &v);
                if (r < 0)
                        return r;
                r = get_port(b, v, &port->port);
                if (r < 0)
                        return r;
                if ((v = map_get_optional(n, "proto"))) {
                        r = get_proto(b, v, &port->proto);
                        if (r < 0)
                                return r;
                }
                if ((v = map_get_optional(n, "public"))) {
                        r = get_bool(b, v, "'public'", &port->public);
                        if (r < 0)
                                return r;
                        if (port->public && !zone->public)
                                return FAIL(b, v, "port %u/%s of service '%s' is public, but zone '%s' is not (public: false)",
                                            port->port, policy_proto_to_string(port->proto), service, zone->name);
                }
        } else {
                r = get_port(b, n, &port->port);
                if (r < 0)
                        return r;
        }

        bit = (size_t) port->port * 2 + (port->proto == IPPROTO_UDP);
        if (b->port_seen[bit / 8] & (1u << (bit % 8)))
                return FAIL(b, n, "duplicate port %u/%s in service '%s'", port->port, policy_proto_to_string(port->proto),
                            service);
        b->port_seen[bit / 8] |= (uint8_t) (1u << (bit % 8));
        return 0;
}

static int strp_compare(const void *a, const void *b) {
        return strcmp(*(char *const *) a, *(char *const *) b);
}

static int build_tags(Builder *b, const PNode *n, const char *service, PolicyService *s) {
        _cleanup_free_ char **sorted = NULL;
        char what[96];
        size_t count;
        int r;

        snprintf(what, sizeof(what), "tags of service '%s'", service);
        r = get_list(b, n, what, POLICY_MAX_LIST, &count);
        if (r < 0)
                return r;
        s->tags = calloc(count ?: 1, sizeof(char *));
        if (!s->tags)
                return -ENOMEM;
        for (size_t i = 0; i < count; i++) {
                const PNode *v = n->children[i];
                char buf[80];

                if (v->kind != PNODE_SCALAR || !valid_word(v->value, 63, "-_.", true))
                        return FAIL(b, v, "expected a tag (1-63 characters from a-z 0-9 - _ .) in %s, got %s", what,
                                    got(v, buf));
                s->tags[i] = strdup(v->value);
                if (!s->tags[i])
                        return -ENOMEM;
                s->n_tags = i + 1;
        }

        sorted = malloc((count ?: 1) * sizeof(char *));
        if (!sorted)
                return -ENOMEM;
        memcpy(sorted, s->tags, count * sizeof(char *));
        qsort(sorted, count, sizeof(char *), strp_compare);
        for (size_t i = 1; i < count; i++)
                if (streq(sorted[i], sorted[i - 1])) {
                        /* Report the second occurrence in the file. */
                        size_t seen = 0;
                        for (size_t j = 0; j < count; j++)
                                if (streq(s->tags[j], sorted[i]) && ++seen == 2)
                                        return FAIL(b, n->children[j], "duplicate tag '%s' in %s", sorted[i], what);
                }
        return 0;
}

static int build_service(Builder *b, const PNode *k, const PNode *n, PolicyService *s) {
        static const char *const keys[] = { "zone", "host", "match", "ports", "protocol", "tags", NULL };
        static const char *const l7[] = { "tcp", "http", "postgresql", "tls", NULL };
        Policy *p = b->p;
        char what[96], list[256];
        const PNode *v;
        ssize_t idx;
        int r, e;

        r = check_name(b, k, "service");
        if (r < 0)
                return r;
        if (streq(k->value, "internet") || streq(k->value, "host"))
                return FAIL(b, k, "'%s' is reserved (selectors use it for %s): choose another service name", k->value,
                            streq(k->value, "host") ? "the host itself" : "the Internet");
        s->pos = k->pos;
        s->name = strdup(k->value);
        if (!s->name)
                return -ENOMEM;
        snprintf(what, sizeof(what), "service '%s'", s->name);
        r = expect_kind(b, n, PNODE_MAPPING, what);
        if (r < 0)
                return r;
        r = check_keys(b, n, what, keys);
        if (r < 0)
                return r;

        r = map_require(b, n, k->pos, "zone", what, &v);
        if (r < 0)
                return r;
        if (v->kind != PNODE_SCALAR || (idx = policy_find_zone(p, v->value)) < 0) {
                policy_names_list(list, sizeof(list), p->zones, p->n_zones, sizeof(PolicyZone), offsetof(PolicyZone, name));
                return FAIL(b, v, "unknown zone %s for service '%s' (zones: %s)", show(v).s, s->name, list);
        }
        s->zone = (size_t) idx;

        v = map_get(n, "host");
        if (!v && p->n_hosts != 1) {
                policy_names_list(list, sizeof(list), p->hosts, p->n_hosts, sizeof(PolicyHost), offsetof(PolicyHost, name));
                return policy_fail(b->error, k->pos, "missing key 'host' in service '%s' (the policy has several hosts: %s)",
                                   s->name, list);
        }
        if (v) {
                if (v->kind != PNODE_SCALAR || (idx = policy_find_host(p, v->value)) < 0) {
                        policy_names_list(list, sizeof(list), p->hosts, p->n_hosts, sizeof(PolicyHost), offsetof(PolicyHost, name));
                        return FAIL(b, v, "unknown host %s for service '%s' (hosts: %s)", show(v).s, s->name, list);
                }
                s->host = (size_t) idx;
        }

        r = map_require(b, n, k->pos, "match", what, &v);
        if (r < 0)
                return r;
        r = build_match(b, v, s->name, &s->match);
        if (r < 0)
                return r;

        if ((v = map_get_optional(n, "ports"))) {
                size_t count;

                r = get_list(b, v, "ports", POLICY_MAX_LIST, &count);
                if (r < 0)
                        return r;
                s->ports = calloc(count ?: 1, sizeof(*s->ports));
                if (!s->ports)
                        return -ENOMEM;
                for (size_t i = 0; i < count && r >= 0; i++) {
                        r = build_port(b, v->children[i], &p->zones[s->zone], s->name, &s->ports[i]);
                        if (r >= 0)
                                s->n_ports = i + 1;
                }
                /* Clear only the bits this service set: the bitmap is shared by all services. */
                for (size_t i = 0; i < s->n_ports; i++) {
                        size_t bit = (size_t) s->ports[i].port * 2 + (s->ports[i].proto == IPPROTO_UDP);
                        b->port_seen[bit / 8] = 0;
                }
                if (r < 0) {
                        memset(b->port_seen, 0, 65536 * 2 / 8);
                        return r;
                }
        }

        s->protocol = POLICY_L7_TCP;
        if ((v = map_get_optional(n, "protocol"))) {
                r = get_enum(b, v, "protocol", l7, &e);
                if (r < 0)
                        return r;
                s->protocol = (PolicyL7) e;
        }

        if ((v = map_get_optional(n, "tags"))) {
                r = build_tags(b, v, s->name, s);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int build_endpoint(Builder *b, const PNode *n, const char *what, PolicyEndpoint *e) {
        char buf[80];
        const PNode *k, *v;
        int r;

        e->pos = n->pos;
        if (n->kind == PNODE_SCALAR && !is_null(n)) {
                if (streq(n->value, "internet"))
                        e->kind = POLICY_SELECT_INTERNET;
                else if (streq(n->value, "host"))
                        e->kind = POLICY_SELECT_HOST;
                else {
                        e->kind = POLICY_SELECT_SERVICE;
                        e->name = strdup(n->value);
                        if (!e->name)
                                return -ENOMEM;
                }
                return 0;
        }
        if (n->kind != PNODE_MAPPING || n->n_children != 2)
                return FAIL(b, n, "expected a service name, internet, host, { tag: NAME } or { zone: NAME } for %s, got %s",
                            what, got(n, buf));
        k = n->children[0];
        v = n->children[1];
        if (streq(k->value, "tag"))
                e->kind = POLICY_SELECT_TAG;
        else if (streq(k->value, "zone"))
                e->kind = POLICY_SELECT_ZONE;
        else
                return FAIL(b, k, "unknown key %s in selector (expected tag or zone)", show(k).s);
        r = get_string(b, v, what, &e->name);
        if (r < 0)
                return r;
        return 0;
}

static int build_flow(Builder *b, const PNode *n, PolicyFlow *f) {
        static const char *const keys[] = { "from", "to", "port", "access", NULL };
        static const char *const access[] = { "any", "read-only", NULL };
        const PNode *v;
        uint16_t port;
        int r, e;

        f->pos = n->pos;
        f->port = -1;
        r = expect_kind(b, n, PNODE_MAPPING, "a flow");
        if (r < 0)
                return r;
        r = check_keys(b, n, "flow", keys);
        if (r < 0)
                return r;
        r = map_require(b, n, n->pos, "from", "flow", &v);
        if (r < 0)
                return r;
        r = build_endpoint(b, v, "'from' of a flow", &f->from);
        if (r < 0)
                return r;
        r = map_require(b, n, n->pos, "to", "flow", &v);
        if (r < 0)
                return r;
        r = build_endpoint(b, v, "'to' of a flow", &f->to);
        if (r < 0)
                return r;
        if ((v = map_get_optional(n, "port"))) {
                r = get_port(b, v, &port);
                if (r < 0)
                        return r;
                f->port = port;
        }
        f->access = POLICY_ACCESS_ANY;
        if ((v = map_get_optional(n, "access"))) {
                r = get_enum(b, v, "access", access, &e);
                if (r < 0)
                        return r;
                f->access = e == 0 ? POLICY_ACCESS_ANY : POLICY_ACCESS_READ_ONLY;
        }
        return 0;
}

static int build_forbid(Builder *b, const PNode *n, PolicyForbid *f) {
        static const char *const keys[] = { "id", "from", "to", "access", "severity", "why", NULL };
        static const char *const access[] = { "any", "write", NULL };
        static const char *const severities[] = { "critical", "high", "medium", "low", NULL };
        const PNode *v;
        int r, e;

        f->pos = n->pos;
        r = expect_kind(b, n, PNODE_MAPPING, "a forbid entry");
        if (r < 0)
                return r;
        r = check_keys(b, n, "forbid entry", keys);
        if (r < 0)
                return r;
        r = map_require(b, n, n->pos, "id", "forbid entry", &v);
        if (r < 0)
                return r;
        r = check_id(b, v, "a forbid entry", &f->id);
        if (r < 0)
                return r;
        r = map_require(b, n, n->pos, "from", "forbid entry", &v);
        if (r < 0)
                return r;
        r = build_endpoint(b, v, "'from' of a forbid entry", &f->from);
        if (r < 0)
                return r;
        r = map_require(b, n, n->pos, "to", "forbid entry", &v);
        if (r < 0)
                return r;
        r = build_endpoint(b, v, "'to' of a forbid entry", &f->to);
        if (r < 0)
                return r;
        f->access = POLICY_ACCESS_ANY;
        if ((v = map_get_optional(n, "access"))) {
                r = get_enum(b, v, "access", access, &e);
                if (r < 0)
                        return r;
                f->access = e == 0 ? POLICY_ACCESS_ANY : POLICY_ACCESS_WRITE;
        }
        r = map_require(b, n, n->pos, "severity", "forbid entry", &v);
        if (r < 0)
                return r;
        r = get_enum(b, v, "severity", severities, &e);
        if (r < 0)
                return r;
        f->severity = (PolicySeverity) e;
        r = map_require(b, n, n->pos, "why", "forbid entry", &v);
        if (r < 0)
                return r;
        return get_string(b, v, "'why' of a forbid entry", &f->why);
}

static bool valid_date(const char *s) {
        static const int days[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
        int y, m, d, max;

        if (strlen(s) != 10 || s[4] != '-' || s[7] != '-')
                return false;
        for (int i = 0; i < 10; i++)
                if (i != 4 && i != 7 && (s[i] < '0' || s[i] > '9'))
                        return false;
        y = atoi(s);
        m = atoi(s + 5);
        d = atoi(s + 8);
        if (y < 1 || m < 1 || m > 12)
                return false;
        max = days[m - 1] + (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0));
        return d >= 1 && d <= max;
}

static int build_control(Builder *b, const PNode *n, PolicyControl *c) {
        static const char *const keys[] = { "id", "status", "by", "date", "evidence", NULL };
        static const char *const statuses[] = { "attested", "not-applicable", NULL };
        const PNode *v;
        int r, e;

        c->pos = n->pos;
        r = expect_kind(b, n, PNODE_MAPPING, "a control");
        if (r < 0)
                return r;
        r = check_keys(b, n, "control", keys);
        if (r < 0)
                return r;
        r = map_require(b, n, n->pos, "id", "control", &v);
        if (r < 0)
                return r;
        r = check_id(b, v, "a control", &c->id);
        if (r < 0)
                return r;
        for (size_t i = 0; i < b->p->n_controls; i++)
                if (streq(b->p->controls[i].id, c->id))
                        return FAIL(b, v, "duplicate control id '%s' (first at %u:%u)", c->id, b->p->controls[i].pos.line,
                                    b->p->controls[i].pos.column);
        r = map_require(b, n, n->pos, "status", "control", &v);
        if (r < 0)
                return r;
        r = get_enum(b, v, "status", statuses, &e);
        if (r < 0)
                return r;
        c->status = (PolicyControlStatus) e;
        r = map_require(b, n, n->pos, "by", "control", &v);
        if (r < 0)
                return r;
        r = get_string(b, v, "'by' of a control", &c->by);
        if (r < 0)
                return r;
        r = map_require(b, n, n->pos, "date", "control", &v);
        if (r < 0)
                return r;
        if (v->kind != PNODE_SCALAR || !valid_date(v->value)) {
                char buf[80];
                return FAIL(b, v, "expected a date YYYY-MM-DD (a real calendar date), got %s", got(v, buf));
        }
        r = get_string(b, v, "'date' of a control", &c->date);
        if (r < 0)
                return r;
        r = map_require(b, n, n->pos, "evidence", "control", &v);
        if (r < 0)
                return r;
        return get_string(b, v, "'evidence' of a control", &c->evidence);
}

/* A named section (hosts, zones, services): a non-empty mapping of at most `max` entries. */
static int section_map(Builder *b, const PNode *root, const char *key, size_t max, const PNode **ret) {
        const PNode *v;
        int r;

        r = map_require(b, root, root->pos, key, "the policy", &v);
        if (r < 0)
                return r;
        r = expect_kind(b, v, PNODE_MAPPING, key);
        if (r < 0)
                return r;
        if (v->n_children == 0)
                return FAIL(b, v, "expected at least one entry in %s", key);
        if (v->n_children / 2 > max)
                return FAIL(b, v, "too many %s (%zu, limit %zu)", key, v->n_children / 2, max);
        *ret = v;
        return 0;
}

/* An optional list section (flows, forbid, controls): absent or null means empty. */
static int section_list(Builder *b, const PNode *root, const char *key, size_t max, const PNode **ret) {
        const PNode *v = map_get_optional(root, key);
        int r;

        *ret = NULL;
        if (!v)
                return 0;
        r = expect_kind(b, v, PNODE_SEQUENCE, key);
        if (r < 0)
                return r;
        if (v->n_children > max)
                return FAIL(b, v, "too many entries in %s (%zu, limit %zu)", key, v->n_children, max);
        *ret = v;
        return 0;
}

int policy_build(const char *path, const PNode *root, Policy *p, PolicyError *error) {
        static const char *const keys[] = { "version", "mode", "hosts", "zones", "services", "flows", "forbid", "controls", NULL };
        static const char *const modes[] = { "enforce", "audit", NULL };
        _cleanup_free_ uint8_t *port_seen = NULL;
        Builder b = { .p = p, .error = error };
        const PNode *v, *hosts, *zones, *services, *flows, *forbids, *controls;
        unsigned long version;
        char buf[80];
        int r, e;

        if (root->kind != PNODE_MAPPING)
                return policy_fail(error, root->pos, "expected a mapping at the top of the policy (version, hosts, zones, services, ...), got %s",
                                   got(root, buf));
        r = check_keys(&b, root, "the policy", keys);
        if (r < 0)
                return r;

        r = map_require(&b, root, root->pos, "version", "the policy (expected version: 1)", &v);
        if (r < 0)
                return r;
        if (!scalar_uint(v, 9, &version))
                return FAIL(&b, v, "expected version: 1, got %s", got(v, buf));
        if (version != 1)
                return FAIL(&b, v, "unsupported policy version %lu (this agent reads version 1)", version);
        p->version = 1;

        p->mode = POLICY_MODE_ENFORCE;
        if ((v = map_get_optional(root, "mode"))) {
                r = get_enum(&b, v, "mode", modes, &e);
                if (r < 0)
                        return r;
                p->mode = (PolicyMode) e;
        }

        r = section_map(&b, root, "hosts", POLICY_MAX_HOSTS, &hosts);
        if (r < 0)
                return r;
        r = section_map(&b, root, "zones", POLICY_MAX_ZONES, &zones);
        if (r < 0)
                return r;
        r = section_map(&b, root, "services", POLICY_MAX_SERVICES, &services);
        if (r < 0)
                return r;
        r = section_list(&b, root, "flows", POLICY_MAX_FLOWS, &flows);
        if (r < 0)
                return r;
        r = section_list(&b, root, "forbid", POLICY_MAX_FORBIDS, &forbids);
        if (r < 0)
                return r;
        r = section_list(&b, root, "controls", POLICY_MAX_CONTROLS, &controls);
        if (r < 0)
                return r;

        p->hosts = calloc(hosts->n_children / 2, sizeof(*p->hosts));
        if (!p->hosts)
                return -ENOMEM;
        for (size_t i = 0; i + 1 < hosts->n_children; i += 2) {
                p->n_hosts++;
                r = build_host(&b, hosts->children[i], hosts->children[i + 1], &p->hosts[i / 2]);
                if (r < 0)
                        return r;
        }

        p->zones = calloc(zones->n_children / 2, sizeof(*p->zones));
        if (!p->zones)
                return -ENOMEM;
        for (size_t i = 0; i + 1 < zones->n_children; i += 2) {
                p->n_zones++;
                r = build_zone(&b, zones->children[i], zones->children[i + 1], &p->zones[i / 2]);
                if (r < 0)
                        return r;
        }

        port_seen = calloc(1, 65536 * 2 / 8);
        if (!port_seen)
                return -ENOMEM;
        b.port_seen = port_seen;
        p->services = calloc(services->n_children / 2, sizeof(*p->services));
        if (!p->services)
                return -ENOMEM;
        for (size_t i = 0; i + 1 < services->n_children; i += 2) {
                p->n_services++;
                r = build_service(&b, services->children[i], services->children[i + 1], &p->services[i / 2]);
                if (r < 0)
                        return r;
        }

        if (flows && flows->n_children > 0) {
                p->flows = calloc(flows->n_children, sizeof(*p->flows));
                if (!p->flows)
                        return -ENOMEM;
                for (size_t i = 0; i < flows->n_children; i++) {
                        p->n_flows++;
                        r = build_flow(&b, flows->children[i], &p->flows[i]);
                        if (r < 0)
                                return r;
                }
        }
        if (forbids && forbids->n_children > 0) {
                p->forbids = calloc(forbids->n_children, sizeof(*p->forbids));
                if (!p->forbids)
                        return -ENOMEM;
                for (size_t i = 0; i < forbids->n_children; i++) {
                        p->n_forbids++;
                        r = build_forbid(&b, forbids->children[i], &p->forbids[i]);
                        if (r < 0)
                                return r;
                }
        }
        if (controls && controls->n_children > 0) {
                p->controls = calloc(controls->n_children, sizeof(*p->controls));
                if (!p->controls)
                        return -ENOMEM;
                for (size_t i = 0; i < controls->n_children; i++) {
                        r = build_control(&b, controls->children[i], &p->controls[i]);
                        /* Counted after the duplicate check, which scans the controls before it. */
                        p->n_controls++;
                        if (r < 0)
                                return r;
                }
        }
        (void) path;
        return 0;
}
