/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * `ceredisctl policy check|show|compile`: offline work on a policy file. `check` says whether
 * the file is a valid policy (exit 0) or names the first error as FILE:LINE:COL (exit 1);
 * `show` prints the normalised model, as JSON or as a readable summary; `compile` belongs to
 * the ruleset stage (agent/ctl/compile.c). A file that cannot be read is exit 2.
 */
#include "ceredis.h"

#include <getopt.h>
#include <jansson.h>

#include "ctl/ctl.h"
#include "policy-json.h"
#include "policy.h"

typedef struct PolicyArgs {
        const char *file;
        bool json;
} PolicyArgs;

/* Options may come before or after FILE. Returns 1 when --help was printed, 0, or -EINVAL. */
static int parse_args(const char *verb, const char *usage, int argc, char *argv[], PolicyArgs *ret) {
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                { "json", no_argument, NULL, 'j' },
                {},
        };
        PolicyArgs a = {};
        int c;

        /* GNU getopt permutes: options after FILE are parsed too. */
        optind = 0;
        opterr = 0;
        while ((c = getopt_long(argc, argv, "hj", options, NULL)) >= 0)
                switch (c) {
                case 'h':
                        printf("%s", usage);
                        return 1;
                case 'j':
                        a.json = true;
                        break;
                default:
                        fprintf(stderr, "ceredisctl policy %s: unknown option '%s' (see --help)\n", verb,
                                argv[optind - 1]);
                        return -EINVAL;
                }
        if (optind < argc)
                a.file = argv[optind++];
        if (optind < argc) {
                fprintf(stderr, "ceredisctl policy %s: unexpected argument '%s'\n", verb, argv[optind]);
                return -EINVAL;
        }
        if (!a.file) {
                fprintf(stderr, "ceredisctl policy %s: missing FILE (see --help)\n", verb);
                return -EINVAL;
        }
        *ret = a;
        return 0;
}

static int print_json(json_t *j) {
        char *s = json_dumps(j, JSON_PRESERVE_ORDER | JSON_INDENT(2));

        if (!s) {
                fprintf(stderr, "ceredisctl: out of memory\n");
                return -ENOMEM;
        }
        puts(s);
        free(s);
        return 0;
}

/* An I/O error is the operator's environment (exit 2); anything else is the file (exit 1). */
static int load_exit_code(int r) {
        return r == -EINVAL ? CTL_EXIT_FAIL : CTL_EXIT_ERROR;
}

static int policy_check(int argc, char *argv[]) {
        static const char usage[] =
                "Usage: ceredisctl policy check FILE [--json]\n"
                "\n"
                "Parse and validate a policy file (SPEC section 3).\n"
                "Exit 0 when valid, 1 when invalid (the first error is printed as FILE:LINE:COL: message),\n"
                "2 on a usage or I/O error.\n"
                "\n"
                "  --json   print {\"file\", \"valid\", \"sha256\", counts, \"error\"} on stdout\n"
                "  --help   show this help\n";
        _cleanup_(policy_freep) Policy *p = NULL;
        PolicyError error = {};
        PolicyArgs a;
        char line[1024], sha[65];
        int r;

        r = parse_args("check", usage, argc, argv, &a);
        if (r != 0)
                return r > 0 ? CTL_EXIT_OK : CTL_EXIT_ERROR;

        r = policy_load(a.file, &p, &error);
        if (r < 0) {
                if (a.json) {
                        json_t *j = json_pack("{sssbsns{sIsIss}}", "file", a.file, "valid", 0, "sha256", "error", "line",
                                              (json_int_t) error.pos.line, "column", (json_int_t) error.pos.column,
                                              "message", error.message);
                        if (!j || print_json(j) < 0) {
                                json_decref(j);
                                return CTL_EXIT_ERROR;
                        }
                        json_decref(j);
                } else {
                        policy_error_format(a.file, &error, line, sizeof(line));
                        fprintf(stderr, "%s\n", line);
                }
                return load_exit_code(r);
        }

        policy_sha256_hex(p, sha);
        if (a.json) {
                json_t *j = json_pack("{sssbsssisIsIsIsIsIsn}", "file", a.file, "valid", 1, "sha256", sha, "version",
                                      p->version, "hosts", (json_int_t) p->n_hosts, "services",
                                      (json_int_t) p->n_services, "flows", (json_int_t) p->n_flows, "forbid",
                                      (json_int_t) p->n_forbids, "controls", (json_int_t) p->n_controls, "error");
                r = j ? print_json(j) : -ENOMEM;
                json_decref(j);
                return r < 0 ? CTL_EXIT_ERROR : CTL_EXIT_OK;
        }
        printf("%s: valid (%zu services, %zu flows, %zu forbid invariants, sha256 %.16s…)\n", a.file, p->n_services,
               p->n_flows, p->n_forbids, sha);
        return CTL_EXIT_OK;
}

