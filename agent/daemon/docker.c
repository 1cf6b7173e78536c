/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The Docker client of the daemon: libcurl over the Engine's unix socket, driven by the
 * daemon's one sd-event loop through the curl multi socket API (no threads, nothing blocks).
 *
 * Connect: GET /networks and GET /containers/json, then the GET /events stream (since the
 * time the listing started, so nothing between the two is missed). An event about a container
 * (start, die, stop, restart, rename, network connect/disconnect...) re-reads that container
 * with GET /containers/json?filters={"id":[ID]}; the inventory then becomes new Endpoints. When
 * only container addresses changed, each changed address is compiled on its own (RulesetIndex)
 * and its set elements are removed and added with nft_update_elements(); the target ruleset is
 * patched to match. A change of policy, networks or published ports compiles everything again
 * and nft_update() sends only the elements that differ: no reload, no other rule moves.
 *
 * Docker down or restarting: the stream ends or the socket refuses; the rules stay exactly as
 * they are (the kernel keeps them, we change nothing), and the client reconnects with backoff
 * and resyncs the whole inventory. A container that matches no service is reported as
 * untrusted and gets no address in any allow set.
 */
#include "ceredis.h"

#include "curl-event.h"
#include "daemon.h"
#include "docker.h"
#include "docker-api.h"
#include "docker-match.h"
#include "inventory.h"
#include "policy.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <inttypes.h>
#include <sys/socket.h>
#include <time.h>

#define DOCKER_API "http://localhost/v1.41"
#define DOCKER_REQUEST_TIMEOUT_MS 10000L
#define DOCKER_RETRY_MIN_USEC (500u * 1000u)
#define DOCKER_RETRY_MAX_USEC (30u * 1000u * 1000u)
#define DOCKER_REBUILD_COALESCE_USEC 2000u /* a burst of answers -> one batch */
#define DOCKER_REBUILD_RETRY_USEC (1000u * 1000u)
#define DOCKER_MAX_INFLIGHT 256u /* container refreshes at once; more: resync instead */

typedef enum RequestKind {
        REQUEST_NETWORKS,
        REQUEST_CONTAINERS,
        REQUEST_CONTAINER, /* one container, after an event */
        REQUEST_EVENTS,
} RequestKind;

typedef struct Request Request;
struct Request {
        Docker *docker;
        RequestKind kind;
        CURL *easy;
        char *buf; /* the answer (events: the current line) */
        size_t len, allocated, max;
        bool overflow; /* events: skipping a line past the cap */
        char container_id[DOCKER_ID_LEN + 1];
        Request *next;
};

/* What the agent knows about one running (or stopped but listed) container. */
typedef struct Entry {
        DockerContainer c;
        DockerMatch m;
} Entry;

typedef enum DockerState {
        DOCKER_DISCONNECTED,
        DOCKER_SYNCING,   /* networks + containers requested */
        DOCKER_STREAMING, /* following /events */
} DockerState;

struct Docker {
        Context *ctx;
        char *socket_path;
        CurlEvent *curl;
        sd_event_source *retry_source;   /* reconnect with backoff */
        sd_event_source *rebuild_source; /* coalesced ruleset update */
        Request *requests;
        DockerState state;
        unsigned failures;
        bool reported_down;
        bool sync_networks_done, sync_containers_done;
        uint64_t since; /* realtime seconds: where the events stream starts */
        /* Docker's timeNano of the first and last events not yet answered by an update, and
         * when the last was read, so the ruleset-update event tells how long an event took to
         * become rules (0: none). */
        uint64_t event_first_nsec, event_last_nsec, event_rx_nsec;

        Entry *entries;
        size_t n_entries, allocated_entries;
        DockerNetworks nets;
        /* Container refreshes in flight, and those asked again while in flight. */
        char (*again)[DOCKER_ID_LEN + 1];
        size_t n_again, allocated_again;
        /* What the events stream asked for, acted on once curl has returned to us (curl's
         * callbacks must not add or remove transfers). */
        char (*pending)[DOCKER_ID_LEN + 1];
        size_t n_pending, allocated_pending;
        bool pending_resync, pending_networks;
        bool synced; /* an inventory was listed at least once */

        Policy *policy; /* parsed from the applied blob, for matching and compiling */
        char policy_sha256[65];
        size_t host;
        Endpoints *endpoints;
        /* The ruleset last compiled from `endpoints` (identity only: the target owns it), and
         * the index of `policy` for container deltas, built once per policy and host. */
        const Ruleset *compiled;
        RulesetIndex *index;
        char index_sha256[65];
        size_t index_host;
};

static uint64_t now_usec(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000u + (uint64_t) ts.tv_nsec / 1000u;
}

/* Wall-clock nanoseconds: comparable with Docker's event timeNano. */
static uint64_t realtime_nsec(void) {
        struct timespec ts;

        clock_gettime(CLOCK_REALTIME, &ts);
        return (uint64_t) ts.tv_sec * 1000000000u + (uint64_t) ts.tv_nsec;
}

static void docker_report(Docker *d, const char *event, json_t *fields) {
        if (d->ctx->reporter)
                (void) reporter_emit(d->ctx->reporter, event, fields);
        else if (fields)
                json_decref(fields);
}

int docker_client_socket_path(const char *url, char **ret) {
        const char *p;

        if (streq(url, DOCKER_HOST_NONE)) {
                *ret = NULL;
                return 0;
        }
        if (strncmp(url, "unix://", 7) != 0)
                return -EINVAL;
        p = url + 7;
        if (p[0] != '/' || strlen(p) >= 108) /* sun_path */
                return -EINVAL;
        *ret = strdup(p);
        return *ret ? 0 : -ENOMEM;
}

/* ---- requests -------------------------------------------------------------------------------- */

static void request_free(Request *r) {
        if (!r)
                return;
        if (r->easy) {
                curl_event_remove(r->docker->curl, r->easy);
                curl_easy_cleanup(r->easy);
        }
        free(r->buf);
        free(r);
}

static void request_unlink(Docker *d, Request *r) {
        for (Request **p = &d->requests; *p; p = &(*p)->next)
                if (*p == r) {
                        *p = r->next;
                        return;
                }
}

static void requests_abort(Docker *d) {
        while (d->requests) {
                Request *r = d->requests;
                d->requests = r->next;
                request_free(r);
        }
        d->n_again = 0;
}

static void handle_event_line(Docker *d, const char *line, size_t len);

