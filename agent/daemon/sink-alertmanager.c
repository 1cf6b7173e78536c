/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The Alertmanager sink (API v2, POST /api/v2/alerts). Violations fold into a capped set of
 * active alerts, one per (rule, severity, host, source service, destination service): a burst
 * of repeats is one alert with a count, not a flood. The set is posted whole, as Prometheus
 * does, when something changed and every resend interval while anything is active; an alert
 * with no new event for the resolve interval is posted once more with endsAt = now and then
 * forgotten. One request at a time, on libcurl multi driven by the daemon's sd-event loop with
 * hard timeouts, so a slow or dead Alertmanager only delays the alerts, never the caller:
 * alert_sink_push() touches memory only. What cannot be kept (the set is full) is dropped and
 * counted; what could not be delivered stays queued and is retried.
 */
#include "ceredis.h"

#include <curl/curl.h>
#include <inttypes.h>
#include <jansson.h>
#include <time.h>

#include "curl-event.h"
#include "sinks.h"

#define ALERT_SINK_NAME "alertmanager"
#define ALERT_TIMEOUT_MS 5000L
#define ALERT_CONNECT_TIMEOUT_MS 2000L
#define ALERT_RETRY_USEC (5u * 1000000ull)
#define ALERT_TICK_MAX_USEC (1000000ull)
#define ALERT_URL_MAX 2048u
#define ALERT_NAME "CeredisViolation"

typedef struct Alert {
        Event last;             /* the latest violation folded into this alert */
        uint64_t count;         /* violations folded in */
        uint64_t starts_usec;   /* CLOCK_REALTIME of the first */
        uint64_t last_seen;     /* CLOCK_MONOTONIC of the latest */
        uint64_t resolved_usec; /* CLOCK_REALTIME when it was resolved, 0 while active */
        uint64_t version;       /* bumped on every change */
        uint64_t sent_version;  /* version Alertmanager acknowledged */
        uint64_t batch_version; /* version in the request in flight */
} Alert;

struct AlertSink {
        sd_event *event;
        Metrics *metrics;
        CurlEvent *curl;
        CURL *easy; /* the request in flight, or NULL */
        struct curl_slist *headers;
        char *url;
        char *body; /* the in-flight request's body: curl reads it until done */
        sd_event_source *tick;
        sd_event_source *kick;
        Alert *alerts;
        size_t n_alerts;
        size_t allocated;
        size_t max_alerts;
        uint64_t resend_usec;
        uint64_t resolve_usec;
        uint64_t tick_usec;
        uint64_t last_attempt; /* CLOCK_MONOTONIC */
        uint64_t last_success; /* CLOCK_MONOTONIC */
        bool last_failed;
};

static uint64_t now_usec(clockid_t clock) {
        struct timespec ts;

        clock_gettime(clock, &ts);
        return (uint64_t) ts.tv_sec * 1000000u + (uint64_t) ts.tv_nsec / 1000u;
}

static size_t alerts_pending(const AlertSink *a) {
        size_t n = 0;

        for (size_t i = 0; i < a->n_alerts; i++)
                if (a->alerts[i].version != a->alerts[i].sent_version)
                        n++;
        return n;
}

static void update_gauge(AlertSink *a) {
        (void) metrics_sink_set_queued(a->metrics, ALERT_SINK_NAME, alerts_pending(a));
}

size_t alert_sink_active(const AlertSink *a) {
        size_t n = 0;

        for (size_t i = 0; i < a->n_alerts; i++)
                if (!a->alerts[i].resolved_usec)
                        n++;
        return n;
}

/* ---- JSON ------------------------------------------------------------------------------- */

static int set_str(json_t *o, const char *k, const char *v) {
        return json_object_set_new(o, k, json_string(v)) < 0 ? -ENOMEM : 0;
}

