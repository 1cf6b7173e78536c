/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * ceredisctl audit and report: gather the controls engine's inputs offline (no daemon): the
 * policy that was applied (state dir) or named (--policy), the live ruleset compared with it
 * by nft_verify() and the listening sockets by sock_diag, both inside --netns; the containers
 * and dockerd's settings through the Docker socket; the public TLS entry; the violations of
 * the --since window from the verified event log. Then print a table, the audit JSON object,
 * or a (signed) report; `report verify FILE` checks a signed report.
 */
#include "ceredis.h"

#include <arpa/inet.h>
#include <getopt.h>
#include <jansson.h>
#include <limits.h>
#include <sys/stat.h>
#include <time.h>

#include "probes.h"
#include "controls.h"
#include "ctl/ctl.h"
#include "enforce.h"
#include "eventlog.h"
#include "nft.h"
#include "policy.h"
#include "report.h"
#include "state.h"

#define AUDIT_MAX_VIOLATIONS 4096u /* newest kept for the report */

enum {
        ARG_JSON = 0x100,
        ARG_POLICY,
        ARG_ENDPOINTS,
        ARG_HOST,
        ARG_STATE_DIR,
        ARG_NETNS,
        ARG_DOCKER_HOST,
        ARG_CA,
        ARG_SINCE,
        ARG_TLS_CONNECT,
        ARG_TLS_NAME,
        ARG_TLS_WARN_DAYS,
        ARG_KEY,
        ARG_FORMAT,
        ARG_SIGN,
        ARG_PUBKEY,
        ARG_HELP,
};

static const struct option audit_options[] = {
        { "json", no_argument, NULL, ARG_JSON },
        { "policy", required_argument, NULL, ARG_POLICY },
        { "endpoints", required_argument, NULL, ARG_ENDPOINTS },
        { "host", required_argument, NULL, ARG_HOST },
        { "state-dir", required_argument, NULL, ARG_STATE_DIR },
        { "netns", required_argument, NULL, ARG_NETNS },
        { "docker-host", required_argument, NULL, ARG_DOCKER_HOST },
        { "ca", required_argument, NULL, ARG_CA },
        { "since", required_argument, NULL, ARG_SINCE },
        { "tls-connect", required_argument, NULL, ARG_TLS_CONNECT },
        { "tls-name", required_argument, NULL, ARG_TLS_NAME },
        { "tls-warn-days", required_argument, NULL, ARG_TLS_WARN_DAYS },
        { "key", required_argument, NULL, ARG_KEY },
        { "format", required_argument, NULL, ARG_FORMAT },
        { "output", required_argument, NULL, 'o' },
        { "sign", required_argument, NULL, ARG_SIGN },
        { "pubkey", required_argument, NULL, ARG_PUBKEY },
        { "help", no_argument, NULL, ARG_HELP },
        {},
};

static const char audit_usage[] =
        "[--json] [--policy FILE [--endpoints FILE] | --state-dir DIR] [--host NAME] [--netns NAME]\n"
        "       [--docker-host URL] [--ca FILE] [--tls-connect ADDR:PORT] [--tls-name NAME]\n"
        "       [--tls-warn-days N] [--since DURATION] [--key FILE]";

typedef struct AuditArgs {
        bool json;
        const char *policy, *endpoints, *host, *state_dir, *netns, *docker_host, *ca, *since;
        const char *tls_connect, *tls_name, *key;
        unsigned warn_days;
        bool have_format;
        ReportFormat format;
        const char *output, *sign, *pubkey;
} AuditArgs;

