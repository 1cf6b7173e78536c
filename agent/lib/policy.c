/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The policy model's plumbing: loading a file (bounded read, SHA-256 of its bytes), the
 * parse → build → validate pipeline, error formatting, lookups, enum names, CIDR text forms
 * and freeing. The stages themselves live in policy-yaml.c, policy-load.c, policy-validate.c.
 */
#include "ceredis.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <sys/stat.h>

#include <openssl/evp.h>

#include "policy-internal.h"
#include "policy.h"

static void endpoint_done(PolicyEndpoint *e) {
        free(e->name);
        free(e->services);
}

static void strv_free(char **v, size_t n) {
        for (size_t i = 0; i < n; i++)
                free(v[i]);
        free(v);
}

void policy_free(Policy *p) {
        if (!p)
                return;
        for (size_t i = 0; i < p->n_hosts; i++) {
                PolicyHost *h = &p->hosts[i];
                free(h->name);
                strv_free(h->public_interfaces, h->n_public_interfaces);
                strv_free(h->private_interfaces, h->n_private_interfaces);
                free(h->addresses);
                for (size_t j = 0; j < h->n_management; j++)
                        free(h->management[j].from);
                free(h->management);
        }
        free(p->hosts);
        for (size_t i = 0; i < p->n_zones; i++)
                free(p->zones[i].name);
        free(p->zones);
        for (size_t i = 0; i < p->n_services; i++) {
                PolicyService *s = &p->services[i];
                free(s->name);
                free(s->match.value);
                free(s->match.label_value);
                free(s->match.cidrs);
                free(s->ports);
                strv_free(s->tags, s->n_tags);
        }
        free(p->services);
        for (size_t i = 0; i < p->n_flows; i++) {
                endpoint_done(&p->flows[i].from);
                endpoint_done(&p->flows[i].to);
        }
        free(p->flows);
        for (size_t i = 0; i < p->n_forbids; i++) {
                PolicyForbid *f = &p->forbids[i];
                free(f->id);
                endpoint_done(&f->from);
                endpoint_done(&f->to);
                free(f->why);
        }
        free(p->forbids);
        for (size_t i = 0; i < p->n_controls; i++) {
                PolicyControl *c = &p->controls[i];
                free(c->id);
                free(c->by);
                free(c->date);
                free(c->evidence);
        }
        free(p->controls);
        free(p->path);
        free(p);
}

int policy_parse(const char *path, const void *data, size_t size, Policy **ret, PolicyError *ret_error) {
        _cleanup_(policy_freep) Policy *p = NULL;
        _cleanup_(ptree_freep) PTree *tree = NULL;
        PolicyError error = {};
        int r;

        if (!path || (!data && size > 0) || !ret)
                return -EINVAL;

        r = policy_yaml_parse(data ?: "", size, &tree, &error);
        if (r < 0)
                goto fail;

        p = calloc(1, sizeof(*p));
        if (!p) {
                r = -ENOMEM;
                goto fail;
        }
        p->path = strdup(path);
        if (!p->path) {
                r = -ENOMEM;
                goto fail;
        }
        if (!EVP_Digest(data ?: "", size, p->sha256, NULL, EVP_sha256(), NULL)) {
                r = -EIO;
                policy_fail(&error, (PolicyPos) { 0, 0 }, "cannot compute SHA-256");
                goto fail;
        }

        r = policy_build(path, ptree_root(tree), p, &error);
        if (r < 0)
                goto fail;
        /* The model owns copies of everything it needs: drop the tree before validation. */
        ptree_free(TAKE_PTR(tree));
        r = policy_validate(p, &error);
        if (r < 0)
                goto fail;

        *ret = TAKE_PTR(p);
        return 0;

fail:
        if (r == -ENOMEM && error.message[0] == '\0')
                policy_fail(&error, (PolicyPos) { 0, 0 }, "out of memory");
        if (ret_error)
                *ret_error = error;
        return r;
}

