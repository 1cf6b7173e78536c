/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The metric registry and its text exposition. Violation series live in one array searched by
 * a 64-bit hash of their labels (the cap keeps it small, and a rendering walks it in insertion
 * order, so the output is stable between scrapes). Everything else is a fixed set of counters.
 */
#include "ceredis.h"

#include <inttypes.h>

#include "metrics.h"

typedef struct Series {
        uint64_t hash;
        uint64_t value;
        EventAction action;
        EventSeverity severity;
        char rule[EVENT_MAX_RULE];
        char src[EVENT_MAX_SERVICE];
        char dst[EVENT_MAX_SERVICE];
} Series;

/* A journaled write's source and destination services (DATA-3). */
typedef struct WritePair {
        uint64_t value;
        char src[EVENT_MAX_SERVICE];
        char dst[EVENT_MAX_SERVICE];
} WritePair;

typedef struct SinkCounters {
        char name[METRICS_MAX_SINK_NAME];
        uint64_t dropped;
        uint64_t delivered;
        uint64_t queued;
} SinkCounters;

struct Metrics {
        Series *series;
        size_t n_series;
        size_t allocated;
        size_t max_series;
        uint64_t overflow;
        Series overflow_series[_EVENT_ACTION_MAX];

        WritePair writes[METRICS_MAX_WRITE_PAIRS + 1]; /* the last one: overflow */
        size_t n_writes;

        uint64_t events[_EVENT_KIND_MAX];
        uint64_t ruleset_drifts;
        uint64_t ruleset_repairs;
        bool ruleset_in_sync;
        uint64_t capture_drops;

        char *policy_sha256;
        char *policy_mode;
        char *policy_host;

        SinkCounters sinks[METRICS_MAX_SINKS];
        size_t n_sinks;
};

int metrics_new(size_t max_series, Metrics **ret) {
        Metrics *m;

        if (max_series > METRICS_MAX_SERIES_LIMIT)
                return -EINVAL;
        m = calloc(1, sizeof(*m));
        if (!m)
                return -ENOMEM;
        m->max_series = max_series ? max_series : METRICS_MAX_SERIES_DEFAULT;
        for (size_t a = 0; a < _EVENT_ACTION_MAX; a++) {
                Series *o = &m->overflow_series[a];
                o->action = (EventAction) a;
                o->severity = POLICY_SEVERITY_LOW;
                EVENT_SET(o->rule, METRICS_OVERFLOW_RULE);
                EVENT_SET(o->src, METRICS_OVERFLOW_RULE);
                EVENT_SET(o->dst, METRICS_OVERFLOW_RULE);
        }
        *ret = m;
        return 0;
}

void metrics_free(Metrics *m) {
        if (!m)
                return;
        free(m->series);
        free(m->policy_sha256);
        free(m->policy_mode);
        free(m->policy_host);
        free(m);
}

/* FNV-1a over the labels, with a separator no label can hold (the NUL). */
static uint64_t hash_str(uint64_t h, const char *s) {
        for (; *s; s++) {
                h ^= (unsigned char) *s;
                h *= 0x100000001b3ull;
        }
        h ^= 0xff;
        return h * 0x100000001b3ull;
}

static uint64_t series_hash(const char *rule, const char *src, const char *dst, EventAction a,
                            EventSeverity sev) {
        uint64_t h = 0xcbf29ce484222325ull;

        h = hash_str(h, rule);
        h = hash_str(h, src);
        h = hash_str(h, dst);
        h ^= (uint64_t) a << 8 | (uint64_t) sev;
        return h * 0x100000001b3ull;
}

static Series *series_find(const Metrics *m, uint64_t hash, const char *rule, const char *src,
                           const char *dst, EventAction a, EventSeverity sev) {
        for (size_t i = 0; i < m->n_series; i++) {
                Series *s = &m->series[i];
                if (s->hash == hash && s->action == a && s->severity == sev &&
                    streq(s->rule, rule) && streq(s->src, src) && streq(s->dst, dst))
                        return s;
        }
        return NULL;
}

