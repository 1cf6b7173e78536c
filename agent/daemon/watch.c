/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The watcher in the daemon's event loop. Each capture is an sd-event I/O source; one wakeup
 * drains up to WATCH_DISPATCH_BUDGET packets through decode -> classify -> aggregate, and if
 * any event was produced the event log is flushed (one write and one fsync per wakeup, not per
 * event) before the loop goes back to sleep. A periodic tick closes aggregation windows,
 * expires flows, reports capture drops and looks for Docker bridges created since.
 *
 * L4 verdicts come from the NFLOG group: the kernel decided, and the record carries the rule.
 * The bridges feed L7 inspection (writes on read-only flows, `access: write` forbids, and the
 * allowed writes to evaluation stores, journaled as `write` events, not violations); they
 * judge L4 themselves only when the NFLOG group could not be opened.
 */
#include "ceredis.h"

#include <inttypes.h>
#include <limits.h>
#include <time.h>

#include "capture.h"
#include "classify.h"
#include "decode.h"
#include "eventlog.h"
#include "flow.h"
#include "sinks.h"
#include "watch.h"

#define WATCH_MAX_CAPTURES 64u

typedef struct WatchCapture {
        Watch *watch;
        Capture *capture;
        sd_event_source *source;
        bool nflog;
        bool seen; /* bridge rescans: still present */
        uint64_t reported_drops;
} WatchCapture;

typedef struct PacketArgs {
        Watch *watch;
        WatchCapture *wc;
        uint64_t now;
        ClassifyResult result;
} PacketArgs;

struct Watch {
        sd_event *event;
        Reporter *reporter;
        Sinks *sinks;
        Nft *nft;
        char *state_dir;
        char *key_path;
        char *host;
        uint16_t nflog_group;
        void (*on_violation)(const json_t *event, void *userdata);
        void *userdata;

        Policy *policy;
        ClassifyMap *map;
        FlowTable *flows;
        ClassifyAggregator *agg;
        char *bridge_filter; /* NULL: nothing on the bridges can matter */
        bool filter_with_syns;

        EventLog *log;
        bool log_dirty;

        WatchCapture *captures[WATCH_MAX_CAPTURES];
        size_t n_captures;
        bool have_nflog;
        sd_event_source *tick;
        uint64_t last_rescan;

        WatchStats stats;
        PacketArgs args; /* a ClassifyResult is a few KiB: not on a callback's stack */
};

static uint64_t now_mono(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000u + (uint64_t) ts.tv_nsec / 1000u;
}

/* ---- Events out: the log (durable) and the report stream */

static void log_flush(Watch *w) {
        int k;

        if (!w->log || !w->log_dirty)
                return;
        k = eventlog_flush(w->log);
        if (k < 0) {
                /* The batch stays buffered; the next wakeup retries. */
                log_error("event log: cannot flush: %s", strerror(-k));
                return;
        }
        w->log_dirty = false;
}

static void emit(const Event *e, void *userdata) {
        Watch *w = userdata;
        json_t *j = NULL;
        int k;

        w->stats.events++;
        if (w->log) {
                k = eventlog_append(w->log, e);
                if (k < 0)
                        log_error("event log: cannot append: %s", strerror(-k));
                else
                        w->log_dirty = true;
        }
        if (w->on_violation && e->kind == EVENT_VIOLATION && event_to_json(e, &j) >= 0) {
                w->on_violation(j, w->userdata);
                json_decref(j);
                j = NULL;
        }
        if (w->reporter && event_to_json(e, &j) >= 0) {
                (void) json_object_del(j, "kind");
                (void) reporter_emit(w->reporter, event_kind_to_string(e->kind), j);
        }
        sinks_emit(w->sinks, e);
}

static void emit_own(Watch *w, EventKind kind, PolicySeverity severity, uint64_t count, const char *detail) {
        Event e;

        event_init(&e, kind);
        EVENT_SET(e.host, w->host ? w->host : "");
        e.severity = severity;
        e.count = count;
        EVENT_SET(e.detail, detail);
        emit(&e, w);
}