static size_t on_write(char *data, size_t size, size_t nmemb, void *userdata) {
        Request *r = userdata;
        size_t n = size * nmemb;

        if (r->kind != REQUEST_EVENTS) {
                if (n > r->max - r->len || ARRAY_GROW(r->buf, r->allocated, r->len + n + 1, r->max + 1) < 0)
                        return 0; /* past the cap: curl fails the transfer */
                memcpy(r->buf + r->len, data, n);
                r->len += n;
                r->buf[r->len] = 0;
                return n;
        }
        /* The stream: one JSON object per line. A line past the cap is skipped, and since an
         * event may have been lost with it, the inventory is listed again. */
        for (size_t i = 0; i < n;) {
                char *nl = memchr(data + i, '\n', n - i);
                size_t chunk = (nl ? (size_t) (nl - (data + i)) : n - i);

                if (!r->overflow) {
                        if (chunk > r->max - r->len ||
                            ARRAY_GROW(r->buf, r->allocated, r->len + chunk + 1, r->max + 1) < 0) {
                                r->overflow = true;
                                r->len = 0;
                        } else {
                                memcpy(r->buf + r->len, data + i, chunk);
                                r->len += chunk;
                        }
                }
                i += chunk;
                if (!nl)
                        break;
                i++;
                if (r->overflow) {
                        r->overflow = false;
                        handle_event_line(r->docker, NULL, 0);
                } else if (r->len > 0)
                        handle_event_line(r->docker, r->buf, r->len);
                r->len = 0;
        }
        return n;
}

static int request_start(Docker *d, RequestKind kind, const char *path, const char *container_id) {
        _cleanup_free_ char *url = NULL;
        Request *r;
        CURLcode cc;

        if (asprintf(&url, DOCKER_API "%s", path) < 0)
                return -ENOMEM;
        r = calloc(1, sizeof(*r));
        if (!r)
                return -ENOMEM;
        r->docker = d;
        r->kind = kind;
        r->max = kind == REQUEST_EVENTS ? DOCKER_MAX_EVENT : DOCKER_MAX_ANSWER;
        if (container_id)
                snprintf(r->container_id, sizeof(r->container_id), "%s", container_id);
        r->easy = curl_easy_init();
        if (!r->easy) {
                free(r);
                return -ENOMEM;
        }
        cc = curl_easy_setopt(r->easy, CURLOPT_URL, url);
        if (cc == CURLE_OK)
                cc = curl_easy_setopt(r->easy, CURLOPT_UNIX_SOCKET_PATH, d->socket_path);
        if (cc == CURLE_OK)
                cc = curl_easy_setopt(r->easy, CURLOPT_PROTOCOLS_STR, "http");
        if (cc == CURLE_OK)
                cc = curl_easy_setopt(r->easy, CURLOPT_WRITEFUNCTION, on_write);
        if (cc == CURLE_OK)
                cc = curl_easy_setopt(r->easy, CURLOPT_WRITEDATA, r);
        if (cc == CURLE_OK)
                cc = curl_easy_setopt(r->easy, CURLOPT_PRIVATE, r);
        if (cc == CURLE_OK)
                cc = curl_easy_setopt(r->easy, CURLOPT_CONNECTTIMEOUT_MS, DOCKER_REQUEST_TIMEOUT_MS);
        /* The stream may be idle for hours; the answers must come quickly. */
        if (cc == CURLE_OK && kind != REQUEST_EVENTS)
                cc = curl_easy_setopt(r->easy, CURLOPT_TIMEOUT_MS, DOCKER_REQUEST_TIMEOUT_MS);
        if (cc != CURLE_OK || curl_event_add(d->curl, r->easy) < 0) {
                curl_easy_cleanup(r->easy);
                free(r);
                return -ENOMEM;
        }
        r->next = d->requests;
        d->requests = r;
        return 0;
}

/* ---- policy and inventory ---------------------------------------------------------------- */

/* The policy the enforcer's target was compiled from, parsed once per change of target. */
static int ensure_policy(Docker *d, const char *sha256, const char *host, char *err,
                         size_t err_size) {
        Context *c = d->ctx;
        _cleanup_free_ char *data = NULL;
        _cleanup_(policy_freep) Policy *p = NULL;
        PolicyError perr = {};
        const char *path = c->record && c->record->policy_path ? c->record->policy_path
                                                               : c->policy_path;
        ssize_t h;
        size_t size;
        int k;

        if (d->policy && streq(d->policy_sha256, sha256))
                goto host;
        k = state_blob_read(c->state_dir, sha256, POLICY_MAX_FILE_SIZE, &data, &size);
        if (k < 0) {
                snprintf(err, err_size, "%s: the recorded policy %.12s cannot be read: %s",
                         c->state_dir, sha256, strerror(-k));
                return k;
        }
        k = policy_parse(path, data, size, &p, &perr);
        if (k < 0) {
                policy_error_format(path, &perr, err, err_size);
                return k;
        }
        policy_free(d->policy);
        d->policy = TAKE_PTR(p);
        snprintf(d->policy_sha256, sizeof(d->policy_sha256), "%s", sha256);
host:
        h = host ? policy_find_host(d->policy, host) : (d->policy->n_hosts == 1 ? 0 : -ENOENT);
        if (h < 0) {
                snprintf(err, err_size, "%s: no host \"%s\" in the policy", path, host ? host : "?");
                return -ENOENT;
        }
        d->host = (size_t) h;
        return 0;
}

static void address_cidr(int family, const void *addr, PolicyCidr *ret) {
        *ret = (PolicyCidr) { .family = family, .prefix = family == AF_INET ? 32 : 128 };
        memcpy(ret->addr.bytes, addr, family == AF_INET ? 4 : 16);
}

/* The inventory as Endpoints: addresses and published ports of every running container of a
 * service of this host. cidr-matched services have their addresses from the policy. */
