/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The controls engine (see controls.h). Semantics of violations, shared by every network
 * control: a violation the ruleset `blocked` is evidence that the control works and does not
 * fail it; one only `observed` (audit mode: the flow went through) or `contained` (an allowed
 * flow misbehaved and got through until it was cut) means the control did not hold in the
 * window, and fails it.
 */
#include "ceredis.h"

#include <arpa/inet.h>
#include <inttypes.h>
#include <stdarg.h>

#include "classify.h"
#include "controls.h"
#include "docker-match.h"

static const char *const status_names[_CONTROL_STATUS_MAX] = {
        [CONTROL_PASS] = "pass",
        [CONTROL_FAIL] = "fail",
        [CONTROL_MANUAL] = "manual",
        [CONTROL_ERROR] = "error",
};

const char *control_status_to_string(ControlStatus s) {
        return s >= 0 && s < _CONTROL_STATUS_MAX ? status_names[s] : NULL;
}

bool controls_any_failed(const ControlResult *r, size_t n) {
        for (size_t i = 0; i < n; i++)
                if (r[i].status == CONTROL_FAIL)
                        return true;
        return false;
}

void controls_free_results(ControlResult *r, size_t n) {
        if (!r)
                return;
        for (size_t i = 0; i < n; i++) {
                for (size_t j = 0; j < r[i].n_evidence; j++)
                        free(r[i].evidence[j]);
                free(r[i].evidence);
        }
        free(r);
}

static bool ipv4_public(const uint8_t *a) {
        if (a[0] == 0 && a[1] == 0 && a[2] == 0 && a[3] == 0)
                return true; /* 0.0.0.0: every interface */
        return a[0] != 127 && !(a[0] == 169 && a[1] == 254);
}

bool controls_address_public(int family, const uint8_t addr[16]) {
        static const uint8_t zero[16];

        if (family == AF_INET)
                return ipv4_public(addr);
        if (family == AF_INET6) {
                static const uint8_t loop[16] = { [15] = 1 };
                static const uint8_t mapped[12] = { [10] = 0xff, [11] = 0xff };
                if (memcmp(addr, zero, 16) == 0)
                        return true; /* [::] */
                if (memcmp(addr, loop, 16) == 0)
                        return false;
                if (addr[0] == 0xfe && (addr[1] & 0xc0) == 0x80)
                        return false; /* link-local */
                if (memcmp(addr, mapped, 12) == 0)
                        return ipv4_public(addr + 12);
                return true;
        }
        return false;
}

typedef struct Results {
        ControlResult *r;
        size_t n, allocated;
        int error; /* first allocation failure: reported once at the end */
} Results;

static ControlResult *result_add(Results *rs, const char *id, const char *title, ControlStatus s) {
        int k = ARRAY_GROW(rs->r, rs->allocated, rs->n + 1, 64);
        if (k < 0) {
                rs->error = k;
                return NULL;
        }
        ControlResult *c = &rs->r[rs->n++];
        *c = (ControlResult) { .status = s };
        snprintf(c->id, sizeof(c->id), "%s", id);
        snprintf(c->title, sizeof(c->title), "%s", title);
        return c;
}

static _printf_(3, 4) void evidence(Results *rs, ControlResult *c, const char *fmt, ...) {
        size_t allocated;
        char *line;
        va_list ap;
        int k;

        if (!c || c->n_evidence >= CONTROLS_MAX_EVIDENCE)
                return;
        allocated = c->n_evidence;
        line = malloc(CONTROLS_MAX_LINE);
        if (!line) {
                rs->error = -ENOMEM;
                return;
        }
        va_start(ap, fmt);
        vsnprintf(line, CONTROLS_MAX_LINE, fmt, ap);
        va_end(ap);
        /* Exact-size growth: evidence lists are short and this keeps the struct simple. */
        k = ARRAY_GROW(c->evidence, allocated, c->n_evidence + 1, CONTROLS_MAX_EVIDENCE);
        if (k < 0) {
                free(line);
                rs->error = k;
                return;
        }
        c->evidence[c->n_evidence++] = line;
}

static void fail(Results *rs, ControlResult *c, ControlStatus s) {
        (void) rs;
        if (!c)
                return;
        /* fail beats error beats pass: a definite failure is the most useful verdict. */
        if (s == CONTROL_FAIL || (s == CONTROL_ERROR && c->status == CONTROL_PASS))
                c->status = s;
}

static void format_addr(int family, const void *addr, uint16_t port, char *buf, size_t size) {
        char a[INET6_ADDRSTRLEN] = "?";

        (void) inet_ntop(family, addr, a, sizeof(a));
        snprintf(buf, size, family == AF_INET6 ? "[%s]:%u" : "%s:%u", a, port);
}

