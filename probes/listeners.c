/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Listening sockets of a network namespace through sock_diag (NETLINK_SOCK_DIAG, inet_diag
 * dumps of TCP and UDP, IPv4 and IPv6). The audit uses them as first-hand evidence of what a
 * published port really is on the host (docker-proxy on 0.0.0.0:5432 and [::]:5432), without
 * trusting Docker's own account. The dump is decoded by a pure function.
 */
#include "ceredis.h"

#include <libmnl/libmnl.h>
#include <linux/inet_diag.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include "probes.h"

#define SOCK_DIAG_BUF_SIZE 32768u /* one recv of a dump: the kernel fills up to this */

int probe_listeners_parse(const void *buf, size_t len, uint8_t proto, ProbeListeners *l) {
        const uint8_t *p = buf;
        size_t off = 0;

        /* Walked by hand with size_t bounds: mnl_nlmsg_ok() casts nlmsg_len to int, which a
         * hostile length near 4 GiB turns negative (found by tests/fuzz/fuzz-sockdiag). */
        while (len - off >= sizeof(struct nlmsghdr)) {
                const struct nlmsghdr *nlh = (const struct nlmsghdr *) (p + off);
                size_t mlen = nlh->nlmsg_len, payload;
                const struct inet_diag_msg *m;
                ControlListener *c;
                int k;

                if (mlen < sizeof(struct nlmsghdr) || mlen > len - off)
                        return -EBADMSG;
                payload = mlen - NLMSG_HDRLEN;
                if (nlh->nlmsg_type == NLMSG_DONE)
                        return 1;
                if (nlh->nlmsg_type == NLMSG_ERROR) {
                        const struct nlmsgerr *e = mnl_nlmsg_get_payload(nlh);
                        if (payload < sizeof(*e))
                                return -EBADMSG;
                        return e->error < 0 && e->error > -4096 ? e->error : -EBADMSG;
                }
                if (nlh->nlmsg_type != SOCK_DIAG_BY_FAMILY || payload < sizeof(struct inet_diag_msg))
                        return -EBADMSG;
                m = mnl_nlmsg_get_payload(nlh);
                if (m->idiag_family != AF_INET && m->idiag_family != AF_INET6)
                        return -EBADMSG;
                off += MNL_ALIGN(mlen) < len - off ? MNL_ALIGN(mlen) : len - off;
                if (proto == IPPROTO_TCP ? m->idiag_state != TCP_LISTEN
                                         : m->idiag_state != TCP_CLOSE || m->id.idiag_dport != 0)
                        continue;
                k = ARRAY_GROW(l->items, l->allocated, l->n + 1, PROBE_MAX_LISTENERS);
                if (k < 0)
                        return k;
                c = &l->items[l->n++];
                *c = (ControlListener) {
                        .proto = proto,
                        .family = m->idiag_family,
                        .port = ntohs(m->id.idiag_sport),
                };
                memcpy(c->addr, m->id.idiag_src, m->idiag_family == AF_INET ? 4 : 16);
        }
        /* A well-formed buffer is consumed exactly; a tail shorter than a header is not. */
        return off == len ? 0 : -EBADMSG;
}

static int dump(struct mnl_socket *nl, uint8_t family, uint8_t proto, ProbeListeners *l) {
        _cleanup_free_ char *buf = malloc(SOCK_DIAG_BUF_SIZE);
        struct {
                struct nlmsghdr nlh;
                struct inet_diag_req_v2 req;
        } msg = {
                .nlh = {
                        .nlmsg_len = sizeof(msg),
                        .nlmsg_type = SOCK_DIAG_BY_FAMILY,
                        .nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP,
                        .nlmsg_seq = 1,
                },
                .req = {
                        .sdiag_family = family,
                        .sdiag_protocol = proto,
                        .idiag_states = proto == IPPROTO_TCP ? 1u << TCP_LISTEN : 1u << TCP_CLOSE,
                },
        };
        int k;

        if (!buf)
                return -ENOMEM;
        if (mnl_socket_sendto(nl, &msg, sizeof(msg)) < 0)
                return negative_errno();
        for (;;) {
                ssize_t n = mnl_socket_recvfrom(nl, buf, SOCK_DIAG_BUF_SIZE);
                if (n < 0)
                        return negative_errno();
                if (n == 0)
                        return -EBADMSG;
                k = probe_listeners_parse(buf, (size_t) n, proto, l);
                if (k != 0)
                        return k < 0 ? k : 0;
        }
}

int probe_listeners(ProbeListeners *ret) {
        static const uint8_t families[] = { AF_INET, AF_INET6 }, protos[] = { IPPROTO_TCP, IPPROTO_UDP };
        ProbeListeners l = {};
        struct mnl_socket *nl;
        int k = 0;

        nl = mnl_socket_open2(NETLINK_SOCK_DIAG, SOCK_CLOEXEC);
        if (!nl)
                return negative_errno();
        for (size_t f = 0; f < ELEMENTSOF(families) && k >= 0; f++)
                for (size_t p = 0; p < ELEMENTSOF(protos) && k >= 0; p++)
                        k = dump(nl, families[f], protos[p], &l);
        mnl_socket_close(nl);
        if (k < 0) {
                probe_listeners_done(&l);
                return k;
        }
        *ret = l;
        return 0;
}

void probe_listeners_done(ProbeListeners *l) {
        if (!l)
                return;
        free(l->items);
        *l = (ProbeListeners) {};
}
