/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The normalised policy model as JSON. Hosts, zones and services are objects keyed by name, in
 * file order (as in the YAML); flows, forbids and controls are lists. Built with jansson's
 * reference-stealing setters: any allocation failure makes the whole result NULL.
 */
#include "ceredis.h"

#include "policy-internal.h"
#include "policy-json.h"

/* jansson's own json_decrefp() accepts NULL. */
#define _cleanup_json_ _cleanup_(json_decrefp)

/* Setters that remember a failure instead of checking every call. */
static void set(json_t *obj, const char *key, json_t *v, bool *ok) {
        if (!v || json_object_set_new(obj, key, v) < 0)
                *ok = false;
}

static void append(json_t *arr, json_t *v, bool *ok) {
        if (!v || json_array_append_new(arr, v) < 0)
                *ok = false;
}

static json_t *pos_json(PolicyPos pos) {
        char buf[32];

        snprintf(buf, sizeof(buf), "%u:%u", pos.line, pos.column);
        return json_string(buf);
}

static json_t *strv_json(char *const *v, size_t n) {
        json_t *a = json_array();
        bool ok = true;

        for (size_t i = 0; a && i < n; i++)
                append(a, json_string(v[i]), &ok);
        if (!ok) {
                json_decref(a);
                return NULL;
        }
        return a;
}

static json_t *cidrs_json(const PolicyCidr *c, size_t n) {
        json_t *a = json_array();
        bool ok = true;

        for (size_t i = 0; a && i < n; i++) {
                char buf[64];

                if (policy_cidr_format(&c[i], buf, sizeof(buf)) < 0)
                        ok = false;
                else
                        append(a, json_string(buf), &ok);
        }
        if (!ok) {
                json_decref(a);
                return NULL;
        }
        return a;
}

static json_t *host_json(const PolicyHost *h) {
        _cleanup_json_ json_t *o = json_object(), *mgmt = json_array();
        bool ok = o && mgmt;

        if (!ok)
                return NULL;
        set(o, "public_interfaces", strv_json(h->public_interfaces, h->n_public_interfaces), &ok);
        set(o, "private_interfaces", strv_json(h->private_interfaces, h->n_private_interfaces), &ok);
        set(o, "addresses", cidrs_json(h->addresses, h->n_addresses), &ok);
        for (size_t i = 0; i < h->n_management; i++) {
                const PolicyManagement *m = &h->management[i];
                json_t *e = json_object();

                if (e) {
                        set(e, "port", json_integer(m->port), &ok);
                        set(e, "proto", json_string(policy_proto_to_string(m->proto)), &ok);
                        set(e, "from", cidrs_json(m->from, m->n_from), &ok);
                        set(e, "pos", pos_json(m->pos), &ok);
                }
                append(mgmt, e, &ok);
        }
        set(o, "management", TAKE_PTR(mgmt), &ok);
        set(o, "pos", pos_json(h->pos), &ok);
        return ok ? TAKE_PTR(o) : NULL;
}

static json_t *service_json(const Policy *p, const PolicyService *s) {
        _cleanup_json_ json_t *o = json_object(), *match = json_object(), *ports = json_array();
        bool ok = o && match && ports;

        if (!ok)
                return NULL;
        set(o, "zone", json_string(p->zones[s->zone].name), &ok);
        set(o, "host", json_string(p->hosts[s->host].name), &ok);

        if (s->match.kind == POLICY_MATCH_CIDR)
                set(match, "cidr", cidrs_json(s->match.cidrs, s->match.n_cidrs), &ok);
        else if (s->match.kind == POLICY_MATCH_LABEL) {
                char *label = NULL;

                if (asprintf(&label, "%s=%s", s->match.value, s->match.label_value) < 0)
                        ok = false;
                else {
                        set(match, "label", json_string(label), &ok);
                        free(label);
                }
        } else
                set(match, policy_match_kind_to_string(s->match.kind), json_string(s->match.value), &ok);
        set(o, "match", TAKE_PTR(match), &ok);

        for (size_t i = 0; i < s->n_ports; i++) {
                json_t *e = json_object();

                if (e) {
                        set(e, "port", json_integer(s->ports[i].port), &ok);
                        set(e, "proto", json_string(policy_proto_to_string(s->ports[i].proto)), &ok);
                        set(e, "public", json_boolean(s->ports[i].public), &ok);
                }
                append(ports, e, &ok);
        }
        set(o, "ports", TAKE_PTR(ports), &ok);
        set(o, "protocol", json_string(policy_l7_to_string(s->protocol)), &ok);
        set(o, "tags", strv_json(s->tags, s->n_tags), &ok);
        set(o, "pos", pos_json(s->pos), &ok);
        return ok ? TAKE_PTR(o) : NULL;
}