/* `report_opts`: the report verb's options are accepted too. */
static int parse_args(const char *verb, const char *usage, bool report_opts, int argc, char *argv[],
                      AuditArgs *ret) {
        AuditArgs a = {
                .state_dir = STATE_DIR_DEFAULT,
                .docker_host = "unix:///run/docker.sock",
                .since = "24h",
                .warn_days = PROBE_TLS_WARN_DAYS_DEFAULT,
        };
        int opt;

        optind = 1;
        opterr = 0;
        while ((opt = getopt_long(argc, argv, report_opts ? "o:" : "", audit_options, NULL)) >= 0) {
                bool report_only = opt == ARG_FORMAT || opt == 'o' || opt == ARG_SIGN;
                if (opt == ARG_HELP) {
                        printf("Usage: ceredisctl %s %s\n", verb, usage);
                        return 1;
                }
                if (opt == '?' || opt == ARG_PUBKEY || (report_only && !report_opts)) {
                        fprintf(stderr, "ceredisctl %s: unknown option '%s'\nUsage: ceredisctl %s %s\n", verb,
                                argv[optind - 1], verb, usage);
                        return -EINVAL;
                }
                switch (opt) {
                case ARG_JSON: a.json = true; break;
                case ARG_POLICY: a.policy = optarg; break;
                case ARG_ENDPOINTS: a.endpoints = optarg; break;
                case ARG_HOST: a.host = optarg; break;
                case ARG_STATE_DIR: a.state_dir = optarg; break;
                case ARG_NETNS: a.netns = optarg; break;
                case ARG_DOCKER_HOST: a.docker_host = optarg; break;
                case ARG_CA: a.ca = optarg; break;
                case ARG_SINCE: a.since = optarg; break;
                case ARG_TLS_CONNECT: a.tls_connect = optarg; break;
                case ARG_TLS_NAME: a.tls_name = optarg; break;
                case ARG_KEY: a.key = optarg; break;
                case ARG_SIGN: a.sign = optarg; break;
                case 'o': a.output = optarg; break;
                case ARG_TLS_WARN_DAYS: {
                        char *end;
                        unsigned long v;
                        errno = 0;
                        v = strtoul(optarg, &end, 10);
                        if (errno || end == optarg || *end || v > 3650) {
                                fprintf(stderr, "ceredisctl %s: --tls-warn-days expects 0-3650\n", verb);
                                return -EINVAL;
                        }
                        a.warn_days = (unsigned) v;
                        break;
                }
                case ARG_FORMAT:
                        if (report_format_from_string(optarg, &a.format) < 0) {
                                fprintf(stderr, "ceredisctl %s: --format expects json, html or md, not '%s'\n", verb,
                                        optarg);
                                return -EINVAL;
                        }
                        a.have_format = true;
                        break;
                }
        }
        if (optind < argc) {
                fprintf(stderr, "ceredisctl %s: unexpected argument '%s'\n", verb, argv[optind]);
                return -EINVAL;
        }
        *ret = a;
        return 0;
}

typedef struct Audit {
        Policy *policy;
        char *policy_path;
        EnforceTarget target;
        ssize_t host;
        int ruleset;
        char *ruleset_detail;
        DockerInventory containers;
        bool have_containers;
        ControlDockerInfo docker_info;
        char docker_error[512];
        ProbeListeners listeners;
        char listeners_error[256];
        ControlTls tls;
        bool have_tls;
        char tls_error[512];
        Event *violations;
        size_t n_violations, allocated;
        Event *writes;
        size_t n_writes, allocated_writes;
        uint64_t since_usec;
        char violations_error[8192];
        char window[PATH_MAX + 64];
        uint64_t now_usec;
        ControlResult *results;
        size_t n_results;
} Audit;

static void audit_done(Audit *a) {
        policy_free(a->policy);
        free(a->policy_path);
        enforce_target_done(&a->target);
        free(a->ruleset_detail);
        docker_inventory_done(&a->containers);
        probe_listeners_done(&a->listeners);
        free(a->violations);
        free(a->writes);
        controls_free_results(a->results, a->n_results);
}

