/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The sinks without external services: the listen address parser refuses wildcards, the
 * scrape endpoint answers /metrics on loopback from the sd-event loop (no thread), the
 * textfile is replaced atomically with no temporary left behind, the journal entry carries
 * its structured fields, and the fan-out's bounded queue drops and counts instead of growing.
 * The daemon's partial start leaves out a sink that cannot start and keeps the others.
 */
#include "ceredis.h"

#include "sinks.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <syslog.h>

#include <setjmp.h>
#include <stdarg.h>
#include <cmocka.h>

static void violation(Event *e) {
        event_init(e, EVENT_VIOLATION);
        EVENT_SET(e->host, "vps1");
        EVENT_SET(e->rule, "NET-1");
        e->severity = POLICY_SEVERITY_CRITICAL;
        e->action = EVENT_ACTION_BLOCKED;
        EVENT_SET(e->src.service, "internet");
        EVENT_SET(e->src.ip, "198.51.100.7");
        e->src.port = 40000;
        EVENT_SET(e->dst.service, "postgres");
        EVENT_SET(e->dst.ip, "172.18.0.5");
        e->dst.port = 5432;
        EVENT_SET(e->proto, "tcp");
}

static void test_listen_parse(void **state) {
        struct sockaddr_storage ss;
        socklen_t len;

        assert_int_equal(metrics_listen_parse("127.0.0.1:9469", &ss, &len), 0);
        assert_int_equal(ss.ss_family, AF_INET);
        assert_int_equal(ntohs(((struct sockaddr_in *) &ss)->sin_port), 9469);
        assert_int_equal(metrics_listen_parse("[::1]:9469", &ss, &len), 0);
        assert_int_equal(ss.ss_family, AF_INET6);
        assert_int_equal(len, sizeof(struct sockaddr_in6));
        assert_int_equal(metrics_listen_parse("0.0.0.0:9469", &ss, &len), -EADDRNOTAVAIL);
        assert_int_equal(metrics_listen_parse("[::]:9469", &ss, &len), -EADDRNOTAVAIL);
        assert_int_equal(metrics_listen_parse("127.0.0.1", &ss, &len), -EINVAL);
        assert_int_equal(metrics_listen_parse("127.0.0.1:", &ss, &len), -EINVAL);
        assert_int_equal(metrics_listen_parse("127.0.0.1:65536", &ss, &len), -EINVAL);
        assert_int_equal(metrics_listen_parse("::1:9469", &ss, &len), -EINVAL);
        assert_int_equal(metrics_listen_parse("[::1]9469", &ss, &len), -EINVAL);
        assert_int_equal(metrics_listen_parse("localhost:9469", &ss, &len), -EINVAL);
}

/* One HTTP exchange with the server while the loop runs; returns the whole answer. */
static char *http_get(sd_event *e, uint16_t port, const char *req) {
        struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port) };
        static char buf[65536];
        size_t got = 0;
        int fd;

        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        assert_true(fd >= 0);
        assert_int_equal(connect(fd, (struct sockaddr *) &sa, sizeof(sa)), 0);
        assert_int_equal(write(fd, req, strlen(req)), (ssize_t) strlen(req));
        for (int i = 0; i < 200; i++) {
                struct pollfd p = { .fd = fd, .events = POLLIN };
                assert_true(sd_event_run(e, 10000) >= 0);
                if (poll(&p, 1, 0) == 1) {
                        ssize_t l = read(fd, buf + got, sizeof(buf) - 1 - got);
                        if (l <= 0)
                                break;
                        got += (size_t) l;
                }
        }
        close(fd);
        buf[got] = 0;
        return buf;
}

