/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * ceredisctl violations: the violations the watcher wrote to the tamper-evident event log,
 * optionally only those of the last DURATION. The log is verified while it is read, and a log
 * that fails verification is refused (exit 2) rather than half believed. Exit 1 when any
 * violation is found, 0 when none: usable as is from cron or CI. With --writes it lists the
 * journaled writes to evaluation stores (DATA-3) instead, which are not violations: exit 0.
 */
#include "ceredis.h"

#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <limits.h>
#include <time.h>

#include "ctl/ctl.h"
#include "eventlog.h"

#define VIOLATIONS_MAX 16384u /* newest events kept for one listing (an Event is a few KiB) */

static const char usage_text[] = "[--since DURATION] [--writes] [--state-dir DIR] [--log FILE-or-DIR] [--key FILE] [--json]\n"
                                 "  DURATION: a number and a unit, s m h d or w (10m, 1h, 2d)";

enum {
        ARG_SINCE = 0x100,
        ARG_STATE_DIR,
        ARG_LOG,
        ARG_KEY,
        ARG_JSON,
        ARG_WRITES,
        ARG_HELP,
};

typedef struct Collect {
        uint64_t since_usec;
        EventKind kind; /* EVENT_VIOLATION, or EVENT_WRITE with --writes */
        Event *events; /* a ring once full: the oldest is at `start` */
        size_t n, allocated, start;
        bool capped;
} Collect;

static int collect(const EventlogRecord *rec, void *userdata) {
        Collect *c = userdata;
        int k;

        if (rec->event.kind != c->kind || rec->event.ts_usec < c->since_usec)
                return 0;
        if (c->n == VIOLATIONS_MAX) {
                /* Keep the newest rather than fail the listing. */
                c->events[c->start] = rec->event;
                c->start = (c->start + 1) % VIOLATIONS_MAX;
                c->capped = true;
                return 0;
        }
        k = ARRAY_GROW(c->events, c->allocated, c->n + 1, VIOLATIONS_MAX);
        if (k < 0)
                return k;
        c->events[c->n++] = rec->event;
        return 0;
}

static const Event *collected(const Collect *c, size_t i) {
        return &c->events[(c->start + i) % (c->n ? c->n : 1)];
}

static void print_endpoint(const EventEndpoint *e) {
        printf("%s", e->service);
        if (e->ip[0])
                printf(strchr(e->ip, ':') ? " [%s]" : " %s", e->ip);
        if (e->port)
                printf(":%u", e->port);
}

static void print_text(const Collect *c) {
        char ts[EVENT_TS_MAX];

        for (size_t i = 0; i < c->n; i++) {
                const Event *e = collected(c, i);

                (void) event_ts_format(e->ts_usec, ts);
                printf("%s %s %s %s ", ts, e->rule, event_severity_to_string(e->severity),
                       event_action_to_string(e->action));
                print_endpoint(&e->src);
                printf(" -> ");
                print_endpoint(&e->dst);
                printf(" %s", e->proto);
                if (e->has_l7) {
                        printf(" %s", e->l7.protocol);
                        if (e->l7.method[0])
                                printf(" %s", e->l7.method);
                        if (e->l7.path[0])
                                printf(" %s", e->l7.path);
                        if (e->l7.statement_class[0])
                                printf(" (%s)", e->l7.statement_class);
                }
                if (e->count > 1)
                        printf(" x%" PRIu64, e->count);
                putchar('\n');
        }
}

static int print_json(const char *log, const Collect *c, bool have_since, uint64_t since_usec,
                      const EventlogResult *res) {
        json_t *o, *list = json_array();
        char ts[EVENT_TS_MAX];
        int k;

        if (!list)
                return -ENOMEM;
        for (size_t i = 0; i < c->n; i++) {
                json_t *j;
                k = event_to_json(collected(c, i), &j);
                if (k < 0 || json_array_append_new(list, j) < 0) {
                        json_decref(list);
                        return k < 0 ? k : -ENOMEM;
                }
        }
        if (have_since)
                (void) event_ts_format(since_usec, ts);
        o = json_pack("{s:s, s:o, s:I, s:I, s:b, s:o}", "log", log, "since", have_since ? json_string(ts) : json_null(),
                      "records_verified", (json_int_t) res->n_records, "count", (json_int_t) c->n, "capped",
                      c->capped, c->kind == EVENT_WRITE ? "writes" : "violations", list);
        if (!o || json_dumpf(o, stdout, JSON_INDENT(2)) < 0) {
                json_decref(o);
                return -ENOMEM;
        }
        putchar('\n');
        json_decref(o);
        return 0;
}