static int count_violation(Metrics *m, const Event *e) {
        uint64_t n = e->count ? e->count : 1;
        uint64_t h;
        Series *s;

        if (!event_action_to_string(e->action) || !event_severity_to_string(e->severity))
                return -EINVAL;
        h = series_hash(e->rule, e->src.service, e->dst.service, e->action, e->severity);
        s = series_find(m, h, e->rule, e->src.service, e->dst.service, e->action, e->severity);
        if (!s) {
                if (m->n_series >= m->max_series ||
                    ARRAY_GROW(m->series, m->allocated, m->n_series + 1, m->max_series) < 0) {
                        /* Past the cap (or out of memory) the violation still counts. */
                        m->overflow_series[e->action].value += n;
                        m->overflow++;
                        return 1;
                }
                s = &m->series[m->n_series++];
                memset(s, 0, sizeof(*s));
                s->hash = h;
                s->action = e->action;
                s->severity = e->severity;
                EVENT_SET(s->rule, e->rule);
                EVENT_SET(s->src, e->src.service);
                EVENT_SET(s->dst, e->dst.service);
        }
        s->value += n;
        return 0;
}

static void count_write(Metrics *m, const Event *e) {
        WritePair *w = &m->writes[METRICS_MAX_WRITE_PAIRS];

        /* A handful of pairs in practice (the stores' few writers): a scan is enough. */
        for (size_t i = 0; i < m->n_writes; i++)
                if (streq(m->writes[i].src, e->src.service) && streq(m->writes[i].dst, e->dst.service)) {
                        w = &m->writes[i];
                        break;
                }
        if (w == &m->writes[METRICS_MAX_WRITE_PAIRS] && m->n_writes < METRICS_MAX_WRITE_PAIRS) {
                w = &m->writes[m->n_writes++];
                EVENT_SET(w->src, e->src.service);
                EVENT_SET(w->dst, e->dst.service);
        }
        w->value += e->count ? e->count : 1;
}

int metrics_count_event(Metrics *m, const Event *e) {
        if ((unsigned) e->kind >= _EVENT_KIND_MAX)
                return -EINVAL;
        switch (e->kind) {
        case EVENT_VIOLATION: {
                int r = count_violation(m, e);
                if (r < 0)
                        return r;
                m->events[e->kind]++;
                return r;
        }
        case EVENT_WRITE:
                count_write(m, e);
                break;
        case EVENT_RULESET_DRIFT:
                m->ruleset_drifts++;
                m->ruleset_in_sync = false;
                break;
        case EVENT_RULESET_REPAIRED:
                m->ruleset_repairs++;
                m->ruleset_in_sync = true;
                break;
        default:
                break;
        }
        m->events[e->kind]++;
        return 0;
}

int metrics_set_policy(Metrics *m, const char *sha256, const char *mode, const char *host) {
        char *a = NULL, *b = NULL, *c = NULL;

        if (sha256) {
                a = strdup(sha256);
                b = strdup(mode ? mode : "");
                c = strdup(host ? host : "");
                if (!a || !b || !c) {
                        free(a);
                        free(b);
                        free(c);
                        return -ENOMEM;
                }
        }
        free(m->policy_sha256);
        free(m->policy_mode);
        free(m->policy_host);
        m->policy_sha256 = a;
        m->policy_mode = b;
        m->policy_host = c;
        return 0;
}

void metrics_set_ruleset_in_sync(Metrics *m, bool in_sync) {
        m->ruleset_in_sync = in_sync;
}

void metrics_set_capture_drops(Metrics *m, uint64_t total) {
        m->capture_drops = total;
}

static bool sink_name_valid(const char *s) {
        size_t n = strlen(s);

        if (n == 0 || n >= METRICS_MAX_SINK_NAME)
                return false;
        for (; *s; s++)
                if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '_' ||
                      *s == '-'))
                        return false;
        return true;
}

static SinkCounters *sink_lookup(const Metrics *m, const char *name) {
        for (size_t i = 0; i < m->n_sinks; i++)
                if (streq(m->sinks[i].name, name))
                        return (SinkCounters *) &m->sinks[i];
        return NULL;
}