static int build_endpoints(Docker *d, Endpoints **ret) {
        _cleanup_(endpoints_freep) Endpoints *e = NULL;
        const Policy *p = d->policy;
        int k;

        k = endpoints_new(&e);
        if (k < 0)
                return k;
        /* Bridges route through this host's netfilter; host/none/macvlan networks do not. */
        for (size_t i = 0; i < d->nets.n_networks; i++) {
                const DockerNetwork *n = &d->nets.networks[i];

                if (!n->driver || !streq(n->driver, "bridge"))
                        continue;
                for (size_t j = 0; j < n->n_subnets; j++) {
                        const DockerSubnet *sn = &n->subnets[j];
                        PolicyCidr net = { .family = sn->family, .prefix = sn->prefix }, gw;

                        memcpy(net.addr.bytes, sn->addr, sn->family == AF_INET ? 4 : 16);
                        if (sn->has_gateway)
                                address_cidr(sn->family, sn->gateway, &gw);
                        else {
                                /* Docker lists a gateway only when the compose file chose one;
                                 * its default IPAM takes the subnet's first address. */
                                size_t last = sn->family == AF_INET ? 3 : 15;
                                address_cidr(sn->family, sn->addr, &gw);
                                if (net.prefix < (sn->family == AF_INET ? 31 : 127))
                                        gw.addr.bytes[last] |= 1;
                        }
                        k = endpoints_add_network(e, &net, &gw);
                        if (k < 0)
                                return k;
                }
        }
        for (size_t i = 0; i < d->n_entries; i++) {
                const Entry *x = &d->entries[i];
                const PolicyService *s;

                if (x->m.service < 0 || !docker_container_running(&x->c))
                        continue;
                s = &p->services[x->m.service];
                if (s->match.kind == POLICY_MATCH_CIDR)
                        continue;
                for (size_t a = 0; a < x->c.n_attachments; a++) {
                        const DockerAttachment *at = &x->c.attachments[a];
                        PolicyCidr cidr;

                        if (at->has_ipv4) {
                                address_cidr(AF_INET, &at->ipv4, &cidr);
                                if ((k = endpoints_add(e, s->name, &cidr)) < 0)
                                        return k;
                        }
                        if (at->has_ipv6) {
                                address_cidr(AF_INET6, &at->ipv6, &cidr);
                                if ((k = endpoints_add(e, s->name, &cidr)) < 0)
                                        return k;
                        }
                }
                for (size_t j = 0; j < x->c.n_ports; j++) {
                        const DockerPort *port = &x->c.ports[j];

                        if (port->host_port == 0 ||
                            (port->proto != IPPROTO_TCP && port->proto != IPPROTO_UDP))
                                continue;
                        k = endpoints_add_published(e, s->name, port->proto, port->host_port,
                                                    port->container_port);
                        if (k < 0)
                                return k;
                }
        }
        *ret = TAKE_PTR(e);
        return 0;
}

/* The target's policy, every container matched again (the policy may have changed), and the
 * inventory as Endpoints. */
static int inventory_endpoints(Docker *d, const char *sha256, const char *host, Endpoints **ret,
                               char *err, size_t err_size) {
        int k;

        k = ensure_policy(d, sha256, host, err, err_size);
        if (k < 0)
                return k;
        for (size_t i = 0; i < d->n_entries; i++)
                docker_match_container(d->policy, d->host, &d->entries[i].c, &d->entries[i].m);
        k = build_endpoints(d, ret);
        if (k < 0)
                snprintf(err, err_size, "building endpoints from Docker: %s", strerror(-k));
        return k;
}

/* Compile the policy with `e` and keep `e` as the endpoints of the result. */
static int compile_endpoints(Docker *d, const char *host, Endpoints **e, Ruleset **ret, char *err,
                             size_t err_size) {
        RulesetOptions o = { .host = host, .nflog_group = d->ctx->nflog_group };
        int k;

        k = ruleset_compile(d->policy, *e, &o, ret, err, err_size);
        if (k < 0)
                return k;
        endpoints_free(d->endpoints);
        d->endpoints = TAKE_PTR(*e);
        d->compiled = *ret;
        return 0;
}

static int compile_with_inventory(Docker *d, const char *sha256, const char *host,
                                  Ruleset **ret, char *err, size_t err_size) {
        _cleanup_(endpoints_freep) Endpoints *e = NULL;
        int k;

        k = inventory_endpoints(d, sha256, host, &e, err, err_size);
        if (k < 0)
                return k;
        return compile_endpoints(d, host, &e, ret, err, err_size);
}

int docker_client_amend(Docker *d, EnforceTarget *t, char *err, size_t err_size) {
        Ruleset *r;
        int k;

        if (!d || !d->synced)
                return 0; /* nothing known yet: the first sync will update the kernel */
        k = compile_with_inventory(d, t->sha256, t->host, &r, err, err_size);
        if (k < 0)
                return k;
        ruleset_free(t->ruleset);
        t->ruleset = r;
        return 0;
}

const Endpoints *docker_client_endpoints(const Docker *d) {
        return d ? d->endpoints : NULL;
}

void docker_client_save_inventory(Docker *d) {
        Context *c = d->ctx;
        int k;

        if (d->synced && d->endpoints && c->target.sha256[0])
                k = inventory_save(c->state_dir, c->target.sha256, c->netns, d->endpoints);
        else
                k = inventory_remove(c->state_dir);
        if (k < 0)
                log_warning("%s/%s: cannot record Docker's containers (%s): `ceredisctl verify` "
                            "will report them as drift",
                            c->state_dir, STATE_INVENTORY, strerror(-k));
}

static json_t *container_addresses(const DockerContainer *c) {
        json_t *a = json_array();
        char buf[INET6_ADDRSTRLEN];

        for (size_t i = 0; a && i < c->n_attachments; i++) {
                if (c->attachments[i].has_ipv4 &&
                    inet_ntop(AF_INET, &c->attachments[i].ipv4, buf, sizeof(buf)))
                        (void) json_array_append_new(a, json_string(buf));
                if (c->attachments[i].has_ipv6 &&
                    inet_ntop(AF_INET6, &c->attachments[i].ipv6, buf, sizeof(buf)))
                        (void) json_array_append_new(a, json_string(buf));
        }
        return a;
}