int verb_violations(int argc, char *argv[]) {
        static const struct option options[] = {
                { "since", required_argument, NULL, ARG_SINCE },
                { "state-dir", required_argument, NULL, ARG_STATE_DIR },
                { "log", required_argument, NULL, ARG_LOG },
                { "key", required_argument, NULL, ARG_KEY },
                { "json", no_argument, NULL, ARG_JSON },
                { "writes", no_argument, NULL, ARG_WRITES },
                { "help", no_argument, NULL, ARG_HELP },
                {},
        };
        _cleanup_(eventlog_key_freep) EventlogKey *key = NULL;
        const char *state_dir = EVENTLOG_DIR_DEFAULT, *log = NULL, *key_path = NULL, *since = NULL;
        Collect c = { .kind = EVENT_VIOLATION };
        EventlogResult res = {};
        bool json = false;
        uint64_t window = 0;
        struct timespec now;
        int opt, k, ret;

        optind = 1;
        opterr = 0;
        while ((opt = getopt_long(argc, argv, "", options, NULL)) >= 0)
                switch (opt) {
                case ARG_SINCE:
                        since = optarg;
                        break;
                case ARG_STATE_DIR:
                        state_dir = optarg;
                        break;
                case ARG_LOG:
                        log = optarg;
                        break;
                case ARG_KEY:
                        key_path = optarg;
                        break;
                case ARG_JSON:
                        json = true;
                        break;
                case ARG_WRITES:
                        c.kind = EVENT_WRITE;
                        break;
                case ARG_HELP:
                        printf("Usage: ceredisctl violations %s\n", usage_text);
                        return CTL_EXIT_OK;
                default:
                        fprintf(stderr, "ceredisctl violations: unknown option '%s'\nUsage: ceredisctl violations %s\n",
                                argv[optind - 1], usage_text);
                        return CTL_EXIT_ERROR;
                }
        if (optind < argc) {
                fprintf(stderr, "ceredisctl violations: unexpected argument '%s'\nUsage: ceredisctl violations %s\n",
                        argv[optind], usage_text);
                return CTL_EXIT_ERROR;
        }
        if (since && ctl_parse_duration(since, &window) < 0) {
                fprintf(stderr, "ceredisctl violations: --since %s: expected a number and a unit (s, m, h, d, w), e.g. 10m\n",
                        since);
                return CTL_EXIT_ERROR;
        }
        if (!log)
                log = state_dir;
        if (!key_path)
                key_path = EVENTLOG_KEY_PATH_DEFAULT; /* the daemon's --eventlog-key default */
        k = eventlog_key_load(key_path, false, &key);
        if (k < 0) {
                fprintf(stderr, "ceredisctl violations: cannot use key %s: %s\n", key_path,
                        k == -EPERM    ? "it must be owned by root (or you) with no group/other permissions"
                        : k == -EINVAL ? "not a regular file of 32 bytes"
                                       : strerror(-k));
                return CTL_EXIT_ERROR;
        }
        clock_gettime(CLOCK_REALTIME, &now);
        if (since) {
                uint64_t n = (uint64_t) now.tv_sec * 1000000u + (uint64_t) now.tv_nsec / 1000u;
                c.since_usec = window < n ? n - window : 0;
        }

        k = eventlog_verify(log, key, &res, collect, &c);
        if (k < 0) {
                fprintf(stderr, "ceredisctl violations: cannot read %s: %s\n", log, strerror(-k));
                ret = CTL_EXIT_ERROR;
                goto finish;
        }
        if (res.problem != EVENTLOG_INTACT) {
                fprintf(stderr, "ceredisctl violations: refusing %s: the event log is %s at %s:%" PRIu64 ": %s\n", log,
                        eventlog_problem_to_string(res.problem), res.file, res.line, res.detail);
                ret = CTL_EXIT_ERROR;
                goto finish;
        }
        if (json)
                k = print_json(log, &c, since != NULL, c.since_usec, &res);
        else {
                print_text(&c);
                if (c.n == 0)
                        printf("no %s%s%s\n", c.kind == EVENT_WRITE ? "journaled writes" : "violations", since ? " in the last " : "", since ? since : "");
                k = 0;
        }
        if (k < 0) {
                fprintf(stderr, "ceredisctl violations: %s\n", strerror(-k));
                ret = CTL_EXIT_ERROR;
        } else
                ret = c.n > 0 && c.kind == EVENT_VIOLATION ? CTL_EXIT_FAIL : CTL_EXIT_OK;
finish:
        free(c.events);
        return ret;
}