int policy_load(const char *path, Policy **ret, PolicyError *ret_error) {
        _cleanup_close_ int fd = -1;
        _cleanup_free_ uint8_t *buf = NULL;
        PolicyError error = {};
        struct stat st;
        size_t size = 0;
        int r;

        if (!path || !ret)
                return -EINVAL;

        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0) {
                r = negative_errno();
                goto io_fail;
        }
        if (fstat(fd, &st) < 0) {
                r = negative_errno();
                goto io_fail;
        }
        if (S_ISDIR(st.st_mode)) {
                r = -EISDIR;
                goto io_fail;
        }
        if (S_ISREG(st.st_mode) && (uint64_t) st.st_size > POLICY_MAX_FILE_SIZE) {
                r = policy_fail(&error, (PolicyPos) { 0, 0 }, "file too large (%jd bytes, limit %u)",
                                (intmax_t) st.st_size, POLICY_MAX_FILE_SIZE);
                goto fail;
        }

        /* Read up to one byte past the limit, so that a growing file or a pipe is caught too. */
        size_t allocated = S_ISREG(st.st_mode) && st.st_size > 0 ? (size_t) st.st_size + 1 : 65536;
        buf = malloc(allocated);
        if (!buf)
                return -ENOMEM;
        for (;;) {
                ssize_t n;

                if (size == allocated) {
                        if (allocated > POLICY_MAX_FILE_SIZE) {
                                r = policy_fail(&error, (PolicyPos) { 0, 0 }, "file too large (more than %u bytes)",
                                                POLICY_MAX_FILE_SIZE);
                                goto fail;
                        }
                        size_t want = allocated * 2 > POLICY_MAX_FILE_SIZE + 1u ? POLICY_MAX_FILE_SIZE + 1u : allocated * 2;
                        uint8_t *nbuf = realloc(buf, want);
                        if (!nbuf)
                                return -ENOMEM;
                        buf = nbuf;
                        allocated = want;
                }
                n = read(fd, buf + size, allocated - size);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        r = negative_errno();
                        goto io_fail;
                }
                if (n == 0)
                        break;
                size += (size_t) n;
        }
        if (size > POLICY_MAX_FILE_SIZE) {
                r = policy_fail(&error, (PolicyPos) { 0, 0 }, "file too large (more than %u bytes)", POLICY_MAX_FILE_SIZE);
                goto fail;
        }
        return policy_parse(path, buf, size, ret, ret_error);

io_fail:
        error.pos = (PolicyPos) { 0, 0 };
        snprintf(error.message, sizeof(error.message), "cannot read: %s", strerror(-r));
fail:
        if (ret_error)
                *ret_error = error;
        return r;
}

int policy_error_format(const char *path, const PolicyError *error, char *buf, size_t size) {
        int n;

        if (!buf || size == 0 || !error)
                return -EINVAL;
        if (error->pos.line > 0)
                n = snprintf(buf, size, "%s:%u:%u: %s", path ?: "policy", error->pos.line, error->pos.column,
                             error->message);
        else
                n = snprintf(buf, size, "%s: %s", path ?: "policy", error->message);
        return n < 0 ? -EINVAL : (size_t) n >= size ? -ENOBUFS : 0;
}

ssize_t policy_find_host(const Policy *p, const char *name) {
        for (size_t i = 0; i < p->n_hosts; i++)
                if (streq(p->hosts[i].name, name))
                        return (ssize_t) i;
        return -ENOENT;
}

ssize_t policy_find_zone(const Policy *p, const char *name) {
        for (size_t i = 0; i < p->n_zones; i++)
                if (streq(p->zones[i].name, name))
                        return (ssize_t) i;
        return -ENOENT;
}

ssize_t policy_find_service(const Policy *p, const char *name) {
        for (size_t i = 0; i < p->n_services; i++)
                if (streq(p->services[i].name, name))
                        return (ssize_t) i;
        return -ENOENT;
}

void policy_sha256_hex(const Policy *p, char ret[65]) {
        static const char hex[] = "0123456789abcdef";

        for (size_t i = 0; i < 32; i++) {
                ret[2 * i] = hex[p->sha256[i] >> 4];
                ret[2 * i + 1] = hex[p->sha256[i] & 15];
        }
        ret[64] = '\0';
}

const char *policy_mode_to_string(PolicyMode m) {
        switch (m) {
        case POLICY_MODE_ENFORCE: return "enforce";
        case POLICY_MODE_AUDIT: return "audit";
        }
        return NULL;
}