/* ---- Packets in */

/* Cut an L7 violation's flow (enforce mode). The event says whether it worked. */
static void contain(Watch *w, ClassifyResult *r) {
        int k;

        if (!w->nft || w->policy->mode != POLICY_MODE_ENFORCE)
                return;
        k = nft_contain(w->nft, r->family, r->src, r->dst, r->proto, r->dport, WATCH_CONTAIN_TIMEOUT_SEC);
        if (k < 0) {
                log_error("cannot contain the %s flow from %s to %s port %u: %s", r->rule,
                          classify_service_name(w->policy, r->src_service),
                          classify_service_name(w->policy, r->dst_service), r->dport, strerror(-k));
                return;
        }
        r->action = EVENT_ACTION_CONTAINED;
        w->stats.contained++;
}

static void on_packet(const uint8_t *data, size_t len, void *userdata) {
        PacketArgs *a = userdata;
        Watch *w = a->watch;
        ClassifyResult *r = &a->result;
        DecodePacket pkt;
        bool contained;

        if (!w->policy || decode_packet(capture_datalink(a->wc->capture), data, len, &pkt) < 0)
                return;
        w->stats.packets++;
        if (a->wc->nflog) {
                classify_nflog(w->policy, w->map, &pkt, r, &contained);
                if (r->verdict == CLASSIFY_NOTHING)
                        return;
        } else {
                classify_packet(w->policy, w->map, w->flows, &pkt, a->now, r);
                if (r->verdict == CLASSIFY_NOTHING)
                        return;
                if (r->verdict == CLASSIFY_WRITE)
                        w->stats.writes++; /* journaled: an allowed flow, nothing to cut */
                else if (r->l7)
                        contain(w, r);
                else if (w->have_nflog)
                        return; /* the kernel's record reports it */
        }
        if (r->verdict != CLASSIFY_WRITE)
                w->stats.violations++;
        classify_agg_hit(w->agg, w->policy, r, w->host, a->now, emit, w);
}

static void capture_lost(WatchCapture *wc);

static int on_capture(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        WatchCapture *wc = userdata;
        Watch *w = wc->watch;
        PacketArgs *a = &w->args;
        int n = 0, k;

        a->watch = w;
        a->wc = wc;
        a->now = now_mono();
        while (n < WATCH_DISPATCH_BUDGET) {
                k = capture_dispatch(wc->capture, WATCH_DISPATCH_BUDGET - n, on_packet, a);
                if (k < 0) {
                        capture_lost(wc);
                        return 0;
                }
                if (k == 0)
                        break;
                n += k;
        }
        log_flush(w);
        return 0;
}

/* ---- Captures */

static void watch_capture_free(WatchCapture *wc) {
        if (!wc)
                return;
        sd_event_source_disable_unref(wc->source);
        capture_close(wc->capture);
        free(wc);
}

static int watch_capture_add(Watch *w, Capture *c, bool nflog) {
        WatchCapture *wc;
        int k;

        if (w->n_captures >= WATCH_MAX_CAPTURES) {
                capture_close(c);
                return -E2BIG;
        }
        wc = calloc(1, sizeof(*wc));
        if (!wc) {
                capture_close(c);
                return -ENOMEM;
        }
        wc->watch = w;
        wc->capture = c;
        wc->nflog = nflog;
        wc->seen = true;
        k = sd_event_add_io(w->event, &wc->source, capture_fd(c), EPOLLIN, on_capture, wc);
        if (k < 0) {
                watch_capture_free(wc);
                return k;
        }
        w->captures[w->n_captures++] = wc;
        return 0;
}

static void watch_capture_remove(Watch *w, size_t i) {
        watch_capture_free(w->captures[i]);
        w->captures[i] = w->captures[--w->n_captures];
}