static json_t *alert_to_json(const AlertSink *a, const Alert *al, uint64_t now_rt) {
        _cleanup_(json_decrefp) json_t *o = json_object(), *labels = json_object(),
                                       *ann = json_object();
        const Event *e = &al->last;
        char ts[EVENT_TS_MAX], summary[1024], n[32];
        uint64_t ends;

        if (!o || !labels || !ann)
                return NULL;
        if (set_str(labels, "alertname", ALERT_NAME) < 0 || set_str(labels, "rule", e->rule) < 0 ||
            set_str(labels, "severity", event_severity_to_string(e->severity)) < 0 ||
            set_str(labels, "host", e->host) < 0 ||
            set_str(labels, "src_service", e->src.service) < 0 ||
            set_str(labels, "dst_service", e->dst.service) < 0)
                return NULL;
        snprintf(summary, sizeof(summary), "%s: %s -> %s (%s)", e->rule, e->src.service,
                 e->dst.service, event_action_to_string(e->action));
        snprintf(n, sizeof(n), "%" PRIu64, al->count);
        if (set_str(ann, "summary", summary) < 0 ||
            set_str(ann, "action", event_action_to_string(e->action)) < 0 ||
            set_str(ann, "count", n) < 0 || set_str(ann, "src_ip", e->src.ip) < 0 ||
            set_str(ann, "dst_ip", e->dst.ip) < 0 || set_str(ann, "proto", e->proto) < 0)
                return NULL;
        snprintf(n, sizeof(n), "%u", (unsigned) e->dst.port);
        if (set_str(ann, "dst_port", n) < 0)
                return NULL;
        if (event_ts_format(al->starts_usec, ts) < 0 || set_str(o, "startsAt", ts) < 0)
                return NULL;
        if (al->resolved_usec)
                ends = al->resolved_usec;
        else {
                /* Long enough to survive a few missed resends, short enough that a dead agent's
                 * alerts resolve by themselves. */
                ends = now_rt + (a->resolve_usec > 3 * a->resend_usec ? a->resolve_usec
                                                                      : 3 * a->resend_usec);
        }
        if (event_ts_format(ends, ts) < 0 || set_str(o, "endsAt", ts) < 0)
                return NULL;
        if (json_object_set(o, "labels", labels) < 0 ||
            json_object_set(o, "annotations", ann) < 0)
                return NULL;
        return TAKE_PTR(o);
}

/* ---- sending ----------------------------------------------------------------------------- */

static size_t on_body(char *p, size_t size, size_t nmemb, void *userdata) {
        /* Alertmanager's answer is not needed beyond its status. */
        return size * nmemb;
}

static void request_end(AlertSink *a, bool ok) {
        if (a->easy) {
                curl_event_remove(a->curl, a->easy);
                curl_easy_cleanup(a->easy);
                a->easy = NULL;
        }
        free(a->body);
        a->body = NULL;
        a->last_failed = !ok;
        if (ok) {
                size_t j = 0, delivered = 0;
                a->last_success = now_usec(CLOCK_MONOTONIC);
                for (size_t i = 0; i < a->n_alerts; i++) {
                        Alert *al = &a->alerts[i];
                        if (al->batch_version) {
                                al->sent_version = al->batch_version;
                                delivered++;
                        }
                        al->batch_version = 0;
                        /* A resolution Alertmanager acknowledged ends the alert's life. */
                        if (al->resolved_usec && al->sent_version == al->version)
                                continue;
                        if (j != i)
                                a->alerts[j] = *al;
                        j++;
                }
                a->n_alerts = j;
                (void) metrics_sink_delivered(a->metrics, ALERT_SINK_NAME, delivered);
        } else
                for (size_t i = 0; i < a->n_alerts; i++)
                        a->alerts[i].batch_version = 0;
        update_gauge(a);
}

static void on_curl_ready(CurlEvent *ce, void *userdata) {
        AlertSink *a = userdata;
        CURLcode result;
        CURL *easy;

        while (curl_event_next_done(ce, &easy, &result)) {
                long status = 0;

                if (easy != a->easy)
                        continue;
                (void) curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
                request_end(a, result == CURLE_OK && status >= 200 && status < 300);
                return;
        }
}

