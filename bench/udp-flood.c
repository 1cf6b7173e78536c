/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The traffic generator of bench/run-forward.sh: UDP datagrams to DEST:PORT from F source
 * ports (F flows, so that conntrack and the ruleset see more than one 5-tuple), sent with
 * sendmmsg() in batches of 64 and paced to RATE packets per second for SECONDS (RATE 0: as
 * fast as it can). Every benchmark case gets the same offered load this way. Prints one JSON
 * object: packets sent, send errors (ENOBUFS etc.), elapsed seconds. Run it inside the source
 * namespace; it never leaves the namespace it is started in.
 *
 *   udp-flood DEST PORT RATE SECONDS [FLOWS]
 */
#include "ceredis.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <time.h>

#define BATCH 64
#define MAX_FLOWS 1024
#define PAYLOAD 64

static double now_s(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

int main(int argc, char *argv[]) {
        struct sockaddr_in dst = { .sin_family = AF_INET };
        static int fds[MAX_FLOWS];
        struct mmsghdr msgs[BATCH] = {};
        struct iovec iov = {};
        char payload[PAYLOAD] = "ceredis-bench";
        unsigned long rate, seconds, flows = 16, sent = 0, errors = 0;
        double t0, t;

        if (argc < 5 || argc > 6 || inet_pton(AF_INET, argv[1], &dst.sin_addr) != 1) {
                fprintf(stderr, "usage: udp-flood DEST PORT RATE SECONDS [FLOWS]\n");
                return 2;
        }
        dst.sin_port = htons((uint16_t) strtoul(argv[2], NULL, 10));
        rate = strtoul(argv[3], NULL, 10);
        seconds = strtoul(argv[4], NULL, 10);
        if (argc == 6)
                flows = strtoul(argv[5], NULL, 10);
        if (flows < 1 || flows > MAX_FLOWS || seconds < 1 || seconds > 600) {
                fprintf(stderr, "udp-flood: bad FLOWS or SECONDS\n");
                return 2;
        }
        for (unsigned long i = 0; i < flows; i++) {
                fds[i] = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
                if (fds[i] < 0 || connect(fds[i], (struct sockaddr *) &dst, sizeof(dst)) < 0) {
                        fprintf(stderr, "udp-flood: %s\n", strerror(errno));
                        return 2;
                }
        }
        iov.iov_base = payload;
        iov.iov_len = sizeof(payload);
        for (size_t i = 0; i < BATCH; i++) {
                msgs[i].msg_hdr.msg_iov = &iov;
                msgs[i].msg_hdr.msg_iovlen = 1;
        }
        t0 = now_s();
        for (unsigned long round = 0;; round++) {
                int n;

                t = now_s() - t0;
                if (t >= (double) seconds)
                        break;
                /* Pacing: never ahead of RATE * elapsed. */
                if (rate > 0 && (double) sent >= (double) rate * t) {
                        struct timespec ts = { 0, 50000 };
                        nanosleep(&ts, NULL);
                        continue;
                }
                n = sendmmsg(fds[round % flows], msgs, BATCH, 0);
                if (n < 0) {
                        errors++;
                        continue;
                }
                sent += (unsigned long) n;
        }
        printf("{\"sent\":%lu,\"errors\":%lu,\"seconds\":%.3f}\n", sent, errors, now_s() - t0);
        return 0;
}