static json_t *endpoint_json(const Policy *p, const PolicyEndpoint *e) {
        _cleanup_json_ json_t *o = json_object(), *services = json_array();
        bool ok = o && services;

        if (!ok)
                return NULL;
        switch (e->kind) {
        case POLICY_SELECT_INTERNET:
                set(o, "selector", json_string("internet"), &ok);
                break;
        case POLICY_SELECT_HOST:
                set(o, "selector", json_string("host"), &ok);
                break;
        case POLICY_SELECT_SERVICE:
                set(o, "selector", json_string(e->name), &ok);
                break;
        case POLICY_SELECT_TAG:
        case POLICY_SELECT_ZONE:
                set(o, "selector", json_pack("{ss}", e->kind == POLICY_SELECT_TAG ? "tag" : "zone", e->name), &ok);
                break;
        }
        for (size_t i = 0; i < e->n_services; i++)
                append(services, json_string(p->services[e->services[i]].name), &ok);
        set(o, "services", TAKE_PTR(services), &ok);
        set(o, "internet", json_boolean(e->internet), &ok);
        set(o, "host", json_boolean(e->host), &ok);
        return ok ? TAKE_PTR(o) : NULL;
}

json_t *policy_to_json(const Policy *p) {
        _cleanup_json_ json_t *root = json_object(), *hosts = json_object(), *zones = json_object(),
                              *services = json_object(), *flows = json_array(), *forbids = json_array(),
                              *controls = json_array();
        bool ok = root && hosts && zones && services && flows && forbids && controls;
        char sha[65];

        if (!ok)
                return NULL;
        policy_sha256_hex(p, sha);
        set(root, "file", json_string(p->path), &ok);
        set(root, "version", json_integer(p->version), &ok);
        set(root, "mode", json_string(policy_mode_to_string(p->mode)), &ok);
        set(root, "sha256", json_string(sha), &ok);

        for (size_t i = 0; i < p->n_hosts; i++)
                set(hosts, p->hosts[i].name, host_json(&p->hosts[i]), &ok);
        set(root, "hosts", TAKE_PTR(hosts), &ok);

        for (size_t i = 0; i < p->n_zones; i++)
                set(zones, p->zones[i].name,
                    json_pack("{sbso}", "public", p->zones[i].public, "pos", pos_json(p->zones[i].pos)), &ok);
        set(root, "zones", TAKE_PTR(zones), &ok);

        for (size_t i = 0; i < p->n_services; i++)
                set(services, p->services[i].name, service_json(p, &p->services[i]), &ok);
        set(root, "services", TAKE_PTR(services), &ok);

        for (size_t i = 0; i < p->n_flows; i++) {
                const PolicyFlow *f = &p->flows[i];
                json_t *e = json_object();

                if (e) {
                        set(e, "from", endpoint_json(p, &f->from), &ok);
                        set(e, "to", endpoint_json(p, &f->to), &ok);
                        set(e, "port", f->port < 0 ? json_null() : json_integer(f->port), &ok);
                        set(e, "access", json_string(policy_access_to_string(f->access)), &ok);
                        set(e, "pos", pos_json(f->pos), &ok);
                }
                append(flows, e, &ok);
        }
        set(root, "flows", TAKE_PTR(flows), &ok);

        for (size_t i = 0; i < p->n_forbids; i++) {
                const PolicyForbid *f = &p->forbids[i];
                json_t *e = json_object();

                if (e) {
                        set(e, "id", json_string(f->id), &ok);
                        set(e, "from", endpoint_json(p, &f->from), &ok);
                        set(e, "to", endpoint_json(p, &f->to), &ok);
                        set(e, "access", json_string(policy_access_to_string(f->access)), &ok);
                        set(e, "severity", json_string(policy_severity_to_string(f->severity)), &ok);
                        set(e, "why", json_string(f->why), &ok);
                        set(e, "pos", pos_json(f->pos), &ok);
                }
                append(forbids, e, &ok);
        }
        set(root, "forbid", TAKE_PTR(forbids), &ok);

        for (size_t i = 0; i < p->n_controls; i++) {
                const PolicyControl *c = &p->controls[i];

                append(controls,
                       json_pack("{ssssssssssso}", "id", c->id, "status", policy_control_status_to_string(c->status), "by",
                                 c->by, "date", c->date, "evidence", c->evidence, "pos", pos_json(c->pos)),
                       &ok);
        }
        set(root, "controls", TAKE_PTR(controls), &ok);

        return ok ? TAKE_PTR(root) : NULL;
}