/* A bridge went away (its Docker network was removed): drop it; a rescan reopens it. */
static void capture_lost(WatchCapture *wc) {
        Watch *w = wc->watch;

        log_warning("capture on %s stopped", capture_name(wc->capture));
        for (size_t i = 0; i < w->n_captures; i++)
                if (w->captures[i] == wc) {
                        if (wc->nflog)
                                w->have_nflog = false;
                        watch_capture_remove(w, i);
                        return;
                }
}

static void open_nflog(Watch *w) {
        Capture *c = NULL;
        char err[512];
        int k;

        k = capture_open_nflog(w->nflog_group, &c, err, sizeof(err));
        if (k >= 0)
                k = watch_capture_add(w, c, true);
        if (k < 0) {
                log_warning("cannot read NFLOG group %u (%s): judging L4 from the bridges", w->nflog_group,
                            k == -E2BIG || k == -ENOMEM ? strerror(-k) : err);
                return;
        }
        w->have_nflog = true;
}

static WatchCapture *find_capture(Watch *w, const char *name) {
        for (size_t i = 0; i < w->n_captures; i++)
                if (!w->captures[i]->nflog && streq(capture_name(w->captures[i]->capture), name))
                        return w->captures[i];
        return NULL;
}

/* Open the Docker bridges not captured yet, forget the ones that are gone. */
static void rescan_bridges(Watch *w) {
        char **names = NULL;
        int k;

        if (!w->policy)
                return;
        k = capture_list_bridges(&names);
        if (k < 0) {
                log_warning("cannot list interfaces: %s", strerror(-k));
                return;
        }
        for (size_t i = 0; i < w->n_captures; i++)
                w->captures[i]->seen = w->captures[i]->nflog;
        for (char **n = names; *n; n++) {
                WatchCapture *wc = find_capture(w, *n);
                Capture *c = NULL;
                char err[512];

                if (wc) {
                        wc->seen = true;
                        continue;
                }
                if (!w->bridge_filter)
                        continue;
                k = capture_open_interface(*n, w->bridge_filter, &c, err, sizeof(err));
                if (k >= 0)
                        k = watch_capture_add(w, c, false);
                if (k < 0)
                        log_warning("cannot capture on %s: %s", *n, k == -E2BIG ? strerror(-k) : err);
                else
                        log_info("watching bridge %s", *n);
        }
        for (size_t i = w->n_captures; i > 0; i--)
                if (!w->captures[i - 1]->seen)
                        watch_capture_remove(w, i - 1);
        capture_strv_free(names);
}

/* Close every bridge capture: the filter changed. The next rescan opens them again. */
static void close_bridges(Watch *w) {
        for (size_t i = w->n_captures; i > 0; i--)
                if (!w->captures[i - 1]->nflog)
                        watch_capture_remove(w, i - 1);
}

static void report_drops(Watch *w) {
        uint64_t total = 0;

        for (size_t i = 0; i < w->n_captures; i++) {
                WatchCapture *wc = w->captures[i];
                CaptureStats st;
                char detail[256];

                if (capture_stats(wc->capture, &st) < 0)
                        continue;
                total += st.dropped + st.ifdropped;
                if (st.dropped + st.ifdropped <= wc->reported_drops)
                        continue;
                snprintf(detail, sizeof(detail), "capture on %s dropped %" PRIu64 " packets (%" PRIu64 " in total)",
                         capture_name(wc->capture), st.dropped + st.ifdropped - wc->reported_drops,
                         st.dropped + st.ifdropped);
                log_warning("%s", detail);
                if (w->reporter)
                        (void) reporter_emit(w->reporter, "capture-drops",
                                             json_pack("{s:s, s:I, s:I}", "capture", capture_name(wc->capture),
                                                       "dropped",
                                                       (json_int_t) (st.dropped + st.ifdropped - wc->reported_drops),
                                                       "total", (json_int_t) (st.dropped + st.ifdropped)));
                wc->reported_drops = st.dropped + st.ifdropped;
        }
        w->stats.dropped = total;
        if (w->sinks)
                sinks_set_capture_drops(w->sinks, total);
}