static int sink_get(Metrics *m, const char *name, SinkCounters **ret) {
        SinkCounters *s;

        if (!sink_name_valid(name))
                return -EINVAL;
        s = sink_lookup(m, name);
        if (!s) {
                if (m->n_sinks >= METRICS_MAX_SINKS)
                        return -E2BIG;
                s = &m->sinks[m->n_sinks++];
                memset(s, 0, sizeof(*s));
                memcpy(s->name, name, strlen(name) + 1);
        }
        *ret = s;
        return 0;
}

int metrics_sink_dropped(Metrics *m, const char *sink, uint64_t n) {
        SinkCounters *s;
        int r = sink_get(m, sink, &s);
        if (r < 0)
                return r;
        s->dropped += n;
        return 0;
}

int metrics_sink_delivered(Metrics *m, const char *sink, uint64_t n) {
        SinkCounters *s;
        int r = sink_get(m, sink, &s);
        if (r < 0)
                return r;
        s->delivered += n;
        return 0;
}

int metrics_sink_set_queued(Metrics *m, const char *sink, uint64_t queued) {
        SinkCounters *s;
        int r = sink_get(m, sink, &s);
        if (r < 0)
                return r;
        s->queued = queued;
        return 0;
}

uint64_t metrics_get_violations(const Metrics *m, const char *rule, const char *src,
                                const char *dst, EventAction action) {
        uint64_t total = 0;

        /* Summed over severities: callers ask by the labels they know. */
        for (size_t i = 0; i < m->n_series; i++) {
                const Series *s = &m->series[i];
                if (s->action == action && streq(s->rule, rule) && streq(s->src, src) &&
                    streq(s->dst, dst))
                        total += s->value;
        }
        if (streq(rule, METRICS_OVERFLOW_RULE) && (unsigned) action < _EVENT_ACTION_MAX)
                total += m->overflow_series[action].value;
        return total;
}

uint64_t metrics_get_overflow(const Metrics *m) {
        return m->overflow;
}

size_t metrics_get_series(const Metrics *m) {
        return m->n_series;
}

uint64_t metrics_get_sink_dropped(const Metrics *m, const char *sink) {
        const SinkCounters *s = sink_lookup(m, sink);
        return s ? s->dropped : 0;
}

uint64_t metrics_get_sink_delivered(const Metrics *m, const char *sink) {
        const SinkCounters *s = sink_lookup(m, sink);
        return s ? s->delivered : 0;
}

void metrics_escape_label(FILE *f, const char *s) {
        for (; *s; s++)
                switch (*s) {
                case '\\':
                        fputs("\\\\", f);
                        break;
                case '"':
                        fputs("\\\"", f);
                        break;
                case '\n':
                        fputs("\\n", f);
                        break;
                default:
                        fputc(*s, f);
                }
}