/* Say what the agent makes of a container that appeared or changed. */
static void report_container(Docker *d, const Entry *x, const char *action) {
        const Policy *p = d->policy;
        const char *service = x->m.service >= 0 ? p->services[x->m.service].name : NULL;
        json_t *also = json_array();

        for (size_t i = 0; also && i + 1 < x->m.n_matched && i < DOCKER_MATCH_MAX_ALSO; i++)
                (void) json_array_append_new(also, json_string(p->services[x->m.also[i]].name));
        if (!service)
                log_warning("container %s (%.12s, image %s) matches no service of the policy: "
                            "untrusted, it reaches no private service",
                            x->c.name, x->c.id, x->c.image);
        else if (x->m.n_matched > 1)
                log_warning("container %s (%.12s) matches %zu services: it is %s, the first in "
                            "the policy",
                            x->c.name, x->c.id, x->m.n_matched, service);
        docker_report(d, "container",
                      json_pack("{s:s, s:s#, s:s, s:s, s:s?, s:s, s:o, s:o}", "action", action,
                                "id", x->c.id, (int) 12, "name", x->c.name, "image", x->c.image,
                                "service", service, "trust",
                                !service ? "untrusted" : x->m.n_matched > 1 ? "ambiguous" : "matched",
                                "ambiguous_with", also ? also : json_array(), "addresses",
                                container_addresses(&x->c)));
}

/* ---- applying the inventory ---------------------------------------------------------------- */

static void schedule_rebuild(Docker *d, uint64_t delay_usec);

/* One address a service gained or lost between two inventories. */
typedef struct AddrChange {
        const char *service; /* owned by the Endpoints it was read from */
        PolicyCidr addr;
} AddrChange;

/* More changes than this in one rebuild (a resync, a compose up of a large stack): one full
 * compilation is cheaper than that many deltas. */
#define DOCKER_DELTA_MAX 256u

static bool cidr_eq(const PolicyCidr *a, const PolicyCidr *b) {
        return a->family == b->family && a->prefix == b->prefix &&
               memcmp(a->addr.bytes, b->addr.bytes, a->family == AF_INET ? 4 : 16) == 0;
}

static bool change_listed(const AddrChange *list, size_t n, const char *service,
                          const PolicyCidr *a) {
        for (size_t i = 0; i < n; i++)
                if (cidr_eq(&list[i].addr, a) && streq(list[i].service, service))
                        return true;
        return false;
}

static bool published_same(const Endpoints *a, const Endpoints *b, const char *service) {
        const EndpointsPublished *pa, *pb;
        size_t na, nb;

        endpoints_get_published(a, service, &pa, &na);
        endpoints_get_published(b, service, &pb, &nb);
        if (na != nb)
                return false;
        for (size_t i = 0; i < na; i++)
                if (pa[i].proto != pb[i].proto || pa[i].host_port != pb[i].host_port ||
                    pa[i].container_port != pb[i].container_port)
                        return false;
        return true;
}

/* What only a full compilation handles is the same in both: bridge networks (they add
 * elements that are not one container's) and published ports (they add rules' elements on
 * the host side). */
static bool same_frame(const Endpoints *a, const Endpoints *b) {
        const EndpointsNetwork *na, *nb;
        size_t n_a, n_b;

        endpoints_get_networks(a, &na, &n_a);
        endpoints_get_networks(b, &nb, &n_b);
        if (n_a != n_b)
                return false;
        for (size_t i = 0; i < n_a; i++)
                if (!cidr_eq(&na[i].subnet, &nb[i].subnet) || na[i].has_gateway != nb[i].has_gateway ||
                    (na[i].has_gateway && !cidr_eq(&na[i].gateway, &nb[i].gateway)))
                        return false;
        for (size_t i = 0; i < endpoints_n_services(a); i++)
                if (!published_same(a, b, endpoints_service(a, i)))
                        return false;
        for (size_t i = 0; i < endpoints_n_services(b); i++)
                if (!published_same(a, b, endpoints_service(b, i)))
                        return false;
        return true;
}

/* The addresses `a` has and `b` has not, appended to *list. */
static int addresses_missing(const Endpoints *a, const Endpoints *b, AddrChange **list,
                             size_t *n, size_t *allocated) {
        for (size_t i = 0; i < endpoints_n_services(a); i++) {
                const char *service = endpoints_service(a, i);
                const PolicyCidr *x, *y;
                size_t n_x, n_y;

                endpoints_get(a, service, &x, &n_x);
                endpoints_get(b, service, &y, &n_y);
                for (size_t j = 0; j < n_x; j++) {
                        bool found = false;

                        for (size_t l = 0; l < n_y && !found; l++)
                                found = cidr_eq(&x[j], &y[l]);
                        if (found)
                                continue;
                        if (*n >= DOCKER_DELTA_MAX)
                                return -E2BIG;
                        if (ARRAY_GROW(*list, *allocated, *n + 1, DOCKER_DELTA_MAX) < 0)
                                return -ENOMEM;
                        (*list)[(*n)++] = (AddrChange) { .service = service, .addr = x[j] };
                }
        }
        return 0;
}

/* A copy of `e` without the addresses in `skip`. */
static int endpoints_copy_without(const Endpoints *e, const AddrChange *skip, size_t n_skip,
                                  Endpoints **ret) {
        _cleanup_(endpoints_freep) Endpoints *c = NULL;
        const EndpointsNetwork *nets;
        size_t n_nets;
        int k;

        k = endpoints_new(&c);
        if (k < 0)
                return k;
        endpoints_get_networks(e, &nets, &n_nets);
        for (size_t i = 0; i < n_nets; i++) {
                k = endpoints_add_network(c, &nets[i].subnet,
                                          nets[i].has_gateway ? &nets[i].gateway : NULL);
                if (k < 0)
                        return k;
        }
        for (size_t i = 0; i < endpoints_n_services(e); i++) {
                const char *service = endpoints_service(e, i);
                const EndpointsPublished *pub;
                const PolicyCidr *a;
                size_t n_a, n_pub;

                endpoints_get(e, service, &a, &n_a);
                for (size_t j = 0; j < n_a; j++)
                        if (!change_listed(skip, n_skip, service, &a[j]) &&
                            (k = endpoints_add(c, service, &a[j])) < 0)
                                return k;
                endpoints_get_published(e, service, &pub, &n_pub);
                for (size_t j = 0; j < n_pub; j++) {
                        k = endpoints_add_published(c, service, pub[j].proto, pub[j].host_port,
                                                    pub[j].container_port);
                        if (k < 0)
                                return k;
                }
        }
        *ret = TAKE_PTR(c);
        return 0;
}

/* The elements of `changes`, merged into one delta (NULL when there are none). Each address is
 * compiled against `base` plus the changes before it, so that an element pairing two changed
 * addresses (a flow between two new containers) is in exactly one delta: the kernel refuses
 * to delete an element twice. */