static void print_endpoint(const Policy *p, const PolicyEndpoint *e) {
        switch (e->kind) {
        case POLICY_SELECT_INTERNET:
                printf("internet");
                return;
        case POLICY_SELECT_HOST:
                printf("host");
                return;
        case POLICY_SELECT_SERVICE:
                printf("%s", e->name);
                return;
        case POLICY_SELECT_TAG:
        case POLICY_SELECT_ZONE:
                printf("{ %s: %s } (", e->kind == POLICY_SELECT_TAG ? "tag" : "zone", e->name);
                for (size_t i = 0; i < e->n_services; i++)
                        printf("%s%s", i ? ", " : "", p->services[e->services[i]].name);
                printf(")");
                return;
        }
}

static void print_cidrs(const PolicyCidr *c, size_t n) {
        for (size_t i = 0; i < n; i++) {
                char buf[64];

                if (policy_cidr_format(&c[i], buf, sizeof(buf)) >= 0)
                        printf("%s%s", i ? ", " : "", buf);
        }
}

static void print_text(const Policy *p) {
        char sha[65];

        policy_sha256_hex(p, sha);
        printf("policy %s (version %d, mode %s)\nsha256 %s\n", p->path, p->version, policy_mode_to_string(p->mode), sha);

        printf("\nHOSTS\n");
        for (size_t i = 0; i < p->n_hosts; i++) {
                const PolicyHost *h = &p->hosts[i];

                printf("  %s\n    public interfaces:  ", h->name);
                for (size_t j = 0; j < h->n_public_interfaces; j++)
                        printf("%s%s", j ? ", " : "", h->public_interfaces[j]);
                printf("\n    private interfaces: ");
                for (size_t j = 0; j < h->n_private_interfaces; j++)
                        printf("%s%s", j ? ", " : "", h->private_interfaces[j]);
                printf("\n    addresses:          ");
                print_cidrs(h->addresses, h->n_addresses);
                printf("\n");
                for (size_t j = 0; j < h->n_management; j++) {
                        printf("    management:         %u/%s from ", h->management[j].port,
                               policy_proto_to_string(h->management[j].proto));
                        print_cidrs(h->management[j].from, h->management[j].n_from);
                        printf("\n");
                }
        }

        printf("\nZONES\n");
        for (size_t i = 0; i < p->n_zones; i++)
                printf("  %-16s %s\n", p->zones[i].name, p->zones[i].public ? "public" : "not public");

        printf("\nSERVICES\n  %-16s %-10s %-10s %-10s %-32s %-24s %s\n", "NAME", "ZONE", "HOST", "PROTOCOL", "MATCH",
               "PORTS", "TAGS");
        for (size_t i = 0; i < p->n_services; i++) {
                const PolicyService *s = &p->services[i];
                char match[256], ports[256] = "-";
                size_t len = 0;

                if (s->match.kind == POLICY_MATCH_CIDR) {
                        char c[64] = "";
                        policy_cidr_format(&s->match.cidrs[0], c, sizeof(c));
                        snprintf(match, sizeof(match), "cidr=%s%s", c, s->match.n_cidrs > 1 ? ",..." : "");
                } else if (s->match.kind == POLICY_MATCH_LABEL)
                        snprintf(match, sizeof(match), "label=%s=%s", s->match.value, s->match.label_value);
                else
                        snprintf(match, sizeof(match), "%s=%s", policy_match_kind_to_string(s->match.kind), s->match.value);
                for (size_t j = 0; j < s->n_ports && len + 24 < sizeof(ports); j++) {
                        int k = snprintf(ports + len, sizeof(ports) - len, "%s%u/%s%s", j ? "," : "", s->ports[j].port,
                                         policy_proto_to_string(s->ports[j].proto), s->ports[j].public ? "(public)" : "");
                        if (k < 0)
                                break;
                        len += (size_t) k;
                }
                printf("  %-16s %-10s %-10s %-10s %-32s %-24s ", s->name, p->zones[s->zone].name, p->hosts[s->host].name,
                       policy_l7_to_string(s->protocol), match, ports);
                for (size_t j = 0; j < s->n_tags; j++)
                        printf("%s%s", j ? "," : "", s->tags[j]);
                printf("%s\n", s->n_tags ? "" : "-");
        }

        printf("\nFLOWS\n");
        for (size_t i = 0; i < p->n_flows; i++) {
                const PolicyFlow *f = &p->flows[i];

                printf("  %u:%u  ", f->pos.line, f->pos.column);
                print_endpoint(p, &f->from);
                printf(" -> ");
                print_endpoint(p, &f->to);
                if (f->port >= 0)
                        printf(" port %d", f->port);
                else
                        printf(" any port");
                printf(", access %s\n", policy_access_to_string(f->access));
        }

        printf("\nFORBID\n");
        for (size_t i = 0; i < p->n_forbids; i++) {
                const PolicyForbid *f = &p->forbids[i];

                printf("  %-8s %-8s ", f->id, policy_severity_to_string(f->severity));
                print_endpoint(p, &f->from);
                printf(" -> ");
                print_endpoint(p, &f->to);
                printf(", access %s: %s\n", policy_access_to_string(f->access), f->why);
        }

        printf("\nCONTROLS\n");
        for (size_t i = 0; i < p->n_controls; i++) {
                const PolicyControl *c = &p->controls[i];

                printf("  %-8s %-14s %s by %s: %s\n", c->id, policy_control_status_to_string(c->status), c->date, c->by,
                       c->evidence);
        }
}

