/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * TEST ONLY: drives the reporting sinks (agent/daemon/sinks.c) without the daemon, for
 * tests/sinks.sh. It runs one sd-event loop, like the daemon, and reads commands on stdin, one
 * per line, answering each on stdout with one line:
 *   emit RULE SEVERITY SRC DST ACTION [N]  emit N violations (distinct source ports); answers
 *                                          "emitted N usec=U" with the time spent in sinks_emit
 *   emit-distinct RULE SEVERITY N          N violations each with a new source service
 *   event KIND                             an agent event (ruleset-drift, ruleset-repaired...)
 *   policy SHA256 MODE HOST | sync 0|1 | capture N
 *   stats                                  a JSON line of the sink counters
 *   quit
 * Options: --listen ADDR:PORT --alertmanager URL --textfile DIR --resend-ms N --resolve-ms N
 *          --alerts-max N --queue N --no-journal
 */
#include "ceredis.h"

#include <getopt.h>
#include <inttypes.h>
#include <time.h>

#include "sinks.h"

typedef struct Driver {
        Sinks *sinks;
        sd_event *event;
        char line[4096];
        size_t len;
} Driver;

static uint64_t mono_usec(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000u + (uint64_t) ts.tv_nsec / 1000u;
}

static int make_violation(Event *e, const char *rule, const char *sev, const char *src,
                          const char *dst, const char *action) {
        event_init(e, EVENT_VIOLATION);
        EVENT_SET(e->host, "vps1");
        EVENT_SET(e->rule, rule);
        if (event_severity_from_string(sev, &e->severity) < 0 ||
            event_action_from_string(action, &e->action) < 0)
                return -EINVAL;
        EVENT_SET(e->src.service, src);
        EVENT_SET(e->src.ip, "198.51.100.7");
        EVENT_SET(e->dst.service, dst);
        EVENT_SET(e->dst.ip, "172.18.0.5");
        e->dst.port = 5432;
        EVENT_SET(e->proto, "tcp");
        return 0;
}

static void stats(Driver *d) {
        Metrics *m = sinks_metrics(d->sinks);

        printf("{\"alertmanager_dropped\":%" PRIu64 ",\"alertmanager_delivered\":%" PRIu64
               ",\"journal_dropped\":%" PRIu64 ",\"journal_delivered\":%" PRIu64
               ",\"series\":%zu,\"overflow\":%" PRIu64 "}\n",
               metrics_get_sink_dropped(m, "alertmanager"),
               metrics_get_sink_delivered(m, "alertmanager"),
               metrics_get_sink_dropped(m, "journal"), metrics_get_sink_delivered(m, "journal"),
               metrics_get_series(m), metrics_get_overflow(m));
}

static void command(Driver *d, char *line) {
        char a[5][128];
        unsigned long n = 1;
        Event e;
        int f;

        f = sscanf(line, "emit %127s %127s %127s %127s %127s %lu", a[0], a[1], a[2], a[3], a[4], &n);
        if (f >= 5) {
                uint64_t spent = 0;
                if (make_violation(&e, a[0], a[1], a[2], a[3], a[4]) < 0) {
                        printf("error bad violation\n");
                        return;
                }
                for (unsigned long i = 0; i < n; i++) {
                        uint64_t t0;
                        e.src.port = (uint16_t) (40000 + i % 20000);
                        t0 = mono_usec();
                        sinks_emit(d->sinks, &e);
                        spent += mono_usec() - t0;
                }
                printf("emitted %lu usec=%" PRIu64 "\n", n, spent);
                return;
        }
        if (sscanf(line, "emit-distinct %127s %127s %lu", a[0], a[1], &n) == 3) {
                uint64_t spent = 0;
                for (unsigned long i = 0; i < n; i++) {
                        char src[64];
                        uint64_t t0;
                        snprintf(src, sizeof(src), "client-%lu", i);
                        if (make_violation(&e, a[0], a[1], src, "postgres", "blocked") < 0) {
                                printf("error bad violation\n");
                                return;
                        }
                        t0 = mono_usec();
                        sinks_emit(d->sinks, &e);
                        spent += mono_usec() - t0;
                }
                printf("emitted %lu usec=%" PRIu64 "\n", n, spent);
                return;
        }
        if (sscanf(line, "event %127s", a[0]) == 1) {
                EventKind k;
                if (event_kind_from_string(a[0], &k) < 0) {
                        printf("error bad kind\n");
                        return;
                }
                event_init(&e, k);
                EVENT_SET(e.host, "vps1");
                EVENT_SET(e.detail, "from sinks-driver");
                sinks_emit(d->sinks, &e);
                printf("ok\n");
                return;
        }
        if (sscanf(line, "policy %127s %127s %127s", a[0], a[1], a[2]) == 3) {
                printf(sinks_set_policy(d->sinks, a[0], a[1], a[2]) < 0 ? "error\n" : "ok\n");
                return;
        }
        if (sscanf(line, "sync %lu", &n) == 1) {
                sinks_set_ruleset_in_sync(d->sinks, n != 0);
                printf("ok\n");
                return;
        }
        if (sscanf(line, "capture %lu", &n) == 1) {
                sinks_set_capture_drops(d->sinks, n);
                printf("ok\n");
                return;
        }
        if (streq(line, "stats")) {
                stats(d);
                return;
        }
        if (streq(line, "quit")) {
                sinks_flush(d->sinks);
                (void) sd_event_exit(d->event, 0);
                printf("bye\n");
                return;
        }
        printf("error unknown command\n");
}