/* The policy and the ruleset it compiles to: --policy, or what the state dir says is applied. */
static int load_target(const char *verb, const AuditArgs *args, Audit *a, const char **ret_netns) {
        _cleanup_(state_record_freep) StateRecord *rec = NULL;
        _cleanup_free_ char *data = NULL;
        EnforceStage stage;
        PolicyError perr = {};
        char err[1024];
        size_t size;
        int k;

        *ret_netns = args->netns;
        if (args->policy) {
                k = enforce_compile_files(args->policy, args->endpoints, args->host, 0, NULL, &a->target, NULL,
                                          &stage, err, sizeof(err));
                if (k < 0) {
                        fprintf(stderr, "%s\n", err);
                        return k;
                }
                k = policy_load(args->policy, &a->policy, &perr);
                a->policy_path = strdup(args->policy);
        } else {
                k = state_record_load(args->state_dir, STATE_APPLIED, &rec);
                if (k < 0 || rec->status != STATE_STATUS_APPLIED) {
                        fprintf(stderr, "ceredisctl %s: nothing is applied in %s (%s); pass --policy FILE\n", verb,
                                args->state_dir, k < 0 ? strerror(-k) : state_status_to_string(rec->status));
                        return k < 0 ? k : -ENOENT;
                }
                k = enforce_compile_record(args->state_dir, rec, &a->target, &stage, err, sizeof(err));
                if (k < 0) {
                        fprintf(stderr, "%s\n", err);
                        return k;
                }
                k = state_blob_read(args->state_dir, rec->policy_sha256, POLICY_MAX_FILE_SIZE, &data, &size);
                if (k >= 0)
                        k = policy_parse(rec->policy_path, data, size, &a->policy, &perr);
                a->policy_path = strdup(rec->policy_path ? rec->policy_path : "(applied policy)");
                if (!args->netns && rec->netns) {
                        static char netns[256];
                        snprintf(netns, sizeof(netns), "%s", rec->netns);
                        *ret_netns = netns;
                }
        }
        if (k < 0 || !a->policy_path) {
                fprintf(stderr, "ceredisctl %s: cannot load the policy: %s\n", verb,
                        perr.message[0] ? perr.message : strerror(k < 0 ? -k : ENOMEM));
                return k < 0 ? k : -ENOMEM;
        }
        a->host = policy_find_host(a->policy, a->target.host);
        if (a->host < 0) {
                fprintf(stderr, "ceredisctl %s: host %s is not in the policy\n", verb, a->target.host);
                return -ENOENT;
        }
        return 0;
}

/* The public entry: the first public port of a tls service of this host, on its first address. */
static int tls_target(const Audit *a, char *buf, size_t size) {
        const Policy *p = a->policy;
        const PolicyHost *h = &p->hosts[a->host];
        int port = -1;

        for (size_t s = 0; s < p->n_services && port < 0; s++) {
                if ((ssize_t) p->services[s].host != a->host || p->services[s].protocol != POLICY_L7_TLS)
                        continue;
                for (size_t j = 0; j < p->services[s].n_ports; j++)
                        if (p->services[s].ports[j].public && p->services[s].ports[j].proto == IPPROTO_TCP &&
                            (port < 0 || p->services[s].ports[j].port == 443))
                                port = p->services[s].ports[j].port;
        }
        if (port < 0)
                return -ENOENT;
        if (h->n_addresses == 0)
                return -EADDRNOTAVAIL;
        char addr[INET6_ADDRSTRLEN] = "";
        (void) inet_ntop(h->addresses[0].family, h->addresses[0].addr.bytes, addr, sizeof(addr));
        snprintf(buf, size, h->addresses[0].family == AF_INET6 ? "[%s]:%d" : "%s:%d", addr, port);
        return 0;
}

/* Keep the newest AUDIT_MAX_VIOLATIONS events of a list. */
static int keep_event(Event **list, size_t *n, size_t *allocated, const Event *e) {
        int k;

        if (*n == AUDIT_MAX_VIOLATIONS) {
                memmove(*list, *list + 1, (*n - 1) * sizeof(Event));
                (*list)[*n - 1] = *e;
                return 0;
        }
        k = ARRAY_GROW(*list, *allocated, *n + 1, AUDIT_MAX_VIOLATIONS);
        if (k < 0)
                return k;
        (*list)[(*n)++] = *e;
        return 0;
}

static int collect(const EventlogRecord *rec, void *userdata) {
        Audit *a = userdata;

        if (rec->event.ts_usec < a->since_usec)
                return 0;
        if (rec->event.kind == EVENT_VIOLATION)
                return keep_event(&a->violations, &a->n_violations, &a->allocated, &rec->event);
        if (rec->event.kind == EVENT_WRITE) {
                /* One per source and store, counts summed: a day of writes stays a few entries
                 * and none is lost to the cap that keeps the newest violations. */
                for (size_t i = 0; i < a->n_writes; i++)
                        if (streq(a->writes[i].src.service, rec->event.src.service) &&
                            streq(a->writes[i].dst.service, rec->event.dst.service)) {
                                a->writes[i].count += rec->event.count ? rec->event.count : 1;
                                return 0;
                        }
                return keep_event(&a->writes, &a->n_writes, &a->allocated_writes, &rec->event);
        }
        return 0;
}

