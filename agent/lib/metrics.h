/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The metric registry: counters and gauges the sinks keep about violations, agent events, the
 * policy and ruleset state and the sinks themselves, rendered as Prometheus text exposition
 * format 0.0.4. Pure: no I/O, no clock; the metrics listener and the textfile writer render it.
 * Label values come from packets and containers, so they are escaped per the format and the
 * number of violation series is capped: past the cap, violations are counted in a series with
 * rule="_overflow_" (per action) and ceredis_metrics_series_overflow_total says how many.
 */
#pragma once

#include "ceredis.h"

#include "event.h"

#define METRICS_MAX_SERIES_DEFAULT 1024u
#define METRICS_MAX_SERIES_LIMIT 65536u
#define METRICS_MAX_SINKS 8u
#define METRICS_MAX_SINK_NAME 32u
#define METRICS_OVERFLOW_RULE "_overflow_"
/* Pairs of ceredis_writes_journaled_total; later pairs count under src/dst "_overflow_". */
#define METRICS_MAX_WRITE_PAIRS 64u
/* What a scrape answer says it is. */
#define METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

typedef struct Metrics Metrics;

/* max_series: cap of violation series (0 = METRICS_MAX_SERIES_DEFAULT). */
int metrics_new(size_t max_series, Metrics **ret);
void metrics_free(Metrics *m);
DEFINE_TRIVIAL_CLEANUP_FUNC(Metrics *, metrics_free);

/* Count one event: ceredis_events_total{kind} += 1, violations by (rule, src_service,
 * dst_service, action, severity) += count, ruleset drift/repair counters and the in-sync gauge.
 * Returns 0, or 1 when the violation went to the overflow series. -EINVAL on a bad enum. */
int metrics_count_event(Metrics *m, const Event *e);

/* ceredis_policy_info{sha256,mode,host} 1 (NULL clears it). -ENOMEM. */
int metrics_set_policy(Metrics *m, const char *sha256, const char *mode, const char *host);
void metrics_set_ruleset_in_sync(Metrics *m, bool in_sync);
/* The capture's cumulative drop count (pcap stats), a counter the caller owns. */
void metrics_set_capture_drops(Metrics *m, uint64_t total);

/* Per-sink counters, by name ("journal", "alertmanager", ...); at most METRICS_MAX_SINKS
 * names. -E2BIG past that, -EINVAL for a name that is not [a-z0-9_-]+ of bounded length. */
int metrics_sink_dropped(Metrics *m, const char *sink, uint64_t n);
int metrics_sink_delivered(Metrics *m, const char *sink, uint64_t n);
int metrics_sink_set_queued(Metrics *m, const char *sink, uint64_t queued);

/* Readers for tests and the driver. */
uint64_t metrics_get_violations(const Metrics *m, const char *rule, const char *src,
                                const char *dst, EventAction action);
uint64_t metrics_get_overflow(const Metrics *m);
size_t metrics_get_series(const Metrics *m);
uint64_t metrics_get_sink_dropped(const Metrics *m, const char *sink);
uint64_t metrics_get_sink_delivered(const Metrics *m, const char *sink);

/* Render the exposition text (NUL-terminated; *ret_len excludes the NUL). -ENOMEM. */
int metrics_render(const Metrics *m, char **ret, size_t *ret_len);

/* Escape a label value per format 0.0.4 (\\, \", \n) into f. */
void metrics_escape_label(FILE *f, const char *s);
