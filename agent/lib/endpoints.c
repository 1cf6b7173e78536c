/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Endpoints: the addresses each service has right now. The daemon fills them from Docker
 * (containers come and go), tests and `policy compile --endpoints` from a static JSON file
 * ({ "service": ["ADDR[/PREFIX]", ...] }, parsed with jansson). The compiler only reads them.
 */
#include "ceredis.h"

#include <jansson.h>
#include <netinet/in.h>
#include <sys/stat.h>

#include "ruleset.h"

#define ENDPOINTS_MAX_SERVICES 131072u
#define ENDPOINTS_MAX_ADDRESSES 65536u /* per service */
#define ENDPOINTS_MAX_FILE_SIZE (64u * 1024u * 1024u)
#define ENDPOINTS_MAX_PUBLISHED 4096u /* per service */

typedef struct EndpointsEntry {
        char *service;
        PolicyCidr *addrs;
        size_t n_addrs, allocated;
        EndpointsPublished *published;
        size_t n_published, allocated_published;
} EndpointsEntry;

struct Endpoints {
        EndpointsEntry *entries;
        size_t n_entries, allocated;
        /* Open-addressing index by service name (entry + 1, 0 free): the compiler asks for
         * every service's addresses, so a linear search made compiling quadratic. */
        uint32_t *index;
        size_t index_size; /* a power of two, at least twice n_entries */
        EndpointsNetwork *networks;
        size_t n_networks, allocated_networks;
};

int endpoints_new(Endpoints **ret) {
        Endpoints *e = calloc(1, sizeof(*e));

        if (!e)
                return -ENOMEM;
        *ret = e;
        return 0;
}

void endpoints_free(Endpoints *e) {
        if (!e)
                return;
        for (size_t i = 0; i < e->n_entries; i++) {
                free(e->entries[i].service);
                free(e->entries[i].addrs);
                free(e->entries[i].published);
        }
        free(e->entries);
        free(e->index);
        free(e->networks);
        free(e);
}

static size_t name_hash(const char *s) {
        uint64_t h = 1469598103934665603u; /* FNV-1a */

        for (; *s; s++)
                h = (h ^ (uint8_t) *s) * 1099511628211u;
        return (size_t) (h ^ h >> 29);
}

static EndpointsEntry *endpoints_find(const Endpoints *e, const char *service) {
        if (!e || e->index_size == 0)
                return NULL;
        for (size_t i = name_hash(service) & (e->index_size - 1);; i = (i + 1) & (e->index_size - 1)) {
                uint32_t x = e->index[i];

                if (x == 0)
                        return NULL;
                if (streq(e->entries[x - 1].service, service))
                        return &e->entries[x - 1];
        }
}

/* Make room for one more entry in the index (rebuilt when it would be half full). */
static int endpoints_index_reserve(Endpoints *e) {
        size_t size = e->index_size ? e->index_size : 64;
        uint32_t *index;

        if ((e->n_entries + 1) * 2 <= e->index_size)
                return 0;
        while ((e->n_entries + 1) * 2 > size)
                size *= 2;
        index = calloc(size, sizeof(*index));
        if (!index)
                return -ENOMEM;
        for (size_t n = 0; n < e->n_entries; n++) {
                size_t i = name_hash(e->entries[n].service) & (size - 1);
                while (index[i])
                        i = (i + 1) & (size - 1);
                index[i] = (uint32_t) n + 1;
        }
        free(e->index);
        e->index = index;
        e->index_size = size;
        return 0;
}

/* The entry of `service`, created when absent. */
static int endpoints_entry(Endpoints *e, const char *service, EndpointsEntry **ret) {
        EndpointsEntry *x = endpoints_find(e, service);
        size_t i;
        int k;

        if (x) {
                *ret = x;
                return 0;
        }
        k = ARRAY_GROW(e->entries, e->allocated, e->n_entries + 1, ENDPOINTS_MAX_SERVICES);
        if (k >= 0)
                k = endpoints_index_reserve(e);
        if (k < 0)
                return k;
        x = &e->entries[e->n_entries];
        *x = (EndpointsEntry) { .service = strdup(service) };
        if (!x->service)
                return -ENOMEM;
        for (i = name_hash(service) & (e->index_size - 1); e->index[i];
             i = (i + 1) & (e->index_size - 1))
                ;
        e->index[i] = (uint32_t) ++e->n_entries;
        *ret = x;
        return 0;
}

int endpoints_add(Endpoints *e, const char *service, const PolicyCidr *addr) {
        EndpointsEntry *x;
        int k;

        k = endpoints_entry(e, service, &x);
        if (k < 0)
                return k;
        for (size_t i = 0; i < x->n_addrs; i++)
                if (memcmp(&x->addrs[i], addr, sizeof(*addr)) == 0)
                        return 0;
        k = ARRAY_GROW(x->addrs, x->allocated, x->n_addrs + 1, ENDPOINTS_MAX_ADDRESSES);
        if (k < 0)
                return k;
        memset(&x->addrs[x->n_addrs], 0, sizeof(*addr));
        x->addrs[x->n_addrs].family = addr->family;
        x->addrs[x->n_addrs].prefix = addr->prefix;
        memcpy(x->addrs[x->n_addrs].addr.bytes, addr->addr.bytes,
               addr->family == AF_INET ? 4 : 16);
        x->n_addrs++;
        return 0;
}