static void read_violations(const AuditArgs *args, Audit *a) {
        _cleanup_(eventlog_key_freep) EventlogKey *key = NULL;
        char key_path[PATH_MAX], path[PATH_MAX];
        EventlogResult res = {};
        struct stat st;
        int k;

        snprintf(path, sizeof(path), "%s/%s", args->state_dir, EVENTLOG_FILE);
        if (stat(path, &st) < 0) {
                /* No daemon ever wrote a log here: nothing observed, said in the window text. */
                snprintf(a->window, sizeof(a->window), "%s (no event log in %s)", args->since, args->state_dir);
                return;
        }
        snprintf(key_path, sizeof(key_path), "%s/eventlog.key", args->state_dir);
        k = eventlog_key_load(args->key ? args->key : key_path, false, &key);
        if (k < 0) {
                snprintf(a->violations_error, sizeof(a->violations_error), "cannot use key %s: %s",
                         args->key ? args->key : key_path, strerror(-k));
                return;
        }
        k = eventlog_verify(args->state_dir, key, &res, collect, a);
        if (k < 0)
                snprintf(a->violations_error, sizeof(a->violations_error), "cannot read %s: %s", args->state_dir,
                         strerror(-k));
        else if (res.problem != EVENTLOG_INTACT)
                snprintf(a->violations_error, sizeof(a->violations_error), "the event log is %s at %s:%llu: %s",
                         eventlog_problem_to_string(res.problem), res.file, (unsigned long long) res.line, res.detail);
}

static int run_audit(const char *verb, const AuditArgs *args, Audit *a) {
        _cleanup_(nft_closep) Nft *n = NULL;
        const char *netns;
        uint64_t window;
        struct timespec ts;
        char target[128];
        int k;

        if (ctl_parse_duration(args->since, &window) < 0) {
                fprintf(stderr, "ceredisctl %s: --since %s: expected a number and a unit (s, m, h, d, w)\n", verb,
                        args->since);
                return -EINVAL;
        }
        clock_gettime(CLOCK_REALTIME, &ts);
        a->now_usec = (uint64_t) ts.tv_sec * 1000000u + (uint64_t) ts.tv_nsec / 1000u;
        a->since_usec = window < a->now_usec ? a->now_usec - window : 0;
        snprintf(a->window, sizeof(a->window), "%s", args->since);

        k = load_target(verb, args, a, &netns);
        if (k < 0)
                return k;

        /* Docker first: its socket is a path, reachable from any namespace. */
        k = probe_docker(args->docker_host, &a->containers, &a->docker_info, a->docker_error,
                         sizeof(a->docker_error));
        a->have_containers = k >= 0;

        k = ctl_open_kernel(verb, netns, &n);
        if (k < 0)
                return k;
        a->ruleset = nft_verify(n, a->target.ruleset, &a->ruleset_detail);
        k = probe_listeners(&a->listeners);
        if (k < 0)
                snprintf(a->listeners_error, sizeof(a->listeners_error), "sock_diag: %s", strerror(-k));

        if (args->tls_connect)
                snprintf(target, sizeof(target), "%s", args->tls_connect);
        k = args->tls_connect ? 0 : tls_target(a, target, sizeof(target));
        if (k == -ENOENT)
                snprintf(a->tls_error, sizeof(a->tls_error), "no public tls service on host %s", a->target.host);
        else if (k < 0)
                snprintf(a->tls_error, sizeof(a->tls_error),
                         "host %s has no address in the policy: pass --tls-connect ADDR:PORT", a->target.host);
        else
                a->have_tls = probe_tls(target, args->tls_name, args->ca, args->warn_days, &a->tls, a->tls_error,
                                        sizeof(a->tls_error)) >= 0;

        read_violations(args, a);

        ControlInputs in = {
                .policy = a->policy,
                .host = (size_t) a->host,
                .ruleset = a->ruleset,
                .ruleset_detail = a->ruleset_detail,
                .containers = a->have_containers ? &a->containers : NULL,
                .docker_info = a->have_containers && a->docker_info.icc_known ? &a->docker_info : NULL,
                .docker_error = a->have_containers ? "cannot read dockerd's settings from /proc" : a->docker_error,
                .listeners = a->listeners.items,
                .n_listeners = a->listeners.n,
                .listeners_error = a->listeners_error[0] ? a->listeners_error : NULL,
                .tls = a->have_tls ? &a->tls : NULL,
                .tls_error = a->tls_error[0] ? a->tls_error : NULL,
                .violations = a->violations,
                .n_violations = a->n_violations,
                .violations_error = a->violations_error[0] ? a->violations_error : NULL,
                .window = a->window,
                .writes = a->writes,
                .n_writes = a->n_writes,
        };
        k = controls_evaluate(&in, &a->results, &a->n_results);
        if (k < 0)
                fprintf(stderr, "ceredisctl %s: %s\n", verb, strerror(-k));
        return k;
}

