/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * libpcap handles for the watcher. Bridges use pcap_create()+pcap_activate() with immediate
 * mode off and a 5 ms timeout, which on Linux selects TPACKET_V3: the kernel fills blocks of
 * the ring and wakes us once per block (or timeout) instead of once per packet, which is what
 * keeps a 1 Mpps burst within one core. The filter is compiled once at open.
 */
#include "ceredis.h"

#include <fcntl.h>
#include <pcap/pcap.h>

#include "capture.h"
#include "classify.h"

struct Capture {
        pcap_t *pcap;
        char *name;
        int fd;
        int dlt;
        /* pcap_stats counters are 32 bits: extend them. */
        uint32_t last_recv, last_drop, last_ifdrop;
        CaptureStats total;
};

static void set_err(char *err, size_t err_size, const char *what, const char *msg) {
        if (err && err_size)
                snprintf(err, err_size, "%s: %s", what, msg);
}

static int capture_setup(const char *device, int snaplen, int buffer, bool promisc, const char *filter,
                         Capture **ret, char *err, size_t err_size) {
        _cleanup_(capture_closep) Capture *c = NULL;
        char errbuf[PCAP_ERRBUF_SIZE] = "";
        struct bpf_program prog;
        int k, flags;

        c = calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;
        c->fd = -1;
        c->name = strdup(device);
        if (!c->name)
                return -ENOMEM;
        c->pcap = pcap_create(device, errbuf);
        if (!c->pcap) {
                set_err(err, err_size, device, errbuf);
                return -ENODEV;
        }
        if (pcap_set_snaplen(c->pcap, snaplen) < 0 || pcap_set_promisc(c->pcap, promisc) < 0 ||
            pcap_set_timeout(c->pcap, CAPTURE_TIMEOUT_MS) < 0 || pcap_set_buffer_size(c->pcap, buffer) < 0 ||
            pcap_set_immediate_mode(c->pcap, 0) < 0) {
                set_err(err, err_size, device, pcap_geterr(c->pcap));
                return -EINVAL;
        }
        k = pcap_activate(c->pcap);
        if (k < 0) {
                set_err(err, err_size, device, k == PCAP_ERROR ? pcap_geterr(c->pcap) : pcap_statustostr(k));
                return k == PCAP_ERROR_NO_SUCH_DEVICE ? -ENODEV
                       : k == PCAP_ERROR_PERM_DENIED  ? -EPERM
                                                      : -EIO;
        }
        if (filter) {
                if (pcap_compile(c->pcap, &prog, filter, 1, PCAP_NETMASK_UNKNOWN) < 0) {
                        set_err(err, err_size, device, pcap_geterr(c->pcap));
                        return -EINVAL;
                }
                k = pcap_setfilter(c->pcap, &prog);
                pcap_freecode(&prog);
                if (k < 0) {
                        set_err(err, err_size, device, pcap_geterr(c->pcap));
                        return -EINVAL;
                }
        }
        if (pcap_setnonblock(c->pcap, 1, errbuf) < 0) {
                set_err(err, err_size, device, errbuf);
                return -EIO;
        }
        c->fd = pcap_get_selectable_fd(c->pcap);
        if (c->fd < 0) {
                set_err(err, err_size, device, "no selectable file descriptor");
                return -EOPNOTSUPP;
        }
        flags = fcntl(c->fd, F_GETFD);
        if (flags < 0 || fcntl(c->fd, F_SETFD, flags | FD_CLOEXEC) < 0)
                return negative_errno();
        c->dlt = pcap_datalink(c->pcap);
        *ret = TAKE_PTR(c);
        return 0;
}

int capture_open_interface(const char *ifname, const char *filter, Capture **ret, char *err, size_t err_size) {
        return capture_setup(ifname, CAPTURE_SNAPLEN_BRIDGE, CAPTURE_BUFFER_BRIDGE, true, filter, ret, err,
                             err_size);
}

int capture_open_nflog(uint16_t group, Capture **ret, char *err, size_t err_size) {
        char device[32];

        snprintf(device, sizeof(device), "nflog:%u", group);
        return capture_setup(device, CAPTURE_SNAPLEN_NFLOG, CAPTURE_BUFFER_NFLOG, false, NULL, ret, err,
                             err_size);
}