/* Violations of `rule` in the window: blocked ones are evidence, others fail the control. */
static void check_violations(Results *rs, ControlResult *c, const ControlInputs *in, const char *rule) {
        size_t blocked = 0, through = 0;
        const Event *example = NULL;

        if (in->violations_error) {
                evidence(rs, c, "event log: %s", in->violations_error);
                fail(rs, c, CONTROL_ERROR);
                return;
        }
        for (size_t i = 0; i < in->n_violations; i++) {
                const Event *e = &in->violations[i];
                if (e->kind != EVENT_VIOLATION || !streq(e->rule, rule))
                        continue;
                if (e->action == EVENT_ACTION_BLOCKED)
                        blocked += e->count ? e->count : 1;
                else {
                        through += e->count ? e->count : 1;
                        if (!example)
                                example = e;
                }
        }
        if (through > 0) {
                evidence(rs, c, "%zu %s violation(s) went through in the last %s (observed or contained), "
                         "e.g. %s %s -> %s %s:%u %s", through, rule, in->window ? in->window : "window",
                         event_action_to_string(example->action), example->src.service, example->dst.service,
                         example->dst.ip, example->dst.port, example->proto);
                fail(rs, c, CONTROL_FAIL);
        }
        if (blocked > 0)
                evidence(rs, c, "%zu %s attempt(s) blocked by the ruleset in the last %s", blocked, rule,
                         in->window ? in->window : "window");
        if (through == 0 && blocked == 0)
                evidence(rs, c, "no %s violation in the last %s", rule, in->window ? in->window : "window");
}

/* Is the compiled policy live and enforcing? Adds evidence; returns true when it is. */
static bool check_ruleset(Results *rs, ControlResult *c, const ControlInputs *in) {
        if (in->ruleset == 0 && in->policy->mode == POLICY_MODE_ENFORCE) {
                evidence(rs, c, "live ruleset equals the compiled policy (enforce mode)");
                return true;
        }
        if (in->ruleset == 0) {
                evidence(rs, c, "live ruleset equals the compiled policy, but the policy is in audit mode: "
                         "forbidden flows are logged, not dropped");
                fail(rs, c, CONTROL_FAIL);
        } else if (in->ruleset == 1) {
                evidence(rs, c, "live ruleset differs from the compiled policy: %s",
                         in->ruleset_detail ? in->ruleset_detail : "(no detail)");
                fail(rs, c, CONTROL_FAIL);
        } else if (in->ruleset == -ENOENT) {
                evidence(rs, c, "the agent's ruleset is not installed: %s",
                         in->ruleset_detail ? in->ruleset_detail : "no table");
                fail(rs, c, CONTROL_FAIL);
        } else {
                evidence(rs, c, "cannot compare the live ruleset: %s",
                         in->ruleset_detail ? in->ruleset_detail : strerror(-in->ruleset));
                fail(rs, c, CONTROL_ERROR);
        }
        return false;
}

static bool service_private(const Policy *p, size_t s) {
        return !p->zones[p->services[s].zone].public;
}

static void control_net1(Results *rs, const ControlInputs *in) {
        const Policy *p = in->policy;
        ControlResult *c = result_add(rs, "NET-1", "No direct database/store access from the Internet", CONTROL_PASS);
        bool closed, exposed = false;
        char where[80];

        if (!c)
                return;
        closed = in->ruleset == 0 && p->mode == POLICY_MODE_ENFORCE;
        if (!in->containers) {
                evidence(rs, c, "Docker not probed: %s", in->docker_error ? in->docker_error : "no inventory");
                fail(rs, c, CONTROL_ERROR);
        } else
                for (size_t i = 0; i < in->containers->n_containers; i++) {
                        const DockerContainer *d = &in->containers->containers[i];
                        DockerMatch m;

                        docker_match_container(p, in->host, d, &m);
                        if (m.service < 0 || !service_private(p, (size_t) m.service))
                                continue;
                        for (size_t j = 0; j < d->n_ports; j++) {
                                const DockerPort *dp = &d->ports[j];
                                uint8_t a[16] = {};

                                if (dp->host_port == 0)
                                        continue;
                                if (dp->host_family != AF_INET && dp->host_family != AF_INET6)
                                        continue;
                                if (inet_pton(dp->host_family, dp->host_ip, a) != 1 ||
                                    !controls_address_public(dp->host_family, a))
                                        continue;
                                exposed = true;
                                format_addr(dp->host_family, a, dp->host_port, where, sizeof(where));
                                evidence(rs, c, "private service %s (container %s) publishes port %u/%s on %s: %s",
                                         p->services[m.service].name, d->name, dp->container_port,
                                         policy_proto_to_string(dp->proto), where,
                                         closed ? "closed on public interfaces by the agent's ruleset"
                                                : "OPEN: the live ruleset does not close it");
                                for (size_t l = 0; l < in->n_listeners; l++) {
                                        const ControlListener *ls = &in->listeners[l];
                                        if (ls->port != dp->host_port || ls->proto != dp->proto ||
                                            ls->family != dp->host_family || memcmp(ls->addr, a, 16) != 0)
                                                continue;
                                        evidence(rs, c, "a host socket listens on %s/%s (sock_diag)", where,
                                                 policy_proto_to_string(ls->proto));
                                }
                                if (!closed)
                                        fail(rs, c, CONTROL_FAIL);
                        }
                }
        if (in->listeners_error)
                evidence(rs, c, "listening sockets not probed: %s", in->listeners_error);
        if (!exposed && in->containers)
                evidence(rs, c, "no private service publishes a port on a public or wildcard address");
        if (exposed && !closed)
                (void) check_ruleset(rs, c, in);
        else if (exposed)
                evidence(rs, c, "live ruleset equals the compiled policy (enforce mode)");
        check_violations(rs, c, in, "NET-1");
}

