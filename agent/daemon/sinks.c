/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The fan-out from one event to every configured sink. Metrics are counted at once (memory
 * only), and so are alerts: a violation folds into the Alertmanager sink's capped alert set,
 * which is that sink's bounded queue (HTTP happens later, from the loop). The journal, whose
 * send is a syscall that may wait on journald, gets a bounded ring of event copies drained by
 * one deferred sd-event source a few events per loop iteration, so that a burst neither blocks
 * the caller nor starves the loop's other sources. A full ring or set drops the new event and
 * counts it in ceredis_sink_dropped_total{sink}. The scrape endpoint and the textfile render the registry
 * when asked / on a timer.
 */
#include "ceredis.h"

#include "sinks.h"

#define SINKS_DRAIN_BATCH 32u

typedef enum SinkKind {
        SINK_JOURNAL,
        SINK_ALERTMANAGER,
        _SINK_KIND_MAX,
} SinkKind;

static const char *const sink_names[_SINK_KIND_MAX] = {
        [SINK_JOURNAL] = "journal",
        [SINK_ALERTMANAGER] = "alertmanager",
};

typedef struct SinkQueue {
        bool enabled;
        Event *ring;
        size_t cap;
        size_t head;
        size_t len;
} SinkQueue;

struct Sinks {
        sd_event *event;
        Metrics *metrics;
        SinkQueue queues[_SINK_KIND_MAX];
        sd_event_source *drain;
        MetricsServer *server;
        AlertSink *alerts;
        char *textfile_dir;
        sd_event_source *textfile_timer;
        uint64_t textfile_interval;
};

void sinks_config_init(SinksConfig *c) {
        *c = (SinksConfig){
                .textfile_interval_usec = SINKS_TEXTFILE_INTERVAL_USEC_DEFAULT,
                .alert_resend_usec = SINKS_ALERT_RESEND_USEC_DEFAULT,
                .alert_resolve_usec = SINKS_ALERT_RESOLVE_USEC_DEFAULT,
                .alerts_max = SINKS_ALERTS_MAX_DEFAULT,
                .journal = true,
                .queue_max = SINKS_QUEUE_DEFAULT,
        };
}

static int deliver(Sinks *s, SinkKind k, const Event *e) {
        switch (k) {
        case SINK_JOURNAL:
                return journal_sink_send(e);
        default:
                return -EINVAL;
        }
}

static int on_drain(sd_event_source *src, void *userdata) {
        Sinks *s = userdata;
        bool more = false;

        for (size_t k = 0; k < _SINK_KIND_MAX; k++) {
                SinkQueue *q = &s->queues[k];

                if (!q->ring)
                        continue;
                for (size_t n = 0; q->len && n < SINKS_DRAIN_BATCH; n++) {
                        int r = deliver(s, (SinkKind) k, &q->ring[q->head]);
                        q->head = (q->head + 1) % q->cap;
                        q->len--;
                        if (r < 0)
                                (void) metrics_sink_dropped(s->metrics, sink_names[k], 1);
                        else
                                (void) metrics_sink_delivered(s->metrics, sink_names[k], 1);
                }
                (void) metrics_sink_set_queued(s->metrics, sink_names[k], q->len);
                if (q->len)
                        more = true;
        }
        (void) sd_event_source_set_enabled(src, more ? SD_EVENT_ON : SD_EVENT_OFF);
        return 0;
}

void sinks_emit(Sinks *s, const Event *e) {
        bool queued = false;

        if (!s || !e)
                return;
        (void) metrics_count_event(s->metrics, e);
        for (size_t k = 0; k < _SINK_KIND_MAX; k++) {
                SinkQueue *q = &s->queues[k];

                if (!q->enabled)
                        continue;
                if (k == SINK_ALERTMANAGER) {
                        /* Folding into the alert set is a memory-only step bounded by the
                         * set's cap (which counts its own drops): a ring in front of it would
                         * only lose the repeats of a burst. */
                        (void) alert_sink_push(s->alerts, e);
                        continue;
                }
                if (q->len >= q->cap) {
                        (void) metrics_sink_dropped(s->metrics, sink_names[k], 1);
                        continue;
                }
                q->ring[(q->head + q->len) % q->cap] = *e;
                q->len++;
                queued = true;
        }
        if (queued)
                (void) sd_event_source_set_enabled(s->drain, SD_EVENT_ON);
}

static int on_textfile(sd_event_source *src, uint64_t usec, void *userdata) {
        Sinks *s = userdata;

        /* A failure (disk full, directory gone) is retried next interval; the scrape of a stale
         * file shows it by its mtime. */
        (void) metrics_textfile_write(s->metrics, s->textfile_dir);
        (void) sd_event_source_set_time(src, usec + s->textfile_interval);
        return 0;
}

static int queue_init(SinkQueue *q, size_t cap) {
        q->ring = calloc(cap, sizeof(Event));
        if (!q->ring)
                return -ENOMEM;
        q->cap = cap;
        q->enabled = true;
        return 0;
}