int endpoints_add_published(Endpoints *e, const char *service, uint8_t proto, uint16_t host_port,
                            uint16_t container_port) {
        EndpointsPublished p = { .proto = proto, .host_port = host_port,
                                 .container_port = container_port };
        EndpointsEntry *x;
        int k;

        if ((proto != IPPROTO_TCP && proto != IPPROTO_UDP) || host_port == 0 ||
            container_port == 0)
                return -EINVAL;
        k = endpoints_entry(e, service, &x);
        if (k < 0)
                return k;
        for (size_t i = 0; i < x->n_published; i++)
                if (x->published[i].proto == proto && x->published[i].host_port == host_port &&
                    x->published[i].container_port == container_port)
                        return 0;
        k = ARRAY_GROW(x->published, x->allocated_published, x->n_published + 1,
                       ENDPOINTS_MAX_PUBLISHED);
        if (k < 0)
                return k;
        x->published[x->n_published++] = p;
        return 0;
}

#define ENDPOINTS_MAX_NETWORKS 4096u

int endpoints_add_network(Endpoints *e, const PolicyCidr *subnet, const PolicyCidr *gateway) {
        EndpointsNetwork n = { .subnet = *subnet };
        int k;

        if ((subnet->family != AF_INET && subnet->family != AF_INET6) ||
            (gateway && gateway->family != subnet->family))
                return -EINVAL;
        if (gateway) {
                n.gateway = *gateway;
                n.has_gateway = true;
        }
        for (size_t i = 0; i < e->n_networks; i++)
                if (memcmp(&e->networks[i], &n, sizeof(n)) == 0)
                        return 0;
        k = ARRAY_GROW(e->networks, e->allocated_networks, e->n_networks + 1,
                       ENDPOINTS_MAX_NETWORKS);
        if (k < 0)
                return k;
        e->networks[e->n_networks++] = n;
        return 0;
}

void endpoints_get_networks(const Endpoints *e, const EndpointsNetwork **ret, size_t *ret_n) {
        *ret = e ? e->networks : NULL;
        *ret_n = e ? e->n_networks : 0;
}

void endpoints_get_published(const Endpoints *e, const char *service,
                             const EndpointsPublished **ret, size_t *ret_n) {
        const EndpointsEntry *x = endpoints_find(e, service);

        *ret = x ? x->published : NULL;
        *ret_n = x ? x->n_published : 0;
}

void endpoints_get(const Endpoints *e, const char *service, const PolicyCidr **ret,
                   size_t *ret_n) {
        const EndpointsEntry *x = endpoints_find(e, service);

        *ret = x ? x->addrs : NULL;
        *ret_n = x ? x->n_addrs : 0;
}

size_t endpoints_n_services(const Endpoints *e) {
        return e ? e->n_entries : 0;
}

const char *endpoints_service(const Endpoints *e, size_t i) {
        return e && i < e->n_entries ? e->entries[i].service : NULL;
}

int endpoints_load_json(Endpoints *e, const char *path, char *err, size_t err_size) {
        json_error_t jerr;
        json_t *root, *list;
        const char *service;
        struct stat st;
        int k = 0;

        /* Operator input, but still bounded: jansson reads the whole file into memory. */
        if (stat(path, &st) < 0) {
                k = negative_errno();
                snprintf(err, err_size, "%s: %s", path, strerror(-k));
                return k;
        }
        if (st.st_size > (off_t) ENDPOINTS_MAX_FILE_SIZE) {
                snprintf(err, err_size, "%s: larger than %u bytes", path, ENDPOINTS_MAX_FILE_SIZE);
                return -EFBIG;
        }
        root = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
        if (!root) {
                snprintf(err, err_size, "%s:%d:%d: %s", path, jerr.line, jerr.column, jerr.text);
                return json_error_code(&jerr) == json_error_cannot_open_file ? -EIO : -EINVAL;
        }
        if (!json_is_object(root)) {
                snprintf(err, err_size, "%s: expected an object { \"service\": [addresses] }",
                         path);
                k = -EINVAL;
                goto out;
        }
        json_object_foreach(root, service, list) {
                size_t i;
                json_t *item;

                if (!json_is_array(list)) {
                        snprintf(err, err_size, "%s: \"%s\": expected a list of addresses", path,
                                 service);
                        k = -EINVAL;
                        goto out;
                }
                json_array_foreach(list, i, item) {
                        PolicyCidr c;

                        if (!json_is_string(item) ||
                            policy_cidr_parse(json_string_value(item), &c) < 0) {
                                snprintf(err, err_size,
                                         "%s: \"%s\"[%zu]: expected an address or CIDR", path,
                                         service, i);
                                k = -EINVAL;
                                goto out;
                        }
                        k = endpoints_add(e, service, &c);
                        if (k < 0) {
                                snprintf(err, err_size, "%s: \"%s\": %s", path, service,
                                         strerror(-k));
                                goto out;
                        }
                }
        }
out:
        json_decref(root);
        return k;
}
