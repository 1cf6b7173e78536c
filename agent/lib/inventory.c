/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The inventory file (see inventory.h): Endpoints to JSON and back with jansson. The file is
 * ours, but it sits in a directory an operator can edit, so parsing it is as strict as parsing
 * any other input: exact keys, bounded size, every address and port checked.
 */
#include "ceredis.h"

#include <jansson.h>
#include <limits.h>
#include <netinet/in.h>

#include "inventory.h"

static bool sha256_valid(const char *s) {
        if (!s || strlen(s) != 64)
                return false;
        for (const char *p = s; *p; p++)
                if (!strchr("0123456789abcdef", *p))
                        return false;
        return true;
}

static json_t *cidr_json(const PolicyCidr *c) {
        char buf[64];

        return policy_cidr_format(c, buf, sizeof(buf)) < 0 ? NULL : json_string(buf);
}

static json_t *service_json(const Endpoints *e, const char *name) {
        const PolicyCidr *addrs;
        const EndpointsPublished *pub;
        size_t n_addrs, n_pub;
        json_t *a = json_array(), *p = json_array();

        endpoints_get(e, name, &addrs, &n_addrs);
        endpoints_get_published(e, name, &pub, &n_pub);
        for (size_t i = 0; a && i < n_addrs; i++)
                if (json_array_append_new(a, cidr_json(&addrs[i])) < 0)
                        goto fail;
        for (size_t i = 0; p && i < n_pub; i++)
                if (json_array_append_new(p, json_pack("{s:s, s:i, s:i}", "proto",
                                                       pub[i].proto == IPPROTO_TCP ? "tcp" : "udp",
                                                       "host_port", (int) pub[i].host_port,
                                                       "container_port",
                                                       (int) pub[i].container_port)) < 0)
                        goto fail;
        if (!a || !p)
                goto fail;
        return json_pack("{s:o, s:o}", "addresses", a, "published", p);
fail:
        json_decref(a);
        json_decref(p);
        return NULL;
}

int inventory_format(const char *policy_sha256, const char *netns, const char *ts,
                     const Endpoints *e, char **ret) {
        const EndpointsNetwork *nets;
        size_t n_nets;
        json_t *root, *services, *networks;
        char *text;

        if (!sha256_valid(policy_sha256))
                return -EINVAL;
        root = json_pack("{s:s, s:s?, s:s?, s:{}, s:[]}", "policy_sha256", policy_sha256, "netns",
                         netns, "ts", ts, "services", "networks");
        if (!root)
                return -ENOMEM;
        services = json_object_get(root, "services");
        networks = json_object_get(root, "networks");
        for (size_t i = 0; i < endpoints_n_services(e); i++) {
                const char *name = endpoints_service(e, i);

                if (json_object_set_new(services, name, service_json(e, name)) < 0)
                        goto fail;
        }
        endpoints_get_networks(e, &nets, &n_nets);
        for (size_t i = 0; i < n_nets; i++)
                if (json_array_append_new(networks,
                                          json_pack("{s:o, s:o}", "subnet",
                                                    cidr_json(&nets[i].subnet), "gateway",
                                                    nets[i].has_gateway ? cidr_json(&nets[i].gateway)
                                                                        : json_null())) < 0)
                        goto fail;
        /* Sorted keys: the same inventory is the same file, byte for byte. */
        text = json_dumps(root, JSON_SORT_KEYS | JSON_COMPACT);
        json_decref(root);
        if (!text)
                return -ENOMEM;
        *ret = text;
        return 0;
fail:
        json_decref(root);
        return -ENOMEM;
}

static int parse_cidr(json_t *v, PolicyCidr *ret) {
        return json_is_string(v) && policy_cidr_parse(json_string_value(v), ret) >= 0 ? 0 : -EBADMSG;
}

static int parse_port(json_t *v, uint16_t *ret) {
        json_int_t n;

        if (!json_is_integer(v))
                return -EBADMSG;
        n = json_integer_value(v);
        if (n < 1 || n > 65535)
                return -EBADMSG;
        *ret = (uint16_t) n;
        return 0;
}

static int parse_service(Endpoints *e, const char *name, json_t *v) {
        json_t *addrs = json_object_get(v, "addresses"), *pub = json_object_get(v, "published");
        json_t *item;
        size_t i;
        int k;

        if (!json_is_object(v) || json_object_size(v) != 2 || !json_is_array(addrs) ||
            !json_is_array(pub) || !*name)
                return -EBADMSG;
        json_array_foreach(addrs, i, item) {
                PolicyCidr c;

                if ((k = parse_cidr(item, &c)) < 0 || (k = endpoints_add(e, name, &c)) < 0)
                        return k;
        }
        json_array_foreach(pub, i, item) {
                const char *proto;
                json_t *hp = json_object_get(item, "host_port"),
                       *cp = json_object_get(item, "container_port");
                uint16_t host_port, container_port;

                if (!json_is_object(item) || json_object_size(item) != 3 ||
                    !json_is_string(json_object_get(item, "proto")))
                        return -EBADMSG;
                proto = json_string_value(json_object_get(item, "proto"));
                if (!streq(proto, "tcp") && !streq(proto, "udp"))
                        return -EBADMSG;
                if ((k = parse_port(hp, &host_port)) < 0 ||
                    (k = parse_port(cp, &container_port)) < 0)
                        return k;
                k = endpoints_add_published(e, name, streq(proto, "tcp") ? IPPROTO_TCP : IPPROTO_UDP,
                                            host_port, container_port);
                if (k < 0)
                        return k;
        }
        return 0;
}