static int on_tick(sd_event_source *s, uint64_t usec, void *userdata) {
        Watch *w = userdata;
        uint64_t now = now_mono();

        classify_agg_tick(w->agg, now, false, emit, w);
        (void) flow_table_expire(w->flows, now);
        report_drops(w);
        if (now - w->last_rescan >= WATCH_RESCAN_USEC) {
                w->last_rescan = now;
                rescan_bridges(w);
        }
        log_flush(w);
        (void) sd_event_source_set_time_relative(s, WATCH_TICK_USEC);
        (void) sd_event_source_set_enabled(s, SD_EVENT_ON);
        return 0;
}

/* ---- Life cycle */

static int open_log(Watch *w) {
        _cleanup_(eventlog_key_freep) EventlogKey *key = NULL;
        _cleanup_free_ char *quarantined = NULL;
        const char *key_path = w->key_path;
        char detail[EVENT_MAX_DETAIL];
        EventlogResult problem = {};
        int k;

        k = eventlog_key_load(key_path, true, &key);
        if (k < 0) {
                log_error("event log key %s: %s", key_path, strerror(-k));
                return k;
        }
        k = eventlog_open(w->state_dir, key, NULL, &problem, &w->log);
        if (k == -EBADMSG) {
                /* Keep the evidence, start a fresh chain, and say so in it. */
                log_error("event log in %s failed verification (%s: %s); setting it aside", w->state_dir,
                          eventlog_problem_to_string(problem.problem), problem.detail);
                k = eventlog_quarantine(w->state_dir, &quarantined);
                if (k >= 0)
                        k = eventlog_open(w->state_dir, key, NULL, NULL, &w->log);
                if (k >= 0) {
                        snprintf(detail, sizeof(detail), "event log failed verification (%s at %s:%" PRIu64 ": %s); moved to %s",
                                 eventlog_problem_to_string(problem.problem), problem.file, problem.line,
                                 problem.detail, quarantined ? quarantined : "?");
                        emit_own(w, EVENT_EVENTLOG_TAMPERED, POLICY_SEVERITY_CRITICAL, 1, detail);
                }
        }
        if (k < 0) {
                log_error("cannot open the event log in %s: %s", w->state_dir, strerror(-k));
                return k;
        }
        if (eventlog_recovered_bytes(w->log) > 0) {
                snprintf(detail, sizeof(detail), "cut %" PRIu64 " bytes of a torn write off the event log",
                         eventlog_recovered_bytes(w->log));
                emit_own(w, EVENT_EVENTLOG_RECOVERED, POLICY_SEVERITY_MEDIUM, eventlog_recovered_bytes(w->log),
                         detail);
        }
        return 0;
}

int watch_new(const WatchConfig *cfg, Watch **ret) {
        _cleanup_(watch_freep) Watch *w = NULL;
        int k;

        w = calloc(1, sizeof(*w));
        if (!w)
                return -ENOMEM;
        w->event = sd_event_ref(cfg->event);
        w->reporter = cfg->reporter;
        w->sinks = cfg->sinks;
        w->nft = cfg->nft;
        w->nflog_group = cfg->nflog_group ? cfg->nflog_group : RULESET_NFLOG_GROUP_DEFAULT;
        w->on_violation = cfg->on_violation;
        w->userdata = cfg->userdata;
        w->state_dir = strdup(cfg->state_dir);
        w->key_path = strdup(cfg->key_path ? cfg->key_path : EVENTLOG_KEY_PATH_DEFAULT);
        if (!w->state_dir || !w->key_path || (cfg->host && !(w->host = strdup(cfg->host))))
                return -ENOMEM;
        k = flow_table_new(0, 0, &w->flows);
        if (k < 0)
                return k;
        k = classify_agg_new(0, 0, &w->agg);
        if (k < 0)
                return k;
        k = open_log(w);
        if (k < 0)
                return k;
        open_nflog(w);
        k = sd_event_add_time_relative(w->event, &w->tick, CLOCK_MONOTONIC, WATCH_TICK_USEC, 10u * 1000u, on_tick, w);
        if (k < 0)
                return k;
        k = sd_event_source_set_enabled(w->tick, SD_EVENT_ON);
        if (k < 0)
                return k;
        *ret = TAKE_PTR(w);
        return 0;
}

