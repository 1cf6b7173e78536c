/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Fuzz the L2-L4 decoder with hostile frames. The first byte picks the libpcap link type (see
 * link_types), the rest is the captured frame. Whatever the input: no crash, no read outside the
 * buffer (ASan), and a decoded payload lies inside the frame. A TCP payload is then fed to the
 * HTTP and PostgreSQL decoders, as the watcher does.
 */
#include "ceredis.h"

#include <netinet/in.h>
#include <pcap/dlt.h>
#include <sys/socket.h>

#include "decode.h"

static const int link_types[] = {
        DLT_EN10MB, DLT_LINUX_SLL, DLT_LINUX_SLL2, DLT_RAW, DLT_NFLOG, DLT_IPV4, DLT_IPV6,
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        if (size < 1)
                return 0;
        int dlt = link_types[data[0] % ELEMENTSOF(link_types)];
        const uint8_t *frame = data + 1;
        size_t len = size - 1;

        DecodePacket pkt;
        if (decode_packet(dlt, frame, len, &pkt) < 0)
                return 0;

        if (pkt.family != AF_INET && pkt.family != AF_INET6)
                abort();
        if (pkt.payload < frame || pkt.payload_len > len ||
            (size_t) (pkt.payload - frame) > len - pkt.payload_len)
                abort();
        if (pkt.nflog.present && strnlen(pkt.nflog.prefix, sizeof(pkt.nflog.prefix)) ==
                                         sizeof(pkt.nflog.prefix))
                abort();

        if (pkt.has_l4 && pkt.l4proto == IPPROTO_TCP) {
                DecodeHttpRequest req;
                DecodePgsqlMessage msg;
                (void) decode_http_request(pkt.payload, pkt.payload_len, &req);
                (void) decode_pgsql_message(pkt.payload, pkt.payload_len, &msg);
        }
        return 0;
}