void capture_close(Capture *c) {
        if (!c)
                return;
        if (c->pcap)
                pcap_close(c->pcap);
        free(c->name);
        free(c);
}

const char *capture_name(const Capture *c) {
        return c->name;
}

int capture_fd(const Capture *c) {
        return c->fd;
}

int capture_datalink(const Capture *c) {
        return c->dlt;
}

typedef struct DispatchArgs {
        CapturePacketFn fn;
        void *userdata;
} DispatchArgs;

static void on_packet(u_char *user, const struct pcap_pkthdr *h, const u_char *bytes) {
        DispatchArgs *a = (DispatchArgs *) user;

        a->fn(bytes, h->caplen, a->userdata);
}

int capture_dispatch(Capture *c, int max, CapturePacketFn fn, void *userdata) {
        DispatchArgs a = { fn, userdata };
        int n;

        errno = 0;
        n = pcap_dispatch(c->pcap, max, on_packet, (u_char *) &a);
        if (n == PCAP_ERROR) {
                /* libpcap's nflog reader reports a non-blocking socket with nothing to read,
                 * and a netlink overrun, as errors: the first is "no packet", the second a
                 * drop the kernel already counted. */
                if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
                        return 0;
                if (errno == ENOBUFS) {
                        c->total.dropped++;
                        return 0;
                }
                return -ENETDOWN;
        }
        return n < 0 ? 0 : n;
}

int capture_stats(Capture *c, CaptureStats *ret) {
        struct pcap_stat st = {};

        if (pcap_stats(c->pcap, &st) < 0)
                return -EIO;
        c->total.received += (uint32_t) (st.ps_recv - c->last_recv);
        c->total.dropped += (uint32_t) (st.ps_drop - c->last_drop);
        c->total.ifdropped += (uint32_t) (st.ps_ifdrop - c->last_ifdrop);
        c->last_recv = st.ps_recv;
        c->last_drop = st.ps_drop;
        c->last_ifdrop = st.ps_ifdrop;
        *ret = c->total;
        return 0;
}

void capture_strv_free(char **l) {
        for (char **p = l; p && *p; p++)
                free(*p);
        free(l);
}

static bool is_docker_bridge(const char *name) {
        return streq(name, "docker0") || strncmp(name, "br-", 3) == 0;
}

int capture_list_bridges(char ***ret) {
        char errbuf[PCAP_ERRBUF_SIZE];
        pcap_if_t *all = NULL;
        char **l = NULL;
        size_t n = 0, allocated = 0;
        int k = 0;

        if (pcap_findalldevs(&all, errbuf) < 0)
                return -EIO;
        for (pcap_if_t *d = all; d; d = d->next) {
                if (!is_docker_bridge(d->name))
                        continue;
                k = ARRAY_GROW(l, allocated, n + 2, 4096);
                if (k < 0)
                        break;
                l[n] = strdup(d->name);
                if (!l[n]) {
                        k = -ENOMEM;
                        break;
                }
                l[++n] = NULL;
        }
        pcap_freealldevs(all);
        if (k < 0) {
                capture_strv_free(l);
                return k;
        }
        if (!l && !(l = calloc(1, sizeof(char *))))
                return -ENOMEM;
        *ret = l;
        return 0;
}

/* ---- Filter generation */

typedef struct PortSet {
        uint16_t port[CAPTURE_MAX_PORTS];
        size_t n;
        bool overflow;
} PortSet;

static void ports_add(PortSet *s, uint16_t port) {
        for (size_t i = 0; i < s->n; i++)
                if (s->port[i] == port)
                        return;
        if (s->n == CAPTURE_MAX_PORTS) {
                s->overflow = true;
                return;
        }
        s->port[s->n++] = port;
}

static void ports_add_service(PortSet *s, const PolicyService *svc, uint8_t proto) {
        for (size_t i = 0; i < svc->n_ports; i++)
                if (svc->ports[i].proto == proto)
                        ports_add(s, svc->ports[i].port);
}