static void test_server(void **state) {
        _cleanup_(sd_event_unrefp) sd_event *e = NULL;
        _cleanup_(sinks_freep) Sinks *s = NULL;
        SinksConfig c;
        Event ev;
        char *answer;
        uint16_t port;

        assert_int_equal(sd_event_new(&e), 0);
        sinks_config_init(&c);
        c.journal = false;
        c.metrics_listen = "127.0.0.1:0";
        assert_int_equal(sinks_new(&c, e, &s), 0);
        assert_int_equal(sinks_set_policy(s, "deadbeef", "enforce", "vps1"), 0);
        sinks_set_ruleset_in_sync(s, true);
        violation(&ev);
        sinks_emit(s, &ev);

        /* The port is the server's: find it through the only listening socket we made. */
        port = sinks_metrics_port(s);
        assert_true(port > 0);
        answer = http_get(e, port, "GET /metrics HTTP/1.0\r\nHost: x\r\n\r\n");
        assert_non_null(strstr(answer, "HTTP/1.0 200") ?: strstr(answer, "HTTP/1.1 200"));
        assert_non_null(strstr(answer, "text/plain; version=0.0.4"));
        assert_non_null(strstr(answer, "ceredis_violations_total{rule=\"NET-1\",src_service="
                                       "\"internet\",dst_service=\"postgres\",action="
                                       "\"blocked\",severity=\"critical\"} 1\n"));
        assert_non_null(strstr(answer, "ceredis_policy_info{sha256=\"deadbeef\",mode=\"enforce\","
                                       "host=\"vps1\"} 1\n"));
        assert_non_null(strstr(answer, "ceredis_ruleset_in_sync 1\n"));

        answer = http_get(e, port, "GET /other HTTP/1.0\r\n\r\n");
        assert_non_null(strstr(answer, " 404 "));
        answer = http_get(e, port, "POST /metrics HTTP/1.0\r\nContent-Length: 0\r\n\r\n");
        assert_non_null(strstr(answer, " 405 "));

        /* The same address twice: the second bind fails and says so. */
        {
                char listen[32];
                MetricsServer *srv = NULL;
                snprintf(listen, sizeof(listen), "127.0.0.1:%u", port);
                assert_true(metrics_server_new(e, listen, sinks_metrics(s), &srv) < 0);
                assert_null(srv);
        }
}

static void test_textfile(void **state) {
        _cleanup_(metrics_freep) Metrics *m = NULL;
        char dir[] = "/tmp/test-sinks-XXXXXX", path[64], buf[8192];
        _cleanup_fclose_ FILE *f = NULL;
        struct dirent *de;
        size_t n;
        DIR *d;
        Event e;

        assert_non_null(mkdtemp(dir));
        assert_int_equal(metrics_new(0, &m), 0);
        violation(&e);
        assert_int_equal(metrics_count_event(m, &e), 0);
        assert_int_equal(metrics_textfile_write(m, dir), 0);
        assert_int_equal(metrics_count_event(m, &e), 0);
        assert_int_equal(metrics_textfile_write(m, dir), 0);
        snprintf(path, sizeof(path), "%s/ceredis.prom", dir);
        f = fopen(path, "re");
        assert_non_null(f);
        n = fread(buf, 1, sizeof(buf) - 1, f);
        buf[n] = 0;
        assert_non_null(strstr(buf, "action=\"blocked\",severity=\"critical\"} 2\n"));
        d = opendir(dir);
        assert_non_null(d);
        n = 0;
        while ((de = readdir(d)))
                if (de->d_name[0] != '.' || strncmp(de->d_name, ".ceredis", 8) == 0)
                        n++;
        closedir(d);
        assert_int_equal(n, 1); /* ceredis.prom, no temporary left */
        assert_int_equal(unlink(path), 0);
        assert_int_equal(rmdir(dir), 0);
        assert_true(metrics_textfile_write(m, "/nonexistent-ceredis-dir") < 0);
}

static bool has_field(char **f, size_t n, const char *want) {
        for (size_t i = 0; i < n; i++)
                if (streq(f[i], want))
                        return true;
        return false;
}