static int compile_changes(Docker *d, const Endpoints *base, const AddrChange *changes, size_t n,
                           Ruleset **ret, char *err, size_t err_size) {
        RulesetOptions o = { .host = d->ctx->target.host, .nflog_group = d->ctx->nflog_group,
                             .index = d->index };
        _cleanup_(endpoints_freep) Endpoints *w = NULL;
        _cleanup_(ruleset_freep) Ruleset *all = NULL;
        int k;

        k = n ? endpoints_copy_without(base, NULL, 0, &w) : 0;
        for (size_t i = 0; k >= 0 && i < n; i++) {
                _cleanup_(ruleset_freep) Ruleset *one = NULL;

                k = ruleset_compile_address(d->policy, w, &o, changes[i].service, &changes[i].addr,
                                            &one, err, err_size);
                if (k < 0)
                        break;
                if (!all)
                        all = TAKE_PTR(one);
                else if ((k = ruleset_delta_merge(all, one)) < 0)
                        break;
                k = endpoints_add(w, changes[i].service, &changes[i].addr);
        }
        if (k < 0)
                return k;
        *ret = TAKE_PTR(all);
        return 0;
}

/* The container-event fast path: send only the elements of the addresses that came or went
 * (ruleset_compile_address() with the policy's index, nft_update_elements()) and patch the
 * target ruleset the same way (ruleset_apply_delta()), so that nft_verify() and the next
 * nft_update() still compare with what the kernel holds: no full compilation per event.
 * Returns 1 when done, 0 when this needs a full compilation and nothing was sent (another
 * policy or ruleset, networks or published ports changed, too many changes), a negative errno
 * when an update failed (the target may then differ from the kernel: replace the table). */
static int update_incremental(Docker *d, const Endpoints *e, NftError *nerr, char *err,
                              size_t err_size) {
        Context *c = d->ctx;
        const Endpoints *old = d->endpoints;
        _cleanup_free_ AddrChange *gone = NULL, *came = NULL;
        _cleanup_(endpoints_freep) Endpoints *base = NULL;
        _cleanup_(ruleset_freep) Ruleset *del = NULL, *add = NULL;
        size_t n_gone = 0, n_came = 0, alloc_gone = 0, alloc_came = 0;
        int k;

        if (!old || !d->compiled || d->compiled != c->target.ruleset || !same_frame(old, e))
                return 0;
        if (addresses_missing(old, e, &gone, &n_gone, &alloc_gone) < 0 ||
            addresses_missing(e, old, &came, &n_came, &alloc_came) < 0 ||
            n_gone + n_came > DOCKER_DELTA_MAX)
                return 0;
        if (n_gone + n_came == 0)
                return 1;
        if (!d->index || !streq(d->index_sha256, d->policy_sha256) || d->index_host != d->host) {
                RulesetOptions o = { .host = c->target.host, .nflog_group = c->nflog_group };

                ruleset_index_free(TAKE_PTR(d->index));
                if (ruleset_index_new(d->policy, &o, &d->index, err, err_size) < 0)
                        return 0;
                snprintf(d->index_sha256, sizeof(d->index_sha256), "%s", d->policy_sha256);
                d->index_host = d->host;
        }
        /* The inventory before the changes, without the addresses that went: the base both
         * sets of deltas are compiled against. */
        if (endpoints_copy_without(e, came, n_came, &base) < 0 ||
            compile_changes(d, base, gone, n_gone, &del, err, err_size) < 0 ||
            compile_changes(d, base, came, n_came, &add, err, err_size) < 0)
                return 0;
        /* Deletions first: an address that moved to another container is replaced. */
        if (del) {
                k = nft_update_elements(c->nft, del, false, nerr);
                if (k < 0)
                        return k;
                k = ruleset_apply_delta(c->target.ruleset, del, false);
                if (k < 0)
                        return k;
        }
        if (add) {
                k = nft_update_elements(c->nft, add, true, nerr);
                if (k < 0)
                        return k;
                k = ruleset_apply_delta(c->target.ruleset, add, true);
                if (k < 0)
                        return k;
        }
        return 1;
}

/* Compile the policy with the inventory and send the difference to the kernel in one batch:
 * only the changed addresses' elements when that is all that changed, else the diff of two
 * full compilations (nft_update()), or the whole table when the shape changed. */
static void rebuild(Docker *d) {
        Context *c = d->ctx;
        _cleanup_(ruleset_freep) Ruleset *r = NULL;
        _cleanup_(endpoints_freep) Endpoints *e = NULL;
        NftError nerr = {};
        json_t *fields;
        char err[1024];
        uint64_t t0, t1;
        bool incremental = false, replace = false;
        int k;

        if (c->disabled || !c->target.ruleset || !c->target.sha256[0])
                return; /* the operator stood us down; adopt_state() amends on the way back */
        t0 = now_usec();
        k = inventory_endpoints(d, c->target.sha256, c->target.host, &e, err, sizeof(err));
        if (k >= 0) {
                k = update_incremental(d, e, &nerr, err, sizeof(err));
                if (k > 0) {
                        endpoints_free(d->endpoints);
                        d->endpoints = TAKE_PTR(e);
                        d->compiled = c->target.ruleset;
                        incremental = true;
                        goto done;
                }
                if (k < 0) {
                        enforce_format_nft_error(c->policy_path, k, &nerr, err, sizeof(err));
                        log_warning("incremental container update refused: %s; replacing the "
                                    "table", err);
                        replace = true;
                }
                k = compile_endpoints(d, c->target.host, &e, &r, err, sizeof(err));
        }
        if (k < 0) {
                log_error("cannot compile the policy with Docker's containers: %s; keeping the "
                          "current ruleset", err);
                docker_report(d, "docker", json_pack("{s:s, s:s}", "action", "update-failed",
                                                     "error", err));
                schedule_rebuild(d, DOCKER_REBUILD_RETRY_USEC);
                return;
        }
        /* After a refused incremental update the target may not be what the kernel holds:
         * a diff against it could delete what is not there, so the table is replaced; so it
         * is when the diff itself is refused. */
        k = replace ? -ESTALE : nft_update(c->nft, c->target.ruleset, r, &nerr);
        if (k < 0)
                k = nft_apply(c->nft, r, &nerr);
        if (k < 0) {
                d->compiled = NULL;
                enforce_format_nft_error(c->policy_path, k, &nerr, err, sizeof(err));
                log_error("container update refused: %s; retrying", err);
                docker_report(d, "docker", json_pack("{s:s, s:s}", "action", "update-failed",
                                                     "error", err));
                schedule_rebuild(d, DOCKER_REBUILD_RETRY_USEC);
                return;
        }
        ruleset_free(c->target.ruleset);
        c->target.ruleset = TAKE_PTR(r);
done:
        if (c->watch)
                (void) watch_set_endpoints(c->watch, d->endpoints);
        docker_client_save_inventory(d);
        t1 = now_usec();
        fields = json_pack("{s:s, s:I, s:I, s:b}", "by", "docker", "usec", (json_int_t) (t1 - t0),
                           "commit_nsec", (json_int_t) realtime_nsec(), "incremental",
                           incremental);
        if (fields && d->event_last_nsec) {
                (void) json_object_set_new(fields, "event_first_nsec",
                                           json_integer((json_int_t) d->event_first_nsec));
                (void) json_object_set_new(fields, "event_last_nsec",
                                           json_integer((json_int_t) d->event_last_nsec));
                (void) json_object_set_new(fields, "event_rx_nsec",
                                           json_integer((json_int_t) d->event_rx_nsec));
        }
        d->event_first_nsec = d->event_last_nsec = d->event_rx_nsec = 0;
        docker_report(d, "ruleset-update", fields);
}

