/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Pure decoders of Docker Engine API answers (see docker-api.h). jansson builds the tree of a
 * size-capped buffer; everything taken from it is type-checked and copied with a cap, so that
 * nothing downstream holds a pointer into Docker's JSON or trusts its shape.
 */
#include "ceredis.h"

#include <arpa/inet.h>
#include <jansson.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "docker-api.h"

bool docker_id_valid(const char *s) {
        size_t i;

        for (i = 0; i < DOCKER_ID_LEN; i++)
                if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
                        return false;
        return s[i] == 0;
}

/* A string member: -ENOENT when absent or null (Docker writes null for empty things),
 * -EBADMSG when not a string, -E2BIG past `max` bytes or with a NUL inside. */
static int get_string(json_t *obj, const char *key, size_t max, const char **ret) {
        json_t *v = json_object_get(obj, key);

        if (!v || json_is_null(v))
                return -ENOENT;
        if (!json_is_string(v))
                return -EBADMSG;
        if (json_string_length(v) > max || strlen(json_string_value(v)) != json_string_length(v))
                return -E2BIG;
        *ret = json_string_value(v);
        return 0;
}

static int dup_string(json_t *obj, const char *key, size_t max, bool required, char **ret) {
        const char *s = "";
        int k;

        k = get_string(obj, key, max, &s);
        if (k == -ENOENT && !required)
                k = 0;
        if (k < 0)
                return k == -ENOENT ? -EBADMSG : k;
        *ret = strdup(s);
        return *ret ? 0 : -ENOMEM;
}

/* An integer member in [0, max]; -ENOENT when absent. */
static int get_uint(json_t *obj, const char *key, json_int_t max, json_int_t *ret) {
        json_t *v = json_object_get(obj, key);

        if (!v || json_is_null(v))
                return -ENOENT;
        if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > max)
                return -EBADMSG;
        *ret = json_integer_value(v);
        return 0;
}

static int load(const void *data, size_t size, size_t max, json_t **ret) {
        json_error_t err;
        json_t *root;

        if (size > max)
                return -E2BIG;
        /* Duplicate keys would let one answer say two things; jansson caps the depth. */
        root = json_loadb(data, size, JSON_REJECT_DUPLICATES, &err);
        if (!root)
                return json_error_code(&err) == json_error_out_of_memory ? -ENOMEM : -EBADMSG;
        *ret = root;
        return 0;
}

/* A list answer (/containers/json, /networks): an array of at most `max_items`. */
static int load_array(const void *data, size_t size, size_t max_items, json_t **ret) {
        json_t *root;
        int k;

        k = load(data, size, DOCKER_MAX_ANSWER, &root);
        if (k < 0)
                return k;
        k = !json_is_array(root) ? -EBADMSG : json_array_size(root) > max_items ? -E2BIG : 0;
        if (k < 0) {
                json_decref(root);
                return k;
        }
        *ret = root;
        return 0;
}

static void label_done(DockerLabel *l) {
        free(l->key);
        free(l->value);
}

void docker_container_done(DockerContainer *c) {
        if (!c)
                return;
        free(c->name);
        free(c->image);
        free(c->state);
        for (size_t i = 0; i < c->n_labels; i++)
                label_done(&c->labels[i]);
        free(c->labels);
        for (size_t i = 0; i < c->n_attachments; i++)
                free(c->attachments[i].network);
        free(c->attachments);
        free(c->ports);
        *c = (DockerContainer) {};
}

void docker_inventory_done(DockerInventory *inv) {
        if (!inv)
                return;
        for (size_t i = 0; i < inv->n_containers; i++)
                docker_container_done(&inv->containers[i]);
        free(inv->containers);
        *inv = (DockerInventory) {};
}