static void control_net2(Results *rs, const ControlInputs *in) {
        ControlResult *c = result_add(rs, "NET-2", "DMZ / private segmentation", CONTROL_PASS);
        if (!c)
                return;
        (void) check_ruleset(rs, c, in);
        check_violations(rs, c, in, "NET-2");
        check_violations(rs, c, in, EVENT_RULE_DEFAULT_DENY);
}

static void control_net3(Results *rs, const ControlInputs *in) {
        const Policy *p = in->policy;
        ControlResult *c = result_add(rs, "NET-3", "TLS certificates on the public entry", CONTROL_PASS);
        bool have_entry = false;

        if (!c)
                return;
        for (size_t s = 0; s < p->n_services && !have_entry; s++)
                if (p->services[s].host == in->host && p->services[s].protocol == POLICY_L7_TLS)
                        for (size_t j = 0; j < p->services[s].n_ports; j++)
                                have_entry = have_entry || p->services[s].ports[j].public;
        if (!have_entry && !in->tls) {
                evidence(rs, c, "the policy declares no public service with protocol tls on this host");
                fail(rs, c, CONTROL_FAIL);
                return;
        }
        if (!in->tls) {
                evidence(rs, c, "TLS probe not run: %s", in->tls_error ? in->tls_error : "no result");
                fail(rs, c, CONTROL_ERROR);
                return;
        }
        evidence(rs, c, "probed %s", in->tls->target);
        if (in->tls->protocol[0])
                evidence(rs, c, "negotiated %s with %s; certificate valid until %s (%ld days left)",
                         in->tls->protocol, in->tls->cipher, in->tls->not_after, in->tls->days_left);
        for (size_t i = 0; i < in->tls->n_reasons && i < ELEMENTSOF(in->tls->reasons); i++)
                evidence(rs, c, "%s", in->tls->reasons[i]);
        if (!in->tls->ok || in->tls->n_reasons > 0)
                fail(rs, c, CONTROL_FAIL);
}

/* DATA-1, AI-1, AI-2: a forbid with that id, enforced, and not crossed in the window. */
static void control_forbid(Results *rs, const ControlInputs *in, const char *id, const char *title) {
        const Policy *p = in->policy;
        ControlResult *c = result_add(rs, id, title, CONTROL_PASS);
        size_t n = 0;

        if (!c)
                return;
        for (size_t f = 0; f < p->n_forbids; f++)
                if (streq(p->forbids[f].id, id)) {
                        n++;
                        evidence(rs, c, "policy line %u: forbid %s %s%s", p->forbids[f].pos.line, id,
                                 p->forbids[f].access == POLICY_ACCESS_WRITE ? "(writes) " : "",
                                 p->forbids[f].why ? p->forbids[f].why : "");
                }
        if (n == 0) {
                evidence(rs, c, "the policy has no forbid entry with id %s", id);
                fail(rs, c, CONTROL_FAIL);
        }
        (void) check_ruleset(rs, c, in);
        check_violations(rs, c, in, id);
}

/* Does a `flows` entry with access `any` let service `src` reach service `dst` (on a
 * read-only one a write is a violation, never a journaled write)? Returns its line, or 0. */
