/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Fuzz the watcher's pipeline: packets -> decode -> flow table -> classify -> aggregate, with
 * the reference policy (policies/ceredis.yaml) and the test endpoints. An input is a sequence
 * of records:
 *   [flags][src][dst][link type][length, 2 bytes big endian][frame]
 * where flags bit 0 re-addresses an IPv4 packet from/to the address picked by `src`/`dst`
 * (the services' addresses, a host address, an Internet address), so that the fuzzer reaches
 * the allowed, read-only and forbidden flows, bit 1 sends the frame as an NFLOG record
 * would be judged, bit 2 closes aggregation windows, and bit 3 sets the destination port to
 * ports[flags >> 4] (the services' ports: the captures were made on other ports). A tiny flow table makes eviction happen. Whatever the input: no crash, no
 * out-of-bounds access (ASan), verdicts and events that encode and decode back.
 */
#include "ceredis.h"

#include <netinet/in.h>
#include <pcap/dlt.h>
#include <sys/socket.h>

#include "classify.h"

static const int link_types[] = {
        DLT_EN10MB, DLT_LINUX_SLL, DLT_LINUX_SLL2, DLT_RAW, DLT_NFLOG, DLT_IPV4, DLT_IPV6,
};

/* tests/data/endpoints.json's IPv4 addresses, the host, the Internet, an unknown container. */
static const uint8_t addresses[][4] = {
        { 172, 18, 0, 2 },  { 172, 18, 0, 4 },   { 172, 18, 0, 6 },   { 172, 18, 1, 2 },
        { 172, 18, 1, 4 },  { 172, 18, 1, 6 },   { 172, 18, 1, 8 },   { 172, 18, 1, 10 },
        { 172, 18, 1, 12 }, { 172, 18, 1, 14 },  { 172, 18, 1, 16 },  { 203, 0, 113, 10 },
        { 198, 51, 100, 7 }, { 172, 18, 9, 9 },
};

static const uint16_t ports[16] = { 5432, 8080, 8090, 8100, 3000, 8088, 8787, 11434,
                                    443, 80, 22, 53, 5439, 1, 65535, 0 };

static Policy *policy;
static ClassifyMap *map;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void setup(void) {
        _cleanup_(endpoints_freep) Endpoints *e = NULL;
        PolicyError perr;
        char err[256];

        if (policy)
                return;
        if (policy_load(SRCDIR "/policies/ceredis.yaml", &policy, &perr) < 0 || endpoints_new(&e) < 0 ||
            endpoints_load_json(e, SRCDIR "/tests/data/endpoints.json", err, sizeof(err)) < 0 ||
            classify_map_new(policy, e, &map) < 0)
                abort();
}

static void on_event(const Event *e, void *userdata) {
        _cleanup_free_ char *text = NULL;
        size_t len;
        Event back;

        if (event_format(e, &text, &len) < 0 || event_parse(text, len, &back) < 0)
                abort();
        if (back.count != e->count || !streq(back.rule, e->rule) || back.kind != e->kind)
                abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        _cleanup_(flow_table_freep) FlowTable *t = NULL;
        _cleanup_(classify_agg_freep) ClassifyAggregator *a = NULL;
        _cleanup_free_ ClassifyResult *r = NULL;
        uint64_t now = 1;

        setup();
        if (flow_table_new(4, 1000, &t) < 0 || classify_agg_new(4, 50, &a) < 0 || !(r = malloc(sizeof(*r))))
                abort();
        while (size >= 6) {
                uint8_t flags = data[0];
                const uint8_t *src = addresses[data[1] % ELEMENTSOF(addresses)];
                const uint8_t *dst = addresses[data[2] % ELEMENTSOF(addresses)];
                int dlt = link_types[data[3] % ELEMENTSOF(link_types)];
                size_t len = (size_t) data[4] << 8 | data[5];
                DecodePacket pkt;

                data += 6;
                size -= 6;
                if (len > size)
                        len = size;
                now += 7;
                if (decode_packet(dlt, data, len, &pkt) >= 0) {
                        if ((flags & 1) && pkt.family == AF_INET) {
                                memcpy(pkt.src, src, 4);
                                memcpy(pkt.dst, dst, 4);
                        }
                        if (flags & 8)
                                pkt.dport = ports[flags >> 4];
                        if (flags & 2) {
                                bool contained;
                                classify_nflog(policy, map, &pkt, r, &contained);
                        } else
                                classify_packet(policy, map, t, &pkt, now, r);
                        if (r->verdict > CLASSIFY_WRITE)
                                abort();
                        /* A journaled write is an L7 finding, into an evaluation store only. */
                        if (r->verdict == CLASSIFY_WRITE &&
                            (!r->l7 || !streq(r->rule, EVENT_RULE_WRITE) ||
                             !classify_service_is_evaluation_store(policy, r->dst_service)))
                                abort();
                        if (r->verdict != CLASSIFY_NOTHING) {
                                if (strnlen(r->rule, sizeof(r->rule)) == sizeof(r->rule) ||
                                    strnlen(r->method, sizeof(r->method)) == sizeof(r->method) ||
                                    strnlen(r->path, sizeof(r->path)) == sizeof(r->path))
                                        abort();
                                if (r->l7 && r->verdict != CLASSIFY_WRITE_FORBID && r->verdict != CLASSIFY_READ_ONLY &&
                                    r->verdict != CLASSIFY_WRITE)
                                        abort();
                                classify_agg_hit(a, policy, r, "fuzz", now, on_event, NULL);
                        }
                }
                data += len;
                size -= len;
                if (flags & 4)
                        classify_agg_tick(a, now, false, on_event, NULL);
        }
        classify_agg_tick(a, now, true, on_event, NULL);
        return 0;
}