static int on_stdin(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        Driver *d = userdata;
        ssize_t l = read(fd, d->line + d->len, sizeof(d->line) - 1 - d->len);
        char *nl;

        if (l <= 0) {
                if (l < 0 && errno == EINTR)
                        return 0;
                return sd_event_exit(d->event, 0);
        }
        d->len += (size_t) l;
        d->line[d->len] = 0;
        while ((nl = strchr(d->line, '\n'))) {
                *nl = 0;
                command(d, d->line);
                fflush(stdout);
                d->len -= (size_t) (nl + 1 - d->line);
                memmove(d->line, nl + 1, d->len + 1);
        }
        if (d->len == sizeof(d->line) - 1)
                d->len = 0; /* an absurd line: forget it */
        return 0;
}

int main(int argc, char **argv) {
        static const struct option opts[] = {
                { "listen", required_argument, NULL, 'l' },
                { "alertmanager", required_argument, NULL, 'a' },
                { "textfile", required_argument, NULL, 't' },
                { "resend-ms", required_argument, NULL, 'r' },
                { "resolve-ms", required_argument, NULL, 'R' },
                { "alerts-max", required_argument, NULL, 'm' },
                { "queue", required_argument, NULL, 'q' },
                { "no-journal", no_argument, NULL, 'J' },
                {},
        };
        SinksConfig c;
        Driver d = {};
        int k, o;

        sinks_config_init(&c);
        while ((o = getopt_long(argc, argv, "", opts, NULL)) >= 0)
                switch (o) {
                case 'l':
                        c.metrics_listen = optarg;
                        break;
                case 'a':
                        c.alertmanager_url = optarg;
                        break;
                case 't':
                        c.textfile_dir = optarg;
                        c.textfile_interval_usec = 200000;
                        break;
                case 'r':
                        c.alert_resend_usec = strtoull(optarg, NULL, 10) * 1000u;
                        break;
                case 'R':
                        c.alert_resolve_usec = strtoull(optarg, NULL, 10) * 1000u;
                        break;
                case 'm':
                        c.alerts_max = strtoul(optarg, NULL, 10);
                        break;
                case 'q':
                        c.queue_max = strtoul(optarg, NULL, 10);
                        break;
                case 'J':
                        c.journal = false;
                        break;
                default:
                        return 2;
                }

        k = sd_event_default(&d.event);
        if (k >= 0)
                k = sinks_new(&c, d.event, &d.sinks);
        if (k < 0) {
                fprintf(stderr, "sinks-driver: failed to set up the sinks: %s\n", strerror(-k));
                return 1;
        }
        k = sd_event_add_io(d.event, NULL, STDIN_FILENO, EPOLLIN, on_stdin, &d);
        if (k < 0) {
                fprintf(stderr, "sinks-driver: stdin: %s\n", strerror(-k));
                return 1;
        }
        printf("ready\n");
        fflush(stdout);
        k = sd_event_loop(d.event);
        sinks_free(d.sinks);
        sd_event_unref(d.event);
        return k < 0 ? 1 : 0;
}