static unsigned flow_line(const Policy *p, size_t src, size_t dst) {
        for (size_t i = 0; i < p->n_flows; i++) {
                const PolicyFlow *f = &p->flows[i];
                bool from = false, to = false;

                for (size_t j = 0; j < f->from.n_services && !from; j++)
                        from = f->from.services[j] == src;
                for (size_t j = 0; j < f->to.n_services && !to; j++)
                        to = f->to.services[j] == dst;
                if (from && to && f->access != POLICY_ACCESS_READ_ONLY)
                        return f->pos.line;
        }
        return 0;
}

#define DATA3_MAX_PAIRS 64u

typedef struct WritePair {
        const char *src, *dst; /* into the events */
        uint64_t count;
} WritePair;

/* DATA-3: the stores are named, and every journaled write to one comes from a named service
 * that a `flows` entry allows there. */
static void control_data3(Results *rs, const ControlInputs *in) {
        const Policy *p = in->policy;
        const char *window = in->window ? in->window : "window";
        ControlResult *c = result_add(rs, "DATA-3", "Recalculations are journaled", CONTROL_PASS);
        WritePair pairs[DATA3_MAX_PAIRS];
        size_t n_pairs = 0, n_stores = 0;
        uint64_t total = 0, unlisted = 0;

        if (!c)
                return;
        for (size_t s = 0; s < p->n_services; s++)
                if (classify_service_is_evaluation_store(p, (int32_t) s)) {
                        n_stores++;
                        evidence(rs, c, "evaluation store %s (policy line %u): its writes are journaled with their source",
                                 p->services[s].name, p->services[s].pos.line);
                }
        if (n_stores == 0) {
                evidence(rs, c, "the policy tags no service `%s`: there is nothing to journal",
                         POLICY_TAG_EVALUATION_STORE);
                fail(rs, c, CONTROL_FAIL);
        }
        if (in->violations_error) {
                evidence(rs, c, "event log: %s", in->violations_error);
                fail(rs, c, CONTROL_ERROR);
                return;
        }
        for (size_t i = 0; i < in->n_writes; i++) {
                const Event *e = &in->writes[i];
                size_t k;

                if (e->kind != EVENT_WRITE)
                        continue;
                total += e->count ? e->count : 1;
                for (k = 0; k < n_pairs; k++)
                        if (streq(pairs[k].src, e->src.service) && streq(pairs[k].dst, e->dst.service))
                                break;
                if (k == n_pairs) {
                        if (n_pairs == DATA3_MAX_PAIRS) {
                                unlisted += e->count ? e->count : 1;
                                continue;
                        }
                        pairs[n_pairs++] = (WritePair) { e->src.service, e->dst.service, 0 };
                }
                pairs[k].count += e->count ? e->count : 1;
        }
        for (size_t k = 0; k < n_pairs; k++) {
                ssize_t src = policy_find_service(p, pairs[k].src), dst = policy_find_service(p, pairs[k].dst);
                unsigned line = src >= 0 && dst >= 0 ? flow_line(p, (size_t) src, (size_t) dst) : 0;

                if (src < 0) {
                        evidence(rs, c, "%" PRIu64 " write(s) %s -> %s in the last %s: the source is no service of "
                                 "the policy", pairs[k].count, pairs[k].src, pairs[k].dst, window);
                        fail(rs, c, CONTROL_FAIL);
                } else if (line == 0) {
                        evidence(rs, c, "%" PRIu64 " write(s) %s -> %s in the last %s: no `flows` entry allows %s to "
                                 "write to %s", pairs[k].count, pairs[k].src, pairs[k].dst, window, pairs[k].src,
                                 pairs[k].dst);
                        fail(rs, c, CONTROL_FAIL);
                } else
                        evidence(rs, c, "%" PRIu64 " write(s) %s -> %s journaled in the last %s (flow at policy line %u)",
                                 pairs[k].count, pairs[k].src, pairs[k].dst, window, line);
        }
        if (unlisted > 0) {
                evidence(rs, c, "%" PRIu64 " more write(s) from more than %u source/store pairs: not checked", unlisted,
                         DATA3_MAX_PAIRS);
                fail(rs, c, CONTROL_ERROR);
        }
        if (total == 0 && n_stores > 0)
                evidence(rs, c, "no write to an evaluation store journaled in the last %s", window);
}