static int parse_network(Endpoints *e, json_t *v) {
        json_t *gw = json_object_get(v, "gateway");
        PolicyCidr subnet, gateway;
        int k;

        if (!json_is_object(v) || json_object_size(v) != 2 || !gw ||
            (k = parse_cidr(json_object_get(v, "subnet"), &subnet)) < 0)
                return -EBADMSG;
        if (!json_is_null(gw) && (k = parse_cidr(gw, &gateway)) < 0)
                return k;
        k = endpoints_add_network(e, &subnet, json_is_null(gw) ? NULL : &gateway);
        return k == -EINVAL ? -EBADMSG : k;
}

int inventory_parse(const char *text, size_t size, char ret_sha256[65], char **ret_netns,
                    Endpoints **ret) {
        _cleanup_(endpoints_freep) Endpoints *e = NULL;
        _cleanup_free_ char *netns = NULL;
        json_t *root, *services, *networks, *item, *ns;
        const char *sha, *name;
        size_t i;
        int k;

        if (size > INVENTORY_MAX_SIZE)
                return -EFBIG;
        root = json_loadb(text, size, JSON_REJECT_DUPLICATES, NULL);
        if (!root)
                return -EBADMSG;
        k = -EBADMSG;
        services = json_object_get(root, "services");
        networks = json_object_get(root, "networks");
        ns = json_object_get(root, "netns");
        sha = json_string_value(json_object_get(root, "policy_sha256"));
        if (!json_is_object(root) || !sha256_valid(sha) || !json_is_object(services) ||
            !json_is_array(networks) || (ns && !json_is_null(ns) && !json_is_string(ns)))
                goto out;
        if (json_is_string(ns) && !(netns = strdup(json_string_value(ns)))) {
                k = -ENOMEM;
                goto out;
        }
        if ((k = endpoints_new(&e)) < 0)
                goto out;
        json_object_foreach(services, name, item)
                if ((k = parse_service(e, name, item)) < 0)
                        goto out;
        json_array_foreach(networks, i, item)
                if ((k = parse_network(e, item)) < 0)
                        goto out;
        memcpy(ret_sha256, sha, 65);
        *ret_netns = TAKE_PTR(netns);
        *ret = TAKE_PTR(e);
        k = 0;
out:
        json_decref(root);
        return k;
}

int inventory_save(const char *dir, const char *policy_sha256, const char *netns,
                   const Endpoints *e) {
        _cleanup_free_ char *text = NULL;
        char ts[32];
        int k;

        if (state_format_ts(0, ts, sizeof(ts)) < 0)
                ts[0] = 0;
        k = inventory_format(policy_sha256, netns, ts[0] ? ts : NULL, e, &text);
        if (k < 0)
                return k;
        return state_write_file(dir, STATE_INVENTORY, text, strlen(text));
}

int inventory_remove(const char *dir) {
        char path[PATH_MAX];

        if ((size_t) snprintf(path, sizeof(path), "%s/%s", dir, STATE_INVENTORY) >= sizeof(path))
                return -ENAMETOOLONG;
        return unlink(path) < 0 && errno != ENOENT ? negative_errno() : 0;
}

int inventory_load(const char *dir, const StateRecord *r, Endpoints **ret) {
        _cleanup_free_ char *text = NULL, *netns = NULL;
        _cleanup_(endpoints_freep) Endpoints *e = NULL;
        char path[PATH_MAX], sha[65];
        size_t size;
        int k;

        if (r->status != STATE_STATUS_APPLIED || r->endpoints_sha256[0])
                return -ENOENT; /* a static endpoints file is the whole truth */
        if ((size_t) snprintf(path, sizeof(path), "%s/%s", dir, STATE_INVENTORY) >= sizeof(path))
                return -ENAMETOOLONG;
        k = state_read_file(path, INVENTORY_MAX_SIZE, &text, &size);
        if (k < 0)
                return k;
        k = inventory_parse(text, size, sha, &netns, &e);
        if (k < 0)
                return k;
        if (!streq(sha, r->policy_sha256) || !streq_ptr(netns, r->netns))
                return -ENOENT; /* from another policy or namespace: stale */
        *ret = TAKE_PTR(e);
        return 0;
}