static int send_batch(AlertSink *a) {
        _cleanup_(json_decrefp) json_t *arr = json_array();
        uint64_t now_rt = now_usec(CLOCK_REALTIME);
        CURL *easy;

        if (a->easy || a->n_alerts == 0)
                return 0;
        if (!arr)
                return -ENOMEM;
        for (size_t i = 0; i < a->n_alerts; i++) {
                json_t *o = alert_to_json(a, &a->alerts[i], now_rt);
                if (!o || json_array_append_new(arr, o) < 0)
                        return -ENOMEM;
        }
        a->body = json_dumps(arr, JSON_COMPACT);
        if (!a->body)
                return -ENOMEM;
        easy = curl_easy_init();
        if (!easy) {
                free(a->body);
                a->body = NULL;
                return -ENOMEM;
        }
        if (curl_easy_setopt(easy, CURLOPT_URL, a->url) != CURLE_OK ||
            curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http,https") != CURLE_OK ||
            curl_easy_setopt(easy, CURLOPT_HTTPHEADER, a->headers) != CURLE_OK ||
            curl_easy_setopt(easy, CURLOPT_POSTFIELDS, a->body) != CURLE_OK ||
            curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t) strlen(a->body)) != CURLE_OK ||
            curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, ALERT_TIMEOUT_MS) != CURLE_OK ||
            curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS, ALERT_CONNECT_TIMEOUT_MS) != CURLE_OK ||
            curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, on_body) != CURLE_OK ||
            curl_event_add(a->curl, easy) < 0) {
                curl_easy_cleanup(easy);
                free(a->body);
                a->body = NULL;
                return -EIO;
        }
        a->easy = easy;
        a->last_attempt = now_usec(CLOCK_MONOTONIC);
        for (size_t i = 0; i < a->n_alerts; i++)
                a->alerts[i].batch_version = a->alerts[i].version;
        return 0;
}

/* Resolve what went quiet, then send if something changed or a resend is due. */
static void maybe_send(AlertSink *a) {
        uint64_t now = now_usec(CLOCK_MONOTONIC), now_rt = now_usec(CLOCK_REALTIME);
        bool due;

        for (size_t i = 0; i < a->n_alerts; i++) {
                Alert *al = &a->alerts[i];
                if (!al->resolved_usec && now - al->last_seen >= a->resolve_usec) {
                        al->resolved_usec = now_rt;
                        al->version++;
                }
        }
        update_gauge(a);
        if (a->easy || a->n_alerts == 0)
                return;
        if (a->last_failed)
                due = now - a->last_attempt >= (a->resend_usec < ALERT_RETRY_USEC ? a->resend_usec : ALERT_RETRY_USEC);
        else
                due = alerts_pending(a) > 0 || now - a->last_success >= a->resend_usec;
        if (due)
                (void) send_batch(a);
}

static int on_tick(sd_event_source *s, uint64_t usec, void *userdata) {
        AlertSink *a = userdata;

        maybe_send(a);
        /* Nothing active and nothing in flight: sleep until the next violation. */
        if (a->n_alerts == 0 && !a->easy) {
                (void) sd_event_source_set_enabled(s, SD_EVENT_OFF);
                return 0;
        }
        (void) sd_event_source_set_time(s, usec + a->tick_usec);
        return 0;
}

static int on_kick(sd_event_source *s, void *userdata) {
        maybe_send(userdata);
        return 0;
}

/* ---- API --------------------------------------------------------------------------------- */