static void report_of(const Audit *a, Report *r) {
        *r = (Report) {
                .host = a->target.host,
                .policy_path = a->policy_path,
                .policy_sha256 = a->target.sha256,
                .ts_usec = a->now_usec,
                .window = a->window,
                .controls = a->results,
                .n_controls = a->n_results,
                .violations = a->violations,
                .n_violations = a->n_violations,
        };
}

static void print_table(const Audit *a) {
        bool tty = isatty(STDOUT_FILENO);
        static const char *const colour[_CONTROL_STATUS_MAX] = {
                [CONTROL_PASS] = "\033[32m", [CONTROL_FAIL] = "\033[1;31m",
                [CONTROL_MANUAL] = "\033[34m", [CONTROL_ERROR] = "\033[33m",
        };

        printf("host %s, policy %s (sha256 %.12s), violations window %s\n\n", a->target.host, a->policy_path,
               a->target.sha256, a->window);
        printf("%-9s %-7s %s\n", "CONTROL", "STATUS", "TITLE / EVIDENCE");
        for (size_t i = 0; i < a->n_results; i++) {
                const ControlResult *c = &a->results[i];
                printf("%-9s %s%-7s%s %s\n", c->id, tty ? colour[c->status] : "", control_status_to_string(c->status),
                       tty ? "\033[0m" : "", c->title);
                for (size_t j = 0; j < c->n_evidence; j++)
                        printf("%-17s - %s\n", "", c->evidence[j]);
        }
        printf("\n%zu violation(s) in the window\n", a->n_violations);
}

int verb_audit(int argc, char *argv[]) {
        Audit a = {};
        AuditArgs args;
        Report r;
        int k, ret = CTL_EXIT_ERROR;

        k = parse_args("audit", audit_usage, false, argc, argv, &args);
        if (k != 0)
                return k > 0 ? CTL_EXIT_OK : CTL_EXIT_ERROR;
        if (run_audit("audit", &args, &a) < 0)
                goto finish;
        if (args.json) {
                json_t *o = NULL;
                report_of(&a, &r);
                if (report_to_json(&r, &o) < 0 || json_dumpf(o, stdout, JSON_INDENT(2)) < 0) {
                        json_decref(o);
                        fprintf(stderr, "ceredisctl audit: cannot format the JSON answer\n");
                        goto finish;
                }
                json_decref(o);
                putchar('\n');
        } else
                print_table(&a);
        ret = controls_any_failed(a.results, a.n_results) ? CTL_EXIT_FAIL : CTL_EXIT_OK;
finish:
        audit_done(&a);
        return ret;
}

static int read_file(const char *path, char **ret, size_t *ret_size) {
        return state_read_file(path, REPORT_MAX_FILE, ret, ret_size);
}