static int parse_labels(json_t *obj, DockerContainer *c) {
        const char *key;
        json_t *v;

        if (!obj || json_is_null(obj))
                return 0;
        if (!json_is_object(obj))
                return -EBADMSG;
        if (json_object_size(obj) > DOCKER_MAX_LABELS)
                return -E2BIG;
        c->labels = calloc(json_object_size(obj) ? json_object_size(obj) : 1, sizeof(DockerLabel));
        if (!c->labels)
                return -ENOMEM;
        json_object_foreach(obj, key, v) {
                DockerLabel *l = &c->labels[c->n_labels];

                if (!json_is_string(v))
                        return -EBADMSG;
                if (strlen(key) > DOCKER_MAX_STRING ||
                    json_string_length(v) > DOCKER_MAX_LABEL_VALUE ||
                    strlen(json_string_value(v)) != json_string_length(v))
                        return -E2BIG;
                l->key = strdup(key);
                l->value = strdup(json_string_value(v));
                c->n_labels++;
                if (!l->key || !l->value)
                        return -ENOMEM;
        }
        return 0;
}

static int parse_address(json_t *obj, const char *key, int family, void *ret) {
        const char *s;
        int k;

        k = get_string(obj, key, 64, &s);
        if (k == -ENOENT || (k == 0 && s[0] == 0))
                return 0; /* not on this family */
        if (k < 0)
                return k;
        return inet_pton(family, s, ret) == 1 ? 1 : -EBADMSG;
}

static int parse_attachments(json_t *settings, DockerContainer *c) {
        json_t *nets, *v;
        const char *name;
        int k;

        if (!settings || json_is_null(settings))
                return 0;
        if (!json_is_object(settings))
                return -EBADMSG;
        nets = json_object_get(settings, "Networks");
        if (!nets || json_is_null(nets))
                return 0;
        if (!json_is_object(nets))
                return -EBADMSG;
        if (json_object_size(nets) > DOCKER_MAX_ATTACHMENTS)
                return -E2BIG;
        c->attachments = calloc(json_object_size(nets) ? json_object_size(nets) : 1,
                                sizeof(DockerAttachment));
        if (!c->attachments)
                return -ENOMEM;
        json_object_foreach(nets, name, v) {
                DockerAttachment *a = &c->attachments[c->n_attachments];
                const char *id;

                if (!json_is_object(v))
                        return -EBADMSG;
                if (strlen(name) == 0 || strlen(name) > DOCKER_MAX_NAME)
                        return -E2BIG;
                a->network = strdup(name);
                c->n_attachments++;
                if (!a->network)
                        return -ENOMEM;
                k = get_string(v, "NetworkID", DOCKER_ID_LEN, &id);
                if (k == 0 && docker_id_valid(id))
                        memcpy(a->network_id, id, DOCKER_ID_LEN + 1);
                else if (k != -ENOENT && !(k == 0 && id[0] == 0))
                        return -EBADMSG;
                k = parse_address(v, "IPAddress", AF_INET, &a->ipv4);
                if (k < 0)
                        return k;
                a->has_ipv4 = k > 0;
                k = parse_address(v, "GlobalIPv6Address", AF_INET6, &a->ipv6);
                if (k < 0)
                        return k;
                a->has_ipv6 = k > 0;
        }
        return 0;
}

static int parse_proto(const char *s, uint8_t *ret) {
        if (streq(s, "tcp"))
                *ret = IPPROTO_TCP;
        else if (streq(s, "udp"))
                *ret = IPPROTO_UDP;
        else if (streq(s, "sctp"))
                *ret = IPPROTO_SCTP;
        else
                return -EBADMSG;
        return 0;
}

static int parse_ports(json_t *arr, DockerContainer *c) {
        json_t *v;
        size_t i;

        if (!arr || json_is_null(arr))
                return 0;
        if (!json_is_array(arr))
                return -EBADMSG;
        if (json_array_size(arr) > DOCKER_MAX_PORTS)
                return -E2BIG;
        c->ports = calloc(json_array_size(arr) ? json_array_size(arr) : 1, sizeof(DockerPort));
        if (!c->ports)
                return -ENOMEM;
        json_array_foreach(arr, i, v) {
                DockerPort *p = &c->ports[c->n_ports];
                json_int_t n;
                const char *s;
                uint8_t buf[16];
                int k;

                if (!json_is_object(v))
                        return -EBADMSG;
                if (get_uint(v, "PrivatePort", 65535, &n) < 0 || n == 0)
                        return -EBADMSG;
                p->container_port = (uint16_t) n;
                if (get_string(v, "Type", 16, &s) < 0 || parse_proto(s, &p->proto) < 0)
                        return -EBADMSG;
                k = get_uint(v, "PublicPort", 65535, &n);
                if (k == -ENOENT) {
                        c->n_ports++;
                        continue;
                }
                if (k < 0 || n == 0)
                        return -EBADMSG;
                p->host_port = (uint16_t) n;
                k = get_string(v, "IP", sizeof(p->host_ip) - 1, &s);
                if (k == -ENOENT || (k == 0 && s[0] == 0))
                        p->host_family = AF_UNSPEC;
                else if (k < 0)
                        return -EBADMSG;
                else if (inet_pton(AF_INET, s, buf) == 1)
                        p->host_family = AF_INET;
                else if (inet_pton(AF_INET6, s, buf) == 1)
                        p->host_family = AF_INET6;
                else
                        return -EBADMSG;
                if (k == 0)
                        snprintf(p->host_ip, sizeof(p->host_ip), "%s", s);
                c->n_ports++;
        }
        return 0;
}