static int on_rebuild(sd_event_source *s, uint64_t usec, void *userdata) {
        rebuild(userdata);
        return 0;
}

static void schedule_rebuild(Docker *d, uint64_t delay_usec) {
        uint64_t now;
        int k;

        if (sd_event_now(d->ctx->event, CLOCK_MONOTONIC, &now) < 0)
                return;
        if (!d->rebuild_source) {
                k = sd_event_add_time(d->ctx->event, &d->rebuild_source, CLOCK_MONOTONIC,
                                      now + delay_usec, 0, on_rebuild, d);
                if (k < 0)
                        log_error("cannot schedule a container update: %s", strerror(-k));
                else
                        (void) sd_event_source_set_enabled(d->rebuild_source, SD_EVENT_ONESHOT);
                return;
        }
        int enabled = SD_EVENT_OFF;
        uint64_t armed;
        (void) sd_event_source_get_enabled(d->rebuild_source, &enabled);
        if (enabled != SD_EVENT_OFF && sd_event_source_get_time(d->rebuild_source, &armed) >= 0 &&
            armed <= now + delay_usec)
                return;
        (void) sd_event_source_set_time(d->rebuild_source, now + delay_usec);
        (void) sd_event_source_set_enabled(d->rebuild_source, SD_EVENT_ONESHOT);
}

static ssize_t entry_find(Docker *d, const char *id) {
        for (size_t i = 0; i < d->n_entries; i++)
                if (streq(d->entries[i].c.id, id))
                        return (ssize_t) i;
        return -1;
}

static void entry_remove(Docker *d, size_t i) {
        docker_container_done(&d->entries[i].c);
        d->entries[i] = d->entries[--d->n_entries];
}

static bool same_identity(const Entry *a, const DockerContainer *c, const DockerMatch *m) {
        if (a->m.service != m->service || docker_container_running(&a->c) != docker_container_running(c) ||
            a->c.n_attachments != c->n_attachments || a->c.n_ports != c->n_ports ||
            !streq(a->c.name, c->name))
                return false;
        for (size_t i = 0; i < c->n_attachments; i++)
                if (a->c.attachments[i].has_ipv4 != c->attachments[i].has_ipv4 ||
                    a->c.attachments[i].has_ipv6 != c->attachments[i].has_ipv6 ||
                    memcmp(&a->c.attachments[i].ipv4, &c->attachments[i].ipv4, 4) != 0 ||
                    memcmp(&a->c.attachments[i].ipv6, &c->attachments[i].ipv6, 16) != 0)
                        return false;
        return memcmp(a->c.ports, c->ports, c->n_ports * sizeof(*c->ports)) == 0;
}

/* Take container `c` (moved in) as the current truth about its id. Returns whether anything
 * the ruleset depends on changed. */
static bool inventory_put(Docker *d, DockerContainer *c) {
        DockerMatch m;
        ssize_t i = entry_find(d, c->id);

        docker_match_container(d->policy, d->host, c, &m);
        if (i >= 0 && same_identity(&d->entries[i], c, &m)) {
                docker_container_done(&d->entries[i].c);
                d->entries[i].c = *c;
                *c = (DockerContainer) {};
                return false;
        }
        if (i < 0) {
                if (ARRAY_GROW(d->entries, d->allocated_entries, d->n_entries + 1,
                               DOCKER_MAX_CONTAINERS) < 0) {
                        log_error("too many containers (%zu): %.12s is not tracked",
                                  d->n_entries, c->id);
                        docker_container_done(c);
                        return false;
                }
                i = (ssize_t) d->n_entries++;
                d->entries[i] = (Entry) {};
        } else
                docker_container_done(&d->entries[i].c);
        d->entries[i].c = *c;
        d->entries[i].m = m;
        *c = (DockerContainer) {};
        report_container(d, &d->entries[i],
                         docker_container_running(&d->entries[i].c) ? "running" : "stopped");
        return true;
}

/* ---- answers ----------------------------------------------------------------------------- */

static void connection_lost(Docker *d, const char *why);
static int refresh_container(Docker *d, const char *id);
static void start_sync(Docker *d);

static void on_networks(Docker *d, Request *r) {
        DockerNetworks nets = {};
        int k;

        k = docker_parse_networks(r->buf ? r->buf : "", r->len, &nets);
        if (k < 0) {
                log_error("Docker's network list refused: %s", strerror(-k));
                return;
        }
        docker_networks_done(&d->nets);
        d->nets = nets;
        if (d->state == DOCKER_STREAMING)
                schedule_rebuild(d, DOCKER_REBUILD_COALESCE_USEC);
}