static void test_journal_fields(void **state) {
        char *f[32], prio[16];
        size_t n;
        Event e;

        violation(&e);
        e.has_l7 = true;
        EVENT_SET(e.l7.protocol, "postgresql");
        EVENT_SET(e.l7.statement_class, "write");
        assert_int_equal(journal_sink_fields(&e, f, ELEMENTSOF(f), &n), 0);
        assert_true(has_field(f, n, "CEREDIS_RULE=NET-1"));
        assert_true(has_field(f, n, "CEREDIS_SEVERITY=critical"));
        assert_true(has_field(f, n, "CEREDIS_ACTION=blocked"));
        assert_true(has_field(f, n, "CEREDIS_SRC_SERVICE=internet"));
        assert_true(has_field(f, n, "CEREDIS_SRC_IP=198.51.100.7"));
        assert_true(has_field(f, n, "CEREDIS_DST_SERVICE=postgres"));
        assert_true(has_field(f, n, "CEREDIS_DST_PORT=5432"));
        assert_true(has_field(f, n, "CEREDIS_L7_CLASS=write"));
        assert_false(has_field(f, n, "CEREDIS_L7_PATH="));
        snprintf(prio, sizeof(prio), "PRIORITY=%d", LOG_CRIT);
        assert_true(has_field(f, n, prio));
        assert_true(has_field(f, n, "MESSAGE_ID=f3bfb63673c841d48804139bae565d01"));
        for (size_t i = 0; i < n; i++)
                free(f[i]);

        assert_int_equal(journal_sink_fields(&e, f, 3, &n), -E2BIG);

        event_init(&e, EVENT_RULESET_DRIFT);
        EVENT_SET(e.detail, "table inet ceredis flushed");
        assert_int_equal(journal_sink_fields(&e, f, ELEMENTSOF(f), &n), 0);
        assert_true(has_field(f, n, "MESSAGE=ruleset-drift: table inet ceredis flushed"));
        assert_true(has_field(f, n, "CEREDIS_EVENT=ruleset-drift"));
        for (size_t i = 0; i < n; i++)
                free(f[i]);

        /* A journaled write: the flow's fields, its own id, a sentence naming the source. */
        violation(&e);
        e.kind = EVENT_WRITE;
        EVENT_SET(e.rule, EVENT_RULE_WRITE);
        e.severity = POLICY_SEVERITY_LOW;
        e.action = EVENT_ACTION_OBSERVED;
        EVENT_SET(e.src.service, "api");
        e.has_l7 = true;
        EVENT_SET(e.l7.protocol, "postgresql");
        EVENT_SET(e.l7.method, "INSERT");
        EVENT_SET(e.l7.statement_class, "write");
        assert_int_equal(journal_sink_fields(&e, f, ELEMENTSOF(f), &n), 0);
        assert_true(has_field(f, n, "CEREDIS_EVENT=write"));
        assert_true(has_field(f, n, "CEREDIS_RULE=DATA-3"));
        assert_true(has_field(f, n, "CEREDIS_SRC_SERVICE=api"));
        assert_true(has_field(f, n, "CEREDIS_L7_METHOD=INSERT"));
        assert_true(has_field(f, n, "MESSAGE=DATA-3 write journaled: api 198.51.100.7 port 40000 -> postgres 172.18.0.5 port 5432 tcp INSERT, count 1"));
        assert_true(has_field(f, n, "MESSAGE_ID=5d2e8c1a7b4f4e6f9a03c6b1d8e27f40"));
        snprintf(prio, sizeof(prio), "PRIORITY=%d", LOG_INFO);
        assert_true(has_field(f, n, prio));
        for (size_t i = 0; i < n; i++)
                free(f[i]);

        /* Distinct, well-formed ids per kind. */
        for (int a = 0; a < _EVENT_KIND_MAX; a++) {
                const char *id = journal_sink_message_id((EventKind) a);
                assert_non_null(id);
                assert_int_equal(strlen(id), 32);
                assert_int_equal(strspn(id, "0123456789abcdef"), 32);
                for (int b = 0; b < a; b++)
                        assert_string_not_equal(id, journal_sink_message_id((EventKind) b));
        }
        assert_null(journal_sink_message_id(_EVENT_KIND_MAX));
}

