/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The watcher's per-packet cost on a fixed capture, for callgrind (bench/run-watch.sh):
 *   bench-classify bare FILE.pcap [REPEAT]                      pcap_next_ex only
 *   bench-classify classify FILE.pcap POLICY ENDPOINTS [REPEAT] + decode + flows + classify
 * The difference of the two instruction counts, divided by the packets, is what the watcher
 * adds per packet. Prints the packets read and the verdicts found.
 */
#include "ceredis.h"

#include <pcap/pcap.h>

#include "classify.h"
#include "decode.h"
#include "flow.h"

static int run(int argc, char *argv[]) {
        _cleanup_(policy_freep) Policy *p = NULL;
        _cleanup_(endpoints_freep) Endpoints *e = NULL;
        _cleanup_(classify_map_freep) ClassifyMap *m = NULL;
        _cleanup_(flow_table_freep) FlowTable *t = NULL;
        _cleanup_free_ ClassifyResult *r = NULL;
        char errbuf[PCAP_ERRBUF_SIZE], err[512] = "";
        PolicyError perr = {};
        bool bare;
        unsigned long repeat = 1;
        uint64_t packets = 0, verdicts = 0, now = 1;
        int k;

        if (argc < 3 || (!streq(argv[1], "bare") && !streq(argv[1], "classify")) ||
            (streq(argv[1], "classify") && argc < 5)) {
                fprintf(stderr, "usage: bench-classify bare FILE [REPEAT] | classify FILE POLICY ENDPOINTS [REPEAT]\n");
                return 2;
        }
        bare = streq(argv[1], "bare");
        if (argc > (bare ? 3 : 5))
                repeat = strtoul(argv[bare ? 3 : 5], NULL, 10);
        if (!bare) {
                k = policy_load(argv[3], &p, &perr);
                if (k < 0) {
                        policy_error_format(argv[3], &perr, err, sizeof(err));
                        fprintf(stderr, "%s\n", err);
                        return 2;
                }
                if ((k = endpoints_new(&e)) < 0 || (k = endpoints_load_json(e, argv[4], err, sizeof(err))) < 0 ||
                    (k = classify_map_new(p, e, &m)) < 0 || (k = flow_table_new(0, 0, &t)) < 0) {
                        fprintf(stderr, "setup: %s\n", err[0] ? err : strerror(-k));
                        return 2;
                }
                r = malloc(sizeof(*r));
                if (!r)
                        return 2;
        }
        for (unsigned long i = 0; i < repeat; i++) {
                pcap_t *pc = pcap_open_offline(argv[2], errbuf);
                struct pcap_pkthdr *h;
                const u_char *data;
                int dlt;

                if (!pc) {
                        fprintf(stderr, "%s\n", errbuf);
                        return 2;
                }
                dlt = pcap_datalink(pc);
                while (pcap_next_ex(pc, &h, &data) == 1) {
                        DecodePacket pkt;

                        packets++;
                        if (bare)
                                continue;
                        now++;
                        if (decode_packet(dlt, data, h->caplen, &pkt) < 0)
                                continue;
                        if (dlt == DLT_NFLOG) {
                                bool contained;
                                classify_nflog(p, m, &pkt, r, &contained);
                        } else
                                classify_packet(p, m, t, &pkt, now, r);
                        verdicts += r->verdict != CLASSIFY_NOTHING;
                }
                pcap_close(pc);
        }
        printf("packets %llu verdicts %llu\n", (unsigned long long) packets, (unsigned long long) verdicts);
        return 0;
}

int main(int argc, char *argv[]) {
        return run(argc, argv);
}