static void on_containers(Docker *d, Request *r) {
        DockerInventory inv = {};
        char err[1024];
        int k;

        k = docker_parse_containers(r->buf ? r->buf : "", r->len, &inv);
        if (k < 0) {
                connection_lost(d, "the container list is not a valid answer");
                return;
        }
        if (inv.n_refused > 0) {
                log_warning("%zu container(s) refused (first %.12s): over a size cap or "
                            "malformed; they are untrusted",
                            inv.n_refused, inv.refused_id[0] ? inv.refused_id : "?");
                docker_report(d, "container",
                              json_pack("{s:s, s:s#, s:I}", "action", "refused", "id",
                                        inv.refused_id, (int) 12, "count",
                                        (json_int_t) inv.n_refused));
        }
        k = ensure_policy(d, d->ctx->target.sha256, d->ctx->target.host, err, sizeof(err));
        if (k < 0) {
                log_error("%s", err);
                docker_inventory_done(&inv);
                return;
        }
        /* The list is the whole truth: drop what it no longer names. */
        for (size_t i = d->n_entries; i-- > 0;) {
                bool listed = false;
                for (size_t j = 0; j < inv.n_containers && !listed; j++)
                        listed = streq(inv.containers[j].id, d->entries[i].c.id);
                if (!listed) {
                        report_container(d, &d->entries[i], "gone");
                        entry_remove(d, i);
                }
        }
        for (size_t j = 0; j < inv.n_containers; j++)
                (void) inventory_put(d, &inv.containers[j]);
        docker_inventory_done(&inv);
}

static void on_container(Docker *d, Request *r) {
        DockerInventory inv = {};
        bool changed = false, found = false;
        char err[1024];
        ssize_t i;
        int k;

        k = docker_parse_containers(r->buf ? r->buf : "", r->len, &inv);
        if (k < 0 || inv.n_refused > 0) {
                /* Not found below, so the agent forgets its addresses: untrusted. */
                log_warning("container %.12s: Docker's answer refused (%s); it is untrusted",
                            r->container_id, k < 0 ? strerror(-k) : "over a cap or malformed");
        }
        if (ensure_policy(d, d->ctx->target.sha256, d->ctx->target.host, err, sizeof(err)) < 0) {
                log_error("%s", err);
                docker_inventory_done(&inv);
                return;
        }
        for (size_t j = 0; j < inv.n_containers; j++)
                if (streq(inv.containers[j].id, r->container_id)) {
                        found = true;
                        changed = inventory_put(d, &inv.containers[j]);
                }
        if (!found && (i = entry_find(d, r->container_id)) >= 0) {
                report_container(d, &d->entries[i], "gone");
                entry_remove(d, (size_t) i);
                changed = true;
        }
        docker_inventory_done(&inv);
        if (changed)
                schedule_rebuild(d, DOCKER_REBUILD_COALESCE_USEC);
}

static bool again_take(Docker *d, const char *id) {
        for (size_t i = 0; i < d->n_again; i++)
                if (streq(d->again[i], id)) {
                        memmove(d->again[i], d->again[i + 1],
                                (d->n_again - i - 1) * sizeof(d->again[0]));
                        d->n_again--;
                        return true;
                }
        return false;
}

static void start_events(Docker *d) {
        char path[256];

        /* Since the listing started: whatever happened between the list and the stream is
         * replayed, and re-reading a container twice is harmless. */
        snprintf(path, sizeof(path),
                 "/events?since=%" PRIu64
                 "&filters=%%7B%%22type%%22%%3A%%5B%%22container%%22%%2C%%22network%%22%%5D%%7D",
                 d->since);
        if (request_start(d, REQUEST_EVENTS, path, NULL) < 0) {
                connection_lost(d, "cannot start the events request");
                return;
        }
        d->state = DOCKER_STREAMING;
        d->synced = true;
        d->failures = 0;
        log_info("Docker at %s: %zu containers, following events", d->socket_path, d->n_entries);
        docker_report(d, "docker", json_pack("{s:s, s:s, s:I}", "action", "connected", "socket",
                                             d->socket_path, "containers",
                                             (json_int_t) d->n_entries));
        d->reported_down = false;
        schedule_rebuild(d, 0);
}

static void request_done(Docker *d, Request *r, CURLcode result) {
        long code = 0;
        char why[256];

        (void) curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &code);
        if (r->kind == REQUEST_EVENTS) {
                snprintf(why, sizeof(why), "the events stream ended (%s, HTTP %ld)",
                         result == CURLE_OK ? "closed by Docker" : curl_easy_strerror(result), code);
                connection_lost(d, why);
                return;
        }
        if (result != CURLE_OK || code != 200) {
                snprintf(why, sizeof(why), "%s: %s (HTTP %ld)",
                         r->kind == REQUEST_NETWORKS ? "listing networks"
                         : r->kind == REQUEST_CONTAINERS ? "listing containers"
                                                         : "reading a container",
                         result != CURLE_OK ? curl_easy_strerror(result) : "refused", code);
                connection_lost(d, why);
                return;
        }
        switch (r->kind) {
        case REQUEST_NETWORKS:
                on_networks(d, r);
                d->sync_networks_done = true;
                break;
        case REQUEST_CONTAINERS:
                on_containers(d, r);
                d->sync_containers_done = true;
                break;
        case REQUEST_CONTAINER:
                on_container(d, r);
                if (again_take(d, r->container_id))
                        (void) refresh_container(d, r->container_id);
                return;
        default:
                return;
        }
        if (d->state == DOCKER_SYNCING && d->sync_networks_done && d->sync_containers_done)
                start_events(d);
        else if (d->state == DOCKER_STREAMING && d->sync_networks_done && d->sync_containers_done)
                schedule_rebuild(d, 0); /* a resync while streaming */
}

static void process_pending(Docker *d);

/* curl returned to the loop: act on what the events stream asked for, then on finished
 * requests. */
static void on_curl_ready(CurlEvent *ce, void *userdata) {
        Docker *d = userdata;
        CURLcode result;
        CURL *easy;

        process_pending(d);

        while (curl_event_next_done(ce, &easy, &result)) {
                Request *r = NULL;

                (void) curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **) &r);
                if (!r)
                        continue;
                request_unlink(d, r);
                request_done(d, r, result);
                /* request_done() may have aborted every request (connection lost); this one
                 * was unlinked first, so it is still ours to free. */
                request_free(r);
        }
}

/* ---- events -------------------------------------------------------------------------------- */

static int refresh_container(Docker *d, const char *id) {
        char path[256];

        for (Request *r = d->requests; r; r = r->next)
                if (r->kind == REQUEST_CONTAINER && streq(r->container_id, id)) {
                        /* One at a time per container, so answers cannot arrive out of order:
                         * ask again when this one is back. */
                        for (size_t i = 0; i < d->n_again; i++)
                                if (streq(d->again[i], id))
                                        return 0;
                        if (ARRAY_GROW(d->again, d->allocated_again, d->n_again + 1,
                                       DOCKER_MAX_INFLIGHT) < 0)
                                return -ENOMEM;
                        memcpy(d->again[d->n_again++], id, DOCKER_ID_LEN + 1);
                        return 0;
                }
        snprintf(path, sizeof(path),
                 "/containers/json?all=1&filters=%%7B%%22id%%22%%3A%%5B%%22%s%%22%%5D%%7D", id);
        return request_start(d, REQUEST_CONTAINER, path, id);
}