static void test_queue_bound(void **state) {
        _cleanup_(sd_event_unrefp) sd_event *e = NULL;
        _cleanup_(sinks_freep) Sinks *s = NULL;
        SinksConfig c;
        Event ev;

        assert_int_equal(sd_event_new(&e), 0);
        sinks_config_init(&c);
        c.queue_max = 4;
        assert_int_equal(sinks_new(&c, e, &s), 0);
        violation(&ev);
        for (int i = 0; i < 10; i++)
                sinks_emit(s, &ev);
        /* Nothing ran yet: the queue took 4, the other 6 were dropped, none delivered; the
         * metrics counted all 10 at once. */
        assert_int_equal(metrics_get_sink_dropped(sinks_metrics(s), "journal"), 6);
        assert_int_equal(metrics_get_sink_delivered(sinks_metrics(s), "journal"), 0);
        assert_int_equal(metrics_get_violations(sinks_metrics(s), "NET-1", "internet",
                                                "postgres", EVENT_ACTION_BLOCKED), 10);
        /* The loop drains the queue: each entry is delivered or, with no journald, dropped. */
        for (int i = 0; i < 5; i++)
                assert_true(sd_event_run(e, 0) >= 0);
        assert_int_equal(metrics_get_sink_dropped(sinks_metrics(s), "journal") +
                                 metrics_get_sink_delivered(sinks_metrics(s), "journal"),
                         10);
}

static void test_partial(void **state) {
        _cleanup_(sd_event_unrefp) sd_event *e = NULL;
        _cleanup_(sinks_freep) Sinks *first = NULL, *s = NULL;
        int errors[_SINKS_PART_MAX];
        char listen[32];
        SinksConfig c;
        Event ev;

        assert_int_equal(sd_event_new(&e), 0);
        sinks_config_init(&c);
        c.journal = false;
        c.metrics_listen = "127.0.0.1:0";
        assert_int_equal(sinks_new(&c, e, &first), 0);

        /* The port is taken and the directory does not exist: sinks_new() fails as a whole,
         * the partial start keeps the Alertmanager sink and says what it left out. */
        snprintf(listen, sizeof(listen), "127.0.0.1:%u", sinks_metrics_port(first));
        c.metrics_listen = listen;
        c.textfile_dir = "/nonexistent-ceredis-dir";
        c.alertmanager_url = "http://127.0.0.1:9";
        assert_true(sinks_new(&c, e, &s) < 0);
        assert_null(s);
        assert_int_equal(sinks_new_partial(&c, e, &s, errors), 0);
        assert_non_null(s);
        assert_true(errors[SINKS_PART_LISTENER] < 0);
        assert_true(errors[SINKS_PART_TEXTFILE] < 0);
        assert_int_equal(errors[SINKS_PART_ALERTMANAGER], 0);
        assert_int_equal(sinks_metrics_port(s), 0);
        assert_string_equal(sinks_part_to_string(SINKS_PART_LISTENER), "metrics listener");

        /* What did start works: the violation is counted and folded into an alert. */
        violation(&ev);
        sinks_emit(s, &ev);
        assert_int_equal(metrics_get_violations(sinks_metrics(s), "NET-1", "internet", "postgres",
                                                EVENT_ACTION_BLOCKED),
                         1);
        assert_int_equal(metrics_get_sink_dropped(sinks_metrics(s), "alertmanager"), 0);
        sinks_flush(s);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_listen_parse),
                cmocka_unit_test(test_server),
                cmocka_unit_test(test_textfile),
                cmocka_unit_test(test_journal_fields),
                cmocka_unit_test(test_queue_bound),
                cmocka_unit_test(test_partial),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