static int policy_show(int argc, char *argv[]) {
        static const char usage[] =
                "Usage: ceredisctl policy show FILE [--json]\n"
                "\n"
                "Print the normalised policy: every default filled in, every selector resolved.\n"
                "Exit 0 when shown, 1 when the policy is invalid, 2 on a usage or I/O error.\n"
                "\n"
                "  --json   print the model as JSON (stable key order)\n"
                "  --help   show this help\n";
        _cleanup_(policy_freep) Policy *p = NULL;
        PolicyError error = {};
        PolicyArgs a;
        char line[1024];
        int r;

        r = parse_args("show", usage, argc, argv, &a);
        if (r != 0)
                return r > 0 ? CTL_EXIT_OK : CTL_EXIT_ERROR;

        r = policy_load(a.file, &p, &error);
        if (r < 0) {
                policy_error_format(a.file, &error, line, sizeof(line));
                fprintf(stderr, "%s\n", line);
                return load_exit_code(r);
        }
        if (a.json) {
                json_t *j = policy_to_json(p);

                r = j ? print_json(j) : -ENOMEM;
                json_decref(j);
                if (r < 0) {
                        fprintf(stderr, "ceredisctl policy show: out of memory\n");
                        return CTL_EXIT_ERROR;
                }
                return CTL_EXIT_OK;
        }
        print_text(p);
        return CTL_EXIT_OK;
}

static void policy_usage(FILE *f) {
        fprintf(f,
                "Usage: ceredisctl policy VERB FILE [OPTIONS]\n"
                "\n"
                "  check FILE [--json]              validate a policy (exit 0 valid, 1 invalid, 2 error)\n"
                "  show FILE [--json]               print the normalised policy\n"
                "  compile FILE [--host NAME]       print the nftables script of a host\n"
                "\n"
                "Each verb takes --help.\n");
}

int verb_policy(int argc, char *argv[]) {
        if (argc < 2) {
                policy_usage(stderr);
                return CTL_EXIT_ERROR;
        }
        if (streq(argv[1], "--help") || streq(argv[1], "-h")) {
                policy_usage(stdout);
                return CTL_EXIT_OK;
        }
        if (streq(argv[1], "check"))
                return policy_check(argc - 1, argv + 1);
        if (streq(argv[1], "show"))
                return policy_show(argc - 1, argv + 1);
        if (streq(argv[1], "compile"))
                return verb_policy_compile(argc - 1, argv + 1);
        fprintf(stderr, "ceredisctl policy: unknown verb '%s' (expected check, show or compile)\n", argv[1]);
        return CTL_EXIT_ERROR;
}