void watch_free(Watch *w) {
        if (!w)
                return;
        if (w->agg && w->policy)
                classify_agg_tick(w->agg, now_mono(), true, emit, w);
        while (w->n_captures > 0)
                watch_capture_remove(w, w->n_captures - 1);
        sd_event_source_disable_unref(w->tick);
        eventlog_close(w->log); /* flushes */
        classify_agg_free(w->agg);
        flow_table_free(w->flows);
        classify_map_free(w->map);
        policy_free(w->policy);
        free(w->bridge_filter);
        free(w->state_dir);
        free(w->key_path);
        free(w->host);
        sd_event_unref(w->event);
        free(w);
}

int watch_set_policy(Watch *w, Policy *p) {
        _cleanup_(policy_freep) Policy *policy = p;
        _cleanup_(classify_map_freep) ClassifyMap *map = NULL;
        _cleanup_free_ char *filter = NULL;
        int k;

        /* Without the NFLOG group the bridges must show connection openings too. */
        k = capture_filter_from_policy(policy, !w->have_nflog, &filter);
        if (k < 0)
                return k;
        k = classify_map_new(policy, NULL, &map);
        if (k < 0)
                return k;
        if (w->agg && w->policy)
                classify_agg_tick(w->agg, now_mono(), true, emit, w);
        policy_free(w->policy);
        w->policy = TAKE_PTR(policy);
        classify_map_free(w->map);
        w->map = TAKE_PTR(map);
        flow_table_clear(w->flows);
        if (!streq_ptr(filter, w->bridge_filter)) {
                close_bridges(w);
                free(w->bridge_filter);
                w->bridge_filter = TAKE_PTR(filter);
        }
        rescan_bridges(w);
        w->last_rescan = now_mono();
        return 0;
}

int watch_set_endpoints(Watch *w, const Endpoints *e) {
        ClassifyMap *map = NULL;
        int k;

        if (!w->policy)
                return -ENOENT;
        k = classify_map_new(w->policy, e, &map);
        if (k < 0)
                return k;
        classify_map_free(w->map);
        w->map = map;
        /* Decisions were taken with the old addresses. */
        flow_table_clear(w->flows);
        return 0;
}

int watch_set_host(Watch *w, const char *host) {
        char *h = NULL;

        if (host && !(h = strdup(host)))
                return -ENOMEM;
        free(w->host);
        w->host = h;
        return 0;
}

int watch_load(Watch *w, const char *policy_path, const char *endpoints_path) {
        _cleanup_(policy_freep) Policy *p = NULL;
        _cleanup_(endpoints_freep) Endpoints *e = NULL;
        PolicyError perr = {};
        char err[1024];
        int k;

        k = policy_load(policy_path, &p, &perr);
        if (k < 0) {
                policy_error_format(policy_path, &perr, err, sizeof(err));
                log_error("watcher: %s", err);
                return k;
        }
        k = endpoints_new(&e);
        if (k < 0)
                return k;
        if (endpoints_path) {
                k = endpoints_load_json(e, endpoints_path, err, sizeof(err));
                if (k < 0) {
                        log_error("watcher: %s", err[0] ? err : strerror(-k));
                        return k;
                }
        }
        k = watch_set_policy(w, TAKE_PTR(p));
        if (k < 0) {
                log_error("watcher: cannot use %s: %s", policy_path, strerror(-k));
                return k;
        }
        k = watch_set_endpoints(w, e);
        if (k < 0)
                log_error("watcher: cannot map the services' addresses: %s", strerror(-k));
        return k;
}

void watch_stats(const Watch *w, WatchStats *ret) {
        *ret = w->stats;
}