static int textfile_start(Sinks *s, const SinksConfig *c) {
        int k;

        s->textfile_dir = strdup(c->textfile_dir);
        if (!s->textfile_dir)
                return -ENOMEM;
        s->textfile_interval = c->textfile_interval_usec ? c->textfile_interval_usec
                                                         : SINKS_TEXTFILE_INTERVAL_USEC_DEFAULT;
        /* Fail early on an unusable directory rather than every interval in silence. */
        k = metrics_textfile_write(s->metrics, s->textfile_dir);
        if (k < 0)
                return k;
        k = sd_event_add_time_relative(s->event, &s->textfile_timer, CLOCK_MONOTONIC,
                                       s->textfile_interval, 0, on_textfile, s);
        if (k < 0)
                return k;
        return sd_event_source_set_enabled(s->textfile_timer, SD_EVENT_ON);
}

int sinks_new_partial(const SinksConfig *c, sd_event *e, Sinks **ret,
                      int ret_errors[static _SINKS_PART_MAX]) {
        _cleanup_(sinks_freep) Sinks *s = NULL;
        size_t qmax = c->queue_max ? c->queue_max : SINKS_QUEUE_DEFAULT;
        int errors[_SINKS_PART_MAX] = {};
        int k;

        if (qmax > SINKS_QUEUE_LIMIT)
                return -EINVAL;
        s = calloc(1, sizeof(*s));
        if (!s)
                return -ENOMEM;
        s->event = sd_event_ref(e);
        k = metrics_new(c->max_series, &s->metrics);
        if (k < 0)
                return k;
        k = sd_event_add_defer(e, &s->drain, on_drain, s);
        if (k < 0)
                return k;
        (void) sd_event_source_set_enabled(s->drain, SD_EVENT_OFF);

        if (c->journal) {
                k = queue_init(&s->queues[SINK_JOURNAL], qmax);
                if (k < 0)
                        return k;
                (void) metrics_sink_dropped(s->metrics, sink_names[SINK_JOURNAL], 0);
        }
        if (c->alertmanager_url) {
                k = alert_sink_new(e, c, s->metrics, &s->alerts);
                if (k < 0)
                        errors[SINKS_PART_ALERTMANAGER] = k;
                else
                        s->queues[SINK_ALERTMANAGER].enabled = true;
        }
        if (c->metrics_listen && c->metrics_listen[0]) {
                k = metrics_server_new(e, c->metrics_listen, s->metrics, &s->server);
                if (k < 0)
                        errors[SINKS_PART_LISTENER] = k;
        }
        if (c->textfile_dir) {
                k = textfile_start(s, c);
                if (k < 0) {
                        errors[SINKS_PART_TEXTFILE] = k;
                        s->textfile_timer = sd_event_source_disable_unref(s->textfile_timer);
                        free(s->textfile_dir);
                        s->textfile_dir = NULL;
                }
        }
        memcpy(ret_errors, errors, sizeof(errors));
        *ret = TAKE_PTR(s);
        return 0;
}

int sinks_new(const SinksConfig *c, sd_event *e, Sinks **ret) {
        _cleanup_(sinks_freep) Sinks *s = NULL;
        int errors[_SINKS_PART_MAX], k;

        k = sinks_new_partial(c, e, &s, errors);
        if (k < 0)
                return k;
        for (size_t i = 0; i < _SINKS_PART_MAX; i++)
                if (errors[i] < 0)
                        return errors[i];
        *ret = TAKE_PTR(s);
        return 0;
}

const char *sinks_part_to_string(SinksPart p) {
        static const char *const names[_SINKS_PART_MAX] = {
                [SINKS_PART_LISTENER] = "metrics listener",
                [SINKS_PART_TEXTFILE] = "metrics textfile",
                [SINKS_PART_ALERTMANAGER] = "Alertmanager sink",
        };

        return (size_t) p < _SINKS_PART_MAX ? names[p] : NULL;
}

void sinks_flush(Sinks *s) {
        if (!s)
                return;
        while (s->queues[SINK_JOURNAL].len)
                (void) on_drain(s->drain, s);
        if (s->textfile_dir)
                (void) metrics_textfile_write(s->metrics, s->textfile_dir);
}

void sinks_free(Sinks *s) {
        if (!s)
                return;
        sd_event_source_disable_unref(s->drain);
        sd_event_source_disable_unref(s->textfile_timer);
        metrics_server_free(s->server);
        alert_sink_free(s->alerts);
        for (size_t k = 0; k < _SINK_KIND_MAX; k++)
                free(s->queues[k].ring);
        metrics_free(s->metrics);
        free(s->textfile_dir);
        sd_event_unref(s->event);
        free(s);
}

int sinks_set_policy(Sinks *s, const char *sha256, const char *mode, const char *host) {
        return metrics_set_policy(s->metrics, sha256, mode, host);
}

void sinks_set_ruleset_in_sync(Sinks *s, bool in_sync) {
        metrics_set_ruleset_in_sync(s->metrics, in_sync);
}

void sinks_set_capture_drops(Sinks *s, uint64_t total) {
        metrics_set_capture_drops(s->metrics, total);
}

Metrics *sinks_metrics(Sinks *s) {
        return s->metrics;
}

uint16_t sinks_metrics_port(const Sinks *s) {
        return s->server ? metrics_server_port(s->server) : 0;
}