static int verb_report_verify(int argc, char *argv[]) {
        static const char usage[] = "verify FILE [--pubkey KEY] [--json]";
        static const struct option options[] = {
                { "pubkey", required_argument, NULL, ARG_PUBKEY },
                { "json", no_argument, NULL, ARG_JSON },
                { "help", no_argument, NULL, ARG_HELP },
                {},
        };
        _cleanup_free_ char *data = NULL;
        const char *pubkey = NULL;
        ReportVerdict v;
        bool json = false;
        size_t size;
        int opt, k;

        optind = 1;
        opterr = 0;
        while ((opt = getopt_long(argc, argv, "", options, NULL)) >= 0)
                switch (opt) {
                case ARG_PUBKEY: pubkey = optarg; break;
                case ARG_JSON: json = true; break;
                case ARG_HELP: printf("Usage: ceredisctl report %s\n", usage); return CTL_EXIT_OK;
                default:
                        fprintf(stderr, "ceredisctl report verify: unknown option '%s'\nUsage: ceredisctl report %s\n",
                                argv[optind - 1], usage);
                        return CTL_EXIT_ERROR;
                }
        if (optind + 1 != argc) {
                fprintf(stderr, "Usage: ceredisctl report %s\n", usage);
                return CTL_EXIT_ERROR;
        }
        k = read_file(argv[optind], &data, &size);
        if (k >= 0)
                k = report_verify(data, size, pubkey, &v);
        if (k < 0) {
                fprintf(stderr, "ceredisctl report verify: %s: %s\n", k == -EINVAL ? pubkey : argv[optind],
                        k == -EINVAL ? "not an Ed25519 public key (PEM)" : strerror(-k));
                return CTL_EXIT_ERROR;
        }
        if (json)
                ctl_json_print(json_pack("{s:s, s:s, s:b}", "file", argv[optind], "verdict", report_verdict_to_string(v),
                                         "signer_checked", pubkey != NULL));
        else
                printf("%s: %s%s\n", argv[optind], report_verdict_to_string(v),
                       v == REPORT_INTACT && !pubkey ? " (consistent with its embedded key; pass --pubkey to "
                                                       "check who signed it)" : "");
        return v == REPORT_INTACT ? CTL_EXIT_OK : CTL_EXIT_FAIL;
}

static int write_output(const char *path, const char *data, size_t len) {
        _cleanup_fclose_ FILE *f = NULL;

        if (!path || streq(path, "-")) {
                if (fwrite(data, 1, len, stdout) != len || fflush(stdout) != 0)
                        return -EIO;
                return 0;
        }
        f = fopen(path, "we");
        if (!f)
                return negative_errno();
        if (fwrite(data, 1, len, f) != len || fflush(f) != 0)
                return -EIO;
        return 0;
}

int verb_report(int argc, char *argv[]) {
        static const char usage[] = "--format json|html|md [-o FILE] [--sign KEY] [audit options]\n"
                                    "       ceredisctl report verify FILE [--pubkey KEY]";
        _cleanup_free_ char *body = NULL, *signed_body = NULL;
        size_t len, signed_len;
        Audit a = {};
        AuditArgs args;
        Report r;
        int k, ret = CTL_EXIT_ERROR;

        if (argc > 1 && streq(argv[1], "verify"))
                return verb_report_verify(argc - 1, argv + 1);
        k = parse_args("report", usage, true, argc, argv, &args);
        if (k != 0)
                return k > 0 ? CTL_EXIT_OK : CTL_EXIT_ERROR;
        if (!args.have_format)
                args.format = args.json ? REPORT_JSON : REPORT_HTML;
        if (run_audit("report", &args, &a) < 0)
                goto finish;
        report_of(&a, &r);
        k = report_render(&r, args.format, &body, &len);
        if (k >= 0 && args.sign) {
                k = report_sign(body, len, args.sign, &signed_body, &signed_len);
                if (k < 0) {
                        fprintf(stderr, "ceredisctl report: cannot sign with %s: %s\n", args.sign,
                                k == -EINVAL ? "not an Ed25519 private key (PEM)" : strerror(-k));
                        goto finish;
                }
        }
        if (k >= 0)
                k = write_output(args.output, signed_body ? signed_body : body, signed_body ? signed_len : len);
        if (k < 0) {
                fprintf(stderr, "ceredisctl report: %s: %s\n", args.output ? args.output : "stdout", strerror(-k));
                goto finish;
        }
        ret = controls_any_failed(a.results, a.n_results) ? CTL_EXIT_FAIL : CTL_EXIT_OK;
finish:
        audit_done(&a);
        return ret;
}
