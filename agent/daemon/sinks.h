/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The reporting sinks behind the daemon: Prometheus metrics (an HTTP listener and/or a
 * node_exporter textfile), Alertmanager alerts and the systemd journal. sinks_emit() is called
 * on the enforcement loop's hot path, so it only copies the event: metrics are counted in
 * memory at once, and every other sink gets the event through its own bounded queue, drained
 * from the same sd-event loop; a full queue drops (and counts) rather than waits. No threads.
 */
#pragma once

#include "ceredis.h"

#include <sys/socket.h>
#include <systemd/sd-event.h>

#include "event.h"
#include "metrics.h"

#define SINKS_METRICS_LISTEN_DEFAULT "127.0.0.1:9469"
#define SINKS_QUEUE_DEFAULT 256u
#define SINKS_QUEUE_LIMIT 65536u
#define SINKS_ALERTS_MAX_DEFAULT 256u
#define SINKS_ALERT_RESEND_USEC_DEFAULT (60u * 1000000ull)
#define SINKS_ALERT_RESOLVE_USEC_DEFAULT (300u * 1000000ull)
#define SINKS_TEXTFILE_INTERVAL_USEC_DEFAULT (15u * 1000000ull)

typedef struct SinksConfig {
        /* "ADDR:PORT" or "[ADDR6]:PORT"; NULL or "" = no listener. A wildcard address (0.0.0.0,
         * ::) is refused: it would include the public interfaces. */
        const char *metrics_listen;
        /* Directory of node_exporter's textfile collector; ceredis.prom is written there
         * atomically. NULL = off. */
        const char *textfile_dir;
        uint64_t textfile_interval_usec;
        /* Base URL of Alertmanager ("http://127.0.0.1:9093"); NULL = off. */
        const char *alertmanager_url;
        uint64_t alert_resend_usec;  /* resend active alerts this often */
        uint64_t alert_resolve_usec; /* resolve an alert after this long without a new event */
        size_t alerts_max;           /* distinct active alerts; past it, new ones are dropped */
        bool journal;
        size_t queue_max;  /* events per sink queue (0 = SINKS_QUEUE_DEFAULT) */
        size_t max_series; /* metrics cardinality cap (0 = default) */
} SinksConfig;

/* The defaults above; pointers NULL (every sink off but the journal). */
void sinks_config_init(SinksConfig *c);

typedef struct Sinks Sinks;

/* Every configured sink or none: the first that cannot start fails the whole. */
int sinks_new(const SinksConfig *c, sd_event *e, Sinks **ret);

/* The sinks that can fail to start on their own (the journal cannot: its socket is only
 * tried per entry). */
typedef enum SinksPart {
        SINKS_PART_LISTENER,
        SINKS_PART_TEXTFILE,
        SINKS_PART_ALERTMANAGER,
        _SINKS_PART_MAX,
} SinksPart;

/* For the daemon, where reporting never gates enforcing: start what can start, leave out a
 * sink that cannot and put its error in ret_errors[part] (0 for the others). Fails only on a
 * bad config or when the core (registry, queues) cannot be allocated. */
int sinks_new_partial(const SinksConfig *c, sd_event *e, Sinks **ret,
                      int ret_errors[static _SINKS_PART_MAX]);
const char *sinks_part_to_string(SinksPart p);
void sinks_free(Sinks *s);
DEFINE_TRIVIAL_CLEANUP_FUNC(Sinks *, sinks_free);

/* Never blocks and never fails the caller: a sink that cannot take the event counts a drop. */
void sinks_emit(Sinks *s, const Event *e);

/* State gauges. */
int sinks_set_policy(Sinks *s, const char *sha256, const char *mode, const char *host);
void sinks_set_ruleset_in_sync(Sinks *s, bool in_sync);
void sinks_set_capture_drops(Sinks *s, uint64_t total);

/* The registry (for tests and the driver). */
Metrics *sinks_metrics(Sinks *s);
/* The scrape endpoint's bound port, 0 if there is no listener. */
uint16_t sinks_metrics_port(const Sinks *s);
/* Write what can be written now, without waiting (at exit): the textfile, queued journal
 * entries. Alerts in flight are abandoned. */
void sinks_flush(Sinks *s);

/* ---- Sink modules (sink-*.c), used by sinks.c ---- */

/* Prometheus scrape endpoint: libmicrohttpd without threads, its epoll fd on the loop. */
typedef struct MetricsServer MetricsServer;
/* Parse "ADDR:PORT" / "[ADDR6]:PORT" into a sockaddr; refuses wildcards (-EADDRNOTAVAIL). */
int metrics_listen_parse(const char *s, struct sockaddr_storage *ret, socklen_t *ret_len);
int metrics_server_new(sd_event *e, const char *listen, const Metrics *m, MetricsServer **ret);
void metrics_server_free(MetricsServer *srv);
/* The bound port (useful when the configured port was 0). */
uint16_t metrics_server_port(const MetricsServer *srv);
/* node_exporter textfile: render and write DIR/ceredis.prom via a temp file and rename(). */
int metrics_textfile_write(const Metrics *m, const char *dir);

/* Alertmanager API v2 client on libcurl multi. */
typedef struct AlertSink AlertSink;
int alert_sink_new(sd_event *e, const SinksConfig *c, Metrics *m, AlertSink **ret);
void alert_sink_free(AlertSink *a);
/* Record a violation in the active alert set (memory only); 0, or -ENOBUFS when the set is
 * full. The HTTP POST happens later, from the loop. */
int alert_sink_push(AlertSink *a, const Event *e);
size_t alert_sink_active(const AlertSink *a);

/* The journal: one entry per event with CEREDIS_* fields and a MESSAGE_ID per kind. */
int journal_sink_send(const Event *e);
/* The entry's "FIELD=value" strings (pure; each malloc'd, at most `max`). -E2BIG, -EINVAL. */
int journal_sink_fields(const Event *e, char **fields, size_t max, size_t *ret_n);
/* The fixed MESSAGE_ID of an event kind (32 hex digits), NULL for an unknown kind. */
const char *journal_sink_message_id(EventKind k);