static void control_manual(Results *rs, const ControlInputs *in, const char *id, const char *title) {
        const Policy *p = in->policy;
        ControlResult *c = result_add(rs, id, title, CONTROL_FAIL);

        if (!c)
                return;
        for (size_t i = 0; i < p->n_controls; i++) {
                const PolicyControl *pc = &p->controls[i];
                if (!streq(pc->id, id))
                        continue;
                c->status = CONTROL_MANUAL;
                evidence(rs, c, "%s by %s on %s (policy line %u)", policy_control_status_to_string(pc->status),
                         pc->by ? pc->by : "?", pc->date ? pc->date : "?", pc->pos.line);
                if (pc->evidence)
                        evidence(rs, c, "%s", pc->evidence);
                return;
        }
        evidence(rs, c, "not network-verifiable and the policy has no attestation for %s under `controls:`", id);
}

/* CIS Docker Benchmark v1.2.0 numbering; v1.6.0 shifts section 2 by one (README: Compliance audit). */
static void control_cis(Results *rs, const ControlInputs *in) {
        const ControlDockerInfo *di = in->docker_info;
        static const struct {
                const char *id, *title;
        } daemon_items[] = {
                { "CIS-2.1", "CIS Docker 2.1: network traffic restricted between containers on the default bridge" },
                { "CIS-2.3", "CIS Docker 2.3: Docker is allowed to make changes to iptables" },
                { "CIS-2.15", "CIS Docker 2.15: userland proxy disabled" },
        };
        for (size_t i = 0; i < ELEMENTSOF(daemon_items); i++) {
                ControlResult *c = result_add(rs, daemon_items[i].id, daemon_items[i].title, CONTROL_PASS);
                bool known, value, good;
                const char *what;

                if (!c)
                        return;
                if (!di) {
                        evidence(rs, c, "Docker daemon not probed: %s", in->docker_error ? in->docker_error : "no data");
                        c->status = CONTROL_ERROR;
                        continue;
                }
                switch (i) {
                case 0:
                        known = di->icc_known, value = di->icc, good = !value, what = "icc";
                        break;
                case 1:
                        known = di->iptables_known, value = di->iptables, good = value, what = "iptables";
                        break;
                default:
                        known = di->userland_proxy_known, value = di->userland_proxy, good = !value,
                        what = "userland-proxy";
                        break;
                }
                if (!known) {
                        evidence(rs, c, "dockerd's %s setting could not be read", what);
                        c->status = CONTROL_ERROR;
                        continue;
                }
                evidence(rs, c, "dockerd %s=%s", what, value ? "true" : "false");
                if (!good)
                        c->status = CONTROL_FAIL;
        }

        ControlResult *c = result_add(rs, "CIS-5.13", "CIS Docker 5.13: container ports bound to a specific host interface",
                                      CONTROL_PASS);
        if (!c)
                return;
        if (!in->containers) {
                evidence(rs, c, "Docker not probed: %s", in->docker_error ? in->docker_error : "no inventory");
                c->status = CONTROL_ERROR;
                return;
        }
        for (size_t i = 0; i < in->containers->n_containers; i++) {
                const DockerContainer *d = &in->containers->containers[i];
                for (size_t j = 0; j < d->n_ports; j++) {
                        const DockerPort *dp = &d->ports[j];
                        if (dp->host_port == 0 || (!streq(dp->host_ip, "0.0.0.0") && !streq(dp->host_ip, "::")))
                                continue;
                        evidence(rs, c, "container %s publishes %u/%s on %s%s%s:%u", d->name, dp->container_port,
                                 policy_proto_to_string(dp->proto), dp->host_family == AF_INET6 ? "[" : "",
                                 dp->host_ip, dp->host_family == AF_INET6 ? "]" : "", dp->host_port);
                        c->status = CONTROL_FAIL;
                }
        }
        if (c->status == CONTROL_PASS)
                evidence(rs, c, "no container port is published on every interface");
}

int controls_evaluate(const ControlInputs *in, ControlResult **ret, size_t *ret_n) {
        Results rs = {};

        if (!in || !in->policy || in->host >= in->policy->n_hosts)
                return -EINVAL;
        control_net1(&rs, in);
        control_net2(&rs, in);
        control_net3(&rs, in);
        control_forbid(&rs, in, "DATA-1", "Anonymisation for RStudio: no raw store reachable");
        control_manual(&rs, in, "DATA-2", "No raw scores exposed to students");
        control_data3(&rs, in);
        control_forbid(&rs, in, "AI-1", "The AI has no direct access to raw evidence");
        control_forbid(&rs, in, "AI-2", "The AI never writes to an evaluation store");
        control_manual(&rs, in, "AI-3", "The AI takes no CEFR decision");
        control_cis(&rs, in);
        if (rs.error < 0) {
                controls_free_results(rs.r, rs.n);
                return rs.error;
        }
        *ret = rs.r;
        *ret_n = rs.n;
        return 0;
}