const char *policy_match_kind_to_string(PolicyMatchKind k) {
        switch (k) {
        case POLICY_MATCH_COMPOSE_SERVICE: return "compose_service";
        case POLICY_MATCH_CONTAINER_NAME: return "container_name";
        case POLICY_MATCH_IMAGE: return "image";
        case POLICY_MATCH_LABEL: return "label";
        case POLICY_MATCH_CIDR: return "cidr";
        }
        return NULL;
}

const char *policy_l7_to_string(PolicyL7 l) {
        switch (l) {
        case POLICY_L7_TCP: return "tcp";
        case POLICY_L7_HTTP: return "http";
        case POLICY_L7_POSTGRESQL: return "postgresql";
        case POLICY_L7_TLS: return "tls";
        }
        return NULL;
}

const char *policy_access_to_string(PolicyAccess a) {
        switch (a) {
        case POLICY_ACCESS_ANY: return "any";
        case POLICY_ACCESS_READ_ONLY: return "read-only";
        case POLICY_ACCESS_WRITE: return "write";
        }
        return NULL;
}

const char *policy_severity_to_string(PolicySeverity s) {
        switch (s) {
        case POLICY_SEVERITY_CRITICAL: return "critical";
        case POLICY_SEVERITY_HIGH: return "high";
        case POLICY_SEVERITY_MEDIUM: return "medium";
        case POLICY_SEVERITY_LOW: return "low";
        }
        return NULL;
}

const char *policy_control_status_to_string(PolicyControlStatus s) {
        switch (s) {
        case POLICY_CONTROL_ATTESTED: return "attested";
        case POLICY_CONTROL_NOT_APPLICABLE: return "not-applicable";
        }
        return NULL;
}

const char *policy_proto_to_string(uint8_t proto) {
        switch (proto) {
        case IPPROTO_TCP: return "tcp";
        case IPPROTO_UDP: return "udp";
        }
        return NULL;
}

int policy_cidr_format(const PolicyCidr *c, char *buf, size_t size) {
        char addr[INET6_ADDRSTRLEN];
        int n;

        if (!c || !buf || (c->family != AF_INET && c->family != AF_INET6))
                return -EINVAL;
        if (!inet_ntop(c->family, c->addr.bytes, addr, sizeof(addr)))
                return negative_errno();
        n = snprintf(buf, size, "%s/%u", addr, c->prefix);
        return n < 0 ? -EINVAL : (size_t) n >= size ? -ENOBUFS : 0;
}

/* Returns -EINVAL for text that is not a CIDR, -EDOM when host bits are set. */
int policy_cidr_parse(const char *s, PolicyCidr *ret) {
        char addr[INET6_ADDRSTRLEN];
        const char *slash;
        PolicyCidr c = {};
        unsigned prefix, max;
        size_t len;

        if (!s || !ret)
                return -EINVAL;
        slash = strchr(s, '/');
        len = slash ? (size_t) (slash - s) : strlen(s);
        if (len == 0 || len >= sizeof(addr))
                return -EINVAL;
        memcpy(addr, s, len);
        addr[len] = '\0';

        if (inet_pton(AF_INET, addr, &c.addr.in) == 1) {
                c.family = AF_INET;
                max = 32;
        } else if (inet_pton(AF_INET6, addr, &c.addr.in6) == 1) {
                c.family = AF_INET6;
                max = 128;
        } else
                return -EINVAL;

        prefix = max;
        if (slash) {
                const char *d = slash + 1;

                /* Plain decimal only: no sign, no spaces, no leading zeros, at most 3 digits. */
                if (*d == '\0' || strlen(d) > 3 || (d[0] == '0' && d[1] != '\0'))
                        return -EINVAL;
                prefix = 0;
                for (; *d; d++) {
                        if (*d < '0' || *d > '9')
                                return -EINVAL;
                        prefix = prefix * 10 + (unsigned) (*d - '0');
                }
                if (prefix > max)
                        return -EINVAL;
        }
        c.prefix = (uint8_t) prefix;

        for (unsigned bit = prefix; bit < max; bit++)
                if (c.addr.bytes[bit / 8] & (0x80 >> (bit % 8)))
                        return -EDOM;
        *ret = c;
        return 0;
}