int alert_sink_push(AlertSink *a, const Event *e) {
        uint64_t now = now_usec(CLOCK_MONOTONIC);
        Alert *al = NULL;

        if (e->kind != EVENT_VIOLATION)
                return 0;
        for (size_t i = 0; i < a->n_alerts; i++) {
                const Event *l = &a->alerts[i].last;
                if (l->severity == e->severity && streq(l->rule, e->rule) &&
                    streq(l->host, e->host) && streq(l->src.service, e->src.service) &&
                    streq(l->dst.service, e->dst.service)) {
                        al = &a->alerts[i];
                        break;
                }
        }
        if (al && al->resolved_usec) {
                /* It came back before the resolution was acknowledged: a fresh alert. */
                al->resolved_usec = 0;
                al->count = 0;
                al->starts_usec = e->ts_usec;
        }
        if (!al) {
                if (a->n_alerts >= a->max_alerts ||
                    ARRAY_GROW(a->alerts, a->allocated, a->n_alerts + 1, a->max_alerts) < 0) {
                        (void) metrics_sink_dropped(a->metrics, ALERT_SINK_NAME, 1);
                        return -ENOBUFS;
                }
                al = &a->alerts[a->n_alerts++];
                memset(al, 0, sizeof(*al));
                al->starts_usec = e->ts_usec;
        }
        al->last = *e;
        al->count += e->count ? e->count : 1;
        al->last_seen = now;
        al->version++;
        update_gauge(a);
        (void) sd_event_source_set_enabled(a->kick, SD_EVENT_ONESHOT);
        if (sd_event_source_get_enabled(a->tick, NULL) == 0) {
                (void) sd_event_source_set_time_relative(a->tick, a->tick_usec);
                (void) sd_event_source_set_enabled(a->tick, SD_EVENT_ON);
        }
        return 0;
}

int alert_sink_new(sd_event *e, const SinksConfig *c, Metrics *m, AlertSink **ret) {
        AlertSink *a;
        size_t l;
        int k;

        if (!c->alertmanager_url || !c->alert_resend_usec || !c->alert_resolve_usec)
                return -EINVAL;
        l = strlen(c->alertmanager_url);
        if (l == 0 || l > ALERT_URL_MAX)
                return -EINVAL;
        a = calloc(1, sizeof(*a));
        if (!a)
                return -ENOMEM;
        a->event = e;
        a->metrics = m;
        a->max_alerts = c->alerts_max ? c->alerts_max : SINKS_ALERTS_MAX_DEFAULT;
        a->resend_usec = c->alert_resend_usec;
        a->resolve_usec = c->alert_resolve_usec;
        a->tick_usec = a->resend_usec < ALERT_TICK_MAX_USEC ? a->resend_usec : ALERT_TICK_MAX_USEC;
        if (asprintf(&a->url, "%.*s/api/v2/alerts", (int) (c->alertmanager_url[l - 1] == '/' ? l - 1 : l),
                     c->alertmanager_url) < 0) {
                a->url = NULL;
                k = -ENOMEM;
                goto fail;
        }
        a->headers = curl_slist_append(NULL, "Content-Type: application/json");
        if (!a->headers) {
                k = -ENOMEM;
                goto fail;
        }
        k = curl_event_new(e, on_curl_ready, a, &a->curl);
        if (k >= 0)
                k = sd_event_add_time_relative(e, &a->tick, CLOCK_MONOTONIC, a->tick_usec, 0,
                                               on_tick, a);
        if (k >= 0)
                k = sd_event_source_set_enabled(a->tick, SD_EVENT_ON);
        if (k >= 0)
                k = sd_event_add_defer(e, &a->kick, on_kick, a);
        if (k >= 0)
                k = sd_event_source_set_enabled(a->kick, SD_EVENT_OFF);
        if (k < 0)
                goto fail;
        a->last_success = now_usec(CLOCK_MONOTONIC);
        (void) metrics_sink_dropped(m, ALERT_SINK_NAME, 0);
        *ret = a;
        return 0;
fail:
        alert_sink_free(a);
        return k;
}

void alert_sink_free(AlertSink *a) {
        if (!a)
                return;
        if (a->easy) {
                curl_event_remove(a->curl, a->easy);
                curl_easy_cleanup(a->easy);
        }
        curl_event_free(a->curl);
        sd_event_source_disable_unref(a->tick);
        sd_event_source_disable_unref(a->kick);
        curl_slist_free_all(a->headers);
        free(a->body);
        free(a->url);
        free(a->alerts);
        free(a);
}
