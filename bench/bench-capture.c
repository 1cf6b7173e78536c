/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The watcher's live pipeline without the rest of the daemon, for bench/run-watch-live.sh:
 * capture on IFACE with the agent's ring settings (capture_open_interface(), no filter: every
 * frame crosses into user space), then decode -> flow table -> classify -> aggregate each one,
 * as the daemon's watcher does, for SECONDS. Prints one JSON object: packets handled, verdicts,
 * events the aggregator let out, kernel drops, and the CPU seconds and peak RSS it used, to be
 * compared with `tcpdump -w /dev/null` on the same traffic. Run it inside the namespace of IFACE.
 *
 *   bench-capture IFACE POLICY ENDPOINTS SECONDS
 */
#include "ceredis.h"

#include <poll.h>
#include <sys/resource.h>
#include <time.h>

#include "capture.h"
#include "classify.h"
#include "decode.h"
#include "flow.h"

typedef struct Bench {
        const Policy *policy;
        ClassifyMap *map;
        FlowTable *flows;
        ClassifyAggregator *agg;
        ClassifyResult *result;
        int dlt;
        uint64_t now, packets, verdicts, events;
} Bench;

static uint64_t now_usec(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000u + (uint64_t) ts.tv_nsec / 1000u;
}

static void on_event(const Event *e, void *userdata) {
        ((Bench *) userdata)->events++;
}

static void on_packet(const uint8_t *data, size_t caplen, void *userdata) {
        Bench *b = userdata;
        DecodePacket pkt;

        b->packets++;
        if (decode_packet(b->dlt, data, caplen, &pkt) < 0)
                return;
        classify_packet(b->policy, b->map, b->flows, &pkt, b->now, b->result);
        if (b->result->verdict == CLASSIFY_NOTHING)
                return;
        b->verdicts++;
        classify_agg_hit(b->agg, b->policy, b->result, "bench", b->now, on_event, b);
}

static int run(int argc, char *argv[]) {
        _cleanup_(policy_freep) Policy *p = NULL;
        _cleanup_(endpoints_freep) Endpoints *e = NULL;
        _cleanup_(classify_map_freep) ClassifyMap *m = NULL;
        _cleanup_(flow_table_freep) FlowTable *t = NULL;
        _cleanup_(classify_agg_freep) ClassifyAggregator *a = NULL;
        _cleanup_(capture_closep) Capture *c = NULL;
        _cleanup_free_ ClassifyResult *r = NULL;
        char err[512] = "";
        PolicyError perr = {};
        CaptureStats st = {};
        struct rusage ru;
        uint64_t end;
        Bench b;
        int k;

        if (argc != 5) {
                fprintf(stderr, "usage: bench-capture IFACE POLICY ENDPOINTS SECONDS\n");
                return 2;
        }
        k = policy_load(argv[2], &p, &perr);
        if (k < 0) {
                policy_error_format(argv[2], &perr, err, sizeof(err));
                fprintf(stderr, "%s\n", err);
                return 2;
        }
        r = calloc(1, sizeof(*r));
        if (!r)
                return 2;
        if ((k = endpoints_new(&e)) < 0 || (k = endpoints_load_json(e, argv[3], err, sizeof(err))) < 0 ||
            (k = classify_map_new(p, e, &m)) < 0 || (k = flow_table_new(0, 0, &t)) < 0 ||
            (k = classify_agg_new(0, 0, &a)) < 0 || (k = capture_open_interface(argv[1], NULL, &c, err, sizeof(err))) < 0) {
                fprintf(stderr, "setup: %s\n", err[0] ? err : strerror(-k));
                return 2;
        }
        b = (Bench) { .policy = p, .map = m, .flows = t, .agg = a, .result = r, .dlt = capture_datalink(c) };
        /* Ready: the driver starts the traffic when it sees this line. */
        fprintf(stderr, "bench-capture: capturing on %s\n", argv[1]);
        end = now_usec() + strtoull(argv[4], NULL, 10) * 1000000u;
        while ((b.now = now_usec()) < end) {
                struct pollfd pfd = { .fd = capture_fd(c), .events = POLLIN };

                /* The daemon's budget per wakeup (WATCH_DISPATCH_BUDGET). */
                k = capture_dispatch(c, 256, on_packet, &b);
                if (k < 0) {
                        fprintf(stderr, "capture: %s\n", strerror(-k));
                        return 1;
                }
                if (k == 0 && poll(&pfd, 1, 100) < 0 && errno != EINTR)
                        return 1;
                if (b.packets % 4096 == 0)
                        classify_agg_tick(a, b.now, false, on_event, &b);
        }
        (void) capture_stats(c, &st);
        getrusage(RUSAGE_SELF, &ru);
        printf("{\"packets\": %llu, \"verdicts\": %llu, \"events\": %llu, \"received\": %llu, \"dropped\": %llu, "
               "\"cpu_s\": %.3f, \"maxrss_kb\": %ld}\n",
               (unsigned long long) b.packets, (unsigned long long) b.verdicts, (unsigned long long) b.events,
               (unsigned long long) st.received, (unsigned long long) st.dropped,
               (double) ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6,
               ru.ru_maxrss);
        return 0;
}

int main(int argc, char *argv[]) {
        return run(argc, argv);
}