static void header(FILE *f, const char *name, const char *type, const char *help) {
        fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void render_series(FILE *f, const Series *s) {
        fputs("ceredis_violations_total{rule=\"", f);
        metrics_escape_label(f, s->rule);
        fputs("\",src_service=\"", f);
        metrics_escape_label(f, s->src);
        fputs("\",dst_service=\"", f);
        metrics_escape_label(f, s->dst);
        fprintf(f, "\",action=\"%s\",severity=\"%s\"} %" PRIu64 "\n",
                event_action_to_string(s->action), event_severity_to_string(s->severity),
                s->value);
}

int metrics_render(const Metrics *m, char **ret, size_t *ret_len) {
        char *buf = NULL;
        size_t len = 0;
        FILE *f;

        f = open_memstream(&buf, &len);
        if (!f)
                return -ENOMEM;

        header(f, "ceredis_violations_total", "counter",
               "Violations seen, by forbid rule, source and destination service and action.");
        for (size_t i = 0; i < m->n_series; i++)
                render_series(f, &m->series[i]);
        for (size_t a = 0; a < _EVENT_ACTION_MAX; a++)
                if (m->overflow_series[a].value)
                        render_series(f, &m->overflow_series[a]);

        header(f, "ceredis_metrics_series_overflow_total", "counter",
               "Violations counted in the _overflow_ series because the series cap was reached.");
        fprintf(f, "ceredis_metrics_series_overflow_total %" PRIu64 "\n", m->overflow);

        header(f, "ceredis_writes_journaled_total", "counter",
               "Allowed writes to evaluation stores journaled (DATA-3), by source and destination service.");
        for (size_t i = 0; i <= METRICS_MAX_WRITE_PAIRS; i++) {
                const WritePair *w = &m->writes[i];
                if (i == METRICS_MAX_WRITE_PAIRS ? w->value == 0 : i >= m->n_writes)
                        continue;
                fputs("ceredis_writes_journaled_total{src_service=\"", f);
                metrics_escape_label(f, i == METRICS_MAX_WRITE_PAIRS ? METRICS_OVERFLOW_RULE : w->src);
                fputs("\",dst_service=\"", f);
                metrics_escape_label(f, i == METRICS_MAX_WRITE_PAIRS ? METRICS_OVERFLOW_RULE : w->dst);
                fprintf(f, "\"} %" PRIu64 "\n", w->value);
        }

        header(f, "ceredis_events_total", "counter", "Events reported, by kind.");
        for (size_t k = 0; k < _EVENT_KIND_MAX; k++)
                fprintf(f, "ceredis_events_total{kind=\"%s\"} %" PRIu64 "\n",
                        event_kind_to_string((EventKind) k), m->events[k]);

        if (m->policy_sha256) {
                header(f, "ceredis_policy_info", "gauge", "The policy in force.");
                fputs("ceredis_policy_info{sha256=\"", f);
                metrics_escape_label(f, m->policy_sha256);
                fputs("\",mode=\"", f);
                metrics_escape_label(f, m->policy_mode);
                fputs("\",host=\"", f);
                metrics_escape_label(f, m->policy_host);
                fputs("\"} 1\n", f);
        }

        header(f, "ceredis_ruleset_in_sync", "gauge",
               "1 when the kernel ruleset matches the compiled policy, else 0.");
        fprintf(f, "ceredis_ruleset_in_sync %d\n", m->ruleset_in_sync ? 1 : 0);
        header(f, "ceredis_ruleset_drifts_total", "counter",
               "Times the agent's ruleset was found edited or flushed by someone else.");
        fprintf(f, "ceredis_ruleset_drifts_total %" PRIu64 "\n", m->ruleset_drifts);
        header(f, "ceredis_ruleset_repairs_total", "counter",
               "Times the agent put its ruleset back.");
        fprintf(f, "ceredis_ruleset_repairs_total %" PRIu64 "\n", m->ruleset_repairs);
        header(f, "ceredis_capture_drops_total", "counter",
               "Packets the capture dropped before the agent could read them.");
        fprintf(f, "ceredis_capture_drops_total %" PRIu64 "\n", m->capture_drops);

        header(f, "ceredis_sink_dropped_total", "counter",
               "Events a reporting sink dropped (queue full or delivery impossible).");
        for (size_t i = 0; i < m->n_sinks; i++)
                fprintf(f, "ceredis_sink_dropped_total{sink=\"%s\"} %" PRIu64 "\n",
                        m->sinks[i].name, m->sinks[i].dropped);
        header(f, "ceredis_sink_delivered_total", "counter",
               "Events (or alert batches) a reporting sink delivered.");
        for (size_t i = 0; i < m->n_sinks; i++)
                fprintf(f, "ceredis_sink_delivered_total{sink=\"%s\"} %" PRIu64 "\n",
                        m->sinks[i].name, m->sinks[i].delivered);
        header(f, "ceredis_sink_queued", "gauge", "Items waiting in a reporting sink.");
        for (size_t i = 0; i < m->n_sinks; i++)
                fprintf(f, "ceredis_sink_queued{sink=\"%s\"} %" PRIu64 "\n", m->sinks[i].name,
                        m->sinks[i].queued);

        if (ferror(f)) {
                fclose(f);
                free(buf);
                return -ENOMEM;
        }
        if (fclose(f) != 0) {
                free(buf);
                return -ENOMEM;
        }
        *ret = buf;
        if (ret_len)
                *ret_len = len;
        return 0;
}