static int parse_container(json_t *obj, DockerContainer *c) {
        json_t *names;
        const char *id, *name;
        int k;

        if (!json_is_object(obj))
                return -EBADMSG;
        if (get_string(obj, "Id", DOCKER_ID_LEN, &id) < 0 || !docker_id_valid(id))
                return -EBADMSG;
        memcpy(c->id, id, DOCKER_ID_LEN + 1);

        /* Names: ["/name"] (a linked container also has "/other/alias": the first is its own). */
        names = json_object_get(obj, "Names");
        if (!json_is_array(names) || json_array_size(names) == 0 ||
            json_array_size(names) > DOCKER_MAX_ATTACHMENTS ||
            !json_is_string(json_array_get(names, 0)))
                return -EBADMSG;
        name = json_string_value(json_array_get(names, 0));
        if (name[0] == '/')
                name++;
        if (name[0] == 0 || strlen(name) > DOCKER_MAX_NAME)
                return -E2BIG;
        c->name = strdup(name);
        if (!c->name)
                return -ENOMEM;
        if ((k = dup_string(obj, "Image", DOCKER_MAX_STRING, false, &c->image)) < 0 ||
            (k = dup_string(obj, "State", DOCKER_MAX_STRING, false, &c->state)) < 0 ||
            (k = parse_labels(json_object_get(obj, "Labels"), c)) < 0 ||
            (k = parse_attachments(json_object_get(obj, "NetworkSettings"), c)) < 0 ||
            (k = parse_ports(json_object_get(obj, "Ports"), c)) < 0)
                return k;
        return 0;
}

int docker_parse_containers(const void *data, size_t size, DockerInventory *ret) {
        DockerInventory inv = {};
        json_t *root = NULL, *v;
        size_t i;
        int k;

        k = load_array(data, size, DOCKER_MAX_CONTAINERS, &root);
        if (k < 0)
                return k;
        json_array_foreach(root, i, v) {
                DockerContainer c = {};
                const char *id;

                if (!json_is_object(v)) {
                        k = -EBADMSG;
                        goto fail;
                }
                k = parse_container(v, &c);
                if (k == -ENOMEM) {
                        docker_container_done(&c);
                        goto fail;
                }
                if (k < 0) {
                        /* One hostile container does not blind the agent to the others: it is
                         * left out, so its addresses are in no allow set. */
                        if (inv.n_refused++ == 0 && get_string(v, "Id", DOCKER_ID_LEN, &id) == 0 &&
                            docker_id_valid(id))
                                memcpy(inv.refused_id, id, DOCKER_ID_LEN + 1);
                        docker_container_done(&c);
                        continue;
                }
                k = ARRAY_GROW(inv.containers, inv.allocated, inv.n_containers + 1,
                               DOCKER_MAX_CONTAINERS);
                if (k < 0) {
                        docker_container_done(&c);
                        goto fail;
                }
                inv.containers[inv.n_containers++] = c;
        }
        json_decref(root);
        *ret = inv;
        return 0;
fail:
        json_decref(root);
        docker_inventory_done(&inv);
        return k;
}

void docker_networks_done(DockerNetworks *nets) {
        if (!nets)
                return;
        for (size_t i = 0; i < nets->n_networks; i++) {
                free(nets->networks[i].name);
                free(nets->networks[i].driver);
        }
        free(nets->networks);
        *nets = (DockerNetworks) {};
}