/* "(port A or port B ...)", or "" for all ports when the set overflowed. */
static int ports_format(const PortSet *s, const char *dir, FILE *f) {
        if (s->overflow)
                return 0;
        fprintf(f, "%s port (", dir);
        for (size_t i = 0; i < s->n; i++)
                fprintf(f, "%s%u", i ? " or " : "", s->port[i]);
        fputs(") and ", f);
        return 0;
}

int capture_filter_from_policy(const Policy *p, bool with_syns, char **ret) {
        _cleanup_free_ char *text = NULL;
        _cleanup_free_ PortSet *l7 = NULL, *tcp = NULL, *udp = NULL;
        _cleanup_fclose_ FILE *f = NULL;
        size_t size = 0;
        bool any = false;

        l7 = calloc(1, sizeof(*l7));
        tcp = calloc(1, sizeof(*tcp));
        udp = calloc(1, sizeof(*udp));
        if (!l7 || !tcp || !udp)
                return -ENOMEM;
        for (size_t i = 0; i < p->n_flows + p->n_forbids; i++) {
                const PolicyEndpoint *to;

                if (i < p->n_flows) {
                        if (p->flows[i].access != POLICY_ACCESS_READ_ONLY)
                                continue;
                        to = &p->flows[i].to;
                } else {
                        if (p->forbids[i - p->n_flows].access != POLICY_ACCESS_WRITE)
                                continue;
                        to = &p->forbids[i - p->n_flows].to;
                }
                for (size_t j = 0; j < to->n_services; j++) {
                        const PolicyService *svc = &p->services[to->services[j]];
                        if (svc->protocol == POLICY_L7_HTTP || svc->protocol == POLICY_L7_POSTGRESQL)
                                ports_add_service(l7, svc, IPPROTO_TCP);
                }
        }
        /* Writes to evaluation stores are journaled (DATA-3): their payload is needed too. */
        for (size_t i = 0; i < p->n_services; i++) {
                const PolicyService *svc = &p->services[i];

                if (classify_service_is_evaluation_store(p, (int32_t) i) &&
                    (svc->protocol == POLICY_L7_HTTP || svc->protocol == POLICY_L7_POSTGRESQL))
                        ports_add_service(l7, svc, IPPROTO_TCP);
        }
        if (with_syns)
                for (size_t i = 0; i < p->n_services; i++) {
                        ports_add_service(tcp, &p->services[i], IPPROTO_TCP);
                        ports_add_service(udp, &p->services[i], IPPROTO_UDP);
                }

        f = open_memstream(&text, &size);
        if (!f)
                return -ENOMEM;
        if (l7->n > 0) {
                /* IPv4: the segment carries payload (total length - IP header - TCP header).
                 * IPv6 extension headers make that arithmetic unreliable: keep every segment
                 * to those ports and let the decoder skip empty ones. */
                fputs("(ip and tcp and ", f);
                ports_format(l7, "dst", f);
                fputs("ip[2:2] - ((ip[0] & 0xf) << 2) - ((tcp[12] & 0xf0) >> 2) > 0) or (ip6 and tcp and ", f);
                ports_format(l7, "dst", f);
                fputs("ip6)", f);
                any = true;
        }
        if (tcp->n > 0 || tcp->overflow) {
                fprintf(f, "%s(ip and tcp and ", any ? " or " : "");
                ports_format(tcp, "dst", f);
                fputs("tcp[tcpflags] & (tcp-syn|tcp-ack) == tcp-syn) or (ip6 and tcp and ", f);
                ports_format(tcp, "dst", f);
                fputs("ip6[6] == 6 and ip6[53] & 0x12 == 0x02)", f);
                any = true;
        }
        if (udp->n > 0 || udp->overflow) {
                fprintf(f, "%s(udp and ", any ? " or " : "");
                ports_format(udp, "dst", f);
                fputs("udp)", f);
                any = true;
        }
        if (fflush(f) != 0 || ferror(f))
                return -ENOMEM;
        fclose(TAKE_PTR(f));
        if (size > CAPTURE_MAX_FILTER)
                return -E2BIG;
        *ret = any ? TAKE_PTR(text) : NULL;
        return 0;
}