static void resync(Docker *d) {
        d->sync_networks_done = d->sync_containers_done = false;
        if (request_start(d, REQUEST_NETWORKS, "/networks", NULL) < 0 ||
            request_start(d, REQUEST_CONTAINERS, "/containers/json?all=1", NULL) < 0)
                connection_lost(d, "cannot start a listing");
}

/* From curl's write callback: only take note. line NULL: a line was lost (past the cap). */
static void handle_event_line(Docker *d, const char *line, size_t len) {
        DockerEvent ev;
        int k;

        if (!line) {
                log_warning("a Docker event longer than %u bytes was skipped: listing everything "
                            "again", DOCKER_MAX_EVENT);
                d->pending_resync = true;
                return;
        }
        k = docker_parse_event(line, len, &ev);
        if (k < 0) {
                log_warning("a Docker event was refused (%s): listing everything again",
                            strerror(-k));
                d->pending_resync = true;
                return;
        }
        if (ev.kind == DOCKER_EVENT_IGNORE)
                return;
        if (ev.time_nsec) {
                if (!d->event_first_nsec)
                        d->event_first_nsec = ev.time_nsec;
                d->event_last_nsec = ev.time_nsec;
                d->event_rx_nsec = realtime_nsec();
        }
        if (ev.kind == DOCKER_EVENT_NETWORK)
                d->pending_networks = true;
        if (!ev.container_id[0])
                return;
        for (size_t i = 0; i < d->n_pending; i++)
                if (streq(d->pending[i], ev.container_id))
                        return;
        if (ARRAY_GROW(d->pending, d->allocated_pending, d->n_pending + 1, DOCKER_MAX_INFLIGHT) < 0) {
                d->pending_resync = true; /* a storm of events: one listing answers them all */
                return;
        }
        memcpy(d->pending[d->n_pending++], ev.container_id, DOCKER_ID_LEN + 1);
}

static void process_pending(Docker *d) {
        if (d->state != DOCKER_STREAMING) {
                d->n_pending = 0;
                d->pending_resync = d->pending_networks = false;
                return;
        }
        if (d->pending_resync) {
                d->n_pending = 0;
                d->pending_resync = d->pending_networks = false;
                resync(d);
                return;
        }
        if (d->pending_networks) {
                d->pending_networks = false;
                if (request_start(d, REQUEST_NETWORKS, "/networks", NULL) < 0)
                        log_error("cannot re-read Docker's networks: %s", strerror(ENOMEM));
        }
        for (size_t i = 0; i < d->n_pending; i++)
                if (refresh_container(d, d->pending[i]) < 0) {
                        d->n_pending = 0;
                        resync(d);
                        return;
                }
        d->n_pending = 0;
}

/* ---- connection ------------------------------------------------------------------------------ */

static int on_retry(sd_event_source *s, uint64_t usec, void *userdata) {
        start_sync(userdata);
        return 0;
}

static void connection_lost(Docker *d, const char *why) {
        uint64_t backoff = DOCKER_RETRY_MIN_USEC;
        int k;

        requests_abort(d);
        d->state = DOCKER_DISCONNECTED;
        for (unsigned i = 0; i < d->failures && backoff < DOCKER_RETRY_MAX_USEC; i++)
                backoff *= 2;
        if (backoff > DOCKER_RETRY_MAX_USEC)
                backoff = DOCKER_RETRY_MAX_USEC;
        d->failures++;
        if (!d->reported_down) {
                log_warning("Docker at %s: %s; the rules stay as they are, reconnecting",
                            d->socket_path, why);
                docker_report(d, "docker", json_pack("{s:s, s:s, s:s}", "action", "disconnected",
                                                     "socket", d->socket_path, "error", why));
                d->reported_down = true;
        }
        k = sd_event_source_set_time_relative(d->retry_source, backoff);
        if (k >= 0)
                k = sd_event_source_set_enabled(d->retry_source, SD_EVENT_ONESHOT);
        if (k < 0)
                log_error("cannot schedule the reconnection to Docker: %s", strerror(-k));
}

static void start_sync(Docker *d) {
        struct timespec ts;

        requests_abort(d);
        clock_gettime(CLOCK_REALTIME, &ts);
        d->since = (uint64_t) ts.tv_sec > 0 ? (uint64_t) ts.tv_sec - 1 : 0;
        d->state = DOCKER_SYNCING;
        resync(d);
}

/* ---- life cycle ------------------------------------------------------------------------------ */

void docker_client_free(Docker *d) {
        if (!d)
                return;
        requests_abort(d);
        curl_event_free(d->curl);
        sd_event_source_disable_unref(d->retry_source);
        sd_event_source_disable_unref(d->rebuild_source);
        ruleset_index_free(d->index);
        for (size_t i = 0; i < d->n_entries; i++)
                docker_container_done(&d->entries[i].c);
        free(d->entries);
        free(d->again);
        free(d->pending);
        docker_networks_done(&d->nets);
        policy_free(d->policy);
        endpoints_free(d->endpoints);
        free(d->socket_path);
        free(d);
}

int docker_client_start(Context *c) {
        Docker *d;
        int k;

        if (!c->docker_host)
                return 0;
        d = calloc(1, sizeof(*d));
        if (!d)
                return -ENOMEM;
        d->ctx = c;
        k = docker_client_socket_path(c->docker_host, &d->socket_path);
        if (k < 0 || !d->socket_path) {
                free(d);
                return k;
        }
        if ((k = curl_event_new(c->event, on_curl_ready, d, &d->curl)) < 0 ||
            (k = sd_event_add_time(c->event, &d->retry_source, CLOCK_MONOTONIC, UINT64_MAX, 0,
                                   on_retry, d)) < 0 ||
            (k = sd_event_source_set_enabled(d->retry_source, SD_EVENT_OFF)) < 0) {
                docker_client_free(d);
                return k;
        }
        c->docker = d;
        log_info("following Docker at %s", d->socket_path);
        start_sync(d);
        return 0;
}