/* "172.18.0.0/16" (host bits must be zero, as Docker writes subnets). */
static int parse_subnet(const char *s, DockerSubnet *ret) {
        char buf[64], *slash, *end;
        unsigned long prefix;
        int family;

        if (strlen(s) >= sizeof(buf))
                return -EBADMSG;
        strcpy(buf, s);
        slash = strchr(buf, '/');
        if (!slash)
                return -EBADMSG;
        *slash = 0;
        family = strchr(buf, ':') ? AF_INET6 : AF_INET;
        if (inet_pton(family, buf, ret->addr) != 1)
                return -EBADMSG;
        errno = 0;
        prefix = strtoul(slash + 1, &end, 10);
        if (errno || end == slash + 1 || *end || prefix > (family == AF_INET ? 32u : 128u))
                return -EBADMSG;
        for (unsigned b = (unsigned) prefix; b < (family == AF_INET ? 32u : 128u); b++)
                if (ret->addr[b / 8] & (0x80u >> (b % 8)))
                        return -EBADMSG;
        ret->family = family;
        ret->prefix = (uint8_t) prefix;
        return 0;
}

static int parse_network(json_t *obj, DockerNetwork *n) {
        json_t *ipam, *config, *v;
        const char *id, *s;
        size_t i;
        int k;

        if (get_string(obj, "Id", DOCKER_ID_LEN, &id) < 0 || !docker_id_valid(id))
                return -EBADMSG;
        memcpy(n->id, id, DOCKER_ID_LEN + 1);
        if ((k = dup_string(obj, "Name", DOCKER_MAX_NAME, true, &n->name)) < 0 ||
            (k = dup_string(obj, "Driver", DOCKER_MAX_STRING, false, &n->driver)) < 0)
                return k;
        v = json_object_get(obj, "Internal");
        if (v && !json_is_boolean(v) && !json_is_null(v))
                return -EBADMSG;
        n->internal = json_is_true(v);
        ipam = json_object_get(obj, "IPAM");
        if (!ipam || json_is_null(ipam))
                return 0;
        if (!json_is_object(ipam))
                return -EBADMSG;
        config = json_object_get(ipam, "Config");
        if (!config || json_is_null(config))
                return 0;
        if (!json_is_array(config))
                return -EBADMSG;
        if (json_array_size(config) > DOCKER_MAX_SUBNETS)
                return -E2BIG;
        json_array_foreach(config, i, v) {
                DockerSubnet *sn = &n->subnets[n->n_subnets];

                if (!json_is_object(v))
                        return -EBADMSG;
                k = get_string(v, "Subnet", 64, &s);
                if (k == -ENOENT)
                        continue;
                if (k < 0 || parse_subnet(s, sn) < 0)
                        return -EBADMSG;
                k = get_string(v, "Gateway", 64, &s);
                if (k == 0 && s[0]) {
                        if (inet_pton(sn->family, s, sn->gateway) != 1)
                                return -EBADMSG;
                        sn->has_gateway = true;
                } else if (k < 0 && k != -ENOENT)
                        return -EBADMSG;
                n->n_subnets++;
        }
        return 0;
}

int docker_parse_networks(const void *data, size_t size, DockerNetworks *ret) {
        DockerNetworks nets = {};
        json_t *root = NULL, *v;
        size_t i;
        int k;

        k = load_array(data, size, DOCKER_MAX_NETWORKS, &root);
        if (k < 0)
                return k;
        json_array_foreach(root, i, v) {
                DockerNetwork n = {};

                if (!json_is_object(v)) {
                        k = -EBADMSG;
                        goto fail;
                }
                k = parse_network(v, &n);
                if (k >= 0)
                        k = ARRAY_GROW(nets.networks, nets.allocated, nets.n_networks + 1,
                                       DOCKER_MAX_NETWORKS);
                if (k < 0) {
                        free(n.name);
                        free(n.driver);
                        if (k == -ENOMEM)
                                goto fail;
                        nets.n_refused++;
                        continue;
                }
                nets.networks[nets.n_networks++] = n;
        }
        json_decref(root);
        *ret = nets;
        return 0;
fail:
        json_decref(root);
        docker_networks_done(&nets);
        return k;
}

int docker_parse_event(const void *data, size_t size, DockerEvent *ret) {
        static const char *const container_actions[] = {
                "create", "start", "restart", "die", "stop", "kill", "destroy",
                "rename", "pause", "unpause", "update", "oom",
        };
        DockerEvent ev = {};
        json_t *root = NULL, *actor, *attrs;
        const char *type, *action, *id;
        json_int_t t;
        int k;

        k = load(data, size, DOCKER_MAX_EVENT, &root);
        if (k < 0)
                return k;
        k = -EBADMSG;
        if (!json_is_object(root) || get_string(root, "Type", 32, &type) < 0 ||
            get_string(root, "Action", 256, &action) < 0)
                goto out;
        actor = json_object_get(root, "Actor");
        if (!json_is_object(actor) || get_string(actor, "ID", 256, &id) < 0)
                goto out;
        attrs = json_object_get(actor, "Attributes");
        if (attrs && !json_is_object(attrs) && !json_is_null(attrs))
                goto out;
        snprintf(ev.action, sizeof(ev.action), "%s", action);
        if (get_uint(root, "timeNano", INT64_MAX, &t) == 0)
                ev.time_nsec = (uint64_t) t;

        if (streq(type, "container")) {
                for (size_t i = 0; i < ELEMENTSOF(container_actions); i++)
                        if (streq(action, container_actions[i])) {
                                if (!docker_id_valid(id))
                                        goto out;
                                ev.kind = DOCKER_EVENT_CONTAINER;
                                memcpy(ev.container_id, id, DOCKER_ID_LEN + 1);
                                break;
                        }
        } else if (streq(type, "network")) {
                const char *cid;

                if (streq(action, "connect") || streq(action, "disconnect")) {
                        if (!json_is_object(attrs) ||
                            get_string(attrs, "container", DOCKER_ID_LEN, &cid) < 0 ||
                            !docker_id_valid(cid))
                                goto out;
                        memcpy(ev.container_id, cid, DOCKER_ID_LEN + 1);
                        ev.kind = DOCKER_EVENT_NETWORK;
                } else if (streq(action, "create") || streq(action, "destroy") ||
                           streq(action, "remove"))
                        ev.kind = DOCKER_EVENT_NETWORK;
        }
        *ret = ev;
        k = 0;
out:
        json_decref(root);
        return k;
}

int docker_container_copy(const DockerContainer *c, DockerContainer *ret) {
        DockerContainer n = { .n_attachments = 0 };

        memcpy(n.id, c->id, sizeof(n.id));
        n.name = strdup(c->name);
        n.image = strdup(c->image ? c->image : "");
        n.state = strdup(c->state ? c->state : "");
        n.labels = calloc(c->n_labels ? c->n_labels : 1, sizeof(*n.labels));
        n.attachments = calloc(c->n_attachments ? c->n_attachments : 1, sizeof(*n.attachments));
        n.ports = calloc(c->n_ports ? c->n_ports : 1, sizeof(*n.ports));
        if (!n.name || !n.image || !n.state || !n.labels || !n.attachments || !n.ports)
                goto fail;
        for (size_t i = 0; i < c->n_labels; i++) {
                n.labels[i].key = strdup(c->labels[i].key);
                n.labels[i].value = strdup(c->labels[i].value);
                n.n_labels++;
                if (!n.labels[i].key || !n.labels[i].value)
                        goto fail;
        }
        for (size_t i = 0; i < c->n_attachments; i++) {
                n.attachments[i] = c->attachments[i];
                n.attachments[i].network = strdup(c->attachments[i].network);
                n.n_attachments++;
                if (!n.attachments[i].network)
                        goto fail;
        }
        if (c->n_ports > 0)
                memcpy(n.ports, c->ports, c->n_ports * sizeof(*n.ports));
        n.n_ports = c->n_ports;
        *ret = n;
        return 0;
fail:
        docker_container_done(&n);
        return -ENOMEM;
}

const char *docker_container_label(const DockerContainer *c, const char *key) {
        for (size_t i = 0; i < c->n_labels; i++)
                if (streq(c->labels[i].key, key))
                        return c->labels[i].value;
        return NULL;
}

bool docker_container_running(const DockerContainer *c) {
        /* "restarting" and "paused" keep their addresses but serve nothing; only a running
         * container needs allow elements. */
        return c->state && streq(c->state, "running");
}
